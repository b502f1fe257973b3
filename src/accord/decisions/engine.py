"""Deciding: guardrails first, then the policy ranks what is left, then the decision is logged.

``DecisionEngine`` keeps what changes slowly (offers with their compiled eligibility, the active
model, Thompson posteriors) in memory as one ``Catalog`` and re-reads it every ``refresh_seconds``;
what must be exact per request (the customer's consent and traits, stock, purchases, the offers
already given) is read from the store each time, in one query (``facts.request_facts``).

Decisions for the same unit (customer or anonymous visitor) are made one at a time: the offers
given by decisions still waiting for the log writer are taken before the store is read and added
to what the store answers (by decision id, so a decision written in between counts once), and the
new decision joins them before the next one for that unit starts. So frequency caps hold however
many threads decide at once in this process.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from accord.clock import utcnow
from accord.decisions import facts
from accord.decisions.assignment import assign, running_experiment
from accord.decisions.bandits import BetaPosteriors, context_key, epsilon_greedy, load_posteriors, thompson
from accord.decisions.eligibility import context_from, describe, load_context, passes, reads_only_traits_and_consent
from accord.decisions.log import Decision, DecisionLog, RankedOffer, new_decision_id
from accord.decisions.model import PropensityModel, active_model_version, load_active_model
from accord.decisions.offers import Offer, load_offers
from accord.decisions.settings import DecisionsSettings, FrequencyCap, PolicyName
from accord.errors import AccordError
from accord.store import Store

BLOCKING_CONSENT = ("denied", "withdrawn")


class UnknownCustomer(AccordError):
    """A request names a customer id that was never given."""

    @classmethod
    def of(cls, customer_id: str | None) -> UnknownCustomer:
        return cls(f"no customer {customer_id!r}; customer ids look like cus_00000042")


@dataclass
class DecideRequest:
    customer_id: str | None = None
    anonymous_id: str | None = None
    channel: str | None = None
    placement: str | None = None
    device: str | None = None
    limit: int | None = None
    check_customer: bool = False
    """``customer_id`` is what a client sent: follow its redirect if it was merged, and refuse an id
    that was never given (UnknownCustomer). Read in the same query as everything else."""

    @property
    def unit(self) -> str:
        if self.customer_id:
            return self.customer_id
        if self.anonymous_id:
            return f"anonymous_id:{self.anonymous_id}"
        raise ValueError("a decision needs a customer_id or an anonymous_id")

    @property
    def context(self) -> dict[str, str | None]:
        return {"channel": self.channel, "placement": self.placement, "device": self.device}


@dataclass(frozen=True)
class PreparedOffer:
    """An offer with what its explanation says that does not depend on the request, and what its
    guardrails check at hand (the guardrails run for every offer of every request)."""

    offer: Offer
    validity: str | None
    eligibility: str | None
    consent: tuple[str, ...]
    cap: FrequencyCap
    cap_window: timedelta

    @classmethod
    def of(cls, o: Offer, default_cap: FrequencyCap) -> PreparedOffer:
        spec = o.spec
        cap = spec.frequency_cap or default_cap
        return cls(o, f"valid {spec.valid_from or '…'} to {spec.valid_to or '…'}"
                   if spec.valid_from or spec.valid_to else None,
                   f"eligibility: {describe(o.condition)}" if o.condition is not None else None,
                   tuple(f"consent {p} granted" for p in spec.requires_consent), cap, timedelta(days=cap.days))

    @property
    def checks(self) -> tuple[Any, ...]:
        """(id, valid_from, valid_to, channels, placements, purposes, condition, its text, item, product,
        cap max)."""
        spec = self.offer.spec
        return (spec.id, spec.valid_from, spec.valid_to, frozenset(spec.channels) if spec.channels else None,
                frozenset(spec.placements) if spec.placements else None, tuple(spec.requires_consent),
                self.offer.condition, spec.eligibility, spec.inventory, spec.product_id, self.cap.max)


@dataclass(frozen=True)
class _Scoring:
    """Per offer of a catalog (same order), what scoring by its model reads: worked out when the catalog
    is read rather than for each of some fifty candidates of every request."""

    codes: np.ndarray
    """The model's code for the offer id (NaN: an offer it never saw)."""
    warm: tuple[bool, ...]
    """Whether the model saw at least ``model.min_offer_examples`` examples of the offer."""
    id_rank: np.ndarray
    """The offer's place among the catalog's offers ordered by id (ties between scores go by id)."""
    margins: np.ndarray

    @classmethod
    def of(cls, offers: tuple[PreparedOffer, ...], model: PropensityModel, min_examples: int) -> _Scoring:
        ids = [p.offer.spec.id for p in offers]
        codes = model.offer_codes(ids)
        warm = tuple(model.offer_examples.get(i, 0) >= min_examples for i in ids)
        rank = np.empty(len(ids), dtype=np.int64)
        rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
        return cls(codes, warm, rank, np.array([p.offer.spec.margin for p in offers], dtype=float))


@dataclass(frozen=True)
class Catalog:
    """What changes slowly, read together and swapped in at once."""

    offers: tuple[PreparedOffer, ...] = ()
    checks: tuple[tuple[Any, ...], ...] = ()
    """``PreparedOffer.checks`` of each offer, in the same order."""
    conditions: tuple[Any, ...] = ()
    full_profile: bool = False
    items: tuple[str, ...] = ()
    any_product: bool = False
    longest_cap: float = 7.0
    model: PropensityModel | None = None
    scoring: _Scoring | None = None
    """What the model scores each offer with (None without a model)."""
    posteriors: BetaPosteriors = field(default_factory=lambda: BetaPosteriors(1.0, 1.0))
    loaded_at: datetime | None = None
    generation: int = 0
    """``DecisionEngine.invalidate`` calls made before this catalog was read: a catalog read before an
    offer changed is stale however recently it was read."""


class _Candidate:
    """An offer that passed every guardrail, with what its explanation needs: the rules' texts are
    built only for the offers an answer returns (a few of some fifty candidates)."""

    __slots__ = ("index", "prepared", "offer", "id", "given", "stock", "bought_days", "channel", "placement")

    def __init__(self, index: int, prepared: PreparedOffer, given: int, stock: int | None, bought_days: int | None,
                 channel: str | None, placement: str | None):
        self.index = index
        """The offer's place in ``Catalog.offers``."""
        self.prepared = prepared
        self.offer = prepared.offer
        self.id = prepared.offer.spec.id
        self.given = given
        self.stock = stock
        self.bought_days = bought_days
        self.channel = channel
        self.placement = placement

    @property
    def rules(self) -> list[str]:
        """The guardrails this offer passed, in words."""
        p, spec = self.prepared, self.offer.spec
        rules = [p.validity] if p.validity else []
        if spec.channels:
            rules.append(f"channel {self.channel}")
        if spec.placements:
            rules.append(f"placement {self.placement}")
        rules += p.consent
        if p.eligibility:
            rules.append(p.eligibility)
        if self.stock is not None:
            rules.append(f"in stock: {self.stock} of {spec.inventory}")
        if self.bought_days is not None:
            rules.append(f"not bought in the last {self.bought_days} days")
        rules.append(f"frequency {self.given} of {p.cap.max} in {p.cap.days:g} days")
        return rules


class _UnitLocks:
    """One lock per stripe of units: decisions for the same unit never run at once."""

    def __init__(self, stripes: int = 256):
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, unit: str) -> Iterator[None]:
        with self._locks[zlib.crc32(unit.encode()) % len(self._locks)]:
            yield


class DecisionEngine:
    """Decides for requests on any number of threads (the API decides on its reader threads)."""

    def __init__(self, settings: DecisionsSettings, *, seed: int | None = None,
                 clock: Callable[[], datetime] = utcnow, refresh_seconds: float | None = None):
        self.settings = settings
        self.clock = clock
        self.rng = np.random.default_rng(seed)
        self.log = DecisionLog()
        self.refresh_seconds = settings.exploration.refresh_seconds if refresh_seconds is None else refresh_seconds
        # Posteriors are read (an aggregate over every outcome) only when some group decides by Thompson sampling.
        self._uses_thompson = settings.policy == "thompson" or any(
            v.policy == "thompson" for e in settings.experiments for v in e.variants.values())
        ex = settings.exploration
        self.catalog = Catalog(posteriors=BetaPosteriors(ex.prior_alpha, ex.prior_beta),
                               longest_cap=settings.guardrails.frequency_cap.days)
        self._sensitive = {s.lower() for s in settings.guardrails.sensitive_attributes}
        self._wanted = set(settings.model.features)
        self._usable_traits: dict[str, bool] = {}
        """trait name -> whether it may be a model feature (never a sensitive one), as names are met."""
        self._refreshing = threading.Lock()
        self._generation = 0
        self._units = _UnitLocks()

    @property
    def offers(self) -> list[Offer]:
        return [p.offer for p in self.catalog.offers]

    @property
    def model(self) -> PropensityModel | None:
        return self.catalog.model

    @property
    def posteriors(self) -> BetaPosteriors:
        return self.catalog.posteriors

    # --- what changes slowly ------------------------------------------------------------------

    def refresh(self, store: Store, *, force: bool = False) -> Catalog:
        """The catalog, re-read when older than ``refresh_seconds`` (or ``force``)."""
        cat = self.catalog
        if not force and self._fresh(cat, self.refresh_seconds):
            return cat
        with self._refreshing:
            if not force and self._fresh(self.catalog, self.refresh_seconds):  # another thread refreshed meanwhile
                return self.catalog
            self.catalog = self._load(store, self.catalog)
            return self.catalog

    def refresh_ahead(self, store: Store) -> None:
        """Re-read the catalog once it is half as old as ``refresh_seconds``: called off the request path
        (the API's log writer thread, every tick), so that no decision waits for offers, the model and
        the posteriors to be read; ``refresh`` still re-reads a stale one should this not run."""
        if not self._fresh(self.catalog, self.refresh_seconds / 2):
            self.refresh(store, force=True)

    def _fresh(self, cat: Catalog, seconds: float) -> bool:
        return (cat.loaded_at is not None and cat.generation == self._generation
                and self.clock() - cat.loaded_at < timedelta(seconds=seconds))

    def _load(self, store: Store, before: Catalog) -> Catalog:
        generation = self._generation  # an offer changed after this point makes what is read here stale
        now = self.clock()
        g = self.settings.guardrails
        offers = load_offers(store, self.settings)
        prepared = tuple(PreparedOffer.of(o, g.frequency_cap) for o in offers)
        conditions = tuple(o.condition for o in offers if o.condition is not None)
        version = active_model_version(store)
        if version is None:
            model = None
        elif before.model is not None and before.model.version == version:
            model = before.model
        else:
            model = load_active_model(store)
        posteriors = before.posteriors
        if self._uses_thompson:
            ex = self.settings.exploration
            posteriors = load_posteriors(store, self.settings.model.label, ex.context, ex.prior_alpha,
                                         ex.prior_beta, now)
        scoring = _Scoring.of(prepared, model, self.settings.model.min_offer_examples) if model is not None else None
        return Catalog(prepared, tuple(p.checks for p in prepared), conditions,
                       not reads_only_traits_and_consent(conditions),
                       tuple(sorted({o.spec.inventory for o in offers if o.spec.inventory})),
                       any(o.spec.product_id for o in offers), max(p.cap.days for p in prepared) if prepared
                       else g.frequency_cap.days, model, scoring, posteriors, now, generation)

    def invalidate(self) -> None:
        """Re-read offers and models at the next decision (after an offer changed)."""
        self._generation += 1
        self.catalog = replace(self.catalog, loaded_at=None)

    # --- deciding -------------------------------------------------------------------------------

    def decide(self, store: Store, request: DecideRequest, *, write: bool = True) -> Decision:
        """Decide for ``request``; ``write=False`` leaves the decision in ``log.pending`` for a group commit."""
        cat = self.refresh(store)
        while True:
            with self._units.hold(request.unit):
                # Taken before the store is read: a decision written in between is in one or both.
                pending = self.log.pending_given(request.unit)
                now = self.clock()
                found, profile = self._read(store, cat, request, now)
                if request.check_customer and found.redirect is not None:
                    request = self._redirected(store, request)
                    continue  # read again for the id it was merged into (under that unit's lock)
                if request.check_customer and not found.exists:
                    raise UnknownCustomer.of(request.customer_id)
                decision = self._decide(cat, request, found, profile, {**found.given, **pending}, now)
                self.log.add(decision)
                break
        if write:
            self.log.flush(store)
        return decision

    @staticmethod
    def _redirected(store: Store, request: DecideRequest) -> DecideRequest:
        from accord.profiles.ids import resolve_customer_id

        try:
            current, _ = resolve_customer_id(store, request.customer_id or "")
        except AccordError:
            raise UnknownCustomer.of(request.customer_id) from None
        return replace(request, customer_id=current, check_customer=False)

    def _decide(self, cat: Catalog, request: DecideRequest, found: facts.RequestFacts, profile: Any,
                given: dict[str, tuple[list[str], datetime]], now: datetime) -> Decision:
        s = self.settings
        unit = request.unit
        context = request.context
        experiment = running_experiment(s.experiments, request.placement)
        variant = assign(experiment, unit) if experiment else None
        policy: PolicyName = s.policy
        if experiment and variant and variant != "holdout" and experiment.variants[variant].policy:
            policy = experiment.variants[variant].policy  # type: ignore[assignment]
        notes: list[str] = []
        consent = dict(profile.consent) if profile is not None else {}
        personalized = self._may_personalize(request, consent, notes)
        traits = self._features(profile) if personalized and profile is not None else {}
        decision = Decision(new_decision_id(), unit, request.customer_id, request.anonymous_id, context,
                            policy if personalized else "rules", None, experiment.name if experiment else None,
                            variant, personalized, {"traits": traits}, [], now, notes=notes)
        if variant == "holdout":
            decision.policy = "holdout"
            notes.append(f"experiment {experiment.name!r}: holdout group, no offers")  # type: ignore[union-attr]
            return decision
        candidates = self._guardrails(cat, request, consent, profile if personalized else None, found,
                                      [(o, t) for offers, t in given.values() for o in offers], now)
        decision.candidates = [c.id for c in candidates]
        limit = min(request.limit or s.max_offers, s.max_offers)
        decision.offers = self._rank(cat, decision, candidates, traits, context, limit)
        return decision

    def _may_personalize(self, request: DecideRequest, consent: dict[str, str], notes: list[str]) -> bool:
        g = self.settings.guardrails
        status = consent.get(g.consent_purpose)
        if status in BLOCKING_CONSENT:
            notes.append(f"consent {g.consent_purpose}: {status}; no profile data used")
            return False
        if g.consent_required and status != "granted":
            notes.append(f"consent {g.consent_purpose}: not granted (guardrails.consent_required); "
                         "no profile data used")
            return False
        return True

    def _features(self, profile: Any) -> dict[str, Any]:
        """The customer's numeric traits that may be model features (never a sensitive one)."""
        usable = self._usable_traits
        out: dict[str, Any] = {}
        for k, (num, _) in profile.traits.items():
            if num is None:
                continue
            ok = usable.get(k)
            if ok is None:
                ok = usable[k] = k.lower() not in self._sensitive and (not self._wanted or k in self._wanted)
            if ok:
                out[k] = float(num)
        return out

    def _read(self, store: Store, cat: Catalog, request: DecideRequest, now: datetime
              ) -> tuple[facts.RequestFacts, Any]:
        """Everything the request needs from the store: in one round trip when the offers' conditions read
        only traits and consent, else the segments' profile context and one more."""
        g = self.settings.guardrails
        customer_id = request.customer_id
        own_profile = customer_id is not None and not cat.full_profile
        found = facts.request_facts(store, facts.FactsQuery(
            request.unit, customer_id, request.check_customer, own_profile, cat.items,
            now - timedelta(days=cat.longest_cap),
            now - timedelta(days=g.already_bought_days) if g.already_bought_days and cat.any_product else None,
            g.purchase_event))
        if customer_id is None or (request.check_customer and (found.redirect is not None or not found.exists)):
            return found, None
        if own_profile:
            return found, context_from(customer_id, now, found.traits, found.consent)
        return found, load_context(store, customer_id, now, cat.conditions)

    def _guardrails(self, cat: Catalog, request: DecideRequest, consent: dict[str, str], profile: Any,
                    found: facts.RequestFacts, given: list[tuple[str, datetime]], now: datetime) -> list[_Candidate]:
        """The offers that pass every guardrail, each with the rules it passed. ``profile`` is None when
        no profile data may be used (an anonymous visitor, or no personalization consent)."""
        g = self.settings.guardrails
        bought: set[str] | None = None
        if request.customer_id and g.already_bought_days and cat.any_product:
            bought = facts.bought_products(found.purchases, g.product_property)
        counts: dict[str, list[datetime]] = {}
        for offer_id, at in given:
            counts.setdefault(offer_id, []).append(at)
        stock = found.stock
        channel, placement = request.channel, request.placement
        bought_days = g.already_bought_days if bought is not None else None
        verdicts: dict[str, bool] = {}  # offers often share a condition: evaluated once per request
        out: list[_Candidate] = []
        for i, (p, (offer_id, valid_from, valid_to, channels, placements, purposes, condition, text, item, product,
                cap_max)) in enumerate(zip(cat.offers, cat.checks)):
            if valid_from and now < valid_from or valid_to and now >= valid_to:
                continue
            if channels is not None and channel not in channels:
                continue
            if placements is not None and placement not in placements:
                continue
            if purposes and any(consent.get(c) != "granted" for c in purposes):
                continue
            if condition is not None:
                if profile is None:
                    continue
                ok = verdicts.get(text)
                if ok is None:
                    ok = verdicts[text] = passes(condition, profile)
                if not ok:
                    continue
            left = stock.get(item) if item is not None else None
            if left is not None and left <= 0:
                continue
            if bought is not None and product is not None and product in bought:
                continue
            times = counts.get(offer_id)
            n = 0
            if times:
                since = now - p.cap_window
                n = sum(1 for at in times if at >= since)
            if n >= cap_max:
                continue
            out.append(_Candidate(i, p, n, left, bought_days if product is not None else None, channel, placement))
        return out

    # --- ranking --------------------------------------------------------------------------------

    def _rules_order(self, candidates: list[_Candidate]) -> list[_Candidate]:
        return sorted(candidates, key=lambda c: (-c.offer.spec.priority, -c.offer.spec.margin, c.id))

    def _model_usable(self, cat: Catalog, candidates: list[_Candidate], notes: list[str]) -> bool:
        m = self.settings.model
        model = cat.model
        if model is None or cat.scoring is None:
            notes.append("model: cold (no model trained yet); ranked by rules")
            return False
        if model.auc is None or model.auc < m.min_auc:
            notes.append(f"model v{model.version}: unsure (validation AUC "
                         f"{'unknown' if model.auc is None else format(model.auc, '.3f')} below "
                         f"model.min_auc {m.min_auc}); ranked by rules")
            return False
        warm = cat.scoring.warm
        cold = [c.id for c in candidates if not warm[c.index]]
        if cold:
            notes.append(f"model v{model.version}: cold for {', '.join(cold[:5])}"
                         f"{' …' if len(cold) > 5 else ''} (fewer than {m.min_offer_examples} examples); "
                         "ranked by rules")
            return False
        return True

    def _rank(self, cat: Catalog, decision: Decision, candidates: list[_Candidate], traits: dict[str, Any],
              context: dict[str, str | None], limit: int) -> list[RankedOffer]:
        if not candidates:
            decision.notes.append("no offer passed the guardrails")
            return []
        policy = decision.policy
        model = cat.model
        ex = self.settings.exploration
        if policy == "thompson":
            key = context_key(context, ex.context)
            ids = [c.id for c in candidates]
            alpha, beta = cat.posteriors.parameters(ids, key)
            order, draws, props, explored = thompson(ids, alpha, beta, self.rng, limit, ex.simulations)
            by_id = {c.id: c for c in candidates}
            return [RankedOffer(o, round(d, 6), "thompson", p, e, self._explain(by_id[o], [], e),
                                by_id[o].offer.spec.content) for o, d, p, e in zip(order, draws, props, explored)]
        why: list[str] = []
        use_model = policy in ("model", "hybrid", "epsilon_greedy") and self._model_usable(cat, candidates, why)
        if policy == "model" and model is not None:
            use_model, why = True, []  # the model policy uses even an unsure model; only a missing one falls back
        decision.notes += why
        scored: list[tuple[_Candidate, float | None]]
        scoring = cat.scoring
        base = "rules"
        if use_model and model is not None and scoring is not None:
            base = "model"
            decision.model_version = model.version
            at = np.fromiter((c.index for c in candidates), dtype=np.int64, count=len(candidates))
            p = model.predict(model.rows_for(traits, context, scoring.codes[at]))
            if self.settings.model.objective == "margin":
                p = p * scoring.margins[at]
            listed = p.tolist()
            # Best score first, ties by offer id.
            scored = [(candidates[i], listed[i]) for i in np.lexsort((scoring.id_rank[at], -p)).tolist()]
        else:
            scored = [(c, float(c.offer.spec.priority)) for c in self._rules_order(candidates)]
        if policy == "epsilon_greedy":
            order_ids, props, explored = epsilon_greedy([c.id for c, _ in scored], ex.epsilon, self.rng)
            lookup = {c.id: (c, sc) for c, sc in scored}
            scored = [lookup[o] for o in order_ids]
            flags = [explored] * len(scored)
            label = "epsilon_greedy"
        else:
            props = [1.0] * len(scored)
            flags = [False] * len(scored)
            label = base
        top = scored[:limit]
        contrib = None
        if base == "model" and model is not None and scoring is not None and top:
            rows = model.rows_for(traits, context, scoring.codes[[c.index for c, _ in top]])  # the rows scored
            contrib = (model.contributions(rows), rows)
        out = []
        for i, (c, sc) in enumerate(top):
            features = model.top_contributions(contrib[0][i], contrib[1][i]) if contrib and model else []
            out.append(RankedOffer(c.id, None if sc is None else round(float(sc), 6), label,
                                   round(float(props[i]), 6), flags[i], self._explain(c, features, flags[i]),
                                   c.offer.spec.content))
        return out

    @staticmethod
    def _explain(c: _Candidate, features: list[dict[str, Any]], explored: bool) -> dict[str, Any]:
        return {"rules": c.rules, "features": features, "exploration": explored}
