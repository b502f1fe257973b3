"""Person names: clean, parse, nickname group and phonetic key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

import jellyfish
from nicknames import NickNamer
from unidecode import unidecode

from accord.standardize.placeholders import blank_to_none, is_placeholder_text

TITLES = frozenset(
    {
        "mr", "mrs", "ms", "miss", "mx", "dr", "doctor", "prof", "professor", "sir",
        "dame", "lord", "lady", "rev", "revd", "reverend", "fr", "father", "hon",
        "capt", "captain", "col", "sgt", "herr", "frau", "mme", "mlle", "madame",
        "monsieur", "sr", "sra", "srta",
    }
)
SUFFIXES = frozenset(
    {
        "jr", "jnr", "junior", "sr", "snr", "senior", "ii", "iii", "iv", "phd", "md",
        "dds", "esq", "mba", "cpa", "rn", "obe", "mbe", "cbe", "qc", "kc", "msc", "bsc",
    }
)
# Lowercase particles that begin a family name: "Ludwig van Beethoven", "Maria de la Cruz".
PARTICLES = frozenset(
    {"van", "von", "de", "del", "della", "der", "den", "di", "da", "la", "le", "du", "dos",
     "das", "ter", "ten", "bin", "ibn", "al", "el", "st"}
)

_APOSTROPHES = re.compile(r"['`´’‘]")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class NameParts:
    """A parsed person name, lowercase ASCII; any part may be None."""

    given: str | None = None
    middle: str | None = None
    family: str | None = None

    @property
    def given_initial(self) -> str | None:
        return self.given[0] if self.given else None


def _tokens(text: str) -> list[str]:
    """Lowercase ASCII words: accents transliterated, apostrophes joined, other punctuation split."""
    ascii_text = _APOSTROPHES.sub("", unidecode(text).lower())
    return _NOT_WORD.sub(" ", ascii_text).split()


def _words(text: str) -> list[str]:
    """Whitespace-separated words, each cleaned; "Álvarez-Núñez" stays one word, "alvarez nunez"."""
    words = (" ".join(_tokens(word)) for word in text.split())
    return [w for w in words if w]


def _strip_titles_and_suffixes(tokens: list[str]) -> list[str]:
    # Keep at least one token: "Miss" alone might be someone's name, not a title.
    while len(tokens) > 1 and tokens[0] in TITLES:
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in SUFFIXES:
        tokens = tokens[:-1]
    return tokens


@lru_cache(maxsize=65536)
def clean_name(raw: str | None) -> str | None:
    """One name field (given or family) as lowercase ASCII words without titles or suffixes.

    Placeholders ("N/A", "unknown") and empty values give None.
    """
    text = blank_to_none(raw)
    if text is None or is_placeholder_text(text):
        return None
    tokens = _strip_titles_and_suffixes(_words(text))
    return " ".join(tokens) or None


def _family_start(tokens: list[str]) -> int:
    """Index where the family name begins: the last word, or an earlier particle."""
    start = len(tokens) - 1
    while start > 1 and tokens[start - 1] in PARTICLES:
        start -= 1
    return start


@lru_cache(maxsize=65536)
def standardize_name(raw: str | None) -> NameParts:
    """Parse a full name: "Given Family", "Given M. Family", "SURNAME, Given".

    A single word is taken as the given name. Placeholders give empty parts.
    """
    text = blank_to_none(raw)
    if text is None or is_placeholder_text(text):
        return NameParts()
    if "," in text:
        before, _, after = text.partition(",")
        after_tokens = _words(after)
        # "John Smith, Jr." and "Smith, PhD" carry a suffix, not a given name.
        if after_tokens and not all(t in SUFFIXES for t in after_tokens):
            family = _strip_titles_and_suffixes(_words(before))
            given = _strip_titles_and_suffixes(after_tokens)
            return NameParts(
                given=given[0] if given else None,
                middle=" ".join(given[1:]) or None,
                family=" ".join(family) or None,
            )
        text = before
    tokens = _strip_titles_and_suffixes(_words(text))
    if not tokens:
        return NameParts()
    if len(tokens) == 1:
        return NameParts(given=tokens[0])
    start = _family_start(tokens)
    return NameParts(
        given=tokens[0],
        middle=" ".join(tokens[1:start]) or None,
        family=" ".join(tokens[start:]),
    )


# German and French diminutives the nicknames package (English names) lacks: (formal, nickname).
EXTRA_NICKNAMES = (
    ("johannes", "hans"), ("johann", "hans"), ("katharina", "kathi"), ("katharina", "katja"),
    ("wolfgang", "wolf"), ("alexander", "alex"), ("alexandra", "alex"), ("christian", "chris"),
    ("christoph", "chris"), ("christophe", "chris"), ("stefan", "steffi"), ("stephanie", "steffi"),
    ("nicolas", "nico"), ("nikolaus", "niko"), ("frederic", "fred"), ("maximilian", "max"),
    ("elisabeth", "lisa"), ("elisabeth", "liesel"), ("margarete", "grete"), ("matthias", "matze"),
    ("thomas", "tom"), ("andreas", "andi"), ("benjamin", "ben"), ("jean pierre", "jp"),
    ("jean baptiste", "jb"), ("dominique", "dom"), ("guillaume", "will"), ("francois", "franck"),
    ("michel", "mimi"), ("isabelle", "isa"), ("mathilde", "mathi"), ("antoine", "toni"),
    ("wilhelm", "willi"), ("friedrich", "fritz"), ("heinrich", "heinz"), ("jurgen", "jupp"),
)


@cache
def _nickname_tables() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    namer = NickNamer()
    nicknames_of = {k: set(v) for k, v in namer.nickname_lookup.items()}
    canonicals_of = {k: set(v) for k, v in namer.canonical_lookup.items()}
    for formal, nick in EXTRA_NICKNAMES:
        nicknames_of.setdefault(formal, set()).add(nick)
        canonicals_of.setdefault(nick, set()).add(formal)
    return nicknames_of, canonicals_of


def _formal_candidate(name: str) -> str:
    """One step from a name towards its formal form, or the name itself.

    The nicknames data is a many-to-many graph with some odd edges (it lists
    "bill" as a nickname of "robert"), so among the formal names the data
    offers we prefer ones at least as long, weighted by how many nicknames the
    formal name has and by spelling similarity (Jaro-Winkler).
    """
    nicknames_of, canonicals_of = _nickname_tables()
    candidates = [c for c in canonicals_of.get(name, ()) if c != name and len(c) >= len(name)]
    if not candidates:
        return name

    def score(c: str) -> float:
        return len(nicknames_of.get(c, ())) * jellyfish.jaro_winkler_similarity(name, c)

    # Ties go to the alphabetically first name.
    best = max(candidates, key=lambda c: (score(c), [-ord(ch) for ch in c]))
    # A name that is itself a bigger hub than its formal forms stays put ("james").
    return best if score(best) > score(name) else name


@lru_cache(maxsize=65536)
def name_group(given: str | None) -> str | None:
    """A nickname group key for a cleaned given name: bob, rob, robert -> "robert".

    Follows the most likely formal name until it stops changing (cycles resolve
    to their alphabetically first member); an unknown name is its own key. Only
    the first word counts ("mary jane" -> group of "mary"). Names that belong to
    two formal names (sam: samuel, samantha) can only land in one group; use
    `name_variants` to compare such names.
    """
    if not given:
        return None
    name = given.split()[0]
    path = [name]
    while True:
        step = _formal_candidate(path[-1])
        if step == path[-1]:
            return step
        if step in path:
            return min(path[path.index(step):])
        path.append(step)


@lru_cache(maxsize=65536)
def name_variants(given: str | None) -> frozenset[str]:
    """The name itself with every nickname and formal name the nicknames data links to it."""
    if not given:
        return frozenset()
    name = given.split()[0]
    nicknames_of, canonicals_of = _nickname_tables()
    return frozenset({name} | nicknames_of.get(name, set()) | canonicals_of.get(name, set()))


@lru_cache(maxsize=262144)
def nickname_related(a: str | None, b: str | None) -> bool:
    """True when one name is a nickname of the other, or both are nicknames of one formal name.

    Two formal names that merely share a nickname (samuel and samantha, both "sam") are not related.
    """
    if not a or not b:
        return False
    if a == b:
        return True
    nicknames_of, canonicals_of = _nickname_tables()
    if b in nicknames_of.get(a, ()) or a in nicknames_of.get(b, ()):
        return True
    return bool(canonicals_of.get(a, set()) & canonicals_of.get(b, set()))


@lru_cache(maxsize=65536)
def family_name_phonetic(family: str | None) -> str | None:
    """Metaphone key of a cleaned family name, spaces ignored: smith, smyth -> "SM0"."""
    if not family:
        return None
    return jellyfish.metaphone(family.replace(" ", "")) or None
