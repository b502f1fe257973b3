"""Real-time identity stitching: identify, alias and group name a customer at once.

* **identify** — the message's identifiers (userId, anonymousId, traits.email, traits.phone; see
  ``rules.py``) are looked up in ``customer_identifiers``. The highest-priority identifier that names
  exactly one customer decides; an identifier naming more customers than
  ``identity.shared_identifier_limit`` (a shop's phone) decides nothing. The message's other
  identifiers are indexed for that customer, unless another customer already holds them (two
  customers that identity keeps apart are not merged by one message) or the customer already holds
  ``max_per_customer`` values of that type. When nothing names anyone, the model resolves the
  identify as a record of source ``api`` (``model.py``); failing that, a message with a person
  identifier (userId, email or phone) creates a new customer, audited.
* **alias** — ``previousId`` (an earlier userId or anonymousId) and ``userId`` are the same person:
  when they name two customers, they merge (the oldest id survives, the other redirects to it,
  audited, and a must-link decision between their records keeps batch resolution in agreement);
  otherwise the id not yet known joins the customer of the other, or both start a new customer.
* **group** — the person's customer joins the account ``groupId`` (``accounts.py``).

Each message is stitched in order, in the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accord.events import customers as cx
from accord.events.accounts import join_account
from accord.events.model import ModelMatch, identify_record, person_fields
from accord.events.rules import PERSON_TYPES, Identifier, StitchRules
from accord.privacy.pii import env_codec, has_tokens_in, reveal_tree, standard_form

log = logging.getLogger("accord.events")


@dataclass(frozen=True)
class Signal:
    """An identify, alias or group message as ``identity_signals`` holds it."""

    event_id: str
    type: str
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    group_id: str | None = None
    traits: dict[str, Any] | None = None


@dataclass
class Stitched:
    """What stitching did with one message.

    outcome: ``matched`` (an existing customer), ``created`` (a new customer), ``model`` (the model
    placed it), ``merged`` (alias joined two customers), ``anonymous`` (only an anonymous id: nobody
    to stitch), ``conflict`` is added to ``notes`` when an identifier stayed with another customer."""

    event_id: str
    type: str
    customer_id: str | None
    outcome: str
    notes: list[str] = field(default_factory=list)
    merged_ids: list[str] = field(default_factory=list)


def stitch_signals(store: Any, rules: StitchRules, signals: list[Signal], at: datetime,
                   model: ModelMatch | None = None) -> list[Stitched]:
    """Stitch each message in order; the caller owns the transaction."""
    out = []
    for signal in signals:
        if signal.type == "identify":
            out.append(_identify(store, rules, signal, at, model))
        elif signal.type == "alias":
            out.append(_alias(store, rules, signal, at))
        elif signal.type == "group":
            out.append(_group(store, rules, signal, at))
    return out


def _evidence(signal: Signal, identifiers: list[Identifier], rule: str) -> list[dict[str, Any]]:
    return [{"rule": rule, "message_id": signal.event_id, "type": signal.type,
             "identifiers": [i.ref for i in identifiers]}]


def _decide(rules: StitchRules, known: dict[Identifier, list[str]]) -> tuple[Identifier, str] | None:
    """The highest-priority identifier naming exactly one customer, and that customer."""
    for ident in sorted(known, key=lambda i: (i.priority, i.id_type)):
        owners = known[ident]
        if len(owners) > rules.shared_identifier_limit:
            continue  # shared by too many people to say who this is
        if len(owners) == 1:
            return ident, owners[0]
    return None


def _by_device(store: Any, rules: StitchRules, signal: Signal,
               known: dict[Identifier, list[str]]) -> tuple[Identifier, str] | None:
    """The customer of the anonymous id, when nothing else the message carries names anyone — unless the
    message has a userId and that customer already has another one (two people sharing a browser)."""
    decided = _decide(rules, {i: c for i, c in known.items() if i.id_type == "anonymous_id"})
    if decided is not None and signal.user_id is not None \
            and cx.identifier_counts(store, decided[1]).get("user_id", 0) > 0:
        return None
    return decided


def _attach_rest(store: Any, rules: StitchRules, customer_id: str, identifiers: list[Identifier],
                 known: dict[Identifier, list[str]], at: datetime, result: Stitched, *,
                 new_customer: bool = False) -> None:
    """Index the message's identifiers for ``customer_id`` where the rules allow (``new_customer``:
    created by this message, so it holds no identifiers yet)."""
    counts: dict[str, int] | None = {} if new_customer else None
    to_attach = []
    for ident in identifiers:
        owners = known.get(ident, [])
        if customer_id in owners:
            to_attach.append(ident)  # refreshes last_seen
            continue
        if owners and ident.id_type != "anonymous_id":
            # Held by another customer: this message alone does not merge two people.
            result.notes.append(f"{ident.ref} stays with {', '.join(owners)}")
            continue
        limit = rules.limit(ident.id_type)
        if limit is not None:
            if counts is None:
                counts = cx.identifier_counts(store, customer_id)
            if counts.get(ident.id_type, 0) >= limit:
                result.notes.append(f"{ident.ref} not added: {customer_id} already has {limit} {ident.id_type} values")
                continue
            counts[ident.id_type] = counts.get(ident.id_type, 0) + 1
        to_attach.append(ident)
    cx.attach(store, customer_id, to_attach, at, new_customer=new_customer)


def _plain_traits(traits: dict[str, Any] | None, rules: StitchRules
                  ) -> tuple[dict[str, Any] | None, Callable[[list[Identifier]], list[Identifier]] | None]:
    """The traits as sent, and how to key their identifiers: traits collected with ``privacy.encryption``
    hold tokens, which are read with the environment's keys; their emails and phones are then looked up
    and indexed by keyed hash only, as the identifier index holds encrypted values."""
    if not traits or not has_tokens_in(traits):
        return traits, None
    codec = env_codec()

    def blinded(identifiers: list[Identifier]) -> list[Identifier]:
        out = []
        for ident in identifiers:
            if ident.id_type in ("email", "phone"):
                blind = codec.blind(ident.id_type, standard_form(ident.id_type, ident.value, rules.default_region))
                ident = Identifier(ident.id_type, blind, (blind,), ident.priority)
            out.append(ident)
        return out

    return reveal_tree(codec, traits), blinded


def _identify(store: Any, rules: StitchRules, signal: Signal, at: datetime, model: ModelMatch | None) -> Stitched:
    traits, keyed = _plain_traits(signal.traits, rules)
    identifiers = rules.identifiers(signal.user_id, signal.anonymous_id, traits)
    if keyed is not None:
        identifiers = keyed(identifiers)
    known = cx.customers_of(store, identifiers)
    decided = _decide(rules, {i: c for i, c in known.items() if i.id_type != "anonymous_id"})
    if decided is None and not any(known[i] for i in identifiers if i.id_type != "anonymous_id"):
        decided = _by_device(store, rules, signal, known)
    if decided is not None:
        ident, customer_id = decided
        result = Stitched(signal.event_id, "identify", customer_id, "matched", [f"by {ident.ref}"])
        _attach_rest(store, rules, customer_id, identifiers, known, at, result)
        return result
    persons = [i for i in identifiers if i.id_type in PERSON_TYPES and not known.get(i)]
    if not persons:
        return Stitched(signal.event_id, "identify", None, "anonymous",
                        ["no userId, email or phone: nobody to stitch"])
    if model is not None:
        key = signal.user_id or f"anonymous:{signal.anonymous_id}"
        record = identify_record(key, traits or {}, signal.user_id)  # stored encrypted (resolve_records)
        if person_fields(record):
            placed = model(store, record)
            if placed is not None:
                result = Stitched(signal.event_id, "identify", placed.customer_id, "model", [f"record api:{key}"])
                _attach_rest(store, rules, placed.customer_id, identifiers, known, at, result,
                             new_customer=placed.created)
                return result
    customer_id = cx.new_customer(store, at, f"new person from identify {signal.event_id}: "
                                             f"{', '.join(i.ref for i in persons)} named nobody",
                                  _evidence(signal, identifiers, "realtime:new_identity"))
    result = Stitched(signal.event_id, "identify", customer_id, "created")
    _attach_rest(store, rules, customer_id, identifiers, known, at, result, new_customer=True)
    return result


def _alias(store: Any, rules: StitchRules, signal: Signal, at: datetime) -> Stitched:
    user_id, previous = signal.user_id, signal.previous_id
    if user_id is None or previous is None or not rules.usable(user_id) or not rules.usable(previous):
        return Stitched(signal.event_id, "alias", None, "anonymous", ["alias needs a usable userId and previousId"])
    current = Identifier("user_id", user_id, (user_id,), rules.priority("user_id"))
    prev_user = Identifier("user_id", previous, (previous,), rules.priority("user_id"))
    prev_anon = Identifier("anonymous_id", previous, (previous,), rules.priority("anonymous_id"))
    known = cx.customers_of(store, [current, prev_user, prev_anon])
    mine = known[current][0] if known[current] else None
    prev_owners = known[prev_user] or known[prev_anon]
    theirs = prev_owners[0] if prev_owners else None
    # previousId keeps its kind when known; an unknown one is taken as an anonymous id (Segment's usual case).
    prev_ident = prev_user if known[prev_user] else prev_anon
    if mine and theirs and mine != theirs:
        evidence = _evidence(signal, [current, prev_ident], "realtime:alias")
        reason = f"alias {signal.event_id}: previousId {previous!r} ({theirs}) and userId {user_id!r} ({mine}) " \
                 f"are one person; {cx.oldest((mine, theirs))} is the oldest id"
        _must_link(store, mine, theirs, reason)
        survivor = cx.merge(store, mine, theirs, at, reason, evidence)
        retired = theirs if survivor == mine else mine
        return Stitched(signal.event_id, "alias", survivor, "merged", merged_ids=[retired])
    customer_id = mine or theirs
    if customer_id is not None:
        result = Stitched(signal.event_id, "alias", customer_id, "matched")
        idents = [current, prev_ident]
        _attach_rest(store, rules, customer_id, idents, {i: known[i] for i in idents}, at, result)
        return result
    customer_id = cx.new_customer(store, at, f"new person from alias {signal.event_id}: userId {user_id!r} "
                                             f"and previousId {previous!r} named nobody",
                                  _evidence(signal, [current, prev_anon], "realtime:new_identity"))
    cx.attach(store, customer_id, [current, prev_anon], at)
    return Stitched(signal.event_id, "alias", customer_id, "created")


def _must_link(store: Any, a: str, b: str, reason: str) -> None:
    """When both customers have source records, a must-link decision keeps batch resolution from splitting them."""
    from accord.profiles.decisions import record_decision

    ra, rb = cx.records_of(store, a), cx.records_of(store, b)
    if ra and rb:
        record_decision(store, ra[0], rb[0], True, cx.ACTOR, reason)


def _group(store: Any, rules: StitchRules, signal: Signal, at: datetime) -> Stitched:
    identifiers = rules.identifiers(signal.user_id, signal.anonymous_id, None)
    known = cx.customers_of(store, identifiers)
    decided = _decide(rules, known)
    customer_id = decided[1] if decided else None
    outcome = "matched"
    if customer_id is None and signal.user_id is not None and any(i.id_type == "user_id" for i in identifiers):
        customer_id = cx.new_customer(store, at, f"new person from group {signal.event_id}: userId "
                                                 f"{signal.user_id!r} named nobody",
                                      _evidence(signal, identifiers, "realtime:new_identity"))
        outcome = "created"
    result = Stitched(signal.event_id, "group", customer_id, outcome if customer_id else "anonymous")
    if customer_id is not None:
        _attach_rest(store, rules, customer_id, identifiers, known, at, result)
    assert signal.group_id is not None
    join_account(store, signal.group_id, customer_id, signal.traits or {}, at)
    return result
