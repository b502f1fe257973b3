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
