"""The one-line segment language, parsed by recursive descent into a ``Condition`` tree.

    orders_90d >= 2 and consent.email and count(event = 'Product Viewed', within = '24h') >= 3

Grammar (keywords are case-insensitive)::

    condition  := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" condition ")" | predicate
    predicate  := reference [tail] | literal OP reference
    tail       := OP literal | ["not"] "in" "(" literal ("," literal)* ")"
                | ["not"] "between" literal "and" literal | "is" ["not"] "null"
    reference  := NAME | "trait." NAME | "attribute." NAME | "consent." NAME
                | "count(" [arg ("," arg)*] ")" | "in_account(" STRING ")"
    arg        := ("event" | "type" | "within") "=" STRING
    OP         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="

A bare NAME is a golden attribute when it is one (``city``, ``email``, ``given_name``, ...) and a
computed trait otherwise. Windows are a number and a unit: ``30m``, ``24h``, ``7d``, ``2w``.
Errors say where: ``column 14: expected a value after '>=', got end of text``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from accord.errors import AccordError
from accord.segments.conditions import (
    GOLDEN_ATTRIBUTES,
    And,
    Attribute,
    Compare,
    Condition,
    Consent,
    EventCount,
    Holds,
    In,
    InAccount,
    IsNull,
    Literal,
    Not,
    Or,
    Reference,
    Trait,
)

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_KEYWORDS = {"and", "or", "not", "in", "between", "is", "null", "true", "false"}
_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>\d+(\.\d+)?([eE][+-]?\d+)?|\.\d+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>'(\\.|''|[^'\\])*'|"(\\.|""|[^"\\])*")
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),.\-])
""", re.VERBOSE)


class SegmentSyntaxError(AccordError):
    """The text of a segment condition is not valid; ``column`` is 1-based."""

    def __init__(self, column: int, message: str):
        super().__init__(f"column {column}: {message}")
        self.column = column
        self.detail = message


@dataclass(frozen=True)
class Token:
    kind: str  # name, keyword, number, string, op, punct, end
    text: str
    column: int
    value: object = None

    def describe(self) -> str:
        return "end of text" if self.kind == "end" else repr(self.text)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SegmentSyntaxError(pos + 1, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        raw = m.group()
        column = pos + 1
        pos = m.end()
        if kind == "space":
            continue
        if kind == "number":
            number = float(raw)
            tokens.append(Token("number", raw, column, int(raw) if raw.isdigit() else number))
        elif kind == "name":
            lowered = raw.lower()
            tokens.append(Token("keyword", lowered, column) if lowered in _KEYWORDS else Token("name", raw, column))
        elif kind == "string":
            tokens.append(Token("string", raw, column, _unquote(raw)))
        elif kind == "op":
            tokens.append(Token("op", {"==": "=", "<>": "!="}.get(raw, raw), column))
        else:
            tokens.append(Token("punct", raw, column))
    if not tokens and not text.strip():
        raise SegmentSyntaxError(1, "the condition is empty; write e.g. orders_90d >= 2 and consent.email")
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _unquote(raw: str) -> str:
    quote, body = raw[0], raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append({"n": "\n", "t": "\t"}.get(body[i + 1], body[i + 1]))
            i += 2
        elif c == quote:  # a doubled quote
            out.append(c)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_window(text: str) -> timedelta:
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"expected a window such as '30m', '24h', '7d' or '2w'; got {text!r}")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


class _Parser:
    MAX_DEPTH = 100

    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # --- token helpers ---------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        return self.advance() if self.at(kind, text) else None

    def expect(self, kind: str, text: str | None, what: str) -> Token:
        if not self.at(kind, text):
            self.fail(f"expected {what}, got {self.tok.describe()}")
        return self.advance()

    def fail(self, message: str, token: Token | None = None) -> None:
        raise SegmentSyntaxError((token or self.tok).column, message)

    # --- grammar ---------------------------------------------------------------------------------

    def parse(self) -> Condition:
        cond = self.or_()
        if not self.at("end"):
            self.fail(f"expected 'and', 'or' or the end of the condition, got {self.tok.describe()}")
        return cond

    def or_(self) -> Condition:
        parts = [self.and_()]
        while self.accept("keyword", "or"):
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Condition:
        parts = [self.unary()]
        while self.accept("keyword", "and"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Condition:
        self.depth += 1
        if self.depth > self.MAX_DEPTH:
            self.fail(f"conditions nest at most {self.MAX_DEPTH} deep (parentheses and 'not')")
        try:
            if self.accept("keyword", "not"):
                return Not(self.unary())
            if self.accept("punct", "("):
                cond = self.or_()
                self.expect("punct", ")", "')' to close the '('")
                return cond
            return self.predicate()
        finally:
            self.depth -= 1

    def predicate(self) -> Condition:
        start = self.tok
        if self.at("number") or self.at("string") or self.at("keyword", "true") or self.at("keyword", "false") \
                or self.at("punct", "-"):
            value = self.literal()
            op_tok = self.tok
            if not self.accept("op"):
                self.fail(f"expected a comparison (=, !=, <, <=, >, >=) after the value, got {self.tok.describe()}")
            ref = self.reference()
            return self.comparison(ref, _FLIP[op_tok.text], value, start, op_tok)
        ref = self.reference()
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            return self.comparison(ref, tok.text, self.literal(after=tok.text), start, tok)
        negated = False
        if self.at("keyword", "not"):
            nxt = self.tokens[self.i + 1]
            if nxt.kind == "keyword" and nxt.text in ("in", "between"):
                self.advance()
                negated = True
        if self.accept("keyword", "in"):
            cond = self.in_list(ref, start)
            return Not(cond) if negated else cond
        if self.accept("keyword", "between"):
            cond = self.between(ref, start)
            return Not(cond) if negated else cond
        if self.accept("keyword", "is"):
            is_not = bool(self.accept("keyword", "not"))
            self.expect("keyword", "null", "'null' after 'is'" + ("" if is_not else " (or 'is not null')"))
            if isinstance(ref, (EventCount, InAccount)):
                self.fail(f"{ref} is never null", start)
            return Not(IsNull(ref)) if is_not else IsNull(ref)
        return self.holds(ref, start)

    def holds(self, ref: Reference, start: Token) -> Condition:
        if isinstance(ref, (Consent, InAccount, Trait)):
            return Holds(ref)
        if isinstance(ref, EventCount):
            self.fail(f"{ref} is a number: compare it, e.g. {ref} >= 1", start)
        self.fail(f"attribute {ref} is text: compare it (e.g. {ref} = 'value') or write {ref} is not null", start)
        raise AssertionError  # unreachable: fail raises

    def in_list(self, ref: Reference, start: Token) -> Condition:
        self.expect("punct", "(", "'(' and a list of values after 'in'")
        values = [self.literal()]
        while self.accept("punct", ","):
            values.append(self.literal())
        self.expect("punct", ")", "',' or ')' in the list of values")
        kinds = {_literal_kind(v) for v in values}
        if len(kinds) > 1:
            self.fail("the values of an 'in' list must all be text, all numbers or all true/false", start)
        self.check(ref, "=", values[0], start)
        return In(ref, tuple(values))

    def between(self, ref: Reference, start: Token) -> Condition:
        low = self.literal()
        self.expect("keyword", "and", "'and' between the two bounds of 'between'")
        high = self.literal()
        for v in (low, high):
            if _literal_kind(v) != "number":
                self.fail(f"'between' takes two numbers; got {v!r}", start)
        self.check(ref, ">=", low, start)
        return And((Compare(ref, ">=", low), Compare(ref, "<=", high)))

    def comparison(self, ref: Reference, op: str, value: Literal, start: Token, op_tok: Token) -> Condition:
        self.check(ref, op, value, start, op_tok)
        return Compare(ref, op, value)

    def check(self, ref: Reference, op: str, value: Literal, start: Token, op_tok: Token | None = None) -> None:
        kind = _literal_kind(value)
        where = op_tok or start
        if isinstance(ref, InAccount):
            self.fail(f"{ref} is a condition on its own; write {ref} or not {ref}", start)
        if isinstance(ref, EventCount):
            if kind != "number":
                self.fail(f"{ref} is a number; compare it with a number, got {value!r}", where)
            return
        if isinstance(ref, (Attribute, Consent)) and kind != "text":
            what = "attribute" if isinstance(ref, Attribute) else "consent status"
            hint = " (consent on its own means granted: write consent.NAME)" if isinstance(ref, Consent) else ""
            self.fail(f"{what} {ref} is text; compare it with a quoted value, got {value!r}{hint}", where)
        if kind in ("text", "bool") and op not in ("=", "!="):
            self.fail(f"{'text' if kind == 'text' else 'true/false'} values take = or != only (ordering text "
                      f"depends on the database's collation); got {op!r}", where)

    def literal(self, after: str | None = None) -> Literal:
        tok = self.tok
        if self.accept("string"):
            return tok.value  # type: ignore[return-value]
        if self.accept("keyword", "true"):
            return True
        if self.accept("keyword", "false"):
            return False
        negative = bool(self.accept("punct", "-"))
        if self.at("number"):
            value = self.advance().value
            return -value if negative else value  # type: ignore[operator,return-value]
        if self.at("keyword", "null"):
            self.fail("comparisons with null are never true; write 'is null' or 'is not null'")
        what = f"a value after {after!r}" if after else "a value (a number, a quoted text, true or false)"
        self.fail(f"expected {what}, got {self.tok.describe()}")
        raise AssertionError  # unreachable

    def reference(self) -> Reference:
        tok = self.tok
        if tok.kind != "name":
            self.fail("expected an attribute, a trait, consent.PURPOSE, count(...) or in_account(...), "
                      f"got {tok.describe()}")
        self.advance()
        name = tok.text
        if self.at("punct", "("):
            return self.function(tok)
        if self.accept("punct", "."):
            field = self.expect("name", None, f"a name after '{name}.'")
            prefix = name.lower()
            if prefix == "consent":
                return Consent(field.text)
            if prefix == "trait":
                return Trait(field.text)
            if prefix in ("attribute", "profile"):
                if field.text not in GOLDEN_ATTRIBUTES:
                    self.fail(f"unknown attribute {field.text!r}; golden attributes are "
                              f"{', '.join(sorted(GOLDEN_ATTRIBUTES))}", field)
                return Attribute(field.text)
            self.fail(f"unknown prefix {name!r}: use consent.PURPOSE, trait.NAME or attribute.NAME", tok)
        if name in GOLDEN_ATTRIBUTES:
            return Attribute(name)
        return Trait(name)

    def function(self, name_tok: Token) -> Reference:
        name = name_tok.text.lower()
        self.expect("punct", "(", "'('")
        if name == "in_account":
            account = self.expect("string", None, "the account id or name in quotes")
            self.expect("punct", ")", "')' after the account")
            return InAccount(str(account.value))
        if name != "count":
            self.fail(f"unknown function {name_tok.text!r}; known: count(event = ..., type = ..., within = ...), "
                      "in_account('ID')", name_tok)
        args: dict[str, tuple[str, Token]] = {}
        if not self.at("punct", ")"):
            while True:
                key = self.tok
                if key.kind != "name" or key.text not in ("event", "type", "within"):
                    self.fail(f"expected event, type or within in count(...), got {key.describe()}")
                self.advance()
                if key.text in args:
                    self.fail(f"{key.text} is given twice in count(...)", key)
                self.expect("op", "=", f"'=' after {key.text}")
                value = self.expect("string", None, f"a quoted value for {key.text}")
                args[key.text] = (str(value.value), value)
                if not self.accept("punct", ","):
                    break
        self.expect("punct", ")", "',' or ')' in count(...)")
        within = None
        if "within" in args:
            text, tok = args["within"]
            try:
                within = parse_window(text)
            except ValueError as exc:
                self.fail(str(exc), tok)
        if "type" in args and args["type"][0] not in EVENT_TYPES:
            self.fail(f"type: expected one of {', '.join(EVENT_TYPES)}; got {args['type'][0]!r}", args["type"][1])
        return EventCount(event=args.get("event", (None,))[0], type=args.get("type", (None,))[0], within=within,
                          within_text=args.get("within", (None,))[0])


def _literal_kind(value: Literal) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "text"
    return "number"


@lru_cache(maxsize=1024)
def parse(text: str) -> Condition:
    """Parse the one-line form into a condition tree; ``SegmentSyntaxError`` names the column."""
    if not isinstance(text, str):
        raise SegmentSyntaxError(1, f"expected the condition as text; got {type(text).__name__}")
    return _Parser(text).parse()
