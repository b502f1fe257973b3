"""Accounts (B2B): companies from people records, their members, and account traits.

A customer's account is their golden ``company`` (the survivorship winner), compared without
legal forms and case (``accord.standardize.companies``). Its id is ``company:<name-with-dashes>``,
unless an account from a ``group`` call already has that name: then the members join that one.
Rows with origin 'company' are this stage's; rows from ``group`` calls (origin 'group') are never
removed here. Account traits are written into ``accounts.traits`` next to whatever traits the
group calls gave (the computed keys are replaced, the others kept).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from accord.standardize.companies import standardize_company
from accord.store.backend import Store
from accord.traits.dialect import json_cast, num
from accord.traits.events import drop

ORIGIN = "company"
ACCOUNT_TRAITS = ("members", "active_contacts", "total_spend", "engagement_trend", "health_score", "renewal_risk",
                  "traits_computed_at")


@dataclass
class AccountsReport:
    accounts: int = 0
    """Accounts with members after this run (all origins)."""
    company_accounts: int = 0
    members_from_company: int = 0
    added: int = 0
    removed: int = 0
    with_traits: int = 0


def account_id_for(key: str) -> str:
    return f"{ORIGIN}:{key.replace(' ', '-')}"


def sync_company_accounts(store: Store, now: datetime, report: AccountsReport) -> None:
    """Make the 'company' accounts and memberships match the golden company of every customer."""
    group_names: dict[str, str] = {}
    for account_id, name in store.fetchall("SELECT account_id, name FROM accounts WHERE origin <> ? "
                                           "ORDER BY account_id", (ORIGIN,)):
        key = standardize_company(name)
        if key and key not in group_names:
            group_names[key] = account_id
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    members: list[tuple[str, str]] = []
    for customer_id, company in store.fetchall(
            "SELECT g.customer_id, g.value FROM golden_values g JOIN customers c ON c.customer_id = g.customer_id "
            "WHERE g.attribute = 'company' AND c.status = 'active'"):
        key = standardize_company(company)
        if not key:
            continue
        account_id = group_names.get(key) or account_id_for(key)
        spellings[account_id][company.strip()] += 1
        members.append((account_id, customer_id))
    names = {a: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for a, c in spellings.items()}
    drop(store, "_company_members", "_company_accounts")
    store.create_temp_table("_company_members", pa.table({
        "account_id": pa.array([m[0] for m in members], pa.string()),
        "customer_id": pa.array([m[1] for m in members], pa.string())}))
    store.create_temp_table("_company_accounts", pa.table({
        "account_id": pa.array(list(names), pa.string()), "name": pa.array(list(names.values()), pa.string())}))
    empty = json_cast(store, "'{}'")
    store.execute(
        "INSERT INTO accounts (account_id, name, traits, origin, first_seen, last_seen) "
        f"SELECT n.account_id, n.name, {empty}, ?, ?, ? FROM _company_accounts n "
        "WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = n.account_id)", (ORIGIN, now, now))
    store.execute(
        "UPDATE accounts SET name = (SELECT n.name FROM _company_accounts n WHERE n.account_id = accounts.account_id), "
        "last_seen = ? WHERE origin = ? AND account_id IN (SELECT account_id FROM _company_accounts)", (now, ORIGIN))
    report.removed = int(store.scalar(
        "SELECT count(*) FROM account_members m WHERE origin = ? AND NOT EXISTS (SELECT 1 FROM _company_members n "
        "WHERE n.account_id = m.account_id AND n.customer_id = m.customer_id)", (ORIGIN,)) or 0)
    store.execute(
        "DELETE FROM account_members WHERE origin = ? AND NOT EXISTS (SELECT 1 FROM _company_members n "
        "WHERE n.account_id = account_members.account_id AND n.customer_id = account_members.customer_id)", (ORIGIN,))
    report.added = int(store.scalar(
        "SELECT count(*) FROM _company_members n WHERE NOT EXISTS (SELECT 1 FROM account_members m "
        "WHERE m.account_id = n.account_id AND m.customer_id = n.customer_id)") or 0)
    store.execute(
        "INSERT INTO account_members (account_id, customer_id, origin, first_seen, last_seen) "
        "SELECT n.account_id, n.customer_id, ?, ?, ? FROM _company_members n WHERE NOT EXISTS "
        "(SELECT 1 FROM account_members m WHERE m.account_id = n.account_id AND m.customer_id = n.customer_id)",
        (ORIGIN, now, now))
    store.execute(
        "UPDATE account_members SET last_seen = ? WHERE origin = ? AND EXISTS (SELECT 1 FROM _company_members n "
        "WHERE n.account_id = account_members.account_id AND n.customer_id = account_members.customer_id)",
        (now, ORIGIN))
    store.execute("DELETE FROM accounts WHERE origin = ? AND NOT EXISTS "
                  "(SELECT 1 FROM account_members m WHERE m.account_id = accounts.account_id)", (ORIGIN,))
    report.company_accounts = int(store.scalar("SELECT count(*) FROM accounts WHERE origin = ?", (ORIGIN,)) or 0)
    report.members_from_company = len(members)
    drop(store, "_company_members", "_company_accounts")


def write_account_traits(store: Store, base_table: str, active_days: int, computed_at: datetime,
                         report: AccountsReport) -> None:
    """Account traits from the members' customer-level values in ``base_table``, merged into accounts.traits."""
    rows = store.fetchall(
        f"SELECT m.account_id, a.traits, count(*) AS members, "
        f"count(*) FILTER (WHERE b.last_activity_age < {num(active_days * 86400)}) AS active_contacts, "
        f"COALESCE(sum(b.spend), 0) AS total_spend, COALESCE(sum(b.trend), 0) AS engagement_trend, "
        f"avg(b.health) AS health_score, avg(b.churn_risk) AS renewal_risk "
        f"FROM account_members m JOIN accounts a ON a.account_id = m.account_id "
        f"LEFT JOIN {base_table} b ON b.customer_id = m.customer_id GROUP BY m.account_id, a.traits "
        f"ORDER BY m.account_id")
    ids, payloads = [], []
    for account_id, traits, members, active, spend, trend, health, renewal in rows:
        merged: dict[str, Any] = {}
        if traits:
            try:
                loaded = json.loads(traits)
                merged = loaded if isinstance(loaded, dict) else {}
            except ValueError:
                merged = {}
        merged.update({
            "members": int(members), "active_contacts": int(active), "total_spend": round(float(spend), 2),
            "engagement_trend": round(float(trend), 4),
            "health_score": None if health is None else round(float(health), 1),
            "renewal_risk": None if renewal is None else round(float(renewal), 4),
            "traits_computed_at": computed_at.isoformat(timespec="seconds"),
        })
        ids.append(account_id)
        payloads.append(json.dumps(merged, sort_keys=True))
    drop(store, "_account_traits")
    store.create_temp_table("_account_traits", pa.table({"account_id": pa.array(ids, pa.string()),
                                                         "traits": pa.array(payloads, pa.string())}))
    store.execute(f"UPDATE accounts SET traits = {json_cast(store, 't.traits')} FROM _account_traits t "
                  f"WHERE accounts.account_id = t.account_id")
    drop(store, "_account_traits")
    report.with_traits = len(ids)
    report.accounts = len(ids)
