"""`accord quality`: the data-quality matrix per source and field.

Completeness (share of records with a value), validity (share of values that parse as an email,
phone, date or postcode), primary-key uniqueness, consistency across sources that share an
external id, and freshness (age of the newest and the median record). Completeness, uniqueness and
freshness cover every current record; validity and consistency are measured on a sample of at most
VALIDITY_SAMPLE records per source, which the report states.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from accord.config import ProjectConfig
from accord.clock import utcnow
from accord.privacy.encryption import encryption_for, reveal_records
from accord.standardize import standardize_records
from accord.store import Store

VALIDITY_SAMPLE = 100_000
FIELDS = ("given_name", "family_name", "full_name", "emails", "phones", "street", "city", "postcode", "country",
          "date_of_birth", "company", "external_ids")
_VALIDITY = {
    # field -> the standardized column, which is null when the value does not parse
    "emails": "std_email",
    "phones": "std_phone",
    "date_of_birth": "std_dob",
    "postcode": "std_postcode",
    "country": "std_country",
}
_EMPTY_JSON = ("[]", "{}", "")


def _present(series: pd.Series) -> pd.Series:
    return series.notna() & ~series.astype(str).str.strip().isin(_EMPTY_JSON)


def _age_days(ts: Any, now: datetime) -> float | None:
    if ts is None or pd.isna(ts):
        return None
    return round((now - pd.Timestamp(ts).to_pydatetime()).total_seconds() / 86400, 1)


def quality_report(store: Store, cfg: ProjectConfig) -> dict[str, Any]:
    now = utcnow()
    encryption = encryption_for(cfg)
    people = [s for s in cfg.sources if s.kind == "people"]
    sources: list[dict[str, Any]] = []
    samples: dict[str, pd.DataFrame] = {}
    for source in people:
        columns = ", ".join(("record_key",) + FIELDS + ("region",))
        frame = pd.DataFrame(
            store.fetchall(f"SELECT {columns} FROM source_records WHERE source = ? AND deleted_at IS NULL "
                           "ORDER BY record_key", (source.name,)),
            columns=["record_key", *FIELDS, "region"])
        if encryption is not None:  # privacy.encryption: judged on the decrypted values, in memory only
            frame = reveal_records(frame, encryption)
        times = store.fetchall(
            "SELECT max(coalesce(source_updated_at, source_created_at, valid_from)), "
            "count(*) FROM source_records WHERE source = ? AND deleted_at IS NULL", (source.name,))
        ordered = [r[0] for r in store.fetchall(
            "SELECT coalesce(source_updated_at, source_created_at, valid_from) AS t FROM source_records "
            "WHERE source = ? AND deleted_at IS NULL ORDER BY t", (source.name,))]
        duplicates = store.scalar(
            "SELECT count(*) FROM quarantine WHERE source = ? AND resolved_at IS NULL "
            "AND reason LIKE 'duplicate primary key%'", (source.name,)) or 0
        quarantined = store.scalar(
            "SELECT count(*) FROM quarantine WHERE source = ? AND resolved_at IS NULL", (source.name,)) or 0
        n = len(frame)
        sample = frame.sample(n=VALIDITY_SAMPLE, random_state=0) if n > VALIDITY_SAMPLE else frame
        std = standardize_records(sample.assign(source=source.name), default_region=cfg.identity.default_region,
                                  workers=1) if len(sample) else sample
        samples[source.name] = std
        fields: dict[str, dict[str, Any]] = {}
        for name in FIELDS:
            if not len(frame):
                fields[name] = {"completeness": None, "validity": None}
                continue
            present = _present(frame[name])
            entry: dict[str, Any] = {"completeness": round(float(present.mean()), 4), "validity": None}
            if name in _VALIDITY and len(std):
                has = _present(std[name])
                if has.any():
                    entry["validity"] = round(float(std.loc[has, _VALIDITY[name]].notna().mean()), 4)
            fields[name] = entry
        median = ordered[len(ordered) // 2] if ordered else None
        sources.append({
            "source": source.name,
            "records": n,
            "quarantined_open": quarantined,
            "validity_sample": len(sample),
            "primary_key": {"columns": source.primary_key, "duplicate_rows_quarantined": duplicates,
                            "uniqueness": round(n / (n + duplicates), 4) if n + duplicates else None},
            "freshness": {"newest_age_days": _age_days(times[0][0] if times else None, now),
                          "median_age_days": _age_days(median, now)},
            "fields": fields,
        })
    return {"generated_at": now.isoformat(timespec="seconds"), "sources": sources,
            "consistency": _consistency(samples)}


def _consistency(samples: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """For each external id held by two or more sources: how often linked records agree on each field."""
    keyed: dict[str, list[pd.DataFrame]] = {}
    for source, std in samples.items():
        if not len(std):
            continue
        ids = std["external_ids"].map(lambda t: json.loads(t) if isinstance(t, str) and t else {})
        names = sorted({k for d in ids for k, v in d.items() if v})
        for id_name in names:
            part = std.assign(_id=ids.map(lambda d, k=id_name: d.get(k)), _source=source)
            keyed.setdefault(id_name, []).append(part[part["_id"].notna()])
    out = []
    for id_name, parts in sorted(keyed.items()):
        if len(parts) < 2:
            continue
        frame = pd.concat(parts, ignore_index=True)
        pairs = frame.merge(frame, on="_id", suffixes=("_a", "_b"))
        pairs = pairs[pairs["_source_a"] < pairs["_source_b"]]
        entry: dict[str, Any] = {"external_id": id_name, "linked_pairs": int(len(pairs)), "agreement": {}}
        for col in ("std_email", "std_phone", "std_family_name", "std_given_name", "std_dob", "std_postcode"):
            both = pairs[pairs[f"{col}_a"].notna() & pairs[f"{col}_b"].notna()]
            if len(both):
                entry["agreement"][col.removeprefix("std_")] = round(
                    float((both[f"{col}_a"] == both[f"{col}_b"]).mean()), 4)
        out.append(entry)
    return out


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def render_quality(report: dict[str, Any], console: Console) -> None:
    for src in report["sources"]:
        pk = src["primary_key"]
        fresh = src["freshness"]
        title = (f"{src['source']}: {src['records']:,} records, key uniqueness {_pct(pk['uniqueness'])}, "
                 f"{src['quarantined_open']} quarantined, newest {fresh['newest_age_days']} days old, "
                 f"median {fresh['median_age_days']} days")
        console.print(f"[bold]{title}[/]", highlight=False, soft_wrap=True)
        table = Table()
        table.add_column("field")
        table.add_column("completeness", justify="right")
        table.add_column(f"validity (sample {src['validity_sample']:,})", justify="right")
        for name, entry in src["fields"].items():
            table.add_row(name, _pct(entry["completeness"]), _pct(entry["validity"]))
        console.print(table)
    if report["consistency"]:
        table = Table(title="consistency across sources sharing an external id", title_justify="left")
        table.add_column("external id")
        table.add_column("linked pairs", justify="right")
        table.add_column("agreement")
        for entry in report["consistency"]:
            table.add_row(entry["external_id"], f"{entry['linked_pairs']:,}",
                          ", ".join(f"{k} {_pct(v)}" for k, v in entry["agreement"].items()))
        console.print(table)
