"""Real-time placement of one new record: what the batch path would write, reached without its machinery."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from accord.config import ProjectConfig
from accord.identity import incremental, placement, realtime
from accord.identity.incremental import resolve_records
from accord.identity.stage import resolve
from accord.profiles import build_profiles, record_decision
from tests.identity.conftest import save_model
from tests.identity.people import insert_records, population

CFG = ProjectConfig()


class _Undo(Exception):
    """Raised to roll a comparison run back."""


@pytest.fixture
def parts():
    """The test population: most records resolved first, every fifth record arriving one at a time."""
    records, _, _ = population()
    return [r for i, r in enumerate(records) if i % 5], [r for i, r in enumerate(records) if i % 5 == 0]


@pytest.fixture
def resolved(store, parts, settings, trained_model):
    save_model(store, settings, trained_model)
    insert_records(store, parts[0], run_id="run_a")
    resolve(store, CFG, "run_1", settings=settings)
    build_profiles(store, CFG, None, "run_1")
    return store


def _written(store, since: int) -> dict[str, object]:
    """Everything a resolution writes that a reader sees."""
    def rows(sql: str) -> list[tuple]:
        return sorted(tuple(json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else v
                            for v in row) for row in store.fetchall(sql))

    return {
        "identity": rows("SELECT source, record_key, cluster_id FROM identity"),
        "edges": rows("SELECT record_a, record_b, rule_or_model, status, reason, ROUND(CAST(probability AS NUMERIC), 9), "
                      "ROUND(CAST(match_weight AS NUMERIC), 6) FROM match_edges"),
        "state": rows("SELECT rid, row_hash, std_given_name, std_family_name, std_email, std_phone, std_dob, "
                      "CAST(std_emails AS TEXT) FROM identity_standardized"),
        "identifiers": rows("SELECT rid, id_type, value FROM identity_record_identifiers"),
        "record_customer": rows("SELECT source, record_key, customer_id FROM record_customer"),
        "customers": rows("SELECT customer_id, status, merged_into FROM customers"),
        "golden": rows("SELECT customer_id, attribute, value, source, record_key, observed_at, rule FROM golden_values"),
        "multi": rows("SELECT customer_id, attribute, value, first_seen, last_seen, CAST(sources AS TEXT), records, "
                      "source, record_key, rule FROM golden_multi"),
        "audit": rows(f"SELECT event_id, kind, customer_id, other_customer_id, CAST(records AS TEXT), reason, "
                      f"CAST(evidence AS TEXT) FROM identity_audit WHERE event_id > {since}"),
    }


def _both_ways(store, record: dict, settings, monkeypatch) -> tuple[tuple, tuple, str | None]:
    """(fast path's result and writes, batch path's result and writes, why the fast path declined), each
    run from the same state and rolled back."""
    since = int(store.scalar("SELECT COALESCE(MAX(event_id), 0) FROM identity_audit"))
    declined: list[str] = []
    real = placement.place_record

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        if isinstance(out, str):
            declined.append(out)
        return out

    # Both runs store the record at the same moment (its observed_at and first_seen_at are compared).
    moment = datetime(2026, 1, 2, 3, 4, 5)
    monkeypatch.setattr(realtime, "utcnow", lambda: moment)
    out = []
    for fast in (True, False):
        placement._MODELS.clear()  # term frequencies read afresh, as the batch path counts them
        monkeypatch.setattr(placement, "place_record", spy if fast else lambda *a, **k: "batch path (test)")
        try:
            with store.transaction():
                got = resolve_records(store, CFG, [record], run_id="rt", actor="api", settings=settings)
                out.append(([(a.customer_id, a.outcome, a.merged_ids) for a in got], _written(store, since)))
                raise _Undo
        except _Undo:
            pass
    monkeypatch.setattr(placement, "place_record", real)
    return out[0], out[1], (declined[0] if declined else None)


def test_each_new_record_is_placed_exactly_as_the_batch_path_places_it(resolved, parts, settings, monkeypatch):
    store = resolved
    outcomes = set()
    for record in parts[1][:24]:
        fast, batch, declined = _both_ways(store, record, settings, monkeypatch)
        assert declined is None, record["record_key"]
        for key in fast[1]:
            assert set(fast[1][key]) ^ set(batch[1][key]) == set(), (record["record_key"], key)
        assert fast == batch, record["record_key"]
        outcomes.add(fast[0][0][1])
        resolve_records(store, CFG, [record], settings=settings)  # kept: the next one meets it
    assert outcomes == {"created", "joined"}  # both kinds of placement were compared


def test_a_record_sharing_an_email_joins_by_the_rule_as_the_batch_path_does(resolved, parts, settings, monkeypatch):
    store = resolved
    known = parts[0][3]
    record = {"source": "api", "record_key": "u-shared", "given_name": known["given_name"],
              "emails": known["emails"]}
    fast, batch, declined = _both_ways(store, record, settings, monkeypatch)
    assert declined is None
    assert fast == batch
    assert fast[0][0][1] == "joined"
    assert any(e[2].startswith("rule:") and "api:u-shared" in e[:2] for e in fast[1]["edges"])


def test_a_record_nobody_resembles_is_a_new_customer_with_its_own_golden_record(resolved, settings, monkeypatch):
    record = {"source": "api", "record_key": "u-new", "given_name": "Zebedee", "family_name": "Quarrington",
              "emails": ["zq@example.org"], "city": "Oslo"}
    fast, batch, declined = _both_ways(resolved, record, settings, monkeypatch)
    assert declined is None and fast == batch
    (customer_id, outcome, _), = fast[0]
    assert outcome == "created"
    assert [g for g in fast[1]["golden"] if g[0] == customer_id and g[1] == "email"][0][2:5] == (
        "zq@example.org", "api", "u-new")


@pytest.mark.parametrize("record", [
    # Spelled loosely: trimmed, emails lower-cased, phones reduced to digits, the address joined from its parts.
    {"given_name": "  Ólöf ", "family_name": "Quarrington", "emails": [" ZQ@Example.ORG "],
     "phones": ["+1 (212) 555-0142"], "street": " 1 Main St ", "city": "Oslo", "postcode": " ", "country": "NO"},
    # Two emails: the survivorship rules choose (build_golden does).
    {"given_name": "Zia", "emails": ["zia@example.org", "zia.q@example.org"], "phones": ["+12125550142", "2125550199"]},
    # Only a name.
    {"full_name": "Zia Quarrington"},
])
def test_the_golden_record_of_a_new_customer_is_the_batch_path_s(resolved, settings, monkeypatch, record):
    record = {"source": "api", "record_key": "u-golden", **record}
    fast, batch, declined = _both_ways(resolved, record, settings, monkeypatch)
    assert declined is None and fast[0][0][1] == "created"
    assert fast == batch


def test_a_stored_record_and_fresh_decisions_take_the_batch_path(resolved, parts, settings, monkeypatch):
    store = resolved
    stored = parts[0][0]
    _, _, declined = _both_ways(store, stored, settings, monkeypatch)
    assert declined == "the record is stored already: a changed record takes the batch path"
    a, b = (f"{r['source']}:{r['record_key']}" for r in parts[0][1:3])
    record_decision(store, a, b, False, "tester", "not the same person")
    fresh = {"source": "api", "record_key": "u-after", "given_name": "Ann"}
    _, _, declined = _both_ways(store, fresh, settings, monkeypatch)
    assert declined == "human decisions arrived since the last run: the batch path applies them"


def test_too_many_candidates_take_the_batch_path(resolved, parts, settings, monkeypatch):
    monkeypatch.setattr(placement, "MAX_CANDIDATES", 0)
    known = parts[0][0]
    record = {"source": "api", "record_key": "u-many", "given_name": known["given_name"],
              "family_name": known["family_name"], "date_of_birth": known["date_of_birth"]}
    fast, batch, declined = _both_ways(resolved, record, settings, monkeypatch)
    assert declined == "more than 0 candidates"
    assert fast == batch


def test_term_frequencies_count_the_new_record_and_are_read_once(resolved, settings):
    store = resolved
    counted = []
    frequencies = placement.TermFrequencies()
    real = store.scalar

    def scalar(sql, params=()):
        counted.append(sql)
        return real(sql, params)

    store.scalar = scalar  # type: ignore[method-assign]
    try:
        value = store.scalar("SELECT std_family_name FROM identity_standardized WHERE std_family_name IS NOT NULL "
                             "LIMIT 1")
        n = store.scalar("SELECT COUNT(*) FROM identity_standardized WHERE std_family_name = ?", (value,))
        total = store.scalar("SELECT COUNT(std_family_name) FROM identity_standardized")
        counted.clear()
        shares = frequencies.shares(store, "std_family_name", value)
        assert shares.get(value) == pytest.approx((n + 1) / (total + 1))
        other = frequencies.shares(store, "std_family_name", "Nobody-Else")
        assert other.get(value) == pytest.approx(n / (total + 1))
        assert other.get("Nobody-Else") == pytest.approx(1 / (total + 1))
        assert len(counted) == 3  # the value, the total, the unknown value: each read once
    finally:
        del store.scalar


def test_placement_is_used_by_real_time_stitching_calls(resolved, settings, monkeypatch):
    """resolve_records takes the placement for one new record, and a new customer alone takes the direct
    assignment (neither the batch resolution nor the general profiles build runs)."""
    import accord.profiles.stage as profiles_stage

    calls = []
    monkeypatch.setattr(incremental, "_resolve_delta", lambda *a, **k: calls.append(a) or None)
    monkeypatch.setattr(profiles_stage, "build_profiles", lambda *a, **k: calls.append(a) or None)
    out = resolve_records(resolved, CFG, [{"source": "api", "record_key": "u-rt", "given_name": "Una",
                                           "emails": "una@example.org"}], settings=settings)
    assert out[0].outcome == "created" and not calls


def test_the_linked_records_are_walked_through_edges_that_can_merge_only(store, monkeypatch):
    edges = [("a", "b", 0.99), ("b", "c", None), ("c", "d", 0.7), ("e", "c", 0.97), ("x", "y", None)]
    with store.transaction():
        store.executemany("INSERT INTO match_edges (record_a, record_b, probability, match_weight, rule_or_model, "
                          "status, reason, run_id) VALUES (?, ?, ?, NULL, 'model:v1', 'auto', NULL, 'r')", edges)
    assert placement._linked(store, {"a"}, 0.95) == {"a", "b", "c", "e"}
    assert placement._linked(store, {"d"}, 0.95) == {"d"}
    assert placement._linked(store, {"d"}, 0.6) == {"a", "b", "c", "d", "e"}
    monkeypatch.setattr(placement, "MAX_LINKED", 2)
    assert placement._linked(store, {"a"}, 0.95) is None  # more than MAX_LINKED: the batch path


def test_warming_loads_the_model_and_the_totals_before_the_first_call(resolved, store, parts, settings, monkeypatch):
    placement._MODELS.clear()
    assert placement.warm(store, CFG, settings) is None
    loaded = placement._MODELS[store]
    assert set(loaded.frequencies._totals) == {"std_given_name", "std_family_name", "std_postcode", "std_city"}

    def no_second_load(*args, **kwargs):
        raise AssertionError("the model was loaded again")

    monkeypatch.setattr(placement, "load_model", no_second_load)
    asked = []
    real = store.scalar
    real_many = store.fetch_many
    monkeypatch.setattr(store, "scalar", lambda sql, params=(): asked.append(sql) or real(sql, params))
    monkeypatch.setattr(store, "fetch_many", lambda statements: asked.extend(s for s, _ in statements)
                        or real_many(statements))
    known = parts[0][0]  # a stored person's names: their frequencies are read
    out = resolve_records(store, CFG, [{"source": "api", "record_key": "u-warm", "given_name": known["given_name"],
                                        "family_name": known["family_name"]}], settings=settings)
    assert out[0].outcome in ("created", "joined")
    assert any("WHERE std_family_name = ?" in q for q in asked)  # a value's count was read ...
    assert not [q for q in asked if q.startswith("SELECT COUNT(std_")]  # ... but no total
    assert placement._MODELS[store] is loaded


def test_warming_a_store_with_nothing_resolved_says_why(store, settings):
    assert placement.warm(store, CFG, settings) == "no saved model fits the configuration"


def test_the_term_frequency_cache_is_bounded(resolved, monkeypatch):
    monkeypatch.setattr(placement, "TF_CACHED_VALUES", 20)
    frequencies = placement.TermFrequencies()
    for i in range(50):
        frequencies.count(resolved, "std_family_name", f"nobody-{i}")
    assert len(frequencies._counts) <= 20
    assert ("std_family_name", "nobody-49") in frequencies._counts  # the latest stay
