"""Which tables hold people, and how to find one person's rows in each: the one place every table declares.

Erasure, export and retention read this registry; nothing else decides where a person lives. A test
fails when the store has a table without an entry, so a new stage cannot forget to declare its tables.

A person's rows are found by any of:

* ``customer``: columns holding the person's customer ids (current and retired);
* ``record``: a (source, record_key) column pair naming one of the person's source records;
* ``record_refs``: columns holding ``source:record_key`` of one of the person's records;
* ``identifiers``: (id_type column, value column) pairs, or (None, value column) for columns that hold
  an identifier value of any kind (userId, anonymousId);
* ``text``: columns whose text is searched for the person's identifiers (raw rows, JSON, reports).

``action`` says what erasure does with the rows found: ``delete`` them; ``scrub`` (keep the row, blank
the person's data: for append-only audits, see ``scrub``); ``retire`` (customers: the id stays taken
so it is never given again, marked retired); ``redact`` (replace the identifiers found in ``text``
columns, keep the row). Tables with nothing about a person say why in ``reason``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Action = Literal["delete", "scrub", "retire", "redact", "keep"]


@dataclass(frozen=True)
class TableEntry:
    table: str
    action: Action
    customer: tuple[str, ...] = ()
    record: tuple[str, str] | None = None
    record_refs: tuple[str, ...] = ()
    identifiers: tuple[tuple[str | None, str], ...] = ()
    text: tuple[str, ...] = ()
    ref_text: tuple[str, ...] = ()
    """Columns among ``text`` that hold only record refs (JSON lists of ``source:record_key``): searched for the
    person's record refs alone, which is all that can be there (fewer needles: a faster pass)."""
    parent: tuple[str, str, str] | None = None
    """(column, parent table, parent column): rows belonging to the person's rows of another table;
    declared before the parent so erasure deletes children first."""
    scrub: dict[str, str] = field(default_factory=dict)
    """For action 'scrub': column -> SQL value written instead (e.g. "'[]'")."""
    retention_column: str | None = None
    """The timestamp that retention periods count from; None: the table has no retention period."""
    export: bool = True
    """Whether access requests (export) include this table's rows."""
    reason: str = ""

    @property
    def holds_people(self) -> bool:
        return bool(self.customer or self.record or self.record_refs or self.identifiers or self.text or self.parent)


REGISTRY: tuple[TableEntry, ...] = (
    # --- foundation (0001) ---
    TableEntry("runs", "redact", text=("report",), retention_column="started_at", export=False,
               reason="run reports are counts, but warnings may quote an identifier: redacted"),
    TableEntry("source_records", "delete", record=("source", "record_key")),
    TableEntry("source_records_history", "delete", record=("source", "record_key"), retention_column="valid_to"),
    TableEntry("quarantine", "delete", record=("source", "record_key"), text=("raw_text",),
               retention_column="quarantined_at"),
    TableEntry("events", "delete", identifiers=(("identity_type", "identity_value"), (None, "anonymous_id")),
               retention_column="ts"),
    # --- identity (0002) ---
    TableEntry("identity", "delete", record=("source", "record_key")),
    TableEntry("match_edges", "delete", record_refs=("record_a", "record_b")),
    TableEntry("identity_models", "keep", export=False,
               reason="model parameters (m/u probabilities), no per-person values; erased records are absent "
                      "from the next training"),
    # --- profiles (0003) ---
    TableEntry("customers", "retire", customer=("customer_id", "merged_into")),
    TableEntry("profile_counters", "keep", export=False, reason="counters only"),
    TableEntry("customer_redirects", "delete", customer=("from_id", "to_id")),
    TableEntry("record_customer", "delete", record=("source", "record_key"), customer=("customer_id",)),
    TableEntry("identity_audit", "scrub", customer=("customer_id", "other_customer_id"),
               text=("records", "evidence", "reason"), ref_text=("records",),
               scrub={"records": "'[]'", "evidence": "'[]'", "reason": "'erased by a privacy request'"}),
    TableEntry("identity_constraints", "delete", record_refs=("record_a", "record_b")),
    TableEntry("golden_values", "delete", customer=("customer_id",)),
    TableEntry("golden_multi", "delete", customer=("customer_id",)),
    # --- api (0004) ---
    TableEntry("api_keys", "keep", export=False, reason="API keys (hashed) and their names"),
    TableEntry("identity_signals", "delete",
               identifiers=((None, "user_id"), (None, "anonymous_id"), (None, "previous_id")),
               text=("traits",), retention_column="received_at"),
    # --- shared (0005) ---
    TableEntry("customer_identifiers", "delete", customer=("customer_id",)),
    TableEntry("customer_traits", "delete", customer=("customer_id",)),
    TableEntry("accounts", "redact", text=("traits",), export=False,
               reason="companies, not people (membership is account_members), but group traits may carry a "
                      "member's email or phone: redacted"),
    TableEntry("account_members", "delete", customer=("customer_id",)),
    TableEntry("customer_consent", "delete", customer=("customer_id",)),
    # --- segments (0006) ---
    TableEntry("segments", "keep", export=False, reason="segment definitions"),
    TableEntry("segment_membership", "delete", customer=("customer_id",)),
    TableEntry("segment_clusterings", "keep", export=False, reason="cluster centres and descriptions, aggregates"),
    TableEntry("webhook_deliveries", "delete", customer=("customer_id",), text=("body",),
               retention_column="created_at"),
    # --- privacy (0007) ---
    TableEntry("consent_history", "delete", customer=("customer_id",), record=("record_source", "record_key"),
               identifiers=(("id_type", "id_value"),)),
    TableEntry("suppression", "keep", export=False, reason="salted HMACs only; they keep the person out"),
    TableEntry("erasure_receipts", "keep", export=False, reason="counts per table and pseudonymous customer ids"),
    TableEntry("access_log", "keep", customer=("customer_id",), retention_column="accessed_at",
               reason="who read whom: customer ids only, never raw identifiers; kept as the audit trail"),
    TableEntry("privacy_secrets", "keep", export=False, reason="the suppression salt"),
    TableEntry("model_exclusions", "keep", export=False,
               reason="which models must retrain without an erased person: receipt ids only"),
    # --- decisions (0008); children before their parent ---
    TableEntry("offers", "keep", export=False, reason="offer definitions"),
    TableEntry("offer_inventory", "keep", export=False, reason="stock counts"),
    TableEntry("decision_offers", "delete", parent=("decision_id", "decisions", "decision_id")),
    TableEntry("decision_outcomes", "delete", parent=("decision_id", "decisions", "decision_id")),
    TableEntry("decisions", "delete", customer=("customer_id",), identifiers=((None, "anonymous_id"),),
               retention_column="decided_at"),
    TableEntry("decision_models", "keep", export=False,
               reason="trained propensity models; retrained without erased people (model_exclusions)"),
    # --- incremental identity (0009) ---
    TableEntry("identity_standardized", "delete", record=("source", "record_key")),
    TableEntry("identity_record_identifiers", "delete", record_refs=("rid",)),
    TableEntry("identity_watermarks", "keep", export=False, reason="watermarks"),
    # --- traits (0011, 0012) ---
    TableEntry("trait_definitions", "keep", export=False, reason="trait definitions"),
    TableEntry("trait_thresholds", "keep", export=False, reason="quantile thresholds, aggregates"),
    TableEntry("trait_models", "keep", export=False,
               reason="CLV and churn model parameters; retrained without erased people (model_exclusions)"),
    # --- ui (0013) ---
    TableEntry("ui_secrets", "keep", export=False, reason="session signing secret"),
    # --- pii at rest (0014) ---
    TableEntry("pii_key_checks", "keep", export=False, reason="check values of the encryption and hash keys"),
    # --- profile documents (0015): copies of profiles for the profile API; export reads the profile itself ---
    TableEntry("profile_documents", "delete", customer=("customer_id",), export=False),
    # --- store ---
    TableEntry("schema_migrations", "keep", export=False, reason="schema versions"),
)

_BY_NAME = {e.table: e for e in REGISTRY}

MODELS: dict[str, str] = {"identity": "identity_models", "decisions": "decision_models", "traits": "trait_models"}
"""model -> the table of its trained versions: after an erasure, every model with a trained version gets a
model_exclusions row (its next training runs without the person; erased rows are gone from its inputs)."""


def entry(table: str) -> TableEntry | None:
    return _BY_NAME.get(table)


def retention_tables() -> dict[str, str]:
    """table -> the timestamp column its retention period counts from."""
    return {e.table: e.retention_column for e in REGISTRY if e.retention_column}


def undeclared(table_names: list[str]) -> list[str]:
    """Tables of the store without a registry entry (temp and staging tables start with '_')."""
    return sorted(t for t in table_names if not t.startswith("_") and t not in _BY_NAME)


def lookup_indexes() -> list[tuple[str, str, tuple[str, ...]]]:
    """(index name, table, columns) that let erasure and export find a person without scanning a table:
    every column the registry finds people by (text searches excepted)."""
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for e in REGISTRY:
        columns: list[tuple[str, ...]] = [(c,) for c in e.customer] + [(c,) for c in e.record_refs]
        if e.record:
            columns.append(e.record)
        columns += [(v,) if t is None else (t, v) for t, v in e.identifiers]
        if e.parent:
            columns.append((e.parent[0],))
        for cols in columns:
            out.append((f"privacy_{e.table}_{'_'.join(cols)}"[:63], e.table, cols))
    return out
