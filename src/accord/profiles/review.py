"""The review queue: gray-zone pairs waiting for a human, what a reviewer sees, and their answer.

A pair waits while it has a ``review`` match edge and no decision in ``identity_constraints``
(any decision, even an old one: the latest is in force and the reviewer already gave it).
The CLI (``accord review``) and, later, the dashboard both walk the queue with these functions.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from accord.errors import AccordError
from accord.profiles._sql import split_rid
from accord.privacy.pii import reveal_for_display
from accord.profiles.decisions import record_decision
from accord.store.backend import Store

CHOICES = {"s": "same", "same": "same", "d": "different", "different": "different", "k": "skip", "skip": "skip"}
"""A reviewer's answer, by key or word."""

FIELDS = ("source", "name", "emails", "phones", "address", "date_of_birth", "company")
"""The rows of the side-by-side view, in order."""


@dataclass
class ReviewPair:
    record_a: str
    record_b: str
    probability: float | None
    match_weight: float | None
    rule_or_model: str
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_PENDING = """
    SELECT e.record_a, e.record_b, MAX(e.probability) AS probability, MAX(e.match_weight) AS match_weight,
           MIN(e.rule_or_model) AS rule_or_model, MIN(e.reason) AS reason
    FROM match_edges e
    WHERE e.status = 'review'
      AND NOT EXISTS (SELECT 1 FROM identity_constraints c
                      WHERE c.record_a = e.record_a AND c.record_b = e.record_b)
    GROUP BY e.record_a, e.record_b"""


def pending_pairs(store: Store, limit: int | None = None) -> list[ReviewPair]:
    """Review pairs with no human decision yet, strongest first (probability, then match weight)."""
    sql = (f"SELECT * FROM ({_PENDING}) p ORDER BY probability DESC NULLS LAST, match_weight DESC NULLS LAST, "
           "record_a, record_b")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [ReviewPair(a, b, _num(p), _num(w), rm, reason) for a, b, p, w, rm, reason in store.fetchall(sql)]


def count_pending(store: Store) -> int:
    return int(store.scalar(f"SELECT COUNT(*) FROM ({_PENDING}) p"))


def record_fields(store: Store, record: str) -> dict[str, str] | None:
    """A current record's canonical fields as the reviewer reads them (None if it is not current)."""
    source, key = split_rid(record)
    row = store.fetchone(
        "SELECT given_name, family_name, full_name, CAST(emails AS TEXT), CAST(phones AS TEXT), street, city, "
        "region, postcode, country, date_of_birth, company FROM source_records "
        "WHERE source = ? AND record_key = ? AND deleted_at IS NULL", (source, key))
    if row is None:
        return None
    # privacy.encryption: fields stored as tokens are shown decrypted (masking is the caller's, per role)
    given, family, full, emails, phones, street, city, region, postcode, country, dob, company = (
        v if i in (3, 4) else reveal_for_display(v) for i, v in enumerate(row))
    return {
        "source": source,
        "name": _join(" ", given, family) or (full or ""),
        "emails": ", ".join(reveal_for_display(e) for e in _json_list(emails)),
        "phones": ", ".join(reveal_for_display(p) for p in _json_list(phones)),
        "address": _join(", ", street, city, _join(" ", region, postcode), country),
        "date_of_birth": dob or "",
        "company": company or "",
    }


def pair_view(store: Store, cfg: Any, record_a: str, record_b: str, *,
              explained: dict[str, Any] | AccordError | None = None) -> dict[str, Any]:
    """Both records side by side with the model's evidence.

    ``fields``: one row per field, ``{"field", "a", "b", "same"}``. ``evidence``: each comparison's
    level and log2 weight (prior first) from the latest model, or empty with ``note`` saying why
    (no trained model, a record no longer current). ``probability`` and ``match_weight`` come from
    the model when it can explain the pair, else from the stored review edge. ``explained``: the
    pair's explanation (or its error) when the caller explained many pairs at once."""
    from accord.identity.stage import explain

    records = {r: record_fields(store, r) for r in (record_a, record_b)}
    fields = []
    for name in FIELDS:
        a = (records[record_a] or {}).get(name, "")
        b = (records[record_b] or {}).get(name, "")
        fields.append({"field": name, "a": a, "b": b, "same": bool(a) and a.casefold() == b.casefold()})
    edge = store.fetchone("SELECT MAX(probability), MAX(match_weight) FROM match_edges "
                          "WHERE record_a = ? AND record_b = ?", tuple(sorted((record_a, record_b))))
    view: dict[str, Any] = {
        "record_a": record_a, "record_b": record_b, "fields": fields,
        "probability": _num(edge[0]) if edge else None, "match_weight": _num(edge[1]) if edge else None,
        "model_version": None, "evidence": [], "note": None,
    }
    missing = [r for r, f in records.items() if f is None]
    if missing:
        view["note"] = f"{', '.join(missing)} no longer current; no model evidence"
        return view
    if store.scalar("SELECT COUNT(*) FROM identity_models") == 0:
        view["note"] = "no trained model; run 'accord run' (or resolve) for per-field evidence"
        return view
    try:
        if isinstance(explained, AccordError):
            raise explained
        if explained is None:
            explained = explain(store, cfg, record_a, record_b)
    except AccordError as exc:
        view["note"] = f"no model evidence: {exc}"
        return view
    view.update(probability=explained["match_probability"], match_weight=explained["match_weight"],
                model_version=explained["model_version"],
                evidence=[{"comparison": c["comparison"], "label": c["label"], "match_weight": c["match_weight"]}
                          for c in explained["contributions"]])
    return view


def apply_review_decision(store: Store, record_a: str, record_b: str, choice: str, reviewer: str,
                          reason: str | None = None) -> str | None:
    """Record a reviewer's answer: same (``s``) -> must_link, different (``d``) -> cannot_link,
    skip (``k``) -> nothing. Returns the constraint kind written, None when skipped."""
    decision = CHOICES.get(choice.strip().lower())
    if decision is None:
        raise AccordError(f"review: unknown choice {choice!r}; use same (s), different (d) or skip (k)")
    same = {"same": True, "different": False, "skip": None}[decision]
    return record_decision(store, record_a, record_b, same, reviewer, reason)


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _join(sep: str, *parts: Any) -> str:
    return sep.join(str(p).strip() for p in parts if p is not None and str(p).strip())


def _json_list(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return [text]
    return [str(v) for v in value if v not in (None, "")] if isinstance(value, list) else [str(value)]
