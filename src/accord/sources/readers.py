"""Read a source into an Arrow table of its rows, with line numbers, plus the rows that cannot be read.

Readers never drop a row: each one is either in ``table`` or in ``rejects`` with a reason.
Whole-file problems (missing file, unreadable database, wrong schema) raise SourceError.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from accord.config import CsvOptions, ProjectConfig, SourceConfig
from accord.errors import SourceError

Progress = Callable[[int, int], None]
"""progress(done, total) in bytes or rows."""

CHUNK_ROWS = 100_000
_SURROGATE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Reject:
    line: int | None
    reason: str
    raw_text: str
    record_key: str | None = None


@dataclass
class ReadResult:
    """What a reader found. ``table`` holds the source's columns plus ``_line`` (and ``_raw`` for JSON)."""

    file: str
    columns: list[str]
    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)
    text_at: Callable[[int], str] | None = None
    """The raw text of a line number, for rows quarantined after reading."""

    @property
    def rows_read(self) -> int:
        return self.table.num_rows + len(self.rejects)


def read_source(cfg: ProjectConfig, source: SourceConfig, path_override: Path | None = None,
                progress: Progress | None = None) -> ReadResult:
    if source.format == "sql":
        return read_sql(source, progress)
    path = path_override or cfg.resolve_path(source.path or "")
    if not path.exists():
        raise SourceError(f"{path}: no such file (source {source.name!r}, path {source.path!r} in accord.yaml)")
    if path.is_dir():
        raise SourceError(f"{path}: is a folder, expected a {source.format} file (source {source.name!r})")
    if source.format == "csv":
        return read_csv(path, source.csv, progress)
    if source.format == "jsonl":
        return read_jsonl(path, progress)
    return read_parquet(path, progress)


def check_columns(result: ReadResult, source: SourceConfig) -> None:
    """Refuse a mapping that names a column the data lacks, before anything is written."""
    if source.format == "jsonl":
        return  # JSON objects may omit keys; a missing key maps to null.
    missing = sorted(source.referenced_columns() - set(result.columns))
    if missing:
        raise SourceError(
            f"{result.file}: column(s) {', '.join(repr(m) for m in missing)} named in the mapping of source "
            f"{source.name!r} are not in the data; its columns are: {', '.join(result.columns)}"
        )


# --- CSV ------------------------------------------------------------------------------------


class _Lines:
    """Physical lines handed to csv.reader one at a time, so we know where each row started."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.pos = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _decode(path: Path, data: bytes, encoding: str) -> str:
    if encoding == "utf-8":
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        # Undecodable bytes become lone surrogates; the rows holding them are quarantined.
        return data.decode("utf-8", errors="surrogateescape")
    if encoding == "utf-16":
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path}: not valid UTF-16 at byte {exc.start}; check csv.encoding") from None
    return data.decode("latin-1")


def read_csv(path: Path, opts: CsvOptions, progress: Progress | None = None) -> ReadResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror}") from None
    if not data.strip():
        raise SourceError(f"{path}: the file is empty; expected a header row and data rows")
    text = _decode(path, data, opts.encoding)
    del data
    has_bad_bytes = _SURROGATE.search(text) is not None
    raw_lines = text.split("\n")
    del text
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    lines = [line + "\n" for line in raw_lines]
    del raw_lines
    total = len(lines)

    csv.field_size_limit(1 << 30)
    dialect = {
        "delimiter": opts.delimiter,
        "quotechar": opts.quote,
        "escapechar": opts.escape if opts.escape and opts.escape != opts.quote else None,
        "doublequote": opts.escape is None or opts.escape == opts.quote,
        "strict": False,
    }
    src = _Lines(lines)
    reader = csv.reader(src, **dialect)

    if opts.header:
        try:
            header = next(reader)
        except csv.Error as exc:
            raise SourceError(f"{path}:1: cannot parse the header row: {exc}") from None
        if has_bad_bytes and _SURROGATE.search("".join(header)):
            raise SourceError(f"{path}:1: the header is not valid {opts.encoding}; check csv.encoding")
        header = [h.strip() for h in header]
    else:
        if not opts.columns:
            raise SourceError(f"{path}: csv.header is false, so csv.columns must list the column names")
        header = list(opts.columns)
    blank = [i + 1 for i, h in enumerate(header) if not h]
    if blank:
        raise SourceError(f"{path}:1: header column(s) {blank} have no name")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise SourceError(f"{path}:1: header names {', '.join(map(repr, dupes))} more than once")

    expected = len(header)
    rejects: list[Reject] = []
    batches: list[pa.RecordBatch] = []
    rows: list[list[str]] = []
    line_nos: list[int] = []
    line_ends: list[int] = []

    def flush() -> None:
        if not rows:
            return
        cols = list(zip(*rows))
        arrays = [pa.array(c, pa.string()) for c in cols]
        arrays.append(pa.array(line_nos, pa.int64()))
        arrays.append(pa.array(line_ends, pa.int64()))
        batches.append(pa.RecordBatch.from_arrays(arrays, names=header + ["_line", "_line_end"]))
        rows.clear()
        line_nos.clear()
        line_ends.clear()

    while True:
        start = src.pos
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejects.append(Reject(start + 1, f"cannot parse CSV: {exc}", "".join(lines[start : src.pos])))
            reader = csv.reader(src, **dialect)
            continue
        end = src.pos
        if not row:
            continue  # blank line
        if len(row) != expected:
            if end - start > 1:
                rejects.append(Reject(
                    start + 1,
                    f"unbalanced quote: a quoted field opened on line {start + 1} does not close before "
                    f"line {end} ({len(row)} fields, expected {expected}); the following lines were read again",
                    lines[start],
                ))
                src.pos = start + 1
                reader = csv.reader(src, **dialect)
            else:
                rejects.append(Reject(start + 1, f"{len(row)} fields, expected {expected}", lines[start]))
            continue
        if has_bad_bytes and _SURROGATE.search("".join(lines[start:end])):
            bad = "".join(lines[start:end]).encode("utf-8", "surrogateescape")
            rejects.append(Reject(
                start + 1,
                f"not valid {opts.encoding} (set csv.encoding if the file uses another encoding)",
                bad.decode("latin-1"),
            ))
            continue
        rows.append(row)
        line_nos.append(start + 1)
        line_ends.append(end)
        if len(rows) >= CHUNK_ROWS:
            flush()
            if progress:
                progress(src.pos, total)
    flush()
    if progress:
        progress(total, total)

    schema = pa.schema([(h, pa.string()) for h in header] + [("_line", pa.int64()), ("_line_end", pa.int64())])
    table = pa.Table.from_batches(batches, schema=schema)

    def text_at(line: int) -> str:
        return lines[line - 1] if 0 < line <= len(lines) else ""

    return ReadResult(str(path), header, table, rejects, text_at)


# --- JSON Lines ------------------------------------------------------------------------------


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def read_jsonl(path: Path, progress: Progress | None = None) -> ReadResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror}") from None
    if not data.strip():
        raise SourceError(f"{path}: the file is empty; expected one JSON object per line")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.decode("utf-8", errors="surrogateescape").split("\n")
    del data
    total = len(lines)
    rejects: list[Reject] = []
    objects: list[dict[str, object]] = []
    raws: list[str] = []
    line_nos: list[int] = []
    columns: dict[str, None] = {}
    for i, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if _SURROGATE.search(text):
            rejects.append(Reject(i, "not valid UTF-8", text.encode("utf-8", "surrogateescape").decode("latin-1")))
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            rejects.append(Reject(i, f"not valid JSON: {exc.msg} at column {exc.colno}", line))
            continue
        if not isinstance(obj, dict):
            rejects.append(Reject(i, f"expected a JSON object, got {type(obj).__name__}", line))
            continue
        for k in obj:
            if k not in columns:
                columns[k] = None
        objects.append(obj)
        raws.append(text)
        line_nos.append(i)
        if progress and i % CHUNK_ROWS == 0:
            progress(i, total)
    if progress:
        progress(total, total)
    names = list(columns)
    arrays = {name: pa.array([_cell(o.get(name)) for o in objects], pa.string()) for name in names}
    arrays["_line"] = pa.array(line_nos, pa.int64())
    arrays["_line_end"] = pa.array(line_nos, pa.int64())
    arrays["_raw"] = pa.array(raws, pa.string())
    table = pa.table(arrays)

    def text_at(line: int) -> str:
        return lines[line - 1] if 0 < line <= len(lines) else ""

    return ReadResult(str(path), names, table, rejects, text_at)


# --- Parquet and SQL ---------------------------------------------------------------------


def _stringify(table: pa.Table) -> pa.Table:
    """Scalars become text; nested values become JSON text."""
    out = {}
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_nested(col.type):
            out[name] = pa.array([_cell(v) for v in col.to_pylist()], pa.string())
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            out[name] = col.cast(pa.string())
        else:
            out[name] = pa.array([_cell(v) if not hasattr(v, "isoformat") else v.isoformat()
                                  for v in col.to_pylist()], pa.string())
    return pa.table(out) if out else pa.table({})


def read_parquet(path: Path, progress: Progress | None = None) -> ReadResult:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file: {exc}") from None
    columns = table.column_names
    table = _stringify(table)
    n = table.num_rows
    table = table.append_column("_line", pa.array(range(1, n + 1), pa.int64()))
    table = table.append_column("_line_end", pa.array(range(1, n + 1), pa.int64()))
    if progress:
        progress(n, n)
    return ReadResult(str(path), columns, table, [], None)


def read_sql(source: SourceConfig, progress: Progress | None = None) -> ReadResult:
    import sqlalchemy as sa

    assert source.sql is not None
    url = source.sql.url
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    label = f"source {source.name!r} (sql)"
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 5} if "psycopg" in url else {})
        with engine.connect() as conn:
            result = conn.execute(sa.text(source.sql.query))
            columns = list(result.keys())
            rows = [tuple(r) for r in result]
    except sa.exc.ArgumentError as exc:
        raise SourceError(f"{label}: bad database URL: {exc}") from None
    except sa.exc.OperationalError as exc:
        raise SourceError(f"{label}: cannot reach the database: {str(exc.orig).strip()}") from None
    except sa.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        raise SourceError(f"{label}: the query failed: {str(orig or exc).strip()}") from None
    except ModuleNotFoundError as exc:
        raise SourceError(f"{label}: no driver for this database URL ({exc.name} is not installed)") from None
    data = {c: pa.array([_cell(r[i]) if not hasattr(r[i], "isoformat") else r[i].isoformat() for r in rows],
                        pa.string()) for i, c in enumerate(columns)}
    n = len(rows)
    data["_line"] = pa.array(range(1, n + 1), pa.int64())
    data["_line_end"] = pa.array(range(1, n + 1), pa.int64())
    if progress:
        progress(n, n)
    return ReadResult(f"{source.name} (sql query)", columns, pa.table(data), [], None)
