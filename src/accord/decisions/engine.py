"""Deciding: guardrails first, then the policy ranks what is left, then the decision is logged.

``DecisionEngine`` keeps what changes slowly (offers, the active model, Thompson posteriors) in
memory and re-reads it every ``refresh_seconds``; what must be exact per request (consent, stock,
purchases, frequency) is read from the store each time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
from accord.decisions.settings import DecisionsSettings, PolicyName
from accord.store import Store

BLOCKING_CONSENT = ("denied", "withdrawn")


@dataclass
class DecideRequest:
    customer_id: str | None = None
    anonymous_id: str | None = None
    channel: str | None = None
    placement: str | None = None
    device: str | None = None
    limit: int | None = None

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


@dataclass
class _Candidate:
    offer: Offer
    rules: list[str] = field(default_factory=list)


class DecisionEngine:
    """Decides for one request at a time (the API calls it on its store thread)."""

    def __init__(self, settings: DecisionsSettings, *, seed: int | None = None,
                 clock: Callable[[], datetime] = utcnow, refresh_seconds: float | None = None):
        self.settings = settings
        self.clock = clock
        self.rng = np.random.default_rng(seed)
        self.log = DecisionLog()
        self.refresh_seconds = settings.exploration.refresh_seconds if refresh_seconds is None else refresh_seconds
        self.offers: list[Offer] = []
        self._conditions: list[Any] = []
        self._full_profile = False
        self._items: list[str] = []
        self._any_product = False
        self._longest_cap = settings.guardrails.frequency_cap.days
        # Posteriors are read (an aggregate over every outcome) only when some group decides by Thompson sampling.
        self._uses_thompson = settings.policy == "thompson" or any(
            v.policy == "thompson" for e in settings.experiments for v in e.variants.values())
        self.model: PropensityModel | None = None
        self.posteriors = BetaPosteriors(settings.exploration.prior_alpha, settings.exploration.prior_beta)
        self._loaded_at: datetime | None = None
        self._sensitive = {s.lower() for s in settings.guardrails.sensitive_attributes}

    # --- what changes slowly ------------------------------------------------------------------

    def refresh(self, store: Store, *, force: bool = False) -> None:
        now = self.clock()
        if not force and self._loaded_at is not None and now - self._loaded_at < timedelta(
                seconds=self.refresh_seconds):
            return
        self.offers = load_offers(store, self.settings)
        self._conditions = [o.condition for o in self.offers if o.condition is not None]
        self._full_profile = not reads_only_traits_and_consent(self._conditions)
        self._items = sorted({o.spec.inventory for o in self.offers if o.spec.inventory})
        self._any_product = any(o.spec.product_id for o in self.offers)
        g = self.settings.guardrails
        self._longest_cap = max([g.frequency_cap.days] + [o.spec.frequency_cap.days for o in self.offers
                                                          if o.spec.frequency_cap])
        version = active_model_version(store)
        if version is None:
            self.model = None
        elif self.model is None or self.model.version != version:
            self.model = load_active_model(store)
        if self._uses_thompson:
            ex = self.settings.exploration
            self.posteriors = load_posteriors(store, self.settings.model.label, ex.context, ex.prior_alpha,
                                              ex.prior_beta, now)
        self._loaded_at = now

    def invalidate(self) -> None:
        """Re-read offers and models at the next decision (after an offer changed)."""
        self._loaded_at = None

    # --- deciding -------------------------------------------------------------------------------

    def decide(self, store: Store, request: DecideRequest, *, write: bool = True) -> Decision:
        """Decide for ``request``; ``write=False`` leaves the decision in ``log.pending`` for a group commit."""
        self.refresh(store)
        now = self.clock()
        s = self.settings
        unit = request.unit
        context = request.context
        experiment = running_experiment(s.experiments, request.placement)
        variant = assign(experiment, unit) if experiment else None
        policy: PolicyName = s.policy
        if experiment and variant and variant != "holdout" and experiment.variants[variant].policy:
            policy = experiment.variants[variant].policy  # type: ignore[assignment]
        notes: list[str] = []
        found, profile = self._read(store, request, now)
        consent = dict(profile.consent) if profile is not None else {}
        personalized = self._may_personalize(request, consent, notes)
        traits = self._features(profile) if personalized and profile is not None else {}
        decision = Decision(new_decision_id(), unit, request.customer_id, request.anonymous_id, context,
                            policy if personalized else "rules", None, experiment.name if experiment else None,
                            variant, personalized, {"traits": traits}, [], now, notes=notes)
        if variant == "holdout":
            decision.policy = "holdout"
            notes.append(f"experiment {experiment.name!r}: holdout group, no offers")  # type: ignore[union-attr]
            return self._finish(store, decision, write)
        candidates = self._guardrails(store, request, consent, profile if personalized else None, found, now)
        decision.candidates = [c.offer.id for c in candidates]
        limit = min(request.limit or s.max_offers, s.max_offers)
        decision.offers = self._rank(decision, candidates, traits, context, limit)
        return self._finish(store, decision, write)

    def _finish(self, store: Store, decision: Decision, write: bool) -> Decision:
        self.log.add(decision)
        if write:
            self.log.flush(store)
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
        wanted = set(self.settings.model.features)
        return {k: float(num) for k, (num, _) in profile.traits.items()
                if num is not None and k.lower() not in self._sensitive and (not wanted or k in wanted)}

    def _read(self, store: Store, request: DecideRequest, now: datetime) -> tuple[facts.RequestFacts, Any]:
        """Everything the request needs from the store: in one round trip when the offers' conditions read
        only traits and consent, else the segments' profile context and one more."""
        g = self.settings.guardrails
        customer_id = request.customer_id
        want_ids = bool(customer_id and g.already_bought_days and self._any_product)
        own_profile = customer_id is not None and not self._full_profile
        found = facts.request_facts(store, request.unit, now - timedelta(days=self._longest_cap), self._items,
                                    customer_id if want_ids else None, customer_id if own_profile else None)
        if customer_id is None:
            return found, None
        if own_profile:
            return found, context_from(customer_id, now, found.traits, found.consent)
        return found, load_context(store, customer_id, now, self._conditions)

    def _guardrails(self, store: Store, request: DecideRequest, consent: dict[str, str], profile: Any,
                    found: facts.RequestFacts, now: datetime) -> list[_Candidate]:
        """The offers that pass every guardrail, each with the rules it passed. ``profile`` is None when
        no profile data may be used (an anonymous visitor, or no personalization consent)."""
        g = self.settings.guardrails
        out: list[_Candidate] = []
        for offer in self.offers:
            spec = offer.spec
            if spec.valid_from and now < spec.valid_from or spec.valid_to and now >= spec.valid_to:
                continue
            if spec.channels and request.channel not in spec.channels:
                continue
            if spec.placements and request.placement not in spec.placements:
                continue
            if any(consent.get(p) != "granted" for p in spec.requires_consent):
                continue
            if offer.condition is not None and (profile is None or not passes(offer.condition, profile)):
                continue
            c = _Candidate(offer)
            if spec.valid_from or spec.valid_to:
                c.rules.append(f"valid {spec.valid_from or '…'} to {spec.valid_to or '…'}")
            if spec.channels:
                c.rules.append(f"channel {request.channel}")
            if spec.placements:
                c.rules.append(f"placement {request.placement}")
            c.rules += [f"consent {p} granted" for p in spec.requires_consent]
            if offer.condition is not None:
                c.rules.append(f"eligibility: {describe(offer.condition)}")
            out.append(c)
        if not out:
            return out
        caps = {c.offer.id: c.offer.spec.frequency_cap or g.frequency_cap for c in out}
        check_bought = bool(request.customer_id and g.already_bought_days and any(c.offer.spec.product_id for c in out))
        kept = []
        for c in out:
            item = c.offer.spec.inventory
            if item is not None and item in found.stock:
                if found.stock[item] <= 0:
                    continue
                c.rules.append(f"in stock: {found.stock[item]} of {item}")
            kept.append(c)
        out = kept
        if check_bought and request.customer_id:
            bought = facts.bought_products(store, request.customer_id, now - timedelta(days=g.already_bought_days),
                                           g.purchase_event, g.product_property, found.identifiers)
            kept = []
            for c in out:
                product = c.offer.spec.product_id
                if product is not None and product in bought:
                    continue
                if product is not None:
                    c.rules.append(f"not bought in the last {g.already_bought_days} days")
                kept.append(c)
            out = kept
        given = found.given + self.log.pending_offers(request.unit)
        kept = []
        for c in out:
            cap = caps[c.offer.id]
            n = facts.count_since(given, c.offer.id, now - timedelta(days=cap.days))
            if n >= cap.max:
                continue
            c.rules.append(f"frequency {n} of {cap.max} in {cap.days:g} days")
            kept.append(c)
        return kept

    # --- ranking --------------------------------------------------------------------------------

    def _rules_order(self, candidates: list[_Candidate]) -> list[_Candidate]:
        return sorted(candidates, key=lambda c: (-c.offer.spec.priority, -c.offer.spec.margin, c.offer.id))

    def _model_usable(self, candidates: list[_Candidate], notes: list[str]) -> bool:
        m = self.settings.model
        if self.model is None:
            notes.append("model: cold (no model trained yet); ranked by rules")
            return False
        if self.model.auc is None or self.model.auc < m.min_auc:
            notes.append(f"model v{self.model.version}: unsure (validation AUC "
                         f"{'unknown' if self.model.auc is None else format(self.model.auc, '.3f')} below "
                         f"model.min_auc {m.min_auc}); ranked by rules")
            return False
        cold = [c.offer.id for c in candidates if not self.model.is_warm(c.offer.id, m.min_offer_examples)]
        if cold:
            notes.append(f"model v{self.model.version}: cold for {', '.join(cold[:5])}"
                         f"{' …' if len(cold) > 5 else ''} (fewer than {m.min_offer_examples} examples); "
                         "ranked by rules")
            return False
        return True

    def _rank(self, decision: Decision, candidates: list[_Candidate], traits: dict[str, Any],
              context: dict[str, str | None], limit: int) -> list[RankedOffer]:
        if not candidates:
            decision.notes.append("no offer passed the guardrails")
            return []
        policy = decision.policy
        ex = self.settings.exploration
        if policy == "thompson":
            key = context_key(context, ex.context)
            ids = [c.offer.id for c in candidates]
            alpha, beta = self.posteriors.parameters(ids, key)
            order, draws, props, explored = thompson(ids, alpha, beta, self.rng, limit, ex.simulations)
            by_id = {c.offer.id: c for c in candidates}
            return [RankedOffer(o, round(d, 6), "thompson", p, e, self._explain(by_id[o], [], e),
                                by_id[o].offer.spec.content) for o, d, p, e in zip(order, draws, props, explored)]
        why: list[str] = []
        use_model = policy in ("model", "hybrid", "epsilon_greedy") and self._model_usable(candidates, why)
        if policy == "model" and self.model is not None:
            use_model, why = True, []  # the model policy uses even an unsure model; only a missing one falls back
        decision.notes += why
        scored: list[tuple[_Candidate, float | None]]
        x = None
        base = "rules"
        if use_model and self.model is not None:
            base = "model"
            decision.model_version = self.model.version
            x = self.model.rows(traits, context, [c.offer.id for c in candidates])
            p = self.model.predict(x)
            if self.settings.model.objective == "margin":
                p = p * np.array([c.offer.spec.margin for c in candidates])
            scored = sorted(zip(candidates, p.tolist()), key=lambda t: (-t[1], t[0].offer.id))
        else:
            scored = [(c, float(c.offer.spec.priority)) for c in self._rules_order(candidates)]
        if policy == "epsilon_greedy":
            order_ids, props, explored = epsilon_greedy([c.offer.id for c, _ in scored], ex.epsilon, self.rng)
            lookup = {c.offer.id: (c, sc) for c, sc in scored}
            scored = [lookup[o] for o in order_ids]
            flags = [explored] * len(scored)
            label = "epsilon_greedy"
        else:
            props = [1.0] * len(scored)
            flags = [False] * len(scored)
            label = base
        top = scored[:limit]
        contrib = None
        if x is not None and self.model is not None:
            index = {c.offer.id: i for i, c in enumerate(candidates)}
            rows = x[[index[c.offer.id] for c, _ in top]]
            contrib = (self.model.contributions(rows), rows)
        out = []
        for i, (c, sc) in enumerate(top):
            features = self.model.top_contributions(contrib[0][i], contrib[1][i]) if contrib and self.model else []
            out.append(RankedOffer(c.offer.id, None if sc is None else round(float(sc), 6), label,
                                   round(float(props[i]), 6), flags[i], self._explain(c, features, flags[i]),
                                   c.offer.spec.content))
        return out

    @staticmethod
    def _explain(c: _Candidate, features: list[dict[str, Any]], explored: bool) -> dict[str, Any]:
        return {"rules": list(c.rules), "features": features, "exploration": explored}
