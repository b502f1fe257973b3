"""A small synthetic population with known truth, written into source_records.

Built for the identity tests: people with duplicates across two sources (nicknames,
typos, missing fields), plus the hard negatives identity must keep apart —
households (same address, surname and landline), twins (same birth date, address
and surname) and namesakes (same name, different birth date).
"""

from __future__ import annotations

import json
import random
from datetime import datetime

from accord.store import Store

GIVEN = ["james", "mary", "robert", "patricia", "john", "jennifer", "michael", "linda", "william", "elizabeth",
         "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah", "charles", "karen",
         "christopher", "nancy", "daniel", "lisa", "matthew", "margaret", "anthony", "betty", "mark", "sandra"]
NICK = {"james": "jim", "robert": "bob", "william": "bill", "elizabeth": "liz", "richard": "dick",
        "joseph": "joe", "thomas": "tom", "michael": "mike", "christopher": "chris", "margaret": "peggy"}
FAMILY = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez", "martinez",
          "hernandez", "lopez", "gonzalez", "wilson", "anderson", "taylor", "moore", "jackson", "martin", "lee",
          "perez", "thompson", "white", "harris", "sanchez", "clark", "ramirez", "lewis", "robinson", "walker",
          "young", "allen", "king", "wright", "scott", "torres", "nguyen", "hill", "flores", "green"]
STREETS = ["main st", "oak ave", "pine rd", "maple dr", "cedar ln", "elm st", "washington blvd", "lake view rd"]
CITIES = [("springfield", "62701"), ("riverside", "92501"), ("franklin", "37064"), ("greenville", "29601"),
          ("bristol", "06010"), ("clinton", "52732"), ("salem", "97301"), ("madison", "53703")]


def _typo(rng: random.Random, text: str) -> str:
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def population(seed: int = 7, people: int = 150) -> tuple[list[dict], dict[str, str], dict[str, list[str]]]:
    """(records, truth rid -> person, hard-negative groups name -> [person ids])."""
    rng = random.Random(seed)
    persons: list[dict] = []

    def person(given: str, family: str, dob: str, street: str, city: tuple[str, str], phone: str,
               email: str | None) -> dict:
        p = {"id": f"p{len(persons):04d}", "given": given, "family": family, "dob": dob, "street": street,
             "city": city, "phone": phone, "email": email}
        persons.append(p)
        return p

    def dob() -> str:
        return f"{rng.randint(1940, 2002)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"

    def phone() -> str:
        return f"+1{rng.choice(['212', '415', '617', '312'])}{rng.randint(2000000, 9999999)}"

    def address() -> tuple[str, tuple[str, str]]:
        return f"{rng.randint(1, 999)} {rng.choice(STREETS)}", rng.choice(CITIES)

    for _ in range(people):
        g, f = rng.choice(GIVEN), rng.choice(FAMILY)
        street, city = address()
        person(g, f, dob(), street, city, phone(), f"{g}.{f}{rng.randint(1, 999)}@gmail.com")
    groups: dict[str, list[str]] = {"households": [], "twins": [], "namesakes": []}
    for _ in range(8):  # households: a couple sharing address, surname and the landline
        f = rng.choice(FAMILY)
        street, city = address()
        landline = phone()
        a, b = rng.sample(GIVEN, 2)
        pa = person(a, f, dob(), street, city, landline, f"{a}.{f}.h{rng.randint(1, 999)}@gmail.com")
        pb = person(b, f, dob(), street, city, landline, f"{b}.{f}.h{rng.randint(1, 999)}@gmail.com")
        groups["households"].append(f"{pa['id']}+{pb['id']}")
    for _ in range(6):  # twins: same birth date, address and surname
        f = rng.choice(FAMILY)
        street, city = address()
        born = dob()
        a, b = rng.sample(GIVEN, 2)
        pa = person(a, f, born, street, city, phone(), f"{a}.{f}.t{rng.randint(1, 999)}@gmail.com")
        pb = person(b, f, born, street, city, phone(), f"{b}.{f}.t{rng.randint(1, 999)}@gmail.com")
        groups["twins"].append(f"{pa['id']}+{pb['id']}")
    for _ in range(6):  # namesakes: same name, different birth date and address
        g, f = rng.choice(GIVEN), rng.choice(FAMILY)
        s1, c1 = address()
        s2, c2 = address()
        pa = person(g, f, dob(), s1, c1, phone(), f"{g}{f}{rng.randint(1000, 9999)}@gmail.com")
        pb = person(g, f, dob(), s2, c2, phone(), f"{g}{f}{rng.randint(1000, 9999)}@gmail.com")
        groups["namesakes"].append(f"{pa['id']}+{pb['id']}")

    records: list[dict] = []
    truth: dict[str, str] = {}
    for p in persons:
        copies = rng.choice([1, 2, 2, 3])
        for n in range(copies):
            source = "crm" if n % 2 == 0 else "shop"
            given, family = p["given"], p["family"]
            if n and rng.random() < 0.3:
                given = NICK.get(given, given)
            if n and rng.random() < 0.2:
                family = _typo(rng, family)
            rec = {"source": source, "record_key": f"{p['id']}-{n}", "given_name": given.title(),
                   "family_name": family.title(),
                   "date_of_birth": None if n and rng.random() < 0.2 else p["dob"],
                   "street": p["street"], "city": p["city"][0].title(), "postcode": p["city"][1], "country": "US",
                   "emails": [p["email"].upper() if n else p["email"]] if p["email"] and rng.random() < 0.85 else [],
                   "phones": [p["phone"]] if rng.random() < 0.7 else []}
            records.append(rec)
            truth[f"{source}:{rec['record_key']}"] = p["id"]
    return records, truth, groups


def insert_records(store: Store, records: list[dict], run_id: str = "run_test") -> None:
    """Write records straight into source_records, as ingest would have."""
    now = datetime(2024, 1, 1)
    sql = store.type_sql(
        "INSERT INTO source_records (source, record_key, row_hash, raw, given_name, family_name, emails, phones, "
        "street, city, postcode, country, date_of_birth, external_ids, first_seen_at, valid_from, run_id) "
        "VALUES (?, ?, ?, CAST(? AS ${JSON}), ?, ?, CAST(? AS ${JSON}), CAST(? AS ${JSON}), ?, ?, ?, ?, ?, "
        "CAST(? AS ${JSON}), ?, ?, ?)")
    rows = [(r["source"], r["record_key"], f"h{i}", json.dumps(r), r.get("given_name"), r.get("family_name"),
             json.dumps(r.get("emails") or []), json.dumps(r.get("phones") or []), r.get("street"), r.get("city"),
             r.get("postcode"), r.get("country"), r.get("date_of_birth"), json.dumps(r.get("external_ids") or {}),
             now, now, run_id) for i, r in enumerate(records)]
    with store.transaction():
        store.executemany(sql, rows)
