"""The files `accord synth` writes: present, linked by truth, loadable as a project."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from accord.config import load_config
from accord.synth import FILES, generate

PEOPLE_SOURCES = {
    "crm": "crm_contacts.csv",
    "shop": "shop_customers.jsonl",
    "pos": "pos_loyalty.csv",
    "support": "support_tickets.csv",
}


def test_every_file_is_written(sample):
    assert sorted(p.name for p in sample.out.iterdir() if not p.name.startswith(".")) == sorted(FILES)


def test_accord_yaml_loads_and_maps_every_source(sample):
    cfg = load_config(sample.out)
    assert [s.name for s in cfg.sources] == [
        "crm",
        "shop",
        "pos",
        "support",
        "shop_orders",
        "pos_transactions",
        "email_events",
        "web_events",
    ]
    for source in cfg.sources:
        path = cfg.resolve_path(source.path)
        if path.suffix == ".parquet":
            columns = set(pq.read_schema(path).names)
        elif path.suffix == ".jsonl":
            columns = set()
            with path.open(encoding="utf-8") as f:
                for _, line in zip(range(200), f):
                    columns |= set(json.loads(line))
        else:
            columns = set(path.open(encoding="utf-8").readline().strip().replace('"', "").split(","))
        assert source.referenced_columns() <= columns, source.name


def test_every_people_source_maps_its_own_id_as_an_external_id(sample):
    cfg = load_config(sample.out)
    for name in PEOPLE_SOURCES:
        ids = cfg.source(name).field_specs()["external_ids"]
        assert any(spec.column == cfg.source(name).primary_key[0] for spec in ids.values()), name


def test_truth_has_exactly_one_row_per_people_source_record(sample):
    truth = sample.truth.to_pydict()
    truth_keys = Counter(zip(truth["source"], truth["record_key"]))
    assert max(truth_keys.values()) == 1
    written = set()
    for source, file in PEOPLE_SOURCES.items():
        t = sample.table(file)
        key = load_config(sample.out).source(source).primary_key[0]
        keys = t.column(key).to_pylist()
        assert len(set(keys)) == len(keys), f"{file}: duplicate {key}"
        written |= {(source, k) for k in keys}
    assert written == set(truth_keys)


def test_truth_person_ids_are_true_people(sample):
    ids = set(sample.truth.column("person_id").to_pylist())
    assert all(i.startswith("P") and 1 <= int(i[1:]) <= sample.people.n for i in ids)


def test_events_point_at_records_that_exist(sample):
    customers = set(sample.table("shop_customers.jsonl").column("customer_id").to_pylist())
    orders = sample.table("shop_orders.jsonl")
    assert set(orders.column("customer_id").to_pylist()) <= customers
    loyalty = set(sample.table("pos_loyalty.csv").column("loyalty_id").to_pylist())
    tx = pq.read_table(sample.out / "pos_transactions.parquet")
    assert set(tx.column("loyalty_id").to_pylist()) <= loyalty
    with (sample.out / "web_events.jsonl").open(encoding="utf-8") as f:
        events = [json.loads(line) for line in f]
    users = {e["userId"] for e in events if e["userId"] is not None}
    assert users <= customers
    assert {e["type"] for e in events} == {"page", "track", "identify"}
    assert {e["event"] for e in events if e["type"] == "track"} == {
        "Product Viewed",
        "Product Added",
        "Checkout Started",
        "Order Completed",
    }
    assert all(e["userId"] for e in events if e["type"] == "identify")


def test_web_visitors_use_several_devices_and_are_anonymous_before_login(sample):
    with (sample.out / "web_events.jsonl").open(encoding="utf-8") as f:
        events = [json.loads(line) for line in f]
    devices_per_user: dict[str, set[str]] = {}
    for e in events:
        if e["userId"]:
            devices_per_user.setdefault(e["userId"], set()).add(e["anonymousId"])
    assert sum(len(d) > 1 for d in devices_per_user.values()) / len(devices_per_user) > 0.2
    assert sum(e["userId"] is None for e in events) / len(events) > 0.2


def test_orders_include_returns_and_totals_add_up(sample):
    orders = sample.table("shop_orders.jsonl").to_pylist()
    assert {o["status"] for o in orders} >= {"completed", "returned", "cancelled"}
    for o in orders[:500]:
        assert abs(sum(i["quantity"] * i["price"] for i in o["items"]) - o["total"]) < 0.011


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, people=300, seed=3)
    generate(b, people=300, seed=3)
    generate(c, people=300, seed=4)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    differing = [n for n in FILES if (a / n).read_bytes() != (c / n).read_bytes()]
    assert set(differing) == set(FILES) - {"accord.yaml", "products.csv"} or len(differing) >= 8


def test_progress_reports_each_file(tmp_path: Path):
    seen = []
    report = generate(tmp_path, people=50, seed=1, progress=lambda step, done, total: seen.append((step, done, total)))
    assert [s for s, _, _ in seen] == list(FILES)
    assert seen[-1][1:] == (len(FILES), len(FILES))
    assert report.rows["truth.csv"] == sum(
        report.rows[f] for f in ("crm_contacts.csv", "shop_customers.jsonl", "pos_loyalty.csv", "support_tickets.csv")
    )
    assert report.seconds > 0
