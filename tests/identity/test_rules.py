import pandas as pd

from accord.identity.rules import apply_rules
from accord.identity.settings import IdentitySettings


def frame(*rows: dict) -> pd.DataFrame:
    base = {"std_emails": None, "std_phones": None, "external_ids": None, "std_name_group": None,
            "std_given_name": None, "std_family_name": None, "std_dob": None}
    return pd.DataFrame([{**base, **r} for r in rows])


def edge_set(result) -> set[tuple[str, str, str]]:
    return set(zip(result.edges["record_a"], result.edges["record_b"], result.edges["rule"]))


def test_records_sharing_an_email_link_with_the_rule_name():
    df = frame({"rid": "a:1", "std_emails": ["ann@x.org"], "std_given_name": "ann"},
               {"rid": "b:1", "std_emails": ["ann@x.org"], "std_given_name": "ann"})
    assert edge_set(apply_rules(df, IdentitySettings())) == {("a:1", "b:1", "rule:email")}


def test_a_blocked_value_links_nothing_and_is_reported():
    df = frame({"rid": "a:1", "std_phones": ["+15550000000"]}, {"rid": "b:1", "std_phones": ["+15550000000"]})
    result = apply_rules(df, IdentitySettings(blocked_values=["+15550000000"]))
    assert edge_set(result) == set()
    assert [e.as_dict() for e in result.excluded] == [
        {"type": "phone", "value": "+15550000000", "reason": "blocked", "records": 2, "people": 0}]


def test_placeholder_external_ids_link_nothing():
    df = frame({"rid": "a:1", "external_ids": '{"loyalty": "0000"}'},
               {"rid": "b:1", "external_ids": '{"loyalty": "0000"}'})
    result = apply_rules(df, IdentitySettings())
    assert edge_set(result) == set()
    assert [(e.type, e.reason) for e in result.excluded] == [("external:loyalty", "placeholder")]


def test_an_identifier_shared_by_more_than_k_people_is_excluded():
    people = [("ann", "1980-01-01"), ("bob", "1981-02-02"), ("cat", "1982-03-03"), ("dan", "1983-04-04")]
    df = frame(*[{"rid": f"s:{i}", "std_phones": ["+12125550100"], "std_given_name": g, "std_family_name": "lee",
                  "std_dob": d} for i, (g, d) in enumerate(people)])
    result = apply_rules(df, IdentitySettings(shared_identifier_limit=3))
    assert edge_set(result) == set()
    assert [e.as_dict() for e in result.excluded] == [
        {"type": "phone", "value": "+12125550100", "reason": "shared_by_too_many_people", "records": 4, "people": 4}]
    assert len(result.identifiers) == 0


def test_an_identifier_shared_within_the_limit_links_only_lookalikes():
    # A household landline: the two records of Ann link, Bob (another given name) does not.
    df = frame({"rid": "s:1", "std_phones": ["+12125550100"], "std_given_name": "ann", "std_family_name": "lee"},
               {"rid": "s:2", "std_phones": ["+12125550100"], "std_given_name": "ann", "std_family_name": "lee"},
               {"rid": "s:3", "std_phones": ["+12125550100"], "std_given_name": "bob", "std_family_name": "lee"})
    result = apply_rules(df, IdentitySettings())
    assert edge_set(result) == {("s:1", "s:2", "rule:phone")}
    assert result.excluded == []


def test_different_birth_dates_stop_an_identifier_link():
    df = frame({"rid": "s:1", "std_emails": ["f@x.org"], "std_given_name": "ann", "std_dob": "1980-01-01"},
               {"rid": "s:2", "std_emails": ["f@x.org"], "std_given_name": "ann", "std_dob": "2010-05-05"})
    assert edge_set(apply_rules(df, IdentitySettings())) == set()


def test_identifier_priority_is_carried_on_the_edge():
    df = frame({"rid": "s:1", "std_emails": ["e@x.org"], "std_phones": ["+12125550100"]},
               {"rid": "s:2", "std_emails": ["e@x.org"], "std_phones": ["+12125550100"]})
    result = apply_rules(df, IdentitySettings())
    assert sorted(zip(result.edges["rule"], result.edges["priority"])) == [("rule:email", 10), ("rule:phone", 20)]


def test_name_variants_sharing_an_email_link_as_one_person():
    # A typo, a nickname and a swapped name on one person's support tickets.
    names = [("alfred", "lemaitre"), ("aflred", None), ("al", None), ("lemaitre", "alfred")]
    df = frame(*[{"rid": f"support:{i}", "std_emails": ["lemaitrealfred@gmail.com"], "std_given_name": g,
                  "std_family_name": f} for i, (g, f) in enumerate(names)])
    result = apply_rules(df, IdentitySettings())
    assert edge_set(result) == {("support:0", f"support:{i}", "rule:email") for i in (1, 2, 3)}
    assert result.excluded == []


def test_a_day_month_swap_does_not_stop_an_identifier_link():
    df = frame({"rid": "crm:1", "std_phones": ["+12125550100"], "std_given_name": "ann", "std_dob": "1984-03-07"},
               {"rid": "pos:1", "std_phones": ["+12125550100"], "std_given_name": "ann", "std_dob": "1984-07-03"})
    assert edge_set(apply_rules(df, IdentitySettings())) == {("crm:1", "pos:1", "rule:phone")}


# --- the array paths equal the plain per-value rules they replaced ----------------------------

def _reference_rules(records: pd.DataFrame, settings: IdentitySettings):
    """apply_rules as one Python loop per shared value (how it was first written): the specification
    the array paths (pairs of records, junk detection, identifier lists) must reproduce exactly."""
    import itertools

    import orjson

    from accord.identity.rules import (
        EDGE_COLUMNS, ExcludedIdentifier, _compatible_groups, _distinct_people, _is_junk, _looks, _priorities)

    wanted = {t.name for t in settings.identifiers}
    rows = []
    for rid, vs in zip(records["rid"], records["std_emails"]):
        rows += [(rid, "email", str(v)) for v in (vs or []) if v not in (None, "")]
    for rid, vs in zip(records["rid"], records["std_phones"]):
        rows += [(rid, "phone", str(v)) for v in (vs or []) if v not in (None, "")]
    for rid, raw in zip(records["rid"], records["external_ids"]):
        for key, value in (orjson.loads(raw) if raw else {}).items():
            if ("external" in wanted or f"external:{key}" in wanted) and value not in (None, ""):
                rows.append((rid, f"external:{key}", str(value).strip()))
    carried = pd.DataFrame(rows, columns=["rid", "type", "value"])
    ids = carried.drop_duplicates()
    blocked = {v.strip().lower() for v in settings.blocked_values}
    bad = ids["value"].str.lower().isin(blocked) | ids["value"].map(_is_junk)
    excluded = [ExcludedIdentifier(t, v, "blocked" if v.lower() in blocked else "placeholder", len(g), 0)
                for (t, v), g in ids[bad].groupby(["type", "value"], sort=True)]
    ids = ids[~bad]
    looks = _looks(records)
    shared = ids[ids.duplicated(["type", "value"], keep=False)].sort_values(["type", "value", "rid"])
    edges, dropped = [], set()
    priority = _priorities(settings)
    for (t, v), group in itertools.groupby(zip(shared["type"], shared["value"], shared["rid"]),
                                           key=lambda row: (row[0], row[1])):
        members = sorted({row[2] for row in group})
        people = _distinct_people([looks[r] for r in members])
        if people > settings.shared_identifier_limit:
            excluded.append(ExcludedIdentifier(t, v, "shared_by_too_many_people", len(members), people))
            dropped.add((t, v))
            continue
        for linked in _compatible_groups(members, looks):
            edges += [(linked[0], other, f"rule:{t}", priority(t)) for other in linked[1:]]
    ids = ids[[k not in dropped for k in zip(ids["type"], ids["value"])]]
    return pd.DataFrame(edges, columns=list(EDGE_COLUMNS)), ids.reset_index(drop=True), excluded, carried


def _random_people_frame(seed: int, n: int) -> pd.DataFrame:
    import json
    import random

    rng = random.Random(seed)
    givens = ["ann", "anne", "bob", "robert", "rob", "b", "a", "cat", "kate", "katherine", None, "lee", ""]
    families = ["lee", "smith", "ann", None, "jones"]
    dobs = ["1980-01-02", "1980-02-01", "1980-01-03", "1991-07-07", None, None]
    # Mostly values two records share (the common case at scale), some shared by many, some junk.
    emails = [f"p{i}@x.org" for i in range(n // 2)] + ["bob@y.com", "n/a", "aaaa", "test", " ", ""]
    phones = [f"+1212555{i:04d}" for i in range(n // 2)] + ["+447700900123", "0000", "+10000000000"]
    rows = []
    for i in range(n):
        given = rng.choice(givens)
        rows.append({
            "rid": f"s{rng.randint(0, 2)}:{i:04d}",
            "std_given_name": given, "std_family_name": rng.choice(families), "std_dob": rng.choice(dobs),
            "std_name_group": {"bob": "robert", "rob": "robert", "kate": "katherine", "cat": "catherine",
                               "anne": "ann"}.get(given, given),
            "std_emails": rng.sample(emails, rng.randint(0, 2)) or None,
            "std_phones": rng.sample(phones, rng.randint(0, 2)) or None,
            "external_ids": rng.choice([
                json.dumps({"loyalty": rng.choice(["L1", "L2", "0000", " L3 ", "L4"])}),
                json.dumps({"loyalty": rng.choice(["L1", "L2"]), "crm": rng.choice([" C9 ", "C8", ""])}),
                "{}", '{"loyalty": 5}', '{"loyalty":"L1","loyalty":"L2"}', '{"kündennr":"K1"}',
                '{"loyalty": "L\\u00e91"}', ' { "loyalty" : "L2" } ']) if rng.random() < 0.5 else None,
        })
    return pd.DataFrame(rows)


def test_rules_equal_the_per_value_reference_on_random_records():
    for seed in range(12):
        df = _random_people_frame(seed, 60 + 10 * seed)
        if seed % 2:  # records in rid order, as stores hand them over (the other seeds: any order)
            df = df.sort_values("rid", ignore_index=True)
        for settings in (IdentitySettings(), IdentitySettings(shared_identifier_limit=1, blocked_values=["BOB@y.com"])):
            got = apply_rules(df, settings)
            edges, ids, excluded, carried = _reference_rules(df, settings)
            pd.testing.assert_frame_equal(got.edges.astype(object), edges.astype(object))
            pd.testing.assert_frame_equal(got.identifiers.astype(object), ids.astype(object))
            pd.testing.assert_frame_equal(got.carried.astype(object), carried.astype(object))
            assert got.excluded == excluded


def test_the_junk_first_pass_misses_no_junk_value():
    import random

    from accord.identity.rules import _is_junk, _junk_mask

    rng = random.Random(11)
    alphabet = ["a", "A", "0", "-", "?", "/", " ", "\t", "\x1c", "\xa0", "é", "n", "o", "e", "u", "l", "t", "s", "İ"]
    words = ["N/A", "na", " none ", "NULL", "Unknown", "tbd", "TEST", "not available", "xxx", "0000", "----",
             "aaaa", "??", "", " ", "\x1cnone", "none\xa0", "CRM-0001", "+12125550100", "ann@x.org", "İ"]
    values = words + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(3000)]
    got = _junk_mask(pd.Series(values)).tolist()
    assert got == [_is_junk(v) for v in values]
    assert sum(got) > 20
