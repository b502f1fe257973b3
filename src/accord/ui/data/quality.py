"""Data quality for the dashboard: the ``accord quality`` report, kept until the source records change,
and the warnings worth a look drawn from it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from accord.config import ProjectConfig
from accord.sources.quality import quality_report
from accord.store import Store


@dataclass(frozen=True)
class Thresholds:
    """Below these a field or source gets a warning."""

    completeness: float = 0.5
    """Only for fields the source maps: an unmapped field is empty by design."""
    validity: float = 0.95
    uniqueness: float = 1.0
    agreement: float = 0.9
    stale_days: float = 30.0


class QualityCache:
    """One report per state of the source records: recomputed when a run changes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: tuple[Any, ...] | None = None
        self._report: dict[str, Any] | None = None

    def report(self, store: Store, cfg: ProjectConfig) -> dict[str, Any]:
        state = _data_state(store)
        with self._lock:
            if self._report is None or state != self._state:
                self._report = quality_report(store, cfg)
                self._state = state
            return self._report


def _data_state(store: Store) -> tuple[Any, ...]:
    records = store.fetchone("SELECT COUNT(*), MAX(valid_from), MAX(deleted_at), COUNT(deleted_at) "
                             "FROM source_records") or ()
    quarantine = store.fetchone("SELECT COUNT(*), MAX(quarantined_at), MAX(resolved_at) FROM quarantine") or ()
    return (*records, *quarantine)


def mapped_fields(cfg: ProjectConfig) -> dict[str, set[str]]:
    """Source name -> the canonical fields its mapping fills."""
    out: dict[str, set[str]] = {}
    for source in cfg.sources:
        if source.kind != "people":
            continue
        fields = set(source.field_specs())
        if source.fields.full_name is not None and source.fields.full_name.split:
            fields |= {"given_name", "family_name"}
        out[source.name] = fields
    return out


def warnings(report: dict[str, Any], cfg: ProjectConfig, limits: Thresholds = Thresholds()) -> list[dict[str, str]]:
    """What needs a look: sparse mapped fields, invalid values, duplicate keys, open quarantine, stale
    sources and sources that disagree on a shared external id. Each: ``{source, field, message}``."""
    mapped = mapped_fields(cfg)
    out: list[dict[str, str]] = []
    for src in report["sources"]:
        name = src["source"]
        if src["quarantined_open"]:
            out.append({"source": name, "field": "", "message": f"{src['quarantined_open']} row(s) in quarantine"})
        uniqueness = src["primary_key"]["uniqueness"]
        if uniqueness is not None and uniqueness < limits.uniqueness:
            out.append({"source": name, "field": "primary key",
                        "message": f"key uniqueness {uniqueness:.1%} "
                                   f"({src['primary_key']['duplicate_rows_quarantined']} duplicate rows)"})
        newest = src["freshness"]["newest_age_days"]
        if newest is not None and newest > limits.stale_days:
            out.append({"source": name, "field": "", "message": f"newest record is {newest:g} days old"})
        for field, entry in src["fields"].items():
            completeness, validity = entry["completeness"], entry["validity"]
            if field in mapped.get(name, set()) and completeness is not None and completeness < limits.completeness:
                out.append({"source": name, "field": field, "message": f"only {completeness:.1%} filled"})
            if validity is not None and validity < limits.validity:
                out.append({"source": name, "field": field, "message": f"{1 - validity:.1%} of values invalid"})
    for entry in report["consistency"]:
        for field, agreement in entry["agreement"].items():
            if agreement < limits.agreement:
                out.append({"source": "", "field": field,
                            "message": f"sources linked by {entry['external_id']} agree on {field} only "
                                       f"{agreement:.1%} of the time"})
    return out
