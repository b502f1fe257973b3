"""The behaviour model: the distributions documented in docs/synth.md hold in the output."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from accord.synth.people import BEHAVIOUR, SEGMENTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "synth.md"


def documented_table(title: str) -> dict[str, float]:
    """The 'bucket | share' rows of the markdown table under a heading in docs/synth.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"### {title}", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\|\s*([^|]+?)\s*\|\s*([\d.]+)\s*%\s*\|", section, flags=re.MULTILINE)
    return {bucket: float(share) / 100 for bucket, share in rows}


def bucket(count: int, edges: list[str]) -> str:
    for label in edges:
        if label.endswith("+") and count >= int(label[:-1]):
            return label
        if "–" in label:
            lo, hi = map(int, label.split("–"))
            if lo <= count <= hi:
                return label
        if label.isdigit() and count == int(label):
            return label
    raise AssertionError(f"no bucket for {count}")


def _shares(counts, edges: list[str]) -> dict[str, float]:
    c = Counter(bucket(int(x), edges) for x in counts)
    return {e: c[e] / len(counts) for e in edges}


def test_records_per_person_match_the_documentation(sample):
    truth = sample.truth.to_pydict()
    per_person = Counter(truth["person_id"])
    counts = [per_person.get(f"P{i:07d}", 0) for i in range(1, sample.people.n + 1)]
    documented = documented_table("Records per person")
    measured = _shares(counts, list(documented))
    for label, share in documented.items():
        assert abs(measured[label] - share) < 0.025, (label, measured[label], share)


def test_orders_per_shop_customer_match_the_documentation(sample):
    customers = sample.table("shop_customers.jsonl").column("customer_id").to_pylist()
    per_customer = Counter(sample.table("shop_orders.jsonl").column("customer_id").to_pylist())
    counts = [per_customer.get(c, 0) for c in customers]
    documented = documented_table("Orders per shop customer")
    measured = _shares(counts, list(documented))
    for label, share in documented.items():
        assert abs(measured[label] - share) < 0.025, (label, measured[label], share)


def test_segments_have_their_documented_shares_and_order_counts(sample):
    p = sample.people
    for k, name in enumerate(SEGMENTS):
        b = BEHAVIOUR[name]
        members = p.segment == k
        assert abs(members.mean() - b.share) < 0.02, name
        buyers = members & (p.n_orders > 0)
        if b.orders[0] > 0:
            assert abs(p.n_orders[buyers].mean() - (b.orders[0] + b.orders[1])) < 0.25 * (b.orders[0] + b.orders[1])
        else:
            assert buyers.sum() <= members.sum() * 0.5


def test_segments_behave_differently(sample):
    p = sample.people
    seg = {name: p.segment == k for k, name in enumerate(SEGMENTS)}
    assert p.n_orders[seg["browser"]].sum() == 0
    assert (p.n_orders[seg["one_timer"] & (p.n_orders > 0)] == 1).all()
    assert p.n_orders[seg["loyal"]].mean() > 3 * p.n_orders[seg["regular"]].mean() / 2
    assert p.n_tickets[seg["support_heavy"]].mean() > 5 * p.n_tickets[~seg["support_heavy"]].mean()
    assert (p.last_active[seg["churned"]] < p.days * 0.6).all()
    assert (p.company[seg["b2b"]] >= 0).all() and (p.company[~seg["b2b"]] == -1).all()


def test_b2b_buyers_share_a_company_account(sample):
    p = sample.people
    companies = p.company[p.company >= 0]
    sizes = np.bincount(companies)
    assert (sizes > 1).mean() > 0.5
    shop = sample.table("shop_customers.jsonl").to_pydict()
    with_company = [c for c in shop["company"] if c]
    assert len(with_company) == len(set(p.company_owner)) or len(with_company) >= len(set(p.company_owner))
