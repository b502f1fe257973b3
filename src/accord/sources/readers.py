"""Read a source as a stream of Arrow batches of its rows, with line numbers, plus the rows that cannot be read.

Readers never drop a row: each one is either in a batch or in ``rejects`` with a reason.
Whole-file problems (missing file, unreadable database, wrong schema) raise SourceError.
Memory stays bounded: rows are read CHUNK_ROWS at a time.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from accord.config import CsvOptions, ProjectConfig, SourceConfig
from accord.errors import SourceError
from accord.sources.mapping import RESERVED_COLUMNS

Progress = Callable[[int, int], None]
"""progress(done, total), in bytes for files and rows for queries."""

CHUNK_ROWS = 200_000
BATCH_SLICE = 50_000
_SURROGATE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Reject:
    line: int | None
    reason: str
    raw_text: str
    record_key: str | None = None


@dataclass
class ReadResult:
    """A source being read. Iterate ``batches`` once; ``rejects`` fills as it goes.

    Each batch holds the source's columns as text plus ``_line`` and ``_line_end``
    (and ``_raw``, the original JSON text, for JSON Lines).
    """

    file: str
    columns: list[str]
    batches: Iterator[pa.Table]
    rejects: list[Reject] = field(default_factory=list)
    text_at: Callable[[int, int], str] | None = None
    """The raw text of lines first..last, for rows quarantined after reading."""
    on_close: Callable[[], None] | None = None

    def close(self) -> None:
        """Release the file or database connection, also when ``batches`` was never read (a refusal)."""
        close = getattr(self.batches, "close", None)
        if close:
            close()
        if self.on_close:
            self.on_close()

    def read_all(self) -> pa.Table:
        tables = list(self.batches)
        if not tables:
            return pa.table({c: pa.array([], pa.string()) for c in self.columns}
                            | {"_line": pa.array([], pa.int64()), "_line_end": pa.array([], pa.int64())})
        return pa.concat_tables(tables, promote_options="permissive")


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
        return read_csv(path, source.csv, progress, key_columns=source.primary_key)
    if source.format == "jsonl":
        return read_jsonl(path, progress, key_columns=source.primary_key)
    return read_parquet(path, progress)


def check_columns(result: ReadResult, source: SourceConfig) -> None:
    """Refuse a mapping that names a column the data lacks, before anything is written."""
    reserved = sorted(set(RESERVED_COLUMNS) & (set(result.columns) | source.referenced_columns()))
    if reserved:
        raise SourceError(
            f"{result.file}: column name(s) {', '.join(map(repr, reserved))} are reserved by Accord; rename them "
            f"in the data (or in the query) of source {source.name!r}"
        )
    if source.format == "jsonl":
        return  # JSON objects may omit keys; a missing key maps to null.
    missing = sorted(source.referenced_columns() - set(result.columns))
    if missing:
        raise SourceError(
            f"{result.file}: column(s) {', '.join(repr(m) for m in missing)} named in the mapping of source "
            f"{source.name!r} are not in the data; its columns are: {', '.join(result.columns)}"
        )


def _line_reader(path: Path, encoding: str) -> Callable[[int, int], str]:
    """Raw text of lines first..last (1-based), read again from the file only when asked."""
    offsets: list[int] = []

    def text_at(first: int, last: int) -> str:
        if encoding == "utf-16":
            lines = _split_lines(path.read_bytes().decode("utf-16", errors="replace"))
            return "".join(lines[first - 1 : last])
        with open(path, "rb") as f:
            if not offsets:
                pos = 0
                for line in f:
                    offsets.append(pos)
                    pos += len(line)
                offsets.append(pos)
            if not 0 < first <= last < len(offsets):
                return ""
            f.seek(offsets[first - 1])
            data = f.read(offsets[last] - offsets[first - 1])
        if encoding == "utf-8":
            # Bytes that are not UTF-8 are shown as Latin-1, so the quarantined text keeps what the file holds.
            text = _SURROGATE.sub(lambda m: chr(ord(m.group()) - 0xDC00), data.decode("utf-8", "surrogateescape"))
            return text.lstrip("\ufeff")
        return data.decode("latin-1")

    return text_at


def _ends_inside_quotes(lines: list[str], dialect: dict[str, object]) -> bool:
    """True when these lines end inside a quoted field: csv.reader in non-strict mode accepts that at the
    end of the file, silently swallowing every line after an unclosed quote."""
    try:
        for _ in csv.reader(iter(lines), **{**dialect, "strict": True}):  # type: ignore[arg-type]
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _is_empty(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096)
    return not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe")


# --- CSV ------------------------------------------------------------------------------------


def _valid_encoding(path: Path, encoding: str) -> bool:
    """True when every byte decodes: then no row needs checking on its own."""
    if encoding != "utf-8":
        return True
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 24):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _split_lines(text: str) -> list[str]:
    """Lines ending at "\n" only, like the file reader's (str.splitlines also splits at \r, \f, \u2028...)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    codec = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "latin-1": "latin-1"}[encoding]
    # Undecodable UTF-8 bytes become lone surrogates; the rows holding them are quarantined.
    errors = "surrogateescape" if encoding == "utf-8" else "strict"
    # Lines end at "\n" only (a "\r\n" stays whole), so line numbers are those of the file: a stray "\r"
    # would otherwise start a new line and shift every line number after it.
    return open(path, encoding=codec, errors=errors, newline="\n")


class _CsvRows:
    """csv.reader over the file, with each row's first and last line, re-reading the lines a broken
    quote swallowed. ``next()`` returns (row, first_line, last_line); a row that cannot be parsed comes back
    as (None, first_line, last_line) with ``error`` set."""

    def __init__(self, f: io.TextIOWrapper, dialect: dict[str, object], text_at: Callable[[int, int], str]):
        self.f = f
        self.dialect = dialect
        self.text_at = text_at
        self.base = 0  # lines consumed by earlier readers
        self.reader = csv.reader(f, **dialect)  # type: ignore[arg-type]
        self.error = ""

    def lineno(self) -> int:
        return self.base + self.reader.line_num

    def next(self) -> tuple[list[str] | None, int, int]:
        start = self.lineno() + 1
        try:
            row = next(self.reader)
        except csv.Error as exc:
            end = self.lineno()
            self.error = ("a carriage return (\\r) inside an unquoted value; quote the value or remove the character"
                          if "new-line character seen in unquoted field" in str(exc) else f"cannot parse CSV: {exc}")
            self._restart(end)
            return None, start, end
        return row, start, self.lineno()

    def _restart(self, consumed: int, replay: list[str] | None = None) -> None:
        self.base = consumed - (len(replay) if replay else 0)
        source: Iterator[str] = itertools.chain(replay, self.f) if replay else self.f
        self.reader = csv.reader(source, **self.dialect)  # type: ignore[arg-type]

    def reread_after(self, first: int, last: int) -> None:
        """The row that began on line ``first`` swallowed lines up to ``last``: read first+1..last again."""
        text = self.text_at(first + 1, last)
        lines = _split_lines(text)
        self._restart(last, lines)


def read_csv(path: Path, opts: CsvOptions, progress: Progress | None = None,
             key_columns: list[str] | None = None) -> ReadResult:
    if _is_empty(path):
        raise SourceError(f"{path}: the file is empty; expected a header row and data rows")
    total = path.stat().st_size
    dialect = {
        "delimiter": opts.delimiter,
        "quotechar": opts.quote,
        "escapechar": opts.escape if opts.escape and opts.escape != opts.quote else None,
        "doublequote": opts.escape is None or opts.escape == opts.quote,
        "strict": False,
    }
    csv.field_size_limit(1 << 30)
    text_at = _line_reader(path, opts.encoding)
    check_bytes = not _valid_encoding(path, opts.encoding)
    f = _open_text(path, opts.encoding)
    rows = _CsvRows(f, dialect, text_at)
    try:
        if opts.header:
            header, _, _ = rows.next()
            if header is None:
                raise SourceError(f"{path}:1: cannot parse the header row: {rows.error}")
            if not header:
                raise SourceError(f"{path}: the file is empty; expected a header row")
            if _SURROGATE.search("".join(header)):
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
    except UnicodeDecodeError as exc:
        f.close()
        raise SourceError(f"{path}: not valid {opts.encoding} at byte {exc.start}; check csv.encoding") from None
    except BaseException:
        f.close()
        raise

    result = ReadResult(str(path), header, iter(()), [], text_at)
    fast = _read_clean_csv(path, opts, header) if not check_bytes else None
    if fast is not None:
        f.close()
        result = ReadResult(str(path), header, iter(()), [], text_at)
        result.batches = _slices(fast, total, progress)
        return result
    key_index = [header.index(k) for k in key_columns or [] if k in header]
    if len(key_index) != len(key_columns or []):
        key_index = []
    result.on_close = f.close
    result.batches = _csv_batches(path, f, rows, header, opts, result.rejects, total, check_bytes, progress,
                                  key_index)
    return result


def _csv_batches(path: Path, f: io.TextIOWrapper, reader: _CsvRows, header: list[str], opts: CsvOptions,
                 rejects: list[Reject], total: int, check_bytes: bool,
                 progress: Progress | None, key_index: list[int]) -> Iterator[pa.Table]:
    """Rows in batches; a rejected row keeps its key when the key's columns could be read, so a full
    snapshot does not mark that record deleted."""
    expected = len(header)

    def key_of(row: list[str]) -> str | None:
        if not key_index or len(row) <= max(key_index):
            return None
        return _key_from_values([row[i] for i in key_index])

    names = header + ["_line", "_line_end"]
    rows: list[list[str]] = []
    starts: list[int] = []
    ends: list[int] = []

    def table() -> pa.Table:
        return _batch_table(names, list(zip(*rows)) + [starts, ends])

    with f:
        while True:
            try:
                row, start, end = reader.next()
            except StopIteration:
                break
            except UnicodeDecodeError as exc:
                raise SourceError(f"{path}: not valid {opts.encoding} near line {reader.lineno() + 1} "
                                  f"(byte {exc.start} of a block); check csv.encoding") from None
            if row is None:
                rejects.append(Reject(start, reader.error, reader.text_at(start, end)))
                continue
            if not row:
                continue  # a blank line
            unclosed = end > start and _ends_inside_quotes(
                _split_lines(reader.text_at(start, end)), reader.dialect)
            if end > start and (unclosed or len(row) != expected):
                where = "the end of the file" if unclosed else f"line {end} ({len(row)} fields, expected {expected})"
                first_line = reader.text_at(start, start)
                rejects.append(Reject(
                    start,
                    f"unbalanced quote: a quoted field opened on line {start} does not close before {where}; "
                    "the following lines were read again",
                    first_line,
                    key_of(next(csv.reader([first_line], **reader.dialect), [])),  # type: ignore[arg-type]
                ))
                reader.reread_after(start, end)
                continue
            if len(row) != expected:
                rejects.append(Reject(start, f"{len(row)} fields, expected {expected}",
                                      reader.text_at(start, start), key_of(row)))
                continue
            if check_bytes and any(_SURROGATE.search(x) for x in row):
                text = reader.text_at(start, end)
                rejects.append(Reject(
                    start, f"not valid {opts.encoding} (set csv.encoding if the file uses another encoding)", text,
                    key_of(row)))
                continue
            rows.append(row)
            starts.append(start)
            ends.append(end)
            if len(rows) >= CHUNK_ROWS:
                yield table()
                rows.clear()
                starts.clear()
                ends.clear()
                if progress:
                    progress(min(f.buffer.tell() if not f.closed else total, total), total)
    if rows:
        yield table()
    if progress:
        progress(total, total)


def _line_count(path: Path) -> int:
    count = 0
    last = b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (0 if last == b"\n" else 1)


def _read_clean_csv(path: Path, opts: CsvOptions, header: list[str]) -> pa.Table | None:
    """The fast path: Arrow's multi-threaded parser, taken only when every physical line after the header is
    exactly one well-formed row (no blank lines, no line breaks inside values, no ragged rows), so a row's line
    number is its index plus the header. Anything else returns None and the careful reader runs instead."""
    import pyarrow.csv as pacsv

    if opts.encoding != "utf-8" or (opts.escape and opts.escape != opts.quote):
        return None
    invalid = []

    def on_invalid(row: object) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1 if opts.header else 0,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=opts.delimiter, quote_char=opts.quote,
                                             double_quote=True, newlines_in_values=False,
                                             ignore_empty_lines=False, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, OSError):
        return None
    if invalid or table.num_rows + (1 if opts.header else 0) != _line_count(path):
        return None
    n = table.num_rows
    first = 2 if opts.header else 1
    lines = pa.array(range(first, first + n), pa.int64())
    return table.append_column("_line", lines).append_column("_line_end", lines)


def _slices(table: pa.Table, total: int, progress: Progress | None) -> Iterator[pa.Table]:
    n = table.num_rows
    for lo in range(0, n, CHUNK_ROWS):
        if progress:
            progress(int(total * lo / max(n, 1)), total)
        chunk = table.slice(lo, CHUNK_ROWS)
        yield pa.Table.from_batches(chunk.to_batches(max_chunksize=BATCH_SLICE))
    if progress:
        progress(total, total)


def _batch_table(names: list[str], columns: list[Sequence[object]]) -> pa.Table:
    """An Arrow table in slices of BATCH_SLICE rows, so DuckDB scans it on every core."""
    n = len(columns[-1])
    batches = []
    for lo in range(0, max(n, 1), BATCH_SLICE):
        arrays = [pa.array(c[lo : lo + BATCH_SLICE], pa.int64() if name.startswith("_line") else pa.string())
                  for name, c in zip(names, columns)]
        batches.append(pa.RecordBatch.from_arrays(arrays, names=names))
    return pa.Table.from_batches(batches)


# --- JSON Lines ------------------------------------------------------------------------------


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[no-any-return]
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)  # int, Decimal, UUID and other scalars from Parquet or a database


def _key_from_values(values: list[str | None]) -> str | None:
    """A record key as the mapping builds it: trimmed parts joined by '|', or None when a part is empty."""
    parts = [v.strip() if v is not None else "" for v in values]
    return "|".join(parts) if all(parts) else None


def _json_key(text: str, key_columns: list[str] | None) -> str | None:
    """Best-effort record key of a line that is not valid JSON: the value after each "key":."""
    if not key_columns:
        return None
    values: list[str | None] = []
    for k in key_columns:
        m = re.search('"' + re.escape(k) + r'"\s*:\s*("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*)', text)
        if not m:
            return None
        try:
            values.append(_cell(json.loads(m.group(1))))
        except json.JSONDecodeError:
            return None
    return _key_from_values(values)


def read_jsonl(path: Path, progress: Progress | None = None, key_columns: list[str] | None = None) -> ReadResult:
    if _is_empty(path):
        raise SourceError(f"{path}: the file is empty; expected one JSON object per line")
    result = ReadResult(str(path), [], iter(()), [], _line_reader(path, "utf-8"))
    result.batches = _jsonl_batches(path, result, progress, key_columns)
    return result


def _jsonl_batches(path: Path, result: ReadResult, progress: Progress | None,
                   key_columns: list[str] | None = None) -> Iterator[pa.Table]:
    total = path.stat().st_size
    done = 0
    objects: list[dict[str, object]] = []
    raws: list[str] = []
    line_nos: list[int] = []
    columns: dict[str, None] = {}

    def table() -> pa.Table:
        arrays = {name: pa.array([_cell(o.get(name)) for o in objects], pa.string()) for name in columns}
        arrays["_line"] = pa.array(line_nos, pa.int64())
        arrays["_line_end"] = pa.array(line_nos, pa.int64())
        arrays["_raw"] = pa.array(raws, pa.string())
        return pa.table(arrays)

    with _open_text(path, "utf-8") as f:
        for i, line in enumerate(f, start=1):
            done += len(line)
            text = line.strip()
            if not text:
                continue
            if _SURROGATE.search(text):
                result.rejects.append(
                    Reject(i, "not valid UTF-8", text.encode("utf-8", "surrogateescape").decode("latin-1"),
                           _json_key(text, key_columns)))
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                result.rejects.append(Reject(i, f"not valid JSON: {exc.msg} at column {exc.colno}", line,
                                             _json_key(text, key_columns)))
                continue
            if not isinstance(obj, dict):
                result.rejects.append(Reject(i, f"expected a JSON object, got {type(obj).__name__}", line))
                continue
            for k in obj:
                if k not in columns:
                    columns[k] = None
                    result.columns.append(k)
            objects.append(obj)
            raws.append(text)
            line_nos.append(i)
            if len(objects) >= CHUNK_ROWS:
                yield table()
                objects.clear()
                raws.clear()
                line_nos.clear()
                if progress:
                    progress(min(done, total), total)
    if objects:
        yield table()
    if progress:
        progress(total, total)


# --- Parquet and SQL ---------------------------------------------------------------------


def _stringify(batch: pa.RecordBatch | pa.Table) -> dict[str, pa.Array]:
    """Scalars become text; nested values and times become JSON / ISO text."""
    out: dict[str, pa.Array] = {}
    for name, col in zip(batch.schema.names, batch.columns):
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            out[name] = col.cast(pa.string())
        else:
            out[name] = pa.array([_cell(v) for v in col.to_pylist()], pa.string())
    return out


def read_parquet(path: Path, progress: Progress | None = None) -> ReadResult:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file: {exc}") from None
    columns = pf.schema_arrow.names
    total = pf.metadata.num_rows

    def batches() -> Iterator[pa.Table]:
        done = 0
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
            n = batch.num_rows
            data = _stringify(batch)
            data["_line"] = pa.array(range(done + 1, done + n + 1), pa.int64())
            data["_line_end"] = data["_line"]
            done += n
            if progress:
                progress(done, total)
            yield pa.table(data)

    return ReadResult(str(path), columns, batches(), [], None, pf.close)


def read_sql(source: SourceConfig, progress: Progress | None = None) -> ReadResult:
    import sqlalchemy as sa

    assert source.sql is not None
    url = source.sql.url
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    label = f"source {source.name!r} (sql)"

    def fail(exc: Exception) -> SourceError:
        if isinstance(exc, sa.exc.ArgumentError):
            return SourceError(f"{label}: bad database URL: {exc}")
        if isinstance(exc, sa.exc.OperationalError):
            return SourceError(f"{label}: cannot reach the database: {str(exc.orig).strip()}")
        if isinstance(exc, ModuleNotFoundError):
            return SourceError(f"{label}: no driver for this database URL ({exc.name} is not installed)")
        orig = getattr(exc, "orig", None)
        return SourceError(f"{label}: the query failed: {str(orig or exc).strip()}")

    engine = conn = None

    def close() -> None:
        # An open connection holds the query's locks in the source database until it is closed.
        if conn is not None:
            conn.close()
        if engine is not None:
            engine.dispose()

    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 5} if "psycopg" in url else {})
        conn = engine.connect()
        result = conn.execution_options(stream_results=True).execute(sa.text(source.sql.query))
        columns = list(result.keys())
    except (sa.exc.SQLAlchemyError, ModuleNotFoundError) as exc:
        close()
        raise fail(exc) from None

    def batches() -> Iterator[pa.Table]:
        done = 0
        try:
            while True:
                try:
                    rows = result.fetchmany(CHUNK_ROWS)
                except sa.exc.SQLAlchemyError as exc:
                    raise fail(exc) from None
                if not rows:
                    break
                data = {c: pa.array([_cell(r[i]) for r in rows], pa.string()) for i, c in enumerate(columns)}
                data["_line"] = pa.array(range(done + 1, done + len(rows) + 1), pa.int64())
                data["_line_end"] = data["_line"]
                done += len(rows)
                if progress:
                    progress(done, done)
                yield pa.table(data)
        finally:
            close()

    return ReadResult(f"{source.name} (sql query)", columns, batches(), [], None, close)
