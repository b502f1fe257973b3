"""accord.yaml: the project file, loaded once into typed objects.

Errors name the file, the line and the key, and say what was expected:
``accord.yaml:14: sources[2].format: expected one of csv, jsonl, parquet, sql; got 'xls'``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from accord.decisions.settings import DecisionsSettings
from accord.errors import ConfigError
from accord.privacy.settings import PrivacySettings
from accord.identity.settings import IdentitySettings
from accord.profiles.settings import ProfilesSettings
from accord.segments.settings import SegmentsSettings
from accord.traits.model_settings import ChurnSettings, ClvSettings
from accord.traits.settings import TraitsSettings

CONFIG_FILE = "accord.yaml"

# The canonical person fields every people-source maps onto.
SINGLE_FIELDS = (
    "given_name",
    "family_name",
    "full_name",
    "street",
    "city",
    "region",
    "postcode",
    "country",
    "date_of_birth",
    "company",
    "created_at",
    "updated_at",
)
LIST_FIELDS = ("emails", "phones")
MAP_FIELDS = ("external_ids", "consent")
CANONICAL_FIELDS = SINGLE_FIELDS + LIST_FIELDS + MAP_FIELDS

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
TRANSFORMS = ("trim", "lower", "upper", "title", "digits", "null_if_empty")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """Where one canonical value comes from: a column or a constant, then transforms."""

    column: str | None = None
    constant: str | None = None
    transforms: list[Literal["trim", "lower", "upper", "title", "digits", "null_if_empty"]] = Field(
        default_factory=list
    )
    date_format: str | None = None
    """strptime format; the value is parsed and stored as ISO 8601."""
    split: Literal["given family", "family, given"] | None = None
    """Only for full_name: also fill given_name and family_name from it when they are empty."""
    on_error: Literal["quarantine", "keep_row"] = "quarantine"
    """When a value fails date_format or parsing: quarantine the row, or keep the row with this value empty."""

    @model_validator(mode="after")
    def _one_origin(self) -> FieldSpec:
        if (self.column is None) == (self.constant is None):
            raise ValueError("give exactly one of 'column' or 'constant'")
        return self


def _coerce_field_spec(value: Any) -> Any:
    return {"column": value} if isinstance(value, str) else value


class PeopleFields(_Strict):
    """Canonical person fields; each maps from a column (a string) or a FieldSpec."""

    given_name: FieldSpec | None = None
    family_name: FieldSpec | None = None
    full_name: FieldSpec | None = None
    street: FieldSpec | None = None
    city: FieldSpec | None = None
    region: FieldSpec | None = None
    postcode: FieldSpec | None = None
    country: FieldSpec | None = None
    date_of_birth: FieldSpec | None = None
    company: FieldSpec | None = None
    created_at: FieldSpec | None = None
    updated_at: FieldSpec | None = None
    emails: list[FieldSpec] = Field(default_factory=list)
    phones: list[FieldSpec] = Field(default_factory=list)
    external_ids: dict[str, FieldSpec] = Field(default_factory=dict)
    consent: dict[str, FieldSpec] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _columns_as_specs(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = {}
        for name, value in data.items():
            if name in LIST_FIELDS:
                value = [_coerce_field_spec(v) for v in (value if isinstance(value, list) else [value])]
            elif name in MAP_FIELDS and isinstance(value, dict):
                value = {k: _coerce_field_spec(v) for k, v in value.items()}
            else:
                value = _coerce_field_spec(value)
            out[name] = value
        return out


class CsvOptions(_Strict):
    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    encoding: Literal["utf-8", "utf-16", "latin-1"] = "utf-8"
    header: bool = True
    columns: list[str] | None = None
    """Column names when the file has no header row."""

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError(f"expected a single character; got {v!r}")
        return v


class SqlOptions(_Strict):
    url: str
    query: str


class EventMapping(_Strict):
    """How an events-source row becomes an event on a person."""

    event: FieldSpec
    timestamp: FieldSpec
    identity_type: str
    """What identifies the person: 'email', 'phone', 'user_id', 'anonymous_id' or an external id name."""
    identity: FieldSpec
    anonymous_id: FieldSpec | None = None
    revenue: FieldSpec | None = None
    type: FieldSpec = Field(default_factory=lambda: FieldSpec(constant="track"))
    """One of EVENT_TYPES as a constant (``type: page``), or ``{column: type}`` when rows carry their own."""

    @field_validator("event", "timestamp", "identity", "anonymous_id", "revenue", mode="before")
    @classmethod
    def _coerce(cls, v: Any) -> Any:
        return _coerce_field_spec(v)

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v not in EVENT_TYPES:
                raise ValueError(f"expected one of {', '.join(EVENT_TYPES)}, or {{column: NAME}}; got {v!r}")
            return {"constant": v}
        return v


class SourceConfig(_Strict):
    name: str
    format: Literal["csv", "jsonl", "parquet", "sql"]
    kind: Literal["people", "events"] = "people"
    path: str | None = None
    csv: CsvOptions = Field(default_factory=CsvOptions)
    sql: SqlOptions | None = None
    primary_key: list[str]
    snapshot: Literal["full", "incremental"] = "incremental"
    """'full': each ingest holds every row, so a row that disappears is marked deleted."""
    fields: PeopleFields = Field(default_factory=lambda: PeopleFields())
    events: EventMapping | None = None
    priority: int = 100
    """Lower wins in survivorship by source priority."""

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", v):
            raise ValueError(f"expected lower-case letters, digits and '_', starting with a letter; got {v!r}")
        return v

    @field_validator("primary_key", mode="before")
    @classmethod
    def _pk_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _origin_matches_format(self) -> SourceConfig:
        if self.format == "sql":
            if self.sql is None:
                raise ValueError("format 'sql' needs a 'sql' section with 'url' and 'query'")
        elif not self.path:
            raise ValueError(f"format {self.format!r} needs a 'path'")
        if self.kind == "events" and self.events is None:
            raise ValueError("kind 'events' needs an 'events' mapping")
        if self.kind == "people" and not self.fields.model_dump(exclude_defaults=True):
            raise ValueError("kind 'people' needs 'fields' mapping columns onto canonical fields")
        return self

    def field_specs(self) -> dict[str, Any]:
        """The mapped fields only: FieldSpec, list[FieldSpec] or dict[str, FieldSpec] per canonical field."""
        return {name: getattr(self.fields, name) for name in CANONICAL_FIELDS if getattr(self.fields, name)}

    def referenced_columns(self) -> set[str]:
        cols: set[str] = set(self.primary_key)
        specs: list[FieldSpec] = []
        for spec in self.field_specs().values():
            if isinstance(spec, FieldSpec):
                specs.append(spec)
            elif isinstance(spec, list):
                specs.extend(spec)
            else:
                specs.extend(spec.values())
        if self.events:
            e = self.events
            specs.extend(s for s in (e.event, e.timestamp, e.identity, e.anonymous_id, e.revenue, e.type) if s)
        cols.update(s.column for s in specs if s.column)
        return cols


class IdentityConfig(IdentitySettings):
    """Identity resolution: thresholds, deterministic rules, the model (see docs/identity.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    default_region: str = "US"
    """Phones without a country code, on records without a country, are read as this country's."""
    auto_merge_threshold: float = Field(0.95, ge=0, le=1)
    review_threshold: float = Field(0.6, ge=0, le=1)

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> IdentityConfig:
        if self.review_threshold > self.auto_merge_threshold:
            raise ValueError("review_threshold must not be above auto_merge_threshold")
        return self


class StageSection(_Strict):
    """A section for a later stage, kept as given until that stage defines its schema."""

    model_config = ConfigDict(extra="allow", frozen=True)


class ProjectConfig(_Strict):
    project: str = "accord"
    store: str = "duckdb:///accord.duckdb"
    sources: list[SourceConfig] = Field(default_factory=list)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    profiles: ProfilesSettings = Field(default_factory=ProfilesSettings)
    traits: TraitsSettings = Field(default_factory=TraitsSettings)
    clv: ClvSettings = Field(default_factory=ClvSettings)
    churn: ChurnSettings = Field(default_factory=ChurnSettings)
    segments: SegmentsSettings = Field(default_factory=SegmentsSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    decisions: DecisionsSettings = Field(default_factory=DecisionsSettings)
    api: StageSection = Field(default_factory=StageSection)

    base_dir: Path = Field(default=Path("."), exclude=True)
    config_path: Path | None = Field(default=None, exclude=True)

    @field_validator("sources")
    @classmethod
    def _unique_source_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        # A field validator, so the error points at the sources list rather than the top of the file.
        seen: dict[str, int] = {}
        for i, s in enumerate(sources):
            if s.name in seen:
                raise ValueError(f"source name {s.name!r} is used twice (sources[{seen[s.name]}] and sources[{i}])")
            seen[s.name] = i
        return sources

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} in {self.config_path or CONFIG_FILE}; known: {known}")

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def store_url(self) -> str:
        """The store URL with a relative DuckDB path made relative to the project folder."""
        prefix = "duckdb:///"
        if self.store.startswith(prefix):
            rest = self.store[len(prefix) :]
            if rest and rest != ":memory:" and not Path(rest).is_absolute():
                return prefix + str((self.base_dir / rest).resolve())
        return self.store


# --- loading with line numbers -------------------------------------------------------------


class _DuplicateKey(Exception):
    def __init__(self, line: int, path: tuple[Any, ...], first_line: int):
        self.line, self.path, self.first_line = line, path, first_line


def _construct(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        key_lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in out:
                # PyYAML keeps the last of two equal keys; a whole section would vanish without a word.
                raise _DuplicateKey(key_node.start_mark.line + 1, path + (key,), key_lines[key])
            key_lines[key] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, path + (key,), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, path + (i,), lines) for i, v in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_EXPECTED_SCALAR = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _describe(err: dict[str, Any]) -> str:
    kind = err["type"]
    got = err.get("input")
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        return f"expected one of {', '.join(options)}; got {got!r}"
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        if len(err["loc"]) >= 2 and err["loc"][-2] == "fields":
            return f"unknown canonical field; expected one of {', '.join(CANONICAL_FIELDS)}"
        return "unknown key (check the spelling; see the accord.yaml reference in README)"
    if kind in _EXPECTED_SCALAR:
        return f"expected {_EXPECTED_SCALAR[kind]}; got {got!r}"
    if kind == "list_type":
        return f"expected a list; got {got!r}"
    if kind in ("dict_type", "model_type"):
        return f"expected a mapping; got {got!r}"
    msg = str(err.get("msg", ""))
    return msg.removeprefix("Value error, ")


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic adds tags for unions and function validators; keep only the keys the user wrote.
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))


def parse_config(text: str, filename: str = CONFIG_FILE, base_dir: Path | None = None) -> ProjectConfig:
    """Validate accord.yaml text; raise ConfigError naming file, line and key."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{filename}:{line}: not valid YAML: {problem}") from None
    lines: dict[tuple[Any, ...], int] = {}
    try:
        data = {} if node is None else _construct(node, (), lines)
    except _DuplicateKey as dup:
        raise ConfigError(f"{filename}:{dup.line}: {_format_loc(dup.path)}: this key is given twice "
                          f"(first on line {dup.first_line}); keep one") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}:1: expected a mapping of sections (store, sources, ...) at the top")
    try:
        cfg = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]))
            probe = loc
            while probe and probe not in lines:
                probe = probe[:-1]
            line = lines.get(probe, 1)
            messages.append(f"{filename}:{line}: {_format_loc(loc) or '(top)'}: {_describe(err)}")
        raise ConfigError("\n".join(messages)) from None
    return cfg.model_copy(update={"base_dir": base_dir or Path("."), "config_path": Path(filename)})


def load_config(path: str | Path | None = None) -> ProjectConfig:
    """Load accord.yaml from a file or a project folder (default: the current folder)."""
    p = Path(path) if path else Path(CONFIG_FILE)
    if p.is_dir():
        p = p / CONFIG_FILE
    if not p.exists():
        raise ConfigError(
            f"{p}: no such file. Run 'accord init DIR' to start a project, or pass --config PATH."
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None
    return parse_config(text, filename=str(p), base_dir=p.parent.resolve())
