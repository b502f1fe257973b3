"""``generate``: write the six source systems, the product catalog, the truth and accord.yaml."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from accord.synth import activity, records
from accord.synth.people import build_people
from accord.synth.project import project_yaml
from accord.synth.rates import VariationRates

FILES = (
    "crm_contacts.csv",
    "shop_customers.jsonl",
    "shop_orders.jsonl",
    "pos_loyalty.csv",
    "pos_transactions.parquet",
    "support_tickets.csv",
    "email_events.csv",
    "web_events.jsonl",
    "products.csv",
    "truth.csv",
    "accord.yaml",
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SynthReport:
    """What ``generate`` wrote: rows per file, and how long it took."""

    out_dir: Path
    people: int
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"{self.people:,} people, seed {self.seed}, {self.seconds:.1f} s -> {self.out_dir}"]
        lines += [f"  {name:<26}{count:>12,}" for name, count in self.rows.items()]
        return "\n".join(lines)


def _write_csv(path: Path, tables: Iterable[pa.Table]) -> int:
    rows = 0
    writer = None
    options = pacsv.WriteOptions(quoting_style="needed")
    with open(path, "wb") as sink:
        for table in tables:
            if writer is None:
                writer = pacsv.CSVWriter(sink, table.schema, write_options=options)
            writer.write_table(table)
            rows += table.num_rows
        if writer is not None:
            writer.close()
    return rows


def _write_jsonl(path: Path, table: pa.Table, tmp: Path) -> int:
    """DuckDB's JSON writer: fast for flat and nested columns, row order kept."""
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET preserve_insertion_order = true")
        con.register("rows", table)
        part = tmp / (path.name + ".part")
        con.execute(f"COPY rows TO '{part.as_posix()}' (FORMAT JSON)")
    finally:
        con.close()
    shutil.move(str(part), path)
    return table.num_rows


def _write_lines(path: Path, chunks: Iterable[pa.Array]) -> int:
    rows = 0
    with open(path, "wb") as f:
        for lines in chunks:
            f.write(activity.lines_buffer(lines))
            rows += len(lines)
    return rows


def _truth(people_ids: np.ndarray, sources: list[records.SourceRecords]) -> pa.Table:
    parts = []
    for s in sources:
        n = s.table.num_rows
        parts.append(
            pa.table(
                {
                    "source": pa.array([s.name] * n, pa.string()),
                    "record_key": s.table.column(s.key_column).combine_chunks(),
                    "person_id": pa.array(people_ids[s.person], pa.string()),
                }
            )
        )
    return pa.concat_tables(parts)


def generate(
    out_dir: Path,
    people: int,
    seed: int,
    start: date | None = None,
    months: int = 24,
    rates: VariationRates | None = None,
    progress: Progress | None = None,
) -> SynthReport:
    """Write sample sources for ``people`` true people into ``out_dir``; same arguments, same bytes.

    ``start`` is the first day of the activity window (default 2023-01-01, never today, so output
    does not depend on when it runs) and ``months`` its length. ``progress(step, done, total)`` is
    called after each file.
    """
    if people < 1:
        raise ValueError(f"people: expected at least 1; got {people}")
    if months < 1:
        raise ValueError(f"months: expected at least 1; got {months}")
    began = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rates = rates or VariationRates()
    total = len(FILES)
    done = 0
    rows: dict[str, int] = {}

    def step(name: str, count: int) -> None:
        nonlocal done
        rows[name] = count
        done += 1
        if progress:
            progress(name, done, total)

    p = build_people(people, seed, start, months, rates)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    with tempfile.TemporaryDirectory(dir=out, prefix=".synth-") as tmp_name:
        tmp = Path(tmp_name)
        # After writing a people source, keep only its key column (for truth and event links).
        crm = records.crm(p, rates, rng)
        step("crm_contacts.csv", _write_csv(out / "crm_contacts.csv", [crm.table]))
        crm.table = crm.table.select([crm.key_column])
        shop = records.shop(p, rates, rng)
        step("shop_customers.jsonl", _write_jsonl(out / "shop_customers.jsonl", shop.table, tmp))
        shop.table = shop.table.select([shop.key_column])
        prod = activity.products(rng)
        orders = activity.orders(p, shop, prod, rng)
        step("shop_orders.jsonl", _write_jsonl(out / "shop_orders.jsonl", orders.table, tmp))
        orders.table = None
        pos = records.pos(p, rates, rng)
        step("pos_loyalty.csv", _write_csv(out / "pos_loyalty.csv", [pos.table]))
        pos.table = pos.table.select([pos.key_column])
        tx = activity.pos_transactions(p, pos, prod, rng)
        pq.write_table(tx, out / "pos_transactions.parquet", compression="zstd")
        step("pos_transactions.parquet", tx.num_rows)
        del tx
        support = records.support(p, rates, rng)
        step("support_tickets.csv", _write_csv(out / "support_tickets.csv", [support.table]))
        support.table = support.table.select([support.key_column])
        step("email_events.csv", _write_csv(out / "email_events.csv", activity.email_events(p, rng)))
        plan = activity.plan_web(p, shop, orders, rng)
        step(
            "web_events.jsonl",
            _write_lines(out / "web_events.jsonl", activity.web_event_chunks(p, plan, shop, orders, prod, rng)),
        )
        del plan
        step("products.csv", _write_csv(out / "products.csv", [prod.table]))
        truth = _truth(p.person_ids(), [crm, shop, pos, support])
        step("truth.csv", _write_csv(out / "truth.csv", [truth]))
    (out / "accord.yaml").write_text(project_yaml(p.start, p.days), encoding="utf-8")
    step("accord.yaml", 1)
    return SynthReport(out_dir=out, people=people, seed=seed, rows=rows, seconds=time.perf_counter() - began)
