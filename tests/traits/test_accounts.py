"""Accounts from company fields, group-call accounts left alone, and account traits."""

from __future__ import annotations

import json

from tests.traits.conftest import NOW, days_ago


def _group_account(store, account_id: str, name: str, traits: dict, *members: str) -> None:
    store.execute(store.type_sql("INSERT INTO accounts (account_id, name, traits, origin, first_seen, last_seen) "
                                 "VALUES (?, ?, CAST(? AS ${JSON}), 'group', ?, ?)"),
                  (account_id, name, json.dumps(traits), NOW, NOW))
    for customer_id in members:
        store.execute("INSERT INTO account_members (account_id, customer_id, origin, first_seen, last_seen) "
                      "VALUES (?, ?, 'group', ?, ?)", (account_id, customer_id, NOW, NOW))


def _members(store) -> set[tuple[str, str, str]]:
    return set(store.fetchall("SELECT account_id, customer_id, origin FROM account_members"))


def _traits(store, account_id: str) -> dict:
    return json.loads(store.scalar("SELECT traits FROM accounts WHERE account_id = ?", (account_id,)))


def test_customers_with_the_same_company_share_one_account(data, compute):
    data.customer("c1", company="Acme Widgets Ltd")
    data.customer("c2", company="ACME WIDGETS")
    data.customer("c3", company="Globex GmbH")
    data.customer("c4")
    compute()
    assert _members(data.store) == {("company:acme-widgets", "c1", "company"),
                                    ("company:acme-widgets", "c2", "company"),
                                    ("company:globex", "c3", "company")}
    assert data.store.fetchall("SELECT account_id, name, origin FROM accounts ORDER BY account_id") == [
        ("company:acme-widgets", "ACME WIDGETS", "company"), ("company:globex", "Globex GmbH", "company")]


def test_members_join_a_group_account_of_the_same_name(data, compute):
    _group_account(data.store, "grp-42", "Acme Widgets, Inc.", {"plan": "enterprise"}, "c9")
    data.customer("c1", company="Acme Widgets")
    data.customer("c9")
    compute()
    assert _members(data.store) == {("grp-42", "c9", "group"), ("grp-42", "c1", "company")}
    assert data.store.scalar("SELECT count(*) FROM accounts") == 1


def test_a_company_account_without_members_goes_and_group_accounts_stay(data, compute):
    _group_account(data.store, "grp-1", "Initech", {}, )
    data.customer("c1", company="Hooli")
    compute()
    data.store.execute("DELETE FROM golden_values WHERE customer_id = 'c1'")
    compute()
    assert data.store.fetchall("SELECT account_id, origin FROM accounts") == [("grp-1", "group")]
    assert _members(data.store) == set()


def test_account_traits_sum_spend_and_trend_and_average_health_and_churn(data, compute):
    data.customer("c1", company="Acme")
    data.customer("c2", company="Acme")
    data.customer("c3", company="Acme")
    data.order("c1", days_ago(3), 100.0)
    data.order("c2", days_ago(200), 50.5)
    data.event(("user_id", "c1"), "Page", days_ago(1))
    data.churn_risk("c1", 0.2)
    data.churn_risk("c2", 0.6)
    compute(accounts={"active_days": 30})
    traits = _traits(data.store, "company:acme")
    health = [data.store.scalar("SELECT value_num FROM customer_traits WHERE customer_id = ? AND name = "
                                "'health_score'", (c,)) for c in ("c1", "c2", "c3")]
    trend = sum(data.store.scalar("SELECT value_num FROM customer_traits WHERE customer_id = ? AND name = "
                                  "'engagement_trend'", (c,)) for c in ("c1", "c2", "c3"))
    assert {k: traits[k] for k in ("members", "active_contacts", "total_spend", "renewal_risk")} == {
        "members": 3, "active_contacts": 1, "total_spend": 150.5, "renewal_risk": 0.4}
    assert traits["health_score"] == round(sum(health) / 3, 1)
    assert traits["engagement_trend"] == round(trend, 4)


def test_account_traits_keep_the_traits_a_group_call_gave(data, compute):
    _group_account(data.store, "grp-7", "Umbrella", {"plan": "pro", "seats": 40}, "c1")
    data.customer("c1")
    compute()
    traits = _traits(data.store, "grp-7")
    assert (traits["plan"], traits["seats"], traits["members"], traits["renewal_risk"]) == ("pro", 40, 1, None)


def test_accounts_can_be_turned_off(data, compute):
    data.customer("c1", company="Acme")
    report = compute(accounts={"enabled": False})
    assert (report.accounts, data.store.scalar("SELECT count(*) FROM accounts")) == (None, 0)
