import pytest

from accord.config import ProjectConfig, SourceConfig
from accord.errors import ConfigError
from accord.profiles import (
    assign_customer_ids,
    build_golden,
    profile,
    profiles_settings,
)
from accord.profiles.settings import ProfilesSettings
from tests.profiles.helpers import add_records, clustering

PRIORITIES = {"crm": 1, "shop": 2, "support": 3}


def golden(store, attribute, customer="cus_00000001"):
    return store.fetchone("SELECT value, source, record_key, rule FROM golden_values "
                          "WHERE customer_id = ? AND attribute = ?", (customer, attribute))


def one_customer(store, recs, settings=None, priorities=PRIORITIES):
    add_records(store, recs)
    assign_customer_ids(store, clustering([r["rid"] for r in recs]), "run_1")
    return build_golden(store, settings, priorities)


def test_source_priority_picks_the_most_trusted_source(store):
    one_customer(store, [{"rid": "shop:1", "given_name": "Jon", "updated": 9},
                         {"rid": "crm:1", "given_name": "Jonathan", "updated": 1}])
    assert golden(store, "given_name") == ("Jonathan", "crm", "1", "source_priority")


def test_most_recent_wins_for_company(store):
    one_customer(store, [{"rid": "crm:1", "company": "Acme", "updated": 1},
                         {"rid": "shop:1", "company": "Globex", "updated": 5}])
    assert golden(store, "company") == ("Globex", "shop", "1", "most_recent")


def test_most_recent_falls_back_to_valid_from_when_the_source_has_no_update_time(store):
    one_customer(store, [{"rid": "crm:1", "company": "Acme", "day": 1},
                         {"rid": "crm:2", "company": "Globex", "day": 3}])
    assert golden(store, "company") == ("Globex", "crm", "2", "most_recent")


def test_most_frequent_date_of_birth(store):
    one_customer(store, [{"rid": "crm:1", "date_of_birth": "1980-01-02"},
                         {"rid": "shop:1", "date_of_birth": "1980-02-01"},
                         {"rid": "support:1", "date_of_birth": "1980-02-01"}])
    value, _, _, rule = golden(store, "date_of_birth")
    assert (value, rule) == ("1980-02-01", "most_frequent")


def test_next_rule_breaks_ties_of_the_first(store):
    # Same source priority: most_frequent decides the given name.
    one_customer(store, [{"rid": "crm:1", "given_name": "Ann"}, {"rid": "crm:2", "given_name": "Anna"},
                         {"rid": "crm:3", "given_name": "anna"}])
    assert golden(store, "given_name")[3] == "most_frequent"
    assert golden(store, "given_name")[0] in ("Anna", "anna")


def test_values_agreeing_case_insensitively_are_one_value(store):
    one_customer(store, [{"rid": "crm:1", "family_name": "Smith"}, {"rid": "shop:1", "family_name": " SMITH "}])
    assert golden(store, "family_name") == ("Smith", "crm", "1", "only_value")


def test_full_tie_is_broken_by_the_smallest_value_and_says_so(store):
    one_customer(store, [{"rid": "crm:2", "company": "Beta"}, {"rid": "crm:1", "company": "Alpha"}],
                 settings=ProfilesSettings(survivorship={"company": ["source_priority", "most_frequent"]}))
    assert golden(store, "company") == ("Alpha", "crm", "1", "tie_break")


def test_non_empty_rule_takes_any_value_deterministically(store):
    one_customer(store, [{"rid": "crm:2", "company": "Beta"}, {"rid": "crm:1", "company": ""},
                         {"rid": "shop:1", "company": "Alpha"}],
                 settings=ProfilesSettings(survivorship={"company": ["non_empty"]}))
    assert golden(store, "company") == ("Alpha", "shop", "1", "non_empty")


def test_most_complete_prefers_the_longest_value(store):
    one_customer(store, [{"rid": "crm:1", "full_name": "J Smith"}, {"rid": "crm:2", "full_name": "John Smith"}],
                 settings=ProfilesSettings(survivorship={"full_name": ["most_complete"]}))
    assert golden(store, "full_name") == ("John Smith", "crm", "2", "most_complete")


def test_lineage_record_follows_the_rules_within_a_value(store):
    # Both records hold the winning email; the lineage names the most recent one.
    one_customer(store, [{"rid": "crm:1", "emails": ["a@x.com"], "updated": 1},
                         {"rid": "shop:1", "emails": ["A@X.com"], "updated": 4}],
                 settings=ProfilesSettings(survivorship={"email": ["most_recent"]}))
    assert golden(store, "email") == ("a@x.com", "shop", "1", "only_value")


def test_address_survives_as_a_unit(store):
    one_customer(store, [
        {"rid": "crm:1", "street": "1 Old Rd", "city": "Leeds", "postcode": "LS1", "country": "GB", "updated": 1},
        {"rid": "shop:1", "street": "9 New St", "city": "York", "updated": 5}])
    assert golden(store, "address") == ("9 New St, York", "shop", "1", "most_recent")
    assert golden(store, "street")[:3] == ("9 New St", "shop", "1")
    assert golden(store, "city")[:3] == ("York", "shop", "1")
    assert golden(store, "postcode") is None and golden(store, "country") is None


def test_multi_valued_attributes_keep_every_value_with_first_and_last_seen(store):
    one_customer(store, [{"rid": "crm:1", "emails": ["Ann@X.com", "ann@work.com"], "phones": ["+44 20 7946 0000"],
                          "day": 1, "updated": 2},
                         {"rid": "shop:1", "emails": ["ann@x.com "], "day": 3, "updated": 6}])
    rows = store.fetchall("SELECT attribute, value, first_seen, last_seen, CAST(sources AS TEXT), records, source, "
                          "record_key FROM golden_multi WHERE attribute <> 'addresses' ORDER BY attribute, value")
    assert [(r[0], r[1], r[2].day, r[3].day, r[4].replace(" ", ""), r[5], r[6], r[7]) for r in rows] == [
        ("emails", "ann@work.com", 2, 3, '["crm"]', 1, "crm", "1"),
        ("emails", "ann@x.com", 2, 7, '["crm","shop"]', 2, "shop", "1"),
        ("phones", "+442079460000", 2, 3, '["crm"]', 1, "crm", "1"),
    ]
    assert golden(store, "email") == ("ann@x.com", "shop", "1", "most_frequent")


def test_every_golden_value_has_lineage_to_a_record_of_its_customer(store):
    add_records(store, [
        {"rid": "crm:1", "given_name": "Ann", "family_name": "Lee", "emails": ["a@x.com"], "street": "1 Rd",
         "company": "Acme", "date_of_birth": "1990-01-01", "phones": ["555 1234"]},
        {"rid": "shop:1", "given_name": "Anne", "full_name": "Anne Lee", "emails": ["b@x.com"], "city": "York"},
        {"rid": "shop:2", "given_name": "Bob", "company": "Initech", "updated": 3}])
    assign_customer_ids(store, clustering(["crm:1", "shop:1"], ["shop:2"]), "run_1")
    report = build_golden(store, None, PRIORITIES)
    assert report.customers == 2 and report.values > 10
    orphans = store.fetchall("""
        SELECT g.customer_id, g.attribute FROM golden_values g
        LEFT JOIN record_customer rc ON rc.source = g.source AND rc.record_key = g.record_key
                                     AND rc.customer_id = g.customer_id
        WHERE rc.customer_id IS NULL OR g.rule IS NULL OR g.observed_at IS NULL""")
    assert orphans == []
    assert store.scalar("SELECT COUNT(*) FROM golden_multi WHERE source IS NULL OR record_key IS NULL") == 0


def test_rebuild_replaces_golden_values(store):
    one_customer(store, [{"rid": "crm:1", "given_name": "Ann"}])
    build_golden(store, None, PRIORITIES)
    assert store.scalar("SELECT COUNT(*) FROM golden_values WHERE attribute = 'given_name'") == 1


def test_profile_lists_golden_values_records_identifiers_and_follows_redirects(store):
    add_records(store, [{"rid": "crm:1", "given_name": "Ann", "emails": ["a@x.com"], "external_ids": {"crm_id": "C1"},
                         "day": 0},
                        {"rid": "shop:7", "given_name": "Annie", "day": 2, "updated": 4}])
    assign_customer_ids(store, clustering(["crm:1"], ["shop:7"]), "run_1")
    assign_customer_ids(store, clustering(["crm:1", "shop:7"]), "run_2")
    build_golden(store, None, PRIORITIES)
    p = profile(store, "cus_00000002")
    assert (p["customer_id"], p["redirected"], p["merged_ids"]) == ("cus_00000001", True, ["cus_00000002"])
    assert p["attributes"]["given_name"]["value"] == "Ann"
    assert p["attributes"]["given_name"]["record"] == "crm:1"
    assert p["attributes"]["given_name"]["rule"] == "source_priority"
    assert p["identifiers"]["crm_id"] == ["C1"] and p["identifiers"]["email"] == ["a@x.com"]
    assert [r["record"] for r in p["records"]] == ["crm:1", "shop:7"]
    assert p["sources"] == ["crm", "shop"]
    assert p["first_seen"].day == 1 and p["last_seen"].day == 5


def test_source_priority_comes_from_the_configured_sources():
    from accord.profiles.golden import source_priorities

    cfg = ProjectConfig(sources=[SourceConfig(name="crm", format="csv", path="c.csv", primary_key="id",
                                              fields={"given_name": "g"}, priority=1)])
    assert source_priorities(cfg) == {"crm": 1}


def test_settings_parse_from_the_profiles_section_with_precise_errors():
    cfg = ProjectConfig.model_validate({"profiles": {"survivorship": {"company": ["most_recent"]}}})
    assert profiles_settings(cfg.profiles).rules_for("company") == ["most_recent"]
    assert profiles_settings(cfg.profiles).rules_for("given_name")[0] == "source_priority"
    with pytest.raises(ConfigError, match=r"profiles.survivorship.company.0: Input should be 'source_priority'"):
        profiles_settings({"survivorship": {"company": ["newest"]}})
    with pytest.raises(ConfigError, match="unknown attribute 'shoe_size'"):
        profiles_settings({"survivorship": {"shoe_size": ["most_recent"]}})
