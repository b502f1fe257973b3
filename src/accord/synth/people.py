"""The true people: who they are, where they live, how they behave.

Everything is a numpy array of length N (one slot per true person), built from
one seeded stream, so tests can rebuild the exact truth with ``build_people``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from accord.synth import lists
from accord.synth.rates import VariationRates

SEGMENTS = ("loyal", "regular", "one_timer", "browser", "churned", "support_heavy", "b2b")


@dataclass(frozen=True)
class Behaviour:
    """How one segment behaves; counts are ``base + Poisson(mean)``."""

    share: float
    p_crm: float
    p_shop: float
    p_pos: float
    p_email: float
    orders: tuple[int, float]
    store_visits: tuple[int, float]
    tickets: tuple[int, float]
    browse_sessions: tuple[int, float]
    return_rate: float
    basket: float  # mean extra line items per order
    quantity: float  # mean extra units per line


BEHAVIOUR: dict[str, Behaviour] = {
    "loyal": Behaviour(0.12, 0.70, 0.90, 0.60, 0.80, (4, 5.0), (3, 6.0), (0, 0.3), (0, 1.5), 0.05, 0.8, 0.2),
    "regular": Behaviour(0.18, 0.50, 0.80, 0.40, 0.60, (2, 1.0), (1, 2.0), (0, 0.3), (0, 1.0), 0.06, 0.6, 0.2),
    "one_timer": Behaviour(0.20, 0.30, 0.85, 0.20, 0.40, (1, 0.0), (1, 0.0), (0, 0.2), (0, 0.5), 0.08, 0.4, 0.1),
    "browser": Behaviour(0.22, 0.15, 0.30, 0.00, 0.30, (0, 0.0), (0, 0.0), (0, 0.05), (1, 2.0), 0.0, 0.0, 0.0),
    "churned": Behaviour(0.15, 0.50, 0.85, 0.30, 0.60, (1, 2.0), (1, 2.0), (0, 0.6), (0, 1.0), 0.10, 0.6, 0.1),
    "support_heavy": Behaviour(0.05, 0.60, 0.95, 0.20, 0.50, (1, 2.0), (1, 1.0), (3, 3.0), (0, 1.0), 0.20, 0.6, 0.1),
    "b2b": Behaviour(0.08, 0.95, 1.00, 0.05, 0.50, (2, 4.0), (1, 0.5), (0, 0.8), (0, 1.0), 0.04, 2.5, 4.0),
}
SEGMENT_SHARES = np.array([BEHAVIOUR[s].share for s in SEGMENTS])

# Extra records of the same person in one source (duplicates created by the business itself).
DUPLICATE_RATES = {"crm": (0.05, 0.01), "shop": (0.03, 0.0), "pos": (0.02, 0.0)}
"""source -> (P(at least 2 records | present), P(3 records | present))."""

COMPANY_SIZE = (1, 6)
"""B2B buyers are grouped into companies of this many people (uniform); the first holds the shop account."""

DEFAULT_START = date(2023, 1, 1)


@dataclass
class People:
    n: int
    start: date
    days: int  # length of the window in days
    country: np.ndarray  # int8 index into lists.COUNTRIES
    female: np.ndarray  # bool
    given: np.ndarray  # int32 index into lists.given_names()
    family: np.ndarray  # int32 index into lists.family_names()
    previous_family: np.ndarray  # int32: the family name before marriage, -1 unless married_name
    marriage_day: np.ndarray  # int32 day offset from which records use the new family name
    dob: np.ndarray  # datetime64[D]
    city: np.ndarray  # int32 index into lists.cities()
    street: np.ndarray  # object: rendered long form, e.g. "742 Oak Street"
    street_short: np.ndarray  # object: abbreviated form
    postcode: np.ndarray  # object
    moved: np.ndarray  # bool
    old_city: np.ndarray
    old_street: np.ndarray
    old_street_short: np.ndarray
    old_postcode: np.ndarray
    move_day: np.ndarray  # int32 day offset of the move
    email: np.ndarray  # object
    old_email: np.ndarray  # object, None unless changed_email
    email_change_day: np.ndarray
    phone: np.ndarray  # object: national significant number
    phone_area: np.ndarray  # int8: area-code length for formatting
    segment: np.ndarray  # int8 index into SEGMENTS
    company: np.ndarray  # int32, -1 for consumers
    company_names: np.ndarray  # object, per company
    company_domains: np.ndarray
    company_owner: np.ndarray  # int32 per company: the person holding the shared shop account
    household_head: np.ndarray  # int32, -1 unless household member
    twin: np.ndarray  # bool
    namesake_of: np.ndarray  # int32, -1 unless explicit namesake
    shares_email: np.ndarray  # bool
    shares_phone: np.ndarray  # bool
    first_seen: np.ndarray  # int32 day offset (may be negative: customer before the window)
    last_active: np.ndarray  # int32 day offset: churn day, or the window end
    category: np.ndarray  # int8 preferred product category
    n_crm: np.ndarray  # int8 records per source
    n_shop: np.ndarray
    n_pos: np.ndarray
    n_tickets: np.ndarray
    n_orders: np.ndarray  # online orders placed (b2b: placed on the company account)
    n_store_visits: np.ndarray
    email_subscriber: np.ndarray  # bool

    def person_ids(self) -> np.ndarray:
        return np.array([f"P{i:07d}" for i in range(1, self.n + 1)], dtype=object)

    def segment_name(self, i: int) -> str:
        return SEGMENTS[self.segment[i]]


def _window_days(start: date, months: int) -> int:
    y, m = divmod(start.month - 1 + months, 12)
    end = date(start.year + y, m + 1, min(start.day, 28))
    return (end - start).days


def _pick_grouped(rng: np.random.Generator, keys: list[tuple[str, str]], key_of: np.ndarray, groups) -> np.ndarray:
    out = np.zeros(len(key_of), dtype=np.int32)
    for k_i, k in enumerate(keys):
        mask = key_of == k_i
        idx, p = groups[k]
        out[mask] = rng.choice(idx, size=int(mask.sum()), p=p)
    return out


def _addresses(rng: np.random.Generator, country: np.ndarray, short_rate: float):
    c = lists.cities()
    roots = lists.street_roots()
    n = len(country)
    city = np.zeros(n, dtype=np.int32)
    street = np.empty(n, dtype=object)
    short = np.empty(n, dtype=object)
    postcode = np.empty(n, dtype=object)
    house = rng.integers(1, 300, size=n)
    gb_letters = "ABDEFGHJLNPQRSTUWXYZ"
    for ci, code in enumerate(lists.COUNTRIES):
        mask = np.flatnonzero(country == ci)
        idx, p = c.by_country[code]
        city[mask] = rng.choice(idx, size=len(mask), p=p)
        root = rng.integers(0, len(roots[code]), size=len(mask))
        kind = rng.integers(0, len(lists.STREET_TYPES[code]), size=len(mask))
        digits = rng.integers(0, 10**5, size=len(mask))
        letters = rng.integers(0, len(gb_letters), size=(len(mask), 2))
        types = lists.STREET_TYPES[code]
        rl = roots[code]
        for j, i in enumerate(mask):
            r, (long_t, short_t), h = rl[root[j]], types[kind[j]], house[i]
            if code in ("US", "GB"):
                street[i], short[i] = f"{h} {r} {long_t}", f"{h} {r} {short_t}"
            elif code == "DE":
                street[i], short[i] = f"{r}{long_t} {h}", f"{r}{short_t} {h}"
            else:
                street[i], short[i] = f"{h} {long_t} {r}", f"{h} {short_t} {r}"
            pre = c.prefix[city[i]]
            if code == "GB":
                postcode[i] = f"{pre} {digits[j] % 10}{gb_letters[letters[j, 0]]}{gb_letters[letters[j, 1]]}"
            else:
                postcode[i] = pre + f"{digits[j]:05d}"[len(pre) :]
    return city, street, short, postcode


def _phones(rng: np.random.Generator, country: np.ndarray):
    n = len(country)
    nsn = np.empty(n, dtype=object)
    area = np.zeros(n, dtype=np.int8)
    for ci, code in enumerate(lists.COUNTRIES):
        mask = np.flatnonzero(country == ci)
        plans = lists.PHONE_PLANS[code]
        which = rng.integers(0, len(plans), size=len(mask))
        tail = rng.integers(0, 10**9, size=len(mask))
        lead = rng.integers(2, 10, size=len(mask))  # US exchanges and most subscriber numbers avoid 0/1
        for j, i in enumerate(mask):
            prefix, length, area_len = plans[which[j]]
            rest = length - len(prefix)
            nsn[i] = prefix + str(lead[j]) + f"{tail[j]:09d}"[-(rest - 1) :]
            area[i] = area_len
    return nsn, area


def _emails(rng: np.random.Generator, given: np.ndarray, family: np.ndarray, country: np.ndarray) -> np.ndarray:
    g, f = lists.given_names().ascii_lower[given], lists.family_names().ascii_lower[family]
    pattern = rng.integers(0, 6, size=len(given))
    num = rng.integers(1, 100, size=len(given))
    year = rng.integers(60, 100, size=len(given))
    domains = np.empty(len(given), dtype=object)
    for ci, code in enumerate(lists.COUNTRIES):
        mask = country == ci
        names, w = zip(*lists.EMAIL_DOMAINS[code])
        p = np.array(w, dtype=float)
        domains[mask] = np.array(names, dtype=object)[rng.choice(len(names), size=int(mask.sum()), p=p / p.sum())]
    out = np.empty(len(given), dtype=object)
    for i in range(len(given)):
        gi, fi, k = g[i], f[i], pattern[i]
        if k == 0:
            local = f"{gi}.{fi}"
        elif k == 1:
            local = f"{gi[0]}{fi}"
        elif k == 2:
            local = f"{gi}{fi}{num[i]}"
        elif k == 3:
            local = f"{gi}_{fi}{year[i]}"
        elif k == 4:
            local = f"{fi}.{gi}"
        else:
            local = f"{gi}{num[i]}"
        out[i] = f"{local}@{domains[i]}"
    return out


def _unique(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Make colliding emails unique by adding digits, as mail providers force people to."""
    import pandas as pd

    values = values.copy()
    for _ in range(5):
        dup = np.flatnonzero(pd.Series(values).duplicated().to_numpy())
        if len(dup) == 0:
            break
        extra = rng.integers(100, 10000, size=len(dup))
        for j, i in enumerate(dup):
            local, domain = values[i].split("@", 1)
            values[i] = f"{local}{extra[j]}@{domain}"
    return values


def _unique_against(values: np.ndarray, taken: set[str], rng: np.random.Generator) -> np.ndarray:
    """``values`` with digits added to any address already in ``taken``."""
    values = values.copy()
    for i in range(len(values)):
        while values[i] in taken:
            local, domain = values[i].split("@", 1)
            values[i] = f"{local}{int(rng.integers(100, 10000))}@{domain}"
        taken.add(values[i])
    return values


def _repeats_in_household(given: np.ndarray, head: np.ndarray) -> np.ndarray:
    """True for a member whose given name an earlier member of the same household already has."""
    import pandas as pd

    return pd.DataFrame({"g": given, "h": head}).duplicated().to_numpy()


def _count(rng: np.random.Generator, base_mean: np.ndarray) -> np.ndarray:
    return base_mean[:, 0].astype(np.int32) + rng.poisson(base_mean[:, 1]).astype(np.int32)


def build_people(
    n: int, seed: int, start: date | None = None, months: int = 24, rates: VariationRates | None = None
) -> People:
    """The N true people for a seed: identical for the same arguments on any machine."""
    rates = rates or VariationRates()
    start = start or DEFAULT_START
    days = _window_days(start, months)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    gn, fn = lists.given_names(), lists.family_names()

    country = rng.choice(len(lists.COUNTRIES), size=n, p=np.array(lists.COUNTRY_SHARES)).astype(np.int8)
    female = rng.random(n) < 0.5
    gkeys = [(c, g) for c in lists.COUNTRIES for g in ("F", "M")]
    gkey_of = country.astype(np.int32) * 2 + (~female).astype(np.int32)
    given = _pick_grouped(rng, gkeys, gkey_of, gn.groups)
    family = _pick_grouped(rng, [(c, "") for c in lists.COUNTRIES], country.astype(np.int32), fn.groups)

    # Namesakes: an exact copy of another person's name (same gender, so the name stays plausible).
    namesake = rng.random(n) < rates.namesake
    namesake_of = np.full(n, -1, dtype=np.int32)
    by_gender = {True: np.flatnonzero(female), False: np.flatnonzero(~female)}
    for i in np.flatnonzero(namesake):
        pool = by_gender[bool(female[i])]
        j = int(pool[rng.integers(0, len(pool))])
        if j != i:
            namesake_of[i] = j
            given[i], family[i] = given[j], family[j]

    age_days = (rng.beta(2.2, 3.0, size=n) * (85 - 18) + 18) * 365.25
    dob = (np.datetime64(start) - age_days.astype(np.int64).astype("timedelta64[D]")).astype("datetime64[D]")

    city, street, street_short, postcode = _addresses(rng, country, rates.address_format)

    # Households: a member copies the head's country, family name and address; the head is the
    # nearest earlier person who is not a member (people are in random order, so this is random).
    member = rng.random(n) < rates.household
    member[0] = False
    head = np.maximum.accumulate(np.where(~member, np.arange(n), 0))
    household_head = np.where(member, head, -1).astype(np.int32)
    m = np.flatnonzero(member)
    h = head[m]
    country[m] = country[h]
    family[m] = family[h]
    city[m], street[m], street_short[m], postcode[m] = city[h], street[h], street_short[h], postcode[h]
    # Given names must be redrawn in the head's country.
    gkey_of = country.astype(np.int32) * 2 + (~female).astype(np.int32)
    given[m] = _pick_grouped(rng, gkeys, gkey_of[m], gn.groups)
    # "Own given name": a member never shares the head's (or an earlier member's) given name.
    # Redraws come from their own stream, so every other draw stays as it was.
    redraw = np.random.default_rng(np.random.SeedSequence([seed, 101]))
    for _ in range(10):
        same = m[(given[m] == given[h]) | _repeats_in_household(given[m], h)]
        if len(same) == 0:
            break
        given[same] = _pick_grouped(redraw, gkeys, gkey_of[same], gn.groups)
    twin = np.zeros(n, dtype=bool)
    twin_pick = m[rng.random(len(m)) < min(1.0, rates.twin / max(rates.household, 1e-9))]
    twin[twin_pick] = True
    dob[twin_pick] = dob[head[twin_pick]]

    phone, phone_area = _phones(rng, country)  # after households: a member's country is the head's
    email = _unique(_emails(rng, given, family, country), rng)
    shares_email = np.zeros(n, dtype=bool)
    shares_phone = np.zeros(n, dtype=bool)
    se = m[rng.random(len(m)) < rates.shared_email]
    sp = m[rng.random(len(m)) < rates.shared_phone]
    shares_email[se], shares_phone[sp] = True, True
    phone[sp], phone_area[sp] = phone[head[sp]], phone_area[head[sp]]

    # Behaviour.
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARES).astype(np.int8)
    beh = [BEHAVIOUR[s] for s in SEGMENTS]
    attr = lambda name: np.array([getattr(b, name) for b in beh], dtype=float)[segment]
    pair = lambda name: np.array([getattr(b, name) for b in beh], dtype=float)[segment]

    first_seen = rng.integers(-720, int(days * 0.85), size=n).astype(np.int32)
    last_active = np.full(n, days, dtype=np.int32)
    churned = segment == SEGMENTS.index("churned")
    churn_day = rng.integers(int(days * 0.25), int(days * 0.6), size=n).astype(np.int32)
    last_active[churned] = churn_day[churned]
    first_seen[churned] = np.minimum(first_seen[churned], churn_day[churned] - 60)
    category = rng.integers(0, len(CATEGORIES), size=n).astype(np.int8)

    # Companies: b2b buyers in groups; company names come from the first member's family name.
    b2b = np.flatnonzero(segment == SEGMENTS.index("b2b"))
    company = np.full(n, -1, dtype=np.int32)
    sizes = rng.integers(COMPANY_SIZE[0], COMPANY_SIZE[1] + 1, size=len(b2b) + 1)
    bounds = np.cumsum(sizes)
    n_comp = int(np.searchsorted(bounds, len(b2b), side="left")) + 1
    company[b2b] = np.searchsorted(bounds, np.arange(len(b2b)), side="right")
    owner_pos = np.concatenate([[0], bounds[: n_comp - 1]])
    company_owner = b2b[np.minimum(owner_pos, len(b2b) - 1)] if len(b2b) else np.zeros(0, dtype=np.int64)
    suffix = {
        "US": ("Inc.", "LLC", "Corp."),
        "GB": ("Ltd", "& Sons Ltd", "plc"),
        "DE": ("GmbH", "AG", "KG"),
        "FR": ("SARL", "SA", "SAS"),
    }
    comp_kind = rng.integers(0, 3, size=len(company_owner))
    company_names = np.empty(len(company_owner), dtype=object)
    company_domains = np.empty(len(company_owner), dtype=object)
    tld = {"US": "com", "GB": "co.uk", "DE": "de", "FR": "fr"}
    for k, o in enumerate(company_owner):
        code = lists.COUNTRIES[country[o]]
        base = fn.names[family[o]]
        company_names[k] = f"{base} {suffix[code][comp_kind[k]]}"
        company_domains[k] = f"{fn.ascii_lower[family[o]]}-{k + 1}.{tld[code]}"
    for i in b2b:  # work emails at the company domain
        company_i = company[i]
        email[i] = f"{gn.ascii_lower[given[i]]}.{fn.ascii_lower[family[i]]}@{company_domains[company_i]}"
    # Household members sharing an email use the head's private one (not a b2b member's work address).
    shares_email[b2b] = False
    shares_email[shares_email & (segment[np.maximum(household_head, 0)] == SEGMENTS.index("b2b"))] = False
    se = np.flatnonzero(shares_email)
    email[se] = email[household_head[se]]

    # Presence and counts.
    present = lambda p: rng.random(n) < attr(p)
    in_crm, in_shop, in_pos = present("p_crm"), present("p_shop"), present("p_pos")
    email_subscriber = present("p_email")
    is_b2b = segment == SEGMENTS.index("b2b")
    owner = np.zeros(n, dtype=bool)
    owner[company_owner] = True
    in_shop = np.where(is_b2b, owner, in_shop)

    def copies(present_mask: np.ndarray, source: str) -> np.ndarray:
        two, three = DUPLICATE_RATES[source]
        u = rng.random(n)
        return (present_mask * (1 + (u < two) + (u < three))).astype(np.int8)

    n_crm, n_shop, n_pos = copies(in_crm, "crm"), copies(in_shop, "shop"), copies(in_pos, "pos")
    n_orders = _count(rng, pair("orders"))
    n_orders[~(in_shop | is_b2b)] = 0
    n_store_visits = _count(rng, pair("store_visits"))
    n_store_visits[~in_pos] = 0
    n_tickets = _count(rng, pair("tickets")).astype(np.int16)

    # Movers and email changers: the change happens inside the person's active period.
    lo = np.maximum(first_seen, 0)
    moved = rng.random(n) < rates.moved
    move_day = (lo + rng.random(n) * np.maximum(last_active - lo, 1)).astype(np.int32)
    old_city, old_street, old_street_short, old_postcode = _addresses(rng, country, rates.address_format)
    old_email = np.full(n, None, dtype=object)
    changed = np.flatnonzero((rng.random(n) < rates.changed_email) & ~shares_email)
    # An old address is unique too: never someone else's current one (namesakes build the same addresses).
    alt = _unique_against(_unique(_emails(rng, given[changed], family[changed], country[changed]), rng),
                          set(email), redraw)
    old_email[changed] = alt
    email_change_day = (lo + rng.random(n) * np.maximum(last_active - lo, 1)).astype(np.int32)
    previous_family = np.full(n, -1, dtype=np.int32)
    married = np.flatnonzero((rng.random(n) < rates.married_name) & female)
    previous_family[married] = _pick_grouped(
        rng, [(c, "") for c in lists.COUNTRIES], country[married].astype(np.int32), fn.groups
    )
    marriage_day = (lo + rng.random(n) * np.maximum(last_active - lo, 1)).astype(np.int32)

    return People(
        n=n,
        start=start,
        days=days,
        country=country,
        female=female,
        given=given,
        family=family,
        previous_family=previous_family,
        marriage_day=marriage_day,
        dob=dob,
        city=city,
        street=street,
        street_short=street_short,
        postcode=postcode,
        moved=moved,
        old_city=old_city,
        old_street=old_street,
        old_street_short=old_street_short,
        old_postcode=old_postcode,
        move_day=move_day,
        email=email,
        old_email=old_email,
        email_change_day=email_change_day,
        phone=phone,
        phone_area=phone_area,
        segment=segment,
        company=company,
        company_names=company_names,
        company_domains=company_domains,
        company_owner=np.asarray(company_owner, dtype=np.int32),
        household_head=household_head,
        twin=twin,
        namesake_of=namesake_of,
        shares_email=shares_email,
        shares_phone=shares_phone,
        first_seen=first_seen,
        last_active=last_active,
        category=category,
        n_crm=n_crm,
        n_shop=n_shop,
        n_pos=n_pos,
        n_tickets=n_tickets,
        n_orders=n_orders,
        n_store_visits=n_store_visits,
        email_subscriber=email_subscriber,
    )


CATEGORIES = ("Apparel", "Footwear", "Electronics", "Home", "Beauty", "Sports", "Books", "Toys", "Grocery", "Office")
