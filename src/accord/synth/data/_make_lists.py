"""Rebuild the shipped name lists from Faker (run by hand; not imported at runtime).

    .venv/bin/pip install "Faker~=40.0" && .venv/bin/python src/accord/synth/data/_make_lists.py

The generator reads only the CSV files written here, so output never depends on
the installed Faker version. Lists without frequencies in Faker get Zipf-like
weights from a fixed seed, so a few names are common (namesakes) and most rare.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from faker import Faker

HERE = Path(__file__).parent
LOCALES = {"US": "en_US", "GB": "en_GB", "DE": "de_DE", "FR": "fr_FR"}


# Real most-common surnames first, so namesakes look like real namesakes.
COMMON_FAMILY = {
    "GB": ["Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson"],
    "DE": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann"],
    "FR": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau"],
}


def _weighted(values, rnd: random.Random, first: list[str] = ()) -> list[tuple[str, float]]:
    if isinstance(values, dict):
        return [(k, float(v)) for k, v in values.items()]
    names = sorted(set(values) - set(first))
    rnd.shuffle(names)
    names = list(first) + names
    return [(n, round(1.0 / (i + 1) ** 0.9, 6)) for i, n in enumerate(names)]


def main() -> None:
    rnd = random.Random(20240601)
    given_rows, family_rows = [], []
    for country, loc in LOCALES.items():
        fake = Faker(loc)
        person = next(p for p in fake.providers if "person" in type(p).__module__)
        for gender, values in (("F", person.first_names_female), ("M", person.first_names_male)):
            for name, w in _weighted(values, rnd):
                if name.isalpha() or "-" in name:
                    given_rows.append((country, gender, name, w))
        for name, w in _weighted(person.last_names, rnd, COMMON_FAMILY.get(country, [])):
            if name.replace("-", "").replace("'", "").isalpha():
                family_rows.append((country, name, w))
    with open(HERE / "given_names.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["country", "gender", "name", "weight"])
        w.writerows(given_rows)
    with open(HERE / "family_names.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["country", "name", "weight"])
        w.writerows(family_rows)


if __name__ == "__main__":
    main()
