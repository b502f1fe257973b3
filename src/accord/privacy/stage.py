"""The privacy stage of ``accord run``: consent from the source records, retention, and which models erased
people's data has been retrained out of."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accord.privacy import suppression
from accord.privacy.consent import ConsentReport, refresh_consent
from accord.privacy.registry import MODELS, lookup_indexes
from accord.privacy.retention import RetentionReport, enforce_retention
from accord.privacy.settings import privacy_settings
from accord.store.backend import Store


@dataclass
class PrivacyReport:
    consent: ConsentReport
    retention: RetentionReport
    awaiting_retraining: dict[str, int] = field(default_factory=dict)
    """Model kind -> erasure requests its stored model was trained before (its next training runs without
    the erased people)."""

    def as_dict(self) -> dict[str, Any]:
        return {"consent": self.consent.as_dict(), "retention": self.retention.as_dict(),
                "awaiting_retraining": self.awaiting_retraining}


def settle_model_exclusions(store: Store) -> dict[str, int]:
    """Erasure records a ``model_exclusions`` row for each kind of model trained on data that may include the
    person; once a model of that kind is trained after the request (its inputs no longer hold them), the row
    gets that training's time in ``retrained_at``. Returns the requests still waiting, per model kind."""
    present = set(store.table_names())
    if "model_exclusions" not in present:
        return {}
    for model, table in MODELS.items():
        if table not in present:
            continue
        newer = f"FROM {table} m WHERE m.trained_at > model_exclusions.requested_at"
        store.execute(f"UPDATE model_exclusions SET retrained_at = (SELECT MIN(m.trained_at) {newer}) "
                      f"WHERE model = ? AND retrained_at IS NULL AND EXISTS (SELECT 1 {newer})", (model,))
    return {m: int(n) for m, n in store.fetchall(
        "SELECT model, COUNT(*) FROM model_exclusions WHERE retrained_at IS NULL GROUP BY model ORDER BY model")}


def ensure_lookup_indexes(store: Store) -> int:
    """PostgreSQL: an index on every column erasure finds people by, so erasing one person reads a few index
    pages instead of scanning million-row tables; return how many were created. DuckDB needs none (zone maps
    prune its scans, and an ART index would slow every bulk write), and migrations cannot say
    "PostgreSQL only", so the stage creates them."""
    if store.dialect != "postgresql":
        return 0
    present = set(store.table_names())
    existing = {r[0] for r in store.fetchall("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
    created = 0
    for name, table, columns in lookup_indexes():
        if table in present and name not in existing:
            store.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)})")
            existing.add(name)
            created += 1
    return created


def run_privacy(store: Store, cfg: Any, run_id: str | None = None) -> PrivacyReport:
    """Current consent per customer and purpose from the records just resolved; rows past retention deleted.
    The suppression salt is made here once (when not in the environment), so no erasure waits for it."""
    ensure_lookup_indexes(store)
    suppression.salt(store, env_var=privacy_settings(getattr(cfg, "privacy", None)).suppression_salt_env)
    consent = refresh_consent(store, cfg)
    retention = enforce_retention(store, privacy_settings(getattr(cfg, "privacy", None)))
    return PrivacyReport(consent, retention, settle_model_exclusions(store))
