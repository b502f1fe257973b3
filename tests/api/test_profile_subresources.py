"""Profile sub-resources that other stages fill: computed traits and segment memberships."""

from __future__ import annotations

from datetime import datetime

from accord.store.backend import Store
from tests.api.conftest import Api

T0 = datetime(2026, 1, 1)
T1 = datetime(2026, 2, 1)


def person(api: Api) -> str:
    r = api.post("/v1/identify", {"messageId": "m1", "userId": "u1"})
    assert r.status_code == 200
    return "cus_00000001"


def test_traits_answers_numbers_text_and_lists(api: Api) -> None:
    cid = person(api)

    def seed(store: Store) -> None:
        store.executemany("INSERT INTO customer_traits (customer_id, name, value_num, value_text, computed_at) "
                          "VALUES (?, ?, ?, ?, ?)", [
                              (cid, "orders", 3.0, None, T0), (cid, "rfm_segment", None, "champions", T0),
                              (cid, "categories", None, '["books", "tea"]', T1)])

    api.run(seed)
    r = api.get("/v1/profiles/user_id:u1/traits")
    assert (r.status_code, r.json()) == (200, {"customer_id": cid, "traits": {
        "categories": {"value": ["books", "tea"], "computed_at": "2026-02-01T00:00:00"},
        "orders": {"value": 3.0, "computed_at": "2026-01-01T00:00:00"},
        "rfm_segment": {"value": "champions", "computed_at": "2026-01-01T00:00:00"}}})


def test_traits_of_a_customer_without_any_is_an_empty_map(api: Api) -> None:
    person(api)
    assert api.get("/v1/profiles/user_id:u1/traits").json() == {"customer_id": "cus_00000001", "traits": {}}


def test_traits_of_an_unknown_identifier_is_404(api: Api) -> None:
    assert api.get("/v1/profiles/user_id:nobody/traits").status_code == 404


def _memberships(api: Api, cid: str) -> None:
    def seed(store: Store) -> None:
        store.executemany("INSERT INTO segment_membership (segment, customer_id, entered_at, exited_at, entered_by, "
                          "exited_by) VALUES (?, ?, ?, ?, ?, ?)", [
                              ("vip", cid, T1, None, "realtime", None), ("new", cid, T0, T1, "batch", "batch")])

    api.run(seed)


def test_segments_lists_current_memberships(api: Api) -> None:
    cid = person(api)
    _memberships(api, cid)
    assert api.get("/v1/profiles/user_id:u1/segments").json() == {"customer_id": cid, "segments": [
        {"segment": "vip", "entered_at": "2026-02-01T00:00:00", "exited_at": None, "entered_by": "realtime",
         "exited_by": None}]}


def test_segments_with_history_lists_ended_memberships_too(api: Api) -> None:
    cid = person(api)
    _memberships(api, cid)
    body = api.get("/v1/profiles/user_id:u1/segments", params={"history": "true"}).json()
    assert [(s["segment"], s["exited_at"]) for s in body["segments"]] == [
        ("vip", None), ("new", "2026-02-01T00:00:00")]
