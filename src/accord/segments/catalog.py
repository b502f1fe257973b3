"""Which segments exist: from accord.yaml and segment files, saved from the CLI or API, or made by
clustering; kept in the ``segments`` table so the API and history can name them."""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from accord.clock import utcnow
from accord.errors import AccordError, ConfigError
from accord.segments.conditions import And, Condition, Consent, Holds
from accord.segments.settings import SegmentDefinition, SegmentsSettings, build_condition, check_name
from accord.store.backend import Store


class SegmentError(AccordError):
    """A segment cannot be defined, found or evaluated as asked."""


@dataclass(frozen=True)
class Segment:
    name: str
    condition: Condition | None
    """The condition as written (None for a clustering segment, whose members are assigned)."""
    kind: str = "rule"
    origin: str = "config"
    description: str | None = None
    requires_consent: tuple[str, ...] = ()
    realtime: bool = True
    where: str = ""
    """Where it was defined (accord.yaml, a segments file, saved), for messages."""

    @property
    def definition(self) -> str | None:
        return None if self.condition is None else str(self.condition)

    @property
    def effective(self) -> Condition:
        """The condition members must meet, with ``requires_consent`` added."""
        assert self.condition is not None, f"segment {self.name} has no condition"
        if not self.requires_consent:
            return self.condition
        consents = tuple(Holds(Consent(p)) for p in self.requires_consent)
        parts = self.condition.parts if isinstance(self.condition, And) else (self.condition,)
        return And(parts + consents)


@dataclass
class Catalog:
    segments: dict[str, Segment] = field(default_factory=dict)

    def rules(self, names: list[str] | None = None) -> list[Segment]:
        if names:
            missing = [n for n in names if n not in self.segments]
            if missing:
                raise SegmentError(f"no segment named {missing[0]!r}; known: {', '.join(sorted(self.segments)) or 'none'}")
        return [s for s in self.segments.values() if s.kind == "rule" and (not names or s.name in names)]

    def get(self, name: str) -> Segment:
        if name not in self.segments:
            raise SegmentError(f"no segment named {name!r}; known: {', '.join(sorted(self.segments)) or 'none'} "
                               "(see 'accord segments list')")
        return self.segments[name]


def settings_of(cfg: Any) -> SegmentsSettings:
    section = getattr(cfg, "segments", None)
    if isinstance(section, SegmentsSettings):
        return section
    data = section.model_dump() if hasattr(section, "model_dump") else (section or {})
    try:
        return SegmentsSettings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"accord.yaml: segments.{loc}: {str(err['msg']).removeprefix('Value error, ')}") from None


def _from_definition(d: SegmentDefinition, origin: str, where: str) -> Segment:
    return Segment(d.name, d.parsed(), "rule", origin, d.description, tuple(d.requires_consent), d.realtime, where)


def config_segments(cfg: Any) -> list[Segment]:
    """The segments accord.yaml defines, then those of its segment files, in order."""
    settings = settings_of(cfg)
    config_file = str(getattr(cfg, "config_path", None) or "accord.yaml")
    out = [_from_definition(d, "config", f"{config_file}: segments.definitions[{i}]")
           for i, d in enumerate(settings.definitions)]
    base = Path(getattr(cfg, "base_dir", "."))
    for pattern in settings.files:
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        matches = sorted(glob.glob(full))
        if not matches:
            raise ConfigError(f"{config_file}: segments.files: {pattern!r} matches no file")
        for path in matches:
            out += _file_segments(Path(path))
    seen: dict[str, str] = {}
    for s in out:
        if s.name in seen:
            raise ConfigError(f"segment {s.name!r} is defined twice: {seen[s.name]} and {s.where}")
        seen[s.name] = s.where
    return out


def _file_segments(path: Path) -> list[Segment]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read segment definitions: {exc}") from None
    if isinstance(data, dict) and "segments" in data:
        data = data["segments"]
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of segment definitions (or 'segments:' holding one)")
    out = []
    for i, item in enumerate(data):
        try:
            d = SegmentDefinition.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{path}: [{i}]{'.' + loc if loc else ''}: "
                              f"{str(err['msg']).removeprefix('Value error, ')}") from None
        out.append(_from_definition(d, "config", f"{path}[{i}]"))
    return out


def load_catalog(store: Store, cfg: Any, configured: list[Segment] | None = None) -> Catalog:
    """Config segments (``configured`` when the caller has read them already), then the saved and
    clustering segments that are active in the store."""
    catalog = Catalog({s.name: s for s in (config_segments(cfg) if configured is None else configured)})
    for name, kind, origin, definition, description, consent, realtime in store.fetchall(
            "SELECT name, kind, origin, definition, description, CAST(requires_consent AS TEXT), realtime "
            "FROM segments WHERE status = 'active' AND origin <> 'config' ORDER BY name"):
        if name in catalog.segments:
            continue  # the config wins over a saved segment of the same name
        condition = parse_saved(name, definition) if kind == "rule" else None
        catalog.segments[name] = Segment(name, condition, kind, origin, description,
                                         tuple(json.loads(consent) if consent else ()), bool(realtime), origin)
    return catalog


def parse_saved(name: str, definition: str) -> Condition:
    try:
        return build_condition(definition)
    except ValueError as exc:
        raise SegmentError(f"segment {name!r} (saved): {exc}") from None


def sync_config_segments(store: Store, cfg: Any, now: Any = None) -> list[str]:
    """Write the config's segments into ``segments``; retire those the config no longer has.
    Returns the names retired (their open memberships are closed)."""
    now = now or utcnow()
    segments = config_segments(cfg)
    existing = {r[0]: r[1] for r in store.fetchall("SELECT name, origin FROM segments")}
    with store.transaction():
        for s in segments:
            args = (s.kind, "config", "active", s.definition, s.description, json.dumps(list(s.requires_consent)),
                    s.realtime, now)
            if s.name in existing:
                store.execute(store.type_sql(
                    "UPDATE segments SET kind = ?, origin = ?, status = ?, definition = ?, description = ?, "
                    "requires_consent = CAST(? AS ${JSON}), realtime = ?, updated_at = ? WHERE name = ?"),
                    (*args, s.name))
            else:
                store.execute(store.type_sql(
                    "INSERT INTO segments (name, kind, origin, status, definition, description, requires_consent, "
                    "realtime, created_at, updated_at, members) VALUES (?, ?, ?, ?, ?, ?, CAST(? AS ${JSON}), ?, ?, ?, 0)"),
                    (s.name, *args, now))
        names = {s.name for s in segments}
        retired = [r[0] for r in store.fetchall(
            "SELECT name FROM segments WHERE origin = 'config' AND status = 'active'") if r[0] not in names]
        for name in retired:
            retire(store, name, now, "retired")
    return retired


def retire(store: Store, name: str, now: Any, how: str) -> int:
    """Mark a segment retired and close its open memberships; returns how many were closed."""
    from accord.segments.membership import close_memberships

    with store.transaction():
        store.execute("UPDATE segments SET status = 'retired', updated_at = ?, members = 0 WHERE name = ?", (now, name))
        return close_memberships(store, name, now, how)


def save_segment(store: Store, cfg: Any, name: str, condition_text: str, *, description: str | None = None,
                 requires_consent: list[str] | None = None, realtime: bool = True) -> Segment:
    """Save a segment outside the config (origin 'saved'); it is evaluated from the next run on."""
    try:
        check_name(name)
    except ValueError as exc:
        raise SegmentError(str(exc)) from None
    if name in {s.name for s in config_segments(cfg)}:
        raise SegmentError(f"segment {name!r} is defined in the config; change it there")
    try:
        d = SegmentDefinition(name=name, condition=condition_text, description=description,
                              requires_consent=requires_consent or [], realtime=realtime)
    except ValidationError as exc:
        raise SegmentError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None
    segment = _from_definition(d, "saved", "saved")
    now = utcnow()
    row = store.fetchone("SELECT origin FROM segments WHERE name = ?", (name,))
    if row and row[0] == "cluster":
        raise SegmentError(f"segment {name!r} is a clustering segment; pick another name")
    args = ("rule", "saved", "active", segment.definition, description, json.dumps(list(segment.requires_consent)),
            realtime, now)
    with store.transaction():
        if row:
            store.execute(store.type_sql(
                "UPDATE segments SET kind = ?, origin = ?, status = ?, definition = ?, description = ?, "
                "requires_consent = CAST(? AS ${JSON}), realtime = ?, updated_at = ? WHERE name = ?"), (*args, name))
        else:
            store.execute(store.type_sql(
                "INSERT INTO segments (name, kind, origin, status, definition, description, requires_consent, "
                "realtime, created_at, updated_at, members) VALUES (?, ?, ?, ?, ?, ?, CAST(? AS ${JSON}), ?, ?, ?, 0)"),
                (name, *args, now))
    return segment
