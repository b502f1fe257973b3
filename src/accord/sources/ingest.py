"""The ingest stage: read each source, map it, and merge it into the store in one transaction.

Re-ingesting the same input changes nothing; a changed row keeps its previous version in
source_records_history; a row missing from a full-snapshot source is marked deleted; every row
that cannot be stored is in quarantine with its reason, file, line and raw text.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from accord.clock import new_run_id, utcnow
from accord.config import ProjectConfig, SourceConfig
from accord.errors import AccordError, SourceError
from accord.privacy.encryption import Encryption, encrypt_quarantine_text, encrypt_stage, encryption_for
from accord.privacy.suppression import drop_suppressed_stage, suppressed_rejects
from accord.sources.mapping import EVENT_STAGE_COLUMNS, PEOPLE_STAGE_COLUMNS, Mapper, sql_literal
from accord.sources.readers import ReadResult, Reject, check_columns, read_source
from accord.store.backend import Store

JSON_COLUMNS = {"raw", "emails", "phones", "external_ids", "consent", "properties"}
RAW_TEXT_LIMIT = 1_048_576

ProgressFactory = Callable[[str], Callable[[int, int], None]]


@dataclass
class SourceReport:
    source: str
    read: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    suppressed: int = 0
    """Rows of erased people (privacy suppression list), skipped."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def ingest(store: Store, cfg: ProjectConfig, names: list[str] | None = None, *, run_id: str | None = None,
           path_override: Path | None = None, allow_empty_snapshot: bool = False,
           progress: ProgressFactory | None = None) -> list[SourceReport]:
    """Ingest the named sources (all when none are named). A failing source leaves the store as it was
    for that source; the others still run. Reports carry ``error`` for the ones that failed."""
    sources = [cfg.source(n) for n in names] if names else list(cfg.sources)
    if path_override is not None and len(sources) != 1:
        raise AccordError("--file needs exactly one SOURCE")
    run_id = run_id or new_run_id()
    reports = []
    for source in sources:
        started = time.perf_counter()
        try:
            report = ingest_source(store, cfg, source, run_id, path_override=path_override,
                                   allow_empty_snapshot=allow_empty_snapshot,
                                   progress=progress(source.name) if progress else None)
        except AccordError as exc:
            report = SourceReport(source.name, error=str(exc))
        report.seconds = round(time.perf_counter() - started, 3)
        reports.append(report)
    return reports


def ingest_source(store: Store, cfg: ProjectConfig, source: SourceConfig, run_id: str, *,
                  path_override: Path | None = None, allow_empty_snapshot: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> SourceReport:
    encryption = encryption_for(cfg)  # privacy.encryption: checked before reading (a missing key stops here)
    result = read_source(cfg, source, path_override, progress)
    try:
        return _ingest_read(store, source, result, run_id, path_override=path_override,
                            allow_empty_snapshot=allow_empty_snapshot, region=cfg.identity.default_region,
                            encryption=encryption)
    finally:
        result.close()


def _ingest_read(store: Store, source: SourceConfig, result: ReadResult, run_id: str, *,
                 path_override: Path | None, allow_empty_snapshot: bool, region: str = "US",
                 encryption: Encryption | None = None) -> SourceReport:
    check_columns(result, source)
    full_snapshot = source.snapshot == "full" and path_override is None
    now = utcnow()
    in_store = store.dialect == "duckdb"
    mapper = Mapper(source, conn=getattr(store, "conn", None) if in_store else None,
                    hash_key=encryption.codec.hash_key if encryption is not None else None)  # keyed row_hash
    rejects: list[Reject] = []
    name = sql_literal(source.name)
    if source.kind == "people":
        known = (f"SELECT record_key, row_hash FROM source_records WHERE source = {name} "
                 "AND deleted_at IS NULL")
    else:
        known = (f"SELECT substr(event_id, {len(source.name) + 2}) AS record_key, row_hash FROM events "
                 f"WHERE source = {name}")
    try:
        with store.transaction():
            # Keys of rows the store already holds unchanged; the DuckDB path does not map them again.
            store.create_temp_table("_seen", pa.table({"record_key": pa.array([], pa.string()),
                                                       "_line": pa.array([], pa.int64()),
                                                       "_line_end": pa.array([], pa.int64())}))
            staged = False
            for batch in result.batches:
                if in_store:
                    bad = mapper.map_into_stage(batch, first=not staged, known=known)
                else:
                    good, bad = mapper.map(batch)
                    if staged:
                        store.load_arrow("_stage", good)
                    else:
                        store.create_temp_table("_stage", good)
                staged = True
                rejects.extend(_mapping_rejects(result, bad))
            if not staged:
                good, _ = mapper.map(_empty_batch(source))
                store.create_temp_table("_stage", good)
            rejects.extend(_drop_duplicate_keys(store, result))
            suppressed = drop_suppressed_stage(store, source, region)
            seen_rows = store.scalar("SELECT count(*) FROM _seen")
            staged_rows = store.scalar("SELECT count(*) FROM _stage") + seen_rows
            report = SourceReport(source.name, read=staged_rows + len(result.rejects) + len(rejects),
                                  quarantined=len(result.rejects) + len(rejects))
            all_rejects = result.rejects + rejects
            erased = {id(r) for r in suppressed_rejects(store, source.name, all_rejects, region)}
            all_rejects = [r for r in all_rejects if id(r) not in erased]
            report.suppressed, report.read, report.quarantined = (suppressed + len(erased), report.read + suppressed,
                                                                  report.quarantined - len(erased))
            if encryption is not None:  # PII at rest: configured fields become tokens before they are stored
                encrypt_stage(store, source, encryption, region)
            if source.kind == "people":
                if full_snapshot and not staged_rows and not allow_empty_snapshot:
                    existing = store.scalar(
                        "SELECT count(*) FROM source_records WHERE source = ? AND deleted_at IS NULL", (source.name,))
                    if existing:
                        raise SourceError(
                            f"{result.file}: no valid rows, and source {source.name!r} is a full snapshot: "
                            f"ingesting it would mark all {existing} records deleted. Fix the file, or pass "
                            "--allow-empty-snapshot."
                        )
                quarantined_keys = {r.record_key for r in all_rejects if r.record_key}
                _merge_people(store, source, result.file, run_id, now, full_snapshot, report, quarantined_keys)
            else:
                _merge_events(store, source, result.file, run_id, now, report)
            report.unchanged += seen_rows
            _record_quarantine(store, source, result.file, all_rejects, run_id, now, full_snapshot, encryption)
            store.drop_temp_table("_stage", "_seen")
    finally:
        mapper.close()
    return report


def _empty_batch(source: SourceConfig) -> pa.Table:
    names = sorted(source.referenced_columns())
    data = {n: pa.array([], pa.string()) for n in names}
    data["_line"] = pa.array([], pa.int64())
    data["_line_end"] = pa.array([], pa.int64())
    return pa.table(data)


def _drop_duplicate_keys(store: Store, result: ReadResult) -> list[Reject]:
    """A key seen twice in one read: the first row wins, later ones are quarantined."""
    dups = store.fetchall(
        "SELECT record_key, _line, _line_end, first_line FROM (SELECT record_key, _line, _line_end, "
        "row_number() OVER (PARTITION BY record_key ORDER BY _line) AS rn, "
        "min(_line) OVER (PARTITION BY record_key) AS first_line FROM "
        "(SELECT record_key, _line, _line_end FROM _stage UNION ALL SELECT record_key, _line, _line_end FROM _seen) u"
        ") d WHERE rn > 1 ORDER BY _line")
    if not dups:
        return []
    rejects = []
    for key, line, end, first in dups:
        text = result.text_at(line, end) if result.text_at else (store.scalar(
            "SELECT raw FROM _stage WHERE record_key = ? AND _line = ?", (key, line)) or "")
        rejects.append(Reject(line, f"duplicate primary key {key} (first at line {first})", text, key))
    store.create_temp_table("_dups", pa.table({"record_key": pa.array([d[0] for d in dups], pa.string()),
                                               "line": pa.array([d[1] for d in dups], pa.int64())}))
    for table in ("_stage", "_seen"):
        store.execute(f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM _dups d "
                      f"WHERE d.record_key = {table}.record_key AND d.line = {table}._line)")
    store.drop_temp_table("_dups")
    return rejects


def _mapping_rejects(result: ReadResult, bad: pa.Table) -> list[Reject]:
    out = []
    for row in bad.to_pylist():
        text = result.text_at(row["_line"], row["_line_end"]) if result.text_at else row["raw"]
        out.append(Reject(row["_line"], row["reason"], text, row["record_key"]))
    return out


def _cast(store: Store, col: str, expr: str) -> str:
    return store.type_sql(f"CAST({expr} AS ${{JSON}})") if col in JSON_COLUMNS else expr


def _merge_people(store: Store, source: SourceConfig, file: str, run_id: str, now: datetime,
                  full_snapshot: bool, report: SourceReport, quarantined_keys: set[str]) -> None:
    value_cols = PEOPLE_STAGE_COLUMNS
    name = source.name
    # Classify staged rows once, by key only, so the wide rows are joined just for what changed.
    store.execute(
        "CREATE TEMP TABLE _diff AS SELECT s.record_key, CASE WHEN c.record_key IS NULL THEN 'new' "
        "WHEN c.row_hash <> s.row_hash OR c.deleted_at IS NOT NULL THEN 'changed' ELSE 'same' END AS change, "
        "c.first_seen_at FROM _stage s LEFT JOIN "
        "(SELECT record_key, row_hash, deleted_at, first_seen_at FROM source_records WHERE source = ?) c "
        "ON c.record_key = s.record_key", (name,))
    counts = dict(store.fetchall("SELECT change, count(*) FROM _diff GROUP BY change"))
    report.new, report.updated, report.unchanged = (int(counts.get(k, 0)) for k in ("new", "changed", "same"))

    all_cols = ("row_hash", "raw") + value_cols + ("source_file", "source_line", "first_seen_at",
                                                   "valid_from", "deleted_at", "run_id")
    cols = ", ".join(all_cols)
    changed_keys = "(SELECT record_key FROM _diff WHERE change = 'changed')"
    if report.updated:
        store.execute(
            f"INSERT INTO source_records_history (source, record_key, {cols}, valid_to) "
            f"SELECT c.source, c.record_key, {', '.join('c.' + x for x in all_cols)}, ? "
            f"FROM source_records c WHERE c.source = ? AND c.record_key IN {changed_keys}",
            (now, name))
        # Delete and insert again rather than UPDATE: an update of many wide rows keeps every old value in
        # memory until commit; the old version is already safe in the history table.
        store.execute(f"DELETE FROM source_records WHERE source = ? AND record_key IN {changed_keys}", (name,))
    if report.new or report.updated:
        inserted = ", ".join(_cast(store, c, "s." + c) for c in ("row_hash", "raw") + value_cols)
        store.execute(
            f"INSERT INTO source_records (source, record_key, {cols}) "
            f"SELECT ?, s.record_key, {inserted}, ?, s._line, coalesce(d.first_seen_at, ?), ?, NULL, ? "
            f"FROM _stage s JOIN _diff d ON d.record_key = s.record_key WHERE d.change <> 'same'",
            (name, file, now, now, run_id))
    if full_snapshot:
        # A row still in the file but quarantined this time is not deleted: its last good version stays.
        store.create_temp_table("_quarantined_keys",
                                pa.table({"record_key": pa.array(sorted(quarantined_keys), pa.string())}))
        missing = ("source = ? AND deleted_at IS NULL AND NOT EXISTS "
                   "(SELECT 1 FROM _stage s WHERE s.record_key = source_records.record_key) AND NOT EXISTS "
                   "(SELECT 1 FROM _seen s WHERE s.record_key = source_records.record_key) AND NOT EXISTS "
                   "(SELECT 1 FROM _quarantined_keys q WHERE q.record_key = source_records.record_key)")
        report.deleted = store.scalar(f"SELECT count(*) FROM source_records WHERE {missing}", (name,))
        if report.deleted:
            store.execute(f"UPDATE source_records SET deleted_at = ?, run_id = ? WHERE {missing}", (now, run_id, name))
        store.drop_temp_table("_quarantined_keys")
    store.drop_temp_table("_diff")


def _merge_events(store: Store, source: SourceConfig, file: str, run_id: str, now: datetime,
                  report: SourceReport) -> None:
    value_cols = EVENT_STAGE_COLUMNS
    prefix = source.name + ":"
    key = "? || s.record_key"
    report.updated = store.scalar(
        f"SELECT count(*) FROM events e JOIN _stage s ON e.event_id = {key} WHERE e.row_hash <> s.row_hash",
        (prefix,))
    report.unchanged = store.scalar(
        f"SELECT count(*) FROM events e JOIN _stage s ON e.event_id = {key} WHERE e.row_hash = s.row_hash",
        (prefix,))
    report.new = store.scalar("SELECT count(*) FROM _stage") - report.updated - report.unchanged
    props = _cast(store, "properties", "s.raw")
    if report.updated:
        sets = ", ".join(f"{c} = s.{c}" for c in value_cols)
        store.execute(
            f"UPDATE events SET {sets}, properties = {props}, row_hash = s.row_hash, source_file = ?, "
            f"source_line = s._line, run_id = ? FROM _stage s "
            f"WHERE events.event_id = {key} AND events.row_hash <> s.row_hash",
            (file, run_id, prefix))
    if report.new:
        cols = ", ".join(value_cols)
        store.execute(
            f"INSERT INTO events (event_id, source, {cols}, received_at, properties, row_hash, source_file, "
            f"source_line, run_id) SELECT {key}, ?, {', '.join('s.' + c for c in value_cols)}, ?, {props}, "
            f"s.row_hash, ?, s._line, ? FROM _stage s "
            f"WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = {key})",
            (prefix, source.name, now, file, run_id, prefix))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _record_quarantine(store: Store, source: SourceConfig, file: str, rejects: list[Reject],
                       run_id: str, now: datetime, full_snapshot: bool,
                       encryption: Encryption | None = None) -> None:
    open_rows = {h: qid for qid, h in store.fetchall(
        "SELECT quarantine_id, raw_hash FROM quarantine WHERE source = ? AND resolved_at IS NULL", (source.name,))}
    seen: set[str] = set()
    occurrences: dict[str, int] = {}
    new_rows = []
    for r in rejects:
        digest = _hash(r.raw_text)
        # The same bad text twice in one read is two rows: the second and later get their own hash.
        n = occurrences.get(digest, 0)
        occurrences[digest] = n + 1
        if n:
            digest = _hash(f"{n}\n{r.raw_text}")
        seen.add(digest)
        if digest in open_rows:
            continue  # the same row with the same problem: nothing changes
        text = r.raw_text
        if len(text) > RAW_TEXT_LIMIT:
            text = text[:RAW_TEXT_LIMIT] + f"\n[... {len(r.raw_text) - RAW_TEXT_LIMIT} more characters not kept]"
        new_rows.append((uuid.uuid4().hex, source.name, file, r.line, r.record_key,
                         encrypt_quarantine_text(encryption, r.reason),  # reasons quote the value
                         encrypt_quarantine_text(encryption,
                                                 text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")),
                         digest, run_id, run_id, now))
        open_rows[digest] = new_rows[-1][0]
    store.executemany(
        "INSERT INTO quarantine (quarantine_id, source, file, line, record_key, reason, raw_text, raw_hash, "
        "first_run_id, last_run_id, quarantined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", new_rows)
    # Rows quarantined before and stored now (in _stage) are resolved, even when this read has no rejects.
    stored_now = store.fetchall(
        "SELECT q.quarantine_id FROM quarantine q WHERE q.source = ? AND q.resolved_at IS NULL "
        "AND EXISTS (SELECT 1 FROM _stage s WHERE s.record_key = q.record_key)", (source.name,))
    still_bad = {open_rows[h] for h in seen}
    fixed = [(now, f"stored by {run_id}", qid) for (qid,) in stored_now if qid not in still_bad]
    store.executemany("UPDATE quarantine SET resolved_at = ?, resolution = ? WHERE quarantine_id = ?", fixed)
    if full_snapshot:
        gone = [(now, f"not in the full read of {run_id}", qid) for h, qid in open_rows.items() if h not in seen]
        store.executemany(
            "UPDATE quarantine SET resolved_at = ?, resolution = ? WHERE quarantine_id = ? AND resolved_at IS NULL",
            gone)
