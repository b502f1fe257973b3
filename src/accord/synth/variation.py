"""Single-value perturbations: typos, nicknames, formats and placeholders.

Each function takes a ``random.Random`` so that a whole column's perturbations
come from one seeded stream; none of them iterate sets or dicts in hash order.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import date

from accord.synth import lists

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_POS = {ch: (r, c) for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}


def _neighbours(ch: str) -> str:
    low = ch.lower()
    if low not in _POS:
        return ""
    r, c = _POS[low]
    out = []
    for dr, dc in ((0, -1), (0, 1), (-1, 0), (-1, 1), (1, -1), (1, 0)):
        rr, cc = r + dr, c + dc
        if 0 <= rr < 3 and 0 <= cc < len(_ROWS[rr]):
            out.append(_ROWS[rr][cc])
    return "".join(out)


def typo(s: str, rnd: random.Random) -> str:
    """Replace one letter (not the first) with a keyboard neighbour."""
    spots = [i for i in range(1, len(s)) if _neighbours(s[i])]
    if not spots:
        return s
    i = rnd.choice(spots)
    repl = rnd.choice(_neighbours(s[i]))
    return s[:i] + (repl.upper() if s[i].isupper() else repl) + s[i + 1 :]


def transpose(s: str, rnd: random.Random) -> str:
    """Swap two adjacent, different letters (not the first)."""
    spots = [i for i in range(1, len(s) - 1) if s[i] != s[i + 1] and s[i].isalpha() and s[i + 1].isalpha()]
    if not spots:
        return s
    i = rnd.choice(spots)
    return s[:i] + s[i + 1] + s[i] + s[i + 2 :]


def delete(s: str, rnd: random.Random) -> str:
    """Drop one letter (not the first); names of three letters or fewer are kept."""
    if len(s) <= 3:
        return s
    i = rnd.randrange(1, len(s))
    return s[:i] + s[i + 1 :]


def nickname(given: str, rnd: random.Random) -> str:
    options = lists.nicknames().get(given.lower())
    if not options:
        return given
    return rnd.choice(options).title()


def initial(given: str, rnd: random.Random) -> str:
    return given[0] + ("." if rnd.random() < 0.5 else "")


def has_accent(s: str) -> bool:
    return any(ord(ch) > 127 for ch in s)


def strip_accents(s: str, rnd: random.Random) -> str:
    """Müller -> Mueller (German transliteration) or Muller (plain folding)."""
    if rnd.random() < 0.5:
        s = s.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
        s = s.replace("Ä", "Ae").replace("Ö", "Oe").replace("Ü", "Ue")
    folded = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in folded if not unicodedata.combining(ch)).replace("ß", "ss")


def mixed_case(s: str, rnd: random.Random) -> str:
    return s.upper() if rnd.random() < 0.5 else s.lower()


JUNK_EMAILS = ("test@test.com", "noemail@example.com", "N/A", "none@none.com", "x@x.com", "na@na.com")
JUNK_PHONES = ("000-000-0000", "N/A", "0000000000", "1234567890", "n/a", "999-999-9999")

# --- phones ---------------------------------------------------------------------------------

PHONE_STYLES = ("international", "national", "paren", "digits", "e164")


def format_phone(nsn: str, country: str, area_len: int, style: str) -> str:
    """Write a national significant number the way people and systems do."""
    cc = lists.CALLING_CODES[country]
    area, rest = nsn[:area_len], nsn[area_len:]
    if country == "US":
        a, b = rest[:3], rest[3:]
        return {
            "international": f"+1 {area}-{a}-{b}",
            "national": f"({area}) {a}-{b}",
            "paren": f"{area}.{a}.{b}",
            "digits": nsn,
            "e164": f"+1{nsn}",
        }[style]
    if country == "FR":
        pairs = " ".join(nsn[i : i + 2] for i in range(1, 9, 2))
        return {
            "international": f"+33 {nsn[0]} {pairs}",
            "national": f"0{nsn[0]} {pairs}",
            "paren": f"0{nsn[0]}.{pairs.replace(' ', '.')}",
            "digits": f"0{nsn}",
            "e164": f"+33{nsn}",
        }[style]
    if country == "GB" and len(rest) == 8:
        groups = f"{rest[:4]} {rest[4:]}"
    elif country == "GB" and len(rest) == 7:
        groups = f"{rest[:3]} {rest[3:]}"
    else:
        groups = rest
    sep = "-" if country == "GB" else "/"
    return {
        "international": f"+{cc} {area} {groups}",
        "national": f"0{area} {groups}",
        "paren": f"(0{area}) {groups.replace(' ', '-')}" if country == "GB" else f"0{area}{sep}{rest}",
        "digits": f"0{nsn}",
        "e164": f"+{cc}{nsn}",
    }[style]


# --- postcodes ------------------------------------------------------------------------------


def postcode_variant(code: str, country: str, rnd: random.Random) -> str:
    if country == "US":
        if code.startswith("0") and rnd.random() < 0.5:
            return code.lstrip("0")  # spreadsheets eat leading zeros
        return f"{code}-{rnd.randrange(10000):04d}"
    if country == "GB":
        return code.replace(" ", "") if rnd.random() < 0.5 else code.lower()
    if country == "DE":
        return f"D-{code}" if rnd.random() < 0.5 else (code.lstrip("0") or code)
    return f"F-{code}" if rnd.random() < 0.5 else f"{code[:2]} {code[2:]}"


# --- dates ----------------------------------------------------------------------------------

DATE_VARIANTS = {
    "US": ("%m/%d/%Y", "%Y%m%d", "%B %d, %Y"),
    "GB": ("%d/%m/%Y", "%Y%m%d", "%d %B %Y"),
    "DE": ("%d.%m.%Y", "%Y%m%d", "%d/%m/%Y"),
    "FR": ("%d/%m/%Y", "%Y%m%d", "%d-%m-%Y"),
}


def date_variant(d: date, country: str, rnd: random.Random) -> str:
    return d.strftime(rnd.choice(DATE_VARIANTS[country]))
