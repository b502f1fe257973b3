"""The review queue in the dashboard: the next pair, both records side by side, the model's evidence as a
match-weight waterfall, the reviewer's answer, and the audit trail that records it."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from accord.config import ProjectConfig
from accord.errors import AccordError
from accord.identity.model import EXPLAIN_CHUNK
from accord.identity.stage import explain_many
from accord.profiles.review import FIELDS, ReviewPair, apply_review_decision, count_pending, pair_view, pending_pairs
from accord.profiles.review import record_fields
from accord.store import Store
from accord.ui.masking import Masker

AUDIT_PAGE = 50


def next_pair(store: Store, skipped: set[tuple[str, str]]) -> ReviewPair | None:
    """The strongest pending pair the reviewer has not skipped in this sitting."""
    for pair in pending_pairs(store, len(skipped) + 1):
        if (pair.record_a, pair.record_b) not in skipped:
            return pair
    return None


def side_by_side(store: Store, record_a: str, record_b: str, masker: Masker | None) -> list[dict[str, Any]]:
    """One row per field: both values (masked when a ``masker`` is given) and whether they agree."""
    a_fields = record_fields(store, record_a) or {}
    b_fields = record_fields(store, record_b) or {}
    rows = []
    for name in FIELDS:
        a, b = a_fields.get(name, ""), b_fields.get(name, "")
        rows.append({"field": name, "a": masker.field(name, a) if masker else a,
                     "b": masker.field(name, b) if masker else b, "same": bool(a) and a.casefold() == b.casefold()})
    return rows


def evidence(store: Store, cfg: ProjectConfig, record_a: str, record_b: str, *,
             explained: dict[str, Any] | AccordError | None = None) -> dict[str, Any]:
    """The model's per-comparison match weights and their running total, ready for a waterfall chart.

    ``explained``: the pair's explanation when the caller had the model explain many pairs at once."""
    view = pair_view(store, cfg, record_a, record_b, explained=explained)
    steps, total = [], 0.0
    for item in view["evidence"]:
        start, total = total, total + float(item["match_weight"])
        steps.append({**item, "start": round(start, 4), "end": round(total, 4)})
    return {"probability": view["probability"], "match_weight": view["match_weight"],
            "model_version": view["model_version"], "note": view["note"], "steps": steps,
            "chart": {"labels": [s["comparison"] for s in steps] + ["total"],
                      "bars": [[s["start"], s["end"]] for s in steps] + [[0, round(total, 4)]],
                      "weights": [round(float(s["match_weight"]), 3) for s in steps] + [round(total, 3)]}}


Pair = tuple[str, str]


class EvidenceCache:
    """Evidence per pair, kept while the model and both records stay as they were.

    Setting up the model to explain costs about half a second, explaining a few dozen pairs with it
    hardly more; so a miss explains the asked pair together with the next pending ones, and
    ``prefetch`` (run in the background when the dashboard starts serving and after each review
    decision) explains the front of the queue before a reviewer opens it."""

    def __init__(self, size: int = 512, batch: int = EXPLAIN_CHUNK):
        self._size = size
        self._batch = batch
        self._items: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._filling = threading.Lock()  # one batch explained at a time

    def get(self, store: Store, cfg: ProjectConfig, record_a: str, record_b: str) -> dict[str, Any]:
        pair = (record_a, record_b)
        key = self._keys(store, [pair])[pair]
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        with self._filling:  # a prefetch under way may be explaining this very pair: wait for it
            with self._lock:
                if key in self._items:
                    return self._items[key]
            upcoming = {p: k for p, k in self._upcoming(store).items() if p != pair}
            batch = dict(list({pair: key, **upcoming}.items())[: self._batch])
            return self._fill(store, cfg, batch)[pair]

    def prefetch(self, store: Store, cfg: ProjectConfig, skipped: set[Pair] | None = None) -> int:
        """Explain the pending pairs at the front of the queue that are not cached; how many were."""
        with self._filling:
            return len(self._fill(store, cfg, self._upcoming(store, skipped or set())))

    def _upcoming(self, store: Store, skipped: set[Pair] | None = None) -> dict[Pair, tuple[Any, ...]]:
        """The front of the queue (past ``skipped``) that is not cached, each pair with its cache key."""
        pairs = [(p.record_a, p.record_b) for p in pending_pairs(store, self._batch + len(skipped or ()))]
        pairs = [p for p in pairs if p not in (skipped or set())][: self._batch]
        keys = self._keys(store, pairs)
        with self._lock:
            return {p: keys[p] for p in pairs if keys[p] not in self._items}

    def _fill(self, store: Store, cfg: ProjectConfig, keys: dict[Pair, tuple[Any, ...]]
              ) -> dict[Pair, dict[str, Any]]:
        """Explain ``keys``' pairs with one model set-up and cache each under its key."""
        if not keys:
            return {}
        pairs = list(keys)
        explained: dict[Pair, dict[str, Any] | AccordError] = {}
        if store.scalar("SELECT COUNT(*) FROM identity_models"):
            try:
                explained = explain_many(store, cfg, pairs)
            except AccordError as exc:
                explained = {p: exc for p in pairs}
        found = {p: evidence(store, cfg, *p, explained=explained.get(p)) for p in pairs}
        with self._lock:
            for p, ev in found.items():
                self._items[keys[p]] = ev
                self._items.move_to_end(keys[p])
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return found

    @staticmethod
    def _keys(store: Store, pairs: list[Pair]) -> dict[Pair, tuple[Any, ...]]:
        """Each pair with the model version and both records' row hashes: a change to any makes a new key."""
        if not pairs:
            return {}
        version = store.scalar("SELECT MAX(version) FROM identity_models")
        rids = sorted({r for p in pairs for r in p})
        hashes = dict(store.fetchall(
            "SELECT source || ':' || record_key, row_hash FROM source_records WHERE deleted_at IS NULL "
            f"AND source || ':' || record_key IN ({', '.join('?' * len(rids))})", tuple(rids)))
        return {p: (p[0], p[1], version, hashes.get(p[0]), hashes.get(p[1])) for p in pairs}


def decide(store: Store, record_a: str, record_b: str, choice: str, reviewer: str) -> str | None:
    """Record the reviewer's answer (same / different / skip); the constraint kind written, None for skip."""
    return apply_review_decision(store, record_a, record_b, choice, reviewer, reason="reviewed in the dashboard")


def backlog(store: Store) -> int:
    return count_pending(store)


def recent_audit(store: Store, masker: Masker | None, kind: str | None = None, actor: str | None = None,
                 limit: int = AUDIT_PAGE) -> list[dict[str, Any]]:
    """The newest identity audit events, optionally of one kind or one actor."""
    where, params = [], []
    if kind:
        where.append("kind = ?")
        params.append(kind)
    if actor:
        where.append("actor = ?")
        params.append(actor)
    sql = ("SELECT event_id, occurred_at, actor, kind, customer_id, other_customer_id, CAST(records AS TEXT), reason "
           "FROM identity_audit" + (f" WHERE {' AND '.join(where)}" if where else "") +
           f" ORDER BY event_id DESC LIMIT {int(limit)}")
    out = []
    for event_id, at, who, k, c, other, records, reason in store.fetchall(sql, params):
        out.append({"event_id": int(event_id), "occurred_at": at, "actor": who, "kind": k, "customer_id": c,
                    "other_customer_id": other, "records": json.loads(records) if records else [],
                    "reason": masker.text(reason or "") if masker else (reason or "")})
    return out
