"""RFM quintile scores, ties, the segment map, and scoring one customer against the batch boundaries."""

from __future__ import annotations

import itertools

import pyarrow as pa

from accord.traits import update_customer_traits
from accord.traits.rfm import SEGMENT_GRID, SEGMENTS, fm_sql, segment_name, segment_table_sql
from tests.traits.conftest import days_ago, settings, traits_of


def _buyers(data, orders_per_customer: list[int]) -> list[str]:
    ids = []
    for i, n in enumerate(orders_per_customer):
        cid = data.customer(f"c{i:02d}")
        for k in range(n):
            data.order(cid, days_ago(5 + k), 10.0)
        ids.append(cid)
    return ids


def test_frequency_scores_are_quintiles_of_buyers(data, compute):
    ids = _buyers(data, list(range(1, 11)))
    compute()
    assert [traits_of(data.store, c)["rfm_frequency"] for c in ids] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_equal_values_share_the_score_where_their_group_begins(data, compute):
    ids = _buyers(data, [1, 1, 1, 1, 1, 1, 2, 2, 3, 4])
    compute()
    assert [traits_of(data.store, c)["rfm_frequency"] for c in ids] == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def _spread(data) -> None:
    """c0 bought once, recently; each next customer one more order, last bought longer ago."""
    for i in range(5):
        data.customer(f"c{i}")
        for k in range(i + 1):
            data.order(f"c{i}", days_ago(10 + 100 * i + k), 10.0)


def test_recent_buyers_score_high_on_recency_and_big_spenders_on_monetary(data, compute):
    _spread(data)
    compute()
    assert [traits_of(data.store, f"c{i}")["rfm_recency"] for i in range(5)] == [5, 4, 3, 2, 1]
    assert [traits_of(data.store, f"c{i}")["rfm_monetary"] for i in range(5)] == [1, 2, 3, 4, 5]
    assert [traits_of(data.store, f"c{i}")["rfm_score"] for i in range(5)] == ["511", "422", "333", "244", "155"]


def test_segments_follow_the_grid(data, compute):
    _spread(data)
    compute()
    assert [traits_of(data.store, f"c{i}")["rfm_segment"] for i in range(5)] == [
        "new", "potential_loyalist", "need_attention", "at_risk", "cant_lose_them"]


def test_customers_without_purchases_have_no_rfm_traits(data, compute):
    data.customer("buyer")
    data.order("buyer", days_ago(3), 10.0)
    data.customer("browser")
    data.event(("user_id", "browser"), "Product Viewed", days_ago(1))
    report = compute()
    assert not any(name.startswith("rfm_") for name in traits_of(data.store, "browser"))
    assert report.rfm_customers == 1


def test_the_grid_names_eleven_segments_and_the_classic_corners():
    assert set(SEGMENTS) == {name for row in SEGMENT_GRID.values() for name in row.values()}
    assert len(SEGMENTS) == 11
    assert (segment_name(5, 5, 5), segment_name(1, 1, 1), segment_name(1, 5, 5), segment_name(5, 1, 1),
            segment_name(3, 3, 3), segment_name(2, 1, 2)) == (
        "champions", "lost", "cant_lose_them", "new", "need_attention", "hibernating")


def test_the_sql_segment_table_agrees_with_the_python_map_for_every_score(store):
    combos = list(itertools.product(range(1, 6), repeat=3))
    store.create_temp_table("_combos", pa.table({"r": [c[0] for c in combos], "f": [c[1] for c in combos],
                                                 "m": [c[2] for c in combos]}))
    rows = store.fetchall(f"SELECT c.r, c.f, c.m, seg.segment FROM _combos c JOIN {segment_table_sql()} "
                          f"ON seg.seg_r = c.r AND seg.seg_fm = {fm_sql('c.f', 'c.m')}")
    assert {(r, f, m): name for r, f, m, name in rows} == {c: segment_name(*c) for c in combos}


def test_one_customer_is_scored_against_the_last_batch_boundaries(data, store):
    from accord.traits import compute_traits

    ids = _buyers(data, list(range(1, 11)))
    compute_traits(store, settings(), "run_1")
    data.order(ids[0], days_ago(1), 10.0)  # c00 now has 2 orders: the second group's score
    data.order(ids[0], days_ago(1), 10.0)
    data.order(ids[0], days_ago(1), 10.0)  # 4 orders
    result = update_customer_traits(store, settings(), ids[0])
    assert (result.values["rfm_frequency"], result.values["orders_total"]) == (2, 4)
    assert traits_of(store, ids[1])["rfm_frequency"] == 1
