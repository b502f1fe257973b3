"""Errors meant for users: each names the file, line or field and what to do."""


class AccordError(Exception):
    """A problem the user can fix; the CLI prints the message without a traceback."""


class ConfigError(AccordError):
    """accord.yaml is missing, unreadable or invalid."""


class SourceError(AccordError):
    """A source cannot be read at all (missing file, wrong schema, unreachable database)."""


class StoreError(AccordError):
    """The store cannot be opened or migrated."""
