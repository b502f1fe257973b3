"""Activity: products, web-shop orders, store transactions, email and web events.

Numbers first (who, when, what) for everything, then strings in chunks, so a
million people never need a million Python dicts at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.synth import lists
from accord.synth.people import BEHAVIOUR, CATEGORIES, SEGMENTS, People
from accord.synth.records import SourceRecords, sequential_ids
from accord.synth.timefmt import DAY, epoch_seconds, iso

PRODUCTS_PER_CATEGORY = 40
_NOUNS = {
    "Apparel": ("T-Shirt", "Hoodie", "Jacket", "Jeans", "Dress", "Sweater", "Shirt", "Skirt"),
    "Footwear": ("Sneakers", "Boots", "Sandals", "Loafers", "Running Shoes", "Slippers", "Trainers", "Heels"),
    "Electronics": ("Headphones", "Speaker", "Charger", "Smartwatch", "Keyboard", "Mouse", "Webcam", "Power Bank"),
    "Home": ("Lamp", "Cushion", "Throw", "Vase", "Mug Set", "Candle", "Frame", "Rug"),
    "Beauty": ("Moisturiser", "Serum", "Shampoo", "Lip Balm", "Perfume", "Face Mask", "Conditioner", "Cleanser"),
    "Sports": ("Yoga Mat", "Water Bottle", "Dumbbells", "Backpack", "Tennis Balls", "Resistance Band", "Cap", "Gloves"),
    "Books": ("Novel", "Cookbook", "Atlas", "Biography", "Notebook", "Comic", "Guide", "Poetry Collection"),
    "Toys": ("Puzzle", "Board Game", "Plush Bear", "Building Set", "Kite", "Doll", "Toy Car", "Card Game"),
    "Grocery": ("Coffee Beans", "Green Tea", "Olive Oil", "Chocolate", "Granola", "Honey", "Pasta", "Spices"),
    "Office": ("Desk Organiser", "Pen Set", "Stapler", "Desk Lamp", "Planner", "Paper Ream", "Chair Cushion", "Binder"),
}
_ADJECTIVES = ("Classic", "Essential", "Premium", "Eco", "Urban", "Deluxe", "Compact", "Everyday", "Pro", "Vintage")
_BASE_PRICE = (35, 70, 60, 30, 20, 25, 15, 25, 8, 12)
CURRENCY = {"US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR"}


@dataclass
class Products:
    ids: np.ndarray
    category: np.ndarray  # int
    price: np.ndarray  # float
    table: pa.Table


def products(rng: np.random.Generator) -> Products:
    n = len(CATEGORIES) * PRODUCTS_PER_CATEGORY
    cat = np.repeat(np.arange(len(CATEGORIES)), PRODUCTS_PER_CATEGORY)
    price = np.round(np.array(_BASE_PRICE)[cat] * rng.lognormal(0, 0.5, n), 0) - 0.01
    price = np.maximum(price, 1.99)
    adj = rng.integers(0, len(_ADJECTIVES), n)
    noun = rng.integers(0, 8, n)
    ids = np.array([f"PRD-{i:04d}" for i in range(1, n + 1)], dtype=object)
    names = np.array([f"{_ADJECTIVES[adj[i]]} {_NOUNS[CATEGORIES[cat[i]]][noun[i]]}" for i in range(n)], dtype=object)
    table = pa.table(
        {
            "product_id": ids,
            "name": names,
            "category": np.array(CATEGORIES, dtype=object)[cat],
            "price": price,
            "stock": rng.integers(0, 500, n),
        }
    )
    return Products(ids, cat, price, table)


def _first_and_second(source: SourceRecords, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per person, the row of their first record in a source and of their last one (-1 if none)."""
    first = np.full(n, -1, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    if len(source.person):
        people_, idx = np.unique(source.person, return_index=True)
        first[people_] = idx
        rev_people, rev_idx = np.unique(source.person[::-1], return_index=True)
        last[rev_people] = len(source.person) - 1 - rev_idx
    return first, last


def _activity_times(people: People, who: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Seconds: uniform over each person's active days inside the window, during waking hours."""
    lo = np.maximum(people.first_seen[who], 0).astype(np.float64)
    hi = np.maximum(people.last_active[who], lo + 1)
    day = np.floor(lo + rng.random(len(who)) * (hi - lo))
    return (epoch_seconds(people.start) + day * DAY + rng.integers(7 * 3600, 23 * 3600, len(who))).astype(np.int64)


def _line_items(
    people: People, prod: Products, who: np.ndarray, basket: np.ndarray, quantity: np.ndarray, rng: np.random.Generator
):
    n_items = 1 + rng.poisson(basket)
    offsets = np.concatenate([[0], np.cumsum(n_items)]).astype(np.int32)
    owner = np.repeat(who, n_items)
    preferred = rng.random(len(owner)) < 0.7
    cat = np.where(preferred, people.category[owner], rng.integers(0, len(CATEGORIES), len(owner)))
    product = cat * PRODUCTS_PER_CATEGORY + rng.integers(0, PRODUCTS_PER_CATEGORY, len(owner))
    qty = 1 + rng.poisson(np.repeat(quantity, n_items))
    discount = np.array([1.0, 1.0, 1.0, 0.9, 0.8])[rng.integers(0, 5, len(owner))]
    price = np.round(prod.price[product] * discount, 2)
    items = pa.StructArray.from_arrays(
        [
            pa.array(prod.ids[product], pa.string()),
            pa.array(np.array(CATEGORIES, dtype=object)[cat], pa.string()),
            pa.array(qty),
            pa.array(price),
        ],
        names=["product_id", "category", "quantity", "price"],
    )
    totals = np.round(np.add.reduceat(qty * price, offsets[:-1]) if len(owner) else np.zeros(0), 2)
    return pa.ListArray.from_arrays(pa.array(offsets), items), totals, product[offsets[:-1]] if len(owner) else product


@dataclass
class Orders:
    person: np.ndarray  # who placed it
    account_row: np.ndarray  # row in the shop table
    seconds: np.ndarray
    first_product: np.ndarray
    totals: np.ndarray
    ids: pa.Array
    table: pa.Table | None


def orders(people: People, shop: SourceRecords, prod: Products, rng: np.random.Generator) -> Orders:
    n = people.n
    who = np.repeat(np.arange(n), people.n_orders.astype(np.int64))
    seconds = _activity_times(people, who, rng)
    order = np.argsort(seconds, kind="stable")
    who, seconds = who[order], seconds[order]
    first, last = _first_and_second(shop, n)
    # B2B buyers order on their company's shared account.
    account_person = who.copy()
    b2b = people.company[who] >= 0
    account_person[b2b] = people.company_owner[people.company[who[b2b]]]
    row = first[account_person]
    later = (last[account_person] != row) & (seconds >= shop.created_seconds[last[account_person]])
    row = np.where(later & (rng.random(len(who)) < 0.7), last[account_person], row)
    seg = people.segment[who]
    basket = np.array([BEHAVIOUR[s].basket for s in SEGMENTS])[seg]
    quantity = np.array([BEHAVIOUR[s].quantity for s in SEGMENTS])[seg]
    items, totals, first_product = _line_items(people, prod, who, basket, quantity, rng)
    ret = np.array([BEHAVIOUR[s].return_rate for s in SEGMENTS])[seg]
    u = rng.random(len(who))
    end = epoch_seconds(people.start) + people.days * DAY
    status = np.where(u < ret, "returned", np.where(u > 0.98, "cancelled", "completed")).astype(object)
    status[(seconds > end - 4 * DAY) & (status == "completed")] = "shipped"
    ids = sequential_ids("ORD-", len(who), 8)
    currency = np.array([CURRENCY[c] for c in lists.COUNTRIES], dtype=object)[people.country[account_person]]
    table = pa.table(
        {
            "order_id": ids,
            "customer_id": shop.table.column("customer_id").take(pa.array(row)),
            "ordered_at": iso(seconds),
            "status": status,
            "currency": currency,
            "items": items,
            "total": totals,
        }
    )
    return Orders(who, row, seconds, first_product, totals, ids, table)


def pos_transactions(people: People, pos: SourceRecords, prod: Products, rng: np.random.Generator) -> pa.Table:
    n = people.n
    who = np.repeat(np.arange(n), people.n_store_visits.astype(np.int64))
    seconds = _activity_times(people, who, rng)
    order = np.argsort(seconds, kind="stable")
    who, seconds = who[order], seconds[order]
    first, last = _first_and_second(pos, n)
    row = np.where(rng.random(len(who)) < 0.8, first[who], last[who])
    items, totals, _ = _line_items(people, prod, who, np.full(len(who), 1.2), np.full(len(who), 0.2), rng)
    store_no = rng.integers(1, 21, len(who))
    country = np.array(lists.COUNTRIES, dtype=object)[people.country[who]]
    stores = np.array([f"ST-{c}-{k:03d}" for c, k in zip(country, store_no)], dtype=object)
    return pa.table(
        {
            "transaction_id": sequential_ids("TX-", len(who), 9),
            "loyalty_id": pos.table.column("loyalty_id").take(pa.array(row)),
            "store_id": stores,
            "occurred_at": pa.array(seconds, pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            "amount": totals,
            "payment": np.array(("card", "cash", "mobile"), dtype=object)[rng.choice(3, len(who), p=[0.6, 0.25, 0.15])],
            "items": items,
        }
    )


# --- email ---------------------------------------------------------------------------------

OPEN_RATE = {
    "loyal": 0.45,
    "regular": 0.3,
    "one_timer": 0.15,
    "browser": 0.25,
    "churned": 0.2,
    "support_heavy": 0.2,
    "b2b": 0.3,
}
CLICK_GIVEN_OPEN = 0.25
UNSUBSCRIBE_PER_SEND = 0.004
BOUNCE_PER_SEND = 0.003
_THEMES = ("Newsletter", "New Arrivals", "Weekend Sale", "Back in Stock", "Loyalty Rewards", "Seasonal Picks")


def email_events(people: People, rng: np.random.Generator, chunk: int = 1_000_000) -> Iterator[pa.Table]:
    """Weekly campaigns; each subscriber gets every 4th, 8th or 12th one from subscribing on."""
    base = epoch_seconds(people.start)
    n_campaigns = people.days // 7
    camp_time = base + (np.arange(n_campaigns) * 7 + 2) * DAY + 9 * 3600 + (np.arange(n_campaigns) % 3) * 3600
    camp_ids = np.array([f"CMP-{k:04d}" for k in range(1, n_campaigns + 1)], dtype=object)
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    camp_names = np.array(
        [
            f"{_THEMES[k % len(_THEMES)]} {months[(people.start.month - 1 + (k * 7) // 30) % 12]} #{k + 1}"
            for k in range(n_campaigns)
        ],
        dtype=object,
    )

    subs = np.flatnonzero(people.email_subscriber)
    sub_day = np.maximum(people.first_seen[subs], 0)
    first_c = np.searchsorted(np.arange(n_campaigns) * 7 + 2, sub_day)
    stride = np.array([4, 8, 12])[rng.integers(0, 3, len(subs))]
    phase = rng.integers(0, 12, len(subs)) % stride
    count = np.maximum(0, (n_campaigns - first_c - phase + stride - 1) // stride)
    who = np.repeat(np.arange(len(subs)), count)
    k = np.arange(len(who)) - np.repeat(np.cumsum(count) - count, count)
    camp = first_c[who] + phase[who] + k * stride[who]
    person = subs[who]
    # Stop after an unsubscribe or a bounce: the first one ends the subscriber's stream.
    u = rng.random(len(person))
    stop = u < UNSUBSCRIBE_PER_SEND + BOUNCE_PER_SEND
    stop_rank = np.where(stop, k, np.iinfo(np.int64).max)
    first_stop = np.full(len(subs), np.iinfo(np.int64).max)
    np.minimum.at(first_stop, who, stop_rank)
    keep = k <= first_stop[who]
    person, camp, u, k, who = person[keep], camp[keep], u[keep], k[keep], who[keep]
    last = k == first_stop[who]
    bounce = last & (u < BOUNCE_PER_SEND)
    unsub = last & ~bounce
    seg = people.segment[person]
    # Churned people stop opening after they churn.
    open_p = np.array([OPEN_RATE[s] for s in SEGMENTS])[seg]
    after_churn = (camp_time[camp] - base) // DAY > people.last_active[person]
    open_p = np.where(after_churn, 0.02, open_p)
    opened = ~bounce & (rng.random(len(person)) < open_p)
    opened |= unsub
    clicked = opened & ~unsub & (rng.random(len(person)) < CLICK_GIVEN_OPEN)
    open_delay = rng.exponential(6 * 3600, len(person)).astype(np.int64) + 60
    click_delay = open_delay + rng.integers(5, 600, len(person))

    # Event rows: sent for all, then open / click / unsubscribe / bounce.
    sent_t = camp_time[camp] + rng.integers(0, 1800, len(person))
    rows_p = [person, person[opened], person[clicked], person[unsub], person[bounce]]
    rows_c = [camp, camp[opened], camp[clicked], camp[unsub], camp[bounce]]
    rows_t = [
        sent_t,
        (sent_t + open_delay)[opened],
        (sent_t + click_delay)[clicked],
        (sent_t + click_delay + 30)[unsub],
        (sent_t + 5)[bounce],
    ]
    types = np.concatenate([np.full(len(p), t, dtype=np.int8) for t, p in enumerate(rows_p)])
    ev_p, ev_c, ev_t = np.concatenate(rows_p), np.concatenate(rows_c), np.concatenate(rows_t)
    end = base + people.days * DAY
    inside = ev_t < end
    ev_p, ev_c, ev_t, types = ev_p[inside], ev_c[inside], ev_t[inside], types[inside]
    order = np.lexsort((types, ev_t))
    ev_p, ev_c, ev_t, types = ev_p[order], ev_c[order], ev_t[order], types[order]
    type_names = np.array(("sent", "open", "click", "unsubscribe", "bounce"), dtype=object)
    for lo in range(0, max(len(ev_p), 1), chunk):  # an empty file still gets its header
        sl = slice(lo, lo + chunk)
        p_, t_ = ev_p[sl], ev_t[sl]
        day = (t_ - base) // DAY
        old = (people.old_email[p_] != None) & (day < people.email_change_day[p_])
        email = np.where(old, people.old_email[p_], people.email[p_])
        yield pa.table(
            {
                "event_id": sequential_ids("EE-", len(p_), 9, first=lo + 1),
                "email": email,
                "campaign_id": camp_ids[ev_c[sl]],
                "campaign_name": camp_names[ev_c[sl]],
                "event_type": type_names[types[sl]],
                "occurred_at": iso(t_),
            }
        )


# --- web (Segment spec) ----------------------------------------------------------------------

TRACKED_ORDER_SHARE = 0.3
"""Share of online orders whose journey the web tracker saw (consent banners, ad blockers)."""
ANONYMOUS_WEB_VISITORS = 0.2
"""Share of people with no shop account and not browsers who still visit the site."""
PAGE, IDENTIFY, VIEWED, ADDED, CHECKOUT, COMPLETED = range(6)
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
)


def uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random version-4-looking UUID strings, built in bulk from one byte buffer."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = np.frombuffer(raw.tobytes().hex().encode(), dtype="S1").reshape(n, 32)
    dash = np.full((n, 1), b"-", dtype="S1")
    parts = [hexed[:, :8], dash, hexed[:, 8:12], dash, hexed[:, 12:16], dash, hexed[:, 16:20], dash, hexed[:, 20:]]
    return np.ascontiguousarray(np.hstack(parts)).view("S36").ravel()


@dataclass
class WebPlan:
    """Every web event as numbers; strings are made per chunk in ``web_events``."""

    device_anon: np.ndarray  # S36 per device
    device_ua: np.ndarray  # int per device
    device_ip: np.ndarray  # object per device
    s_device: np.ndarray  # per session
    s_state: np.ndarray  # 0 anonymous, 1 logs in during the session, 2 remembered
    s_user_row: np.ndarray  # shop row of the account, -1 without one
    s_person: np.ndarray
    s_order: np.ndarray  # order index for checkout journeys, -1 for browsing
    ev_session: np.ndarray  # per event, in time order
    ev_pos: np.ndarray  # position in its session
    ev_type: np.ndarray  # int8 code
    ev_time: np.ndarray


def plan_web(people: People, shop: SourceRecords, orders_: Orders, rng: np.random.Generator) -> WebPlan:
    n = people.n
    first, _ = _first_and_second(shop, n)
    account_person = np.arange(n)
    b2b = people.company >= 0
    account_person[b2b] = people.company_owner[people.company[b2b]]
    account = first[account_person]
    browser = people.segment == SEGMENTS.index("browser")
    web = (account >= 0) | browser | (rng.random(n) < ANONYMOUS_WEB_VISITORS)
    n_dev = np.where(web, 1 + np.minimum(rng.poisson(0.7, n), 3), 0)
    dev_offset = np.cumsum(n_dev) - n_dev
    total_dev = int(n_dev.sum())
    device_anon = uuids(rng, total_dev)
    device_ua = rng.integers(0, len(_USER_AGENTS), total_dev)
    ip = rng.integers(1, 255, (total_dev, 4))
    device_ip = np.array([f"{a}.{b}.{c}.{d}" for a, b, c, d in ip], dtype=object)

    # Sessions: tracked order journeys, then browsing.
    tracked = np.flatnonzero(rng.random(len(orders_.person)) < TRACKED_ORDER_SHARE)
    o_person = orders_.person[tracked]
    # B2B buyers without a web identity of their own still have devices if they are web users.
    o_person = o_person[web[o_person]]
    tracked = tracked[web[orders_.person[tracked]]]
    pair = np.array([BEHAVIOUR[s].browse_sessions for s in SEGMENTS], dtype=float)[people.segment]
    n_browse = np.where(web, pair[:, 0].astype(np.int64) + rng.poisson(pair[:, 1]), 0)
    b_person = np.repeat(np.arange(n), n_browse)
    s_person = np.concatenate([o_person, b_person])
    is_order = np.concatenate([np.ones(len(o_person), bool), np.zeros(len(b_person), bool)])
    s_order = np.concatenate([tracked, np.full(len(b_person), -1)])
    s_user_row = np.concatenate([orders_.account_row[tracked], account[b_person]])
    S = len(s_person)
    s_device = dev_offset[s_person] + (rng.random(S) * n_dev[s_person]).astype(np.int64)
    u = rng.random(S)
    # 0 anonymous, 1 logs in (identify mid-session), 2 already remembered on this device
    state = np.where(
        is_order, np.where(u < 0.7, 2, 1), np.where(s_user_row < 0, 0, np.where(u < 0.35, 2, np.where(u < 0.45, 1, 0)))
    )
    ident = (state == 1).astype(np.int64)
    views = np.where(is_order, 1 + rng.poisson(1.0, S), rng.poisson(1.0, S))
    added = ~is_order & (views > 0) & (rng.random(S) < 0.25)
    length = 1 + ident + views + np.where(is_order, 3, 0) + added
    gap = rng.integers(10, 120, S)
    start_t = np.where(
        is_order, orders_.seconds[np.maximum(s_order, 0)] - (length - 1) * gap, _activity_times(people, s_person, rng)
    )

    # Events: only session number, position and type per event; the rest is looked up per chunk.
    sess = np.repeat(np.arange(S, dtype=np.int32), length)
    pos = (np.arange(len(sess), dtype=np.int64) - np.repeat(np.cumsum(length) - length, length)).astype(np.int16)
    L, id_s, ord_s = length[sess].astype(np.int16), ident[sess].astype(np.int16), is_order[sess]
    code = np.full(len(sess), PAGE, dtype=np.int8)
    code[(pos == 1) & (id_s == 1)] = IDENTIFY
    body = pos >= 1 + id_s
    browse = body & ~ord_s
    code[browse] = np.where((pos[browse] - id_s[browse]) % 2 == 1, VIEWED, PAGE)
    code[browse & added[sess] & (pos == L - 1)] = ADDED
    code[body & ord_s] = VIEWED
    code[ord_s & (pos == L - 3)] = ADDED
    code[ord_s & (pos == L - 2)] = CHECKOUT
    code[ord_s & (pos == L - 1)] = COMPLETED
    del L, id_s, ord_s, body, browse
    ev_time = start_t[sess] + pos * gap[sess]
    end = epoch_seconds(people.start) + people.days * DAY
    pick = np.flatnonzero(ev_time < end)
    pick = pick[np.argsort(ev_time[pick], kind="stable")]
    return WebPlan(
        device_anon=device_anon,
        device_ua=device_ua,
        device_ip=device_ip,
        s_device=s_device,
        s_state=state.astype(np.int8),
        s_user_row=s_user_row,
        s_person=s_person,
        s_order=s_order,
        ev_session=sess[pick],
        ev_pos=pos[pick],
        ev_type=code[pick],
        ev_time=ev_time[pick],
    )


_TYPE = np.array(("page", "identify", "track", "track", "track", "track"), dtype=object)
_EVENT = np.array((None, None, "Product Viewed", "Product Added", "Checkout Started", "Order Completed"), dtype=object)


def _pool(*parts: pa.Array) -> pa.Array:
    return pa.concat_arrays([p.cast(pa.string()) for p in parts])


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def web_event_chunks(
    people: People,
    plan: WebPlan,
    shop: SourceRecords,
    orders_: Orders,
    prod: Products,
    rng: np.random.Generator,
    chunk: int = 250_000,
) -> Iterator[pa.Array]:
    """Segment-spec JSON lines, per chunk.

    Built column-wise: every repeated fragment (a device's context, a product's properties, a quoted
    customer id) is rendered once and then ``take``-n per event, and a line is one join of fragments.
    Values never contain quotes or backslashes (ids, emails, paths, user agents), so no escaping is needed.
    """
    n_prod = len(prod.ids)
    cats = [c.lower() for c in CATEGORIES]
    paths = ["/"] + [f"/category/{c}" for c in cats] + [f"/products/{p}" for p in prod.ids] + ["/checkout"]
    path_tail = pa.array([f'{p}"}}}}}}' + "\n" for p in paths])  # closes page, context and the event
    page_props = [f'{{"path":"{p}","url":"https://shop.example.com{p}"}}' for p in paths]
    currencies = [CURRENCY[c] for c in lists.COUNTRIES]
    product_props = [
        f'{{"product_id":"{prod.ids[i]}","category":"{CATEGORIES[prod.category[i]]}","price":{prod.price[i]:.2f},'
        f'"currency":"{cur}"}}'
        for i in range(n_prod)
        for cur in currencies
    ]
    base_props = pa.array(page_props + product_props + ["{}"])
    heads = pa.array(
        [
            '","type":"page","name":"Home"',
            '","type":"page","name":"Category"',
            '","type":"page","name":"Product"',
            '","type":"identify"',
        ]
        + [f'","type":"track","event":"{e}"' for e in _EVENT[2:]]
    )
    context = pa.array(
        [
            f'{{"ip":"{ip}","userAgent":"{_USER_AGENTS[ua]}","library":{{"name":"analytics.js","version":"4.1.0"}},'
            '"page":{"path":"'
            for ip, ua in zip(plan.device_ip, plan.device_ua)
        ]
    )
    user_q = _pool(_join('"', shop.table.column("customer_id").combine_chunks(), '"'), pa.array(["null"]))
    null_user = len(user_q) - 1
    emails = pa.array(people.email, pa.string())
    order_ids = orders_.ids
    for lo in range(0, len(plan.ev_type), chunk):
        sl = slice(lo, lo + chunk)
        code, sess, pos = plan.ev_type[sl], plan.ev_session[sl], plan.ev_pos[sl]
        m = len(code)
        dev, person, order, state = plan.s_device[sess], plan.s_person[sess], plan.s_order[sess], plan.s_state[sess]
        order = np.where(code >= CHECKOUT, order, -1)
        user = np.where((state == 2) | ((state == 1) & (pos >= 1)), plan.s_user_row[sess], -1)
        browse_product = people.category[person].astype(np.int64) * PRODUCTS_PER_CATEGORY + rng.integers(
            0, PRODUCTS_PER_CATEGORY, m
        )
        product = np.where(
            plan.s_order[sess] >= 0, orders_.first_product[np.maximum(plan.s_order[sess], 0)], browse_product
        )
        page_kind = rng.integers(0, 3, m)
        is_page = code == PAGE
        path_idx = np.where(page_kind == 0, 0, np.where(page_kind == 1, 1 + prod.category[product], 11 + product))
        path_idx = np.where(is_page, path_idx, 11 + product)
        path_idx = np.where(code >= CHECKOUT, 11 + n_prod, path_idx)
        head_idx = np.where(is_page, page_kind, code.astype(np.int64) + 2)
        props_idx = np.where(is_page, path_idx, len(paths) + product * 4 + people.country[person])
        props_idx = np.where(code == IDENTIFY, len(base_props) - 1, props_idx)
        # Order and checkout properties, and identify traits, are unique per event: render just those.
        with_order = np.flatnonzero((code == COMPLETED) | (code == CHECKOUT))
        o = order[with_order]
        key = np.where(code[with_order] == COMPLETED, ',"revenue":', ',"value":').astype(object)
        cur = np.array(currencies, dtype=object)[people.country[person[with_order]]]
        order_props = _join(
            '{"order_id":"',
            order_ids.take(pa.array(o)),
            '"',
            pa.array(key, pa.string()),
            pc.cast(pa.array(orders_.totals[o]), pa.string()),
            ',"currency":"',
            pa.array(cur, pa.string()),
            '"}',
        )
        props_idx[with_order] = len(base_props) + np.arange(len(with_order))
        props = _pool(base_props, order_props).take(pa.array(props_idx))
        ident = np.flatnonzero(code == IDENTIFY)
        traits_pool = _pool(pa.array([""]), _join(',"traits":{"email":"', emails.take(pa.array(person[ident])), '"}'))
        traits_idx = np.zeros(m, dtype=np.int64)
        traits_idx[ident] = 1 + np.arange(len(ident))
        yield _join(
            '{"messageId":"',
            pa.array(uuids(rng, m)).cast(pa.string()),
            heads.take(pa.array(head_idx)),
            ',"anonymousId":"',
            pa.array(plan.device_anon[dev]).cast(pa.string()),
            '","userId":',
            user_q.take(pa.array(np.where(user >= 0, user, null_user))),
            ',"timestamp":"',
            iso(plan.ev_time[sl]),
            '","properties":',
            props,
            traits_pool.take(pa.array(traits_idx)),
            ',"context":',
            context.take(pa.array(dev)),
            path_tail.take(pa.array(path_idx)),
        )


def lines_buffer(lines: pa.Array) -> memoryview:
    """The bytes of a string array whose values are complete lines: the file content, no copy."""
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
