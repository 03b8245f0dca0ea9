"""The language of the users search (``idp.identity.search``, which documents the fields):
parsed by hand, by recursive descent, into a small syntax tree. No eval, no SQL here.

``q`` (at most 2000 characters; empty: every user)::

    query  := or                        empty q: every user
    or     := and ("OR" and)*           AND binds tighter than OR,
    and    := unary ("AND" unary)*      NOT tighter than AND; the operators are
    unary  := "NOT" unary | primary     uppercase and always written (no implicit AND)
    primary:= "(" or ")" | field ":" value
    value  := word | word"*" | '"' text '"' | ("[" | "{") bound "TO" bound ("]" | "}")
    bound  := word | '"' text '"' | "*"

A word runs to a space or a parenthesis (a range bound also to ``]``/``}``); ``\\`` escapes the
next character, in a word or a quoted text. A trailing ``*`` makes a prefix search (``email:jo*``);
``*`` and ``?`` anywhere else in a word are refused (quote them). Parentheses and NOTs nest at
most 10 deep, at most 50 terms. Errors are ``ValidationError`` naming the position (characters
counted from 0), for a 400.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NoReturn

from idp.core.errors import ValidationError
from idp.identity.models import METADATA_KEY
from idp.identity.service import normalise_email

MAX_QUERY_LENGTH = 2000
MAX_DEPTH = 10
MAX_TERMS = 50

STRING_FIELDS = ("email", "name", "user_id")
INTERVAL_FIELDS = ("created_at", "updated_at", "logins_count")
FIELDS = (
    *STRING_FIELDS,
    "email_verified",
    "identities.connection",
    "app_metadata.KEY",
    *INTERVAL_FIELDS,
)
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
COUNT = re.compile(r"[0-9]{1,12}")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Scalar = str | bool | int | float


@dataclass(frozen=True)
class Term:
    """``field:value``; ``prefix`` for ``value*``. Interval fields hold ``low``/``high``
    (seconds or counts, the half-open ``[low, high)``, None: open) instead of a value."""

    field: str
    value: Scalar | None = None
    prefix: bool = False
    low: int | None = None
    high: int | None = None


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # "AND" or "OR"
    operands: tuple[Node, ...]


Node = Term | Not | BoolOp


def _fail(message: str, position: int) -> NoReturn:
    raise ValidationError(f"q: {message} at position {position}")


class _Parser:
    """Recursive descent straight over the text (no token list): what counts as a word depends
    on where it stands (a date-time's colons, a range's closing bracket)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0
        self.terms = 0

    def parse(self) -> Node | None:
        self._skip()
        if self.pos == len(self.text):
            return None
        node = self._or()
        if self.pos < len(self.text):
            found = self.text[self.pos]
            hint = "AND or OR" if found != ")" else "no ')' here: unbalanced parenthesis"
            _fail(f"expected {hint}, found {found!r}", self.pos)
        return node

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _keyword(self, word: str) -> bool:
        end = self.pos + len(word)
        if self.text.startswith(word, self.pos) and (
            end == len(self.text) or self.text[end].isspace() or self.text[end] in "()"
        ):
            self.pos = end
            self._skip()
            return True
        return False

    def _or(self) -> Node:
        operands = [self._and()]
        while self._keyword("OR"):
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else BoolOp("OR", tuple(operands))

    def _and(self) -> Node:
        operands = [self._unary()]
        while self._keyword("AND"):
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else BoolOp("AND", tuple(operands))

    def _nest(self, start: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _fail(f"nested deeper than {MAX_DEPTH}", start)

    def _unary(self) -> Node:
        start = self.pos
        if self._keyword("NOT"):
            self._nest(start)
            node: Node = Not(self._unary())
            self.depth -= 1
            return node
        if self.pos < len(self.text) and self.text[self.pos] == "(":
            self._nest(start)
            self.pos += 1
            self._skip()
            node = self._or()
            if self.pos >= len(self.text) or self.text[self.pos] != ")":
                _fail("expected ')' closing the '(' at position " + str(start), self.pos)
            self.pos += 1
            self._skip()
            self.depth -= 1
            return node
        return self._term()

    def _term(self) -> Term:
        start = self.pos
        match = FIELD_NAME.match(self.text, self.pos)
        if match is None:
            found = repr(self.text[self.pos]) if self.pos < len(self.text) else "the end"
            _fail(f"expected a field name, found {found}", start)
        field = match.group()
        self.pos = match.end()
        if not self.text.startswith(":", self.pos):
            _fail(f"expected ':' after {field!r} (terms are field:value)", self.pos)
        self.pos += 1
        if field not in STRING_FIELDS and field not in INTERVAL_FIELDS:
            key = field.removeprefix("app_metadata.")
            if field not in ("email_verified", "identities.connection") and (
                key == field or not METADATA_KEY.fullmatch(key)
            ):
                _fail(f"unknown field {field!r} (fields: {', '.join(FIELDS)})", start)
        self.terms += 1
        if self.terms > MAX_TERMS:
            _fail(f"more than {MAX_TERMS} terms", start)
        value_at = self.pos
        if self.pos < len(self.text) and self.text[self.pos] in "[{":
            term = self._range(field)
        else:
            text, quoted, prefix = self._value("")
            term = _term(field, text, quoted, prefix, value_at)
        self._skip()
        return term

    def _value(self, stops: str) -> tuple[str, bool, bool]:
        """A quoted text or a word: (its text, quoted, ends in an unescaped ``*``)."""
        start = self.pos
        chars: list[str] = []
        if self.text.startswith('"', start):
            self.pos += 1
            while self.pos < len(self.text) and self.text[self.pos] != '"':
                if self.text[self.pos] == "\\" and self.pos + 1 < len(self.text):
                    self.pos += 1
                chars.append(self.text[self.pos])
                self.pos += 1
            if self.pos >= len(self.text):
                _fail("unterminated quoted value starting", start)
            self.pos += 1
            return "".join(chars), True, False
        prefix = False
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char.isspace() or char in "()" or char in stops:
                break
            if prefix:
                _fail("'*' only ends a value (quote it to search for it)", self.pos - 1)
            if char == "\\" and self.pos + 1 < len(self.text):
                self.pos += 1
                chars.append(self.text[self.pos])
            elif char == "?":
                _fail("'?' wildcards are not supported (quote it to search for it)", self.pos)
            elif char == "*":
                prefix = True
            else:
                chars.append(char)
            self.pos += 1
        if not chars and not prefix:
            _fail("expected a value", start)
        return "".join(chars), False, prefix

    def _bound(self, field: str) -> tuple[int, int] | None:
        at = self.pos
        text, quoted, prefix = self._value("]}")
        if prefix and (text or quoted):
            _fail("a range bound is a value or '*'", at)
        self._skip()
        return None if prefix else _interval(field, text, at)

    def _range(self, field: str) -> Term:
        start = self.pos
        if field not in INTERVAL_FIELDS:
            _fail(f"{field} takes no range (ranges: {', '.join(INTERVAL_FIELDS)})", start)
        include_low = self.text[self.pos] == "["
        self.pos += 1
        self._skip()
        low = self._bound(field)
        if not self._keyword("TO"):
            _fail("expected TO in the range", self.pos)
        high = self._bound(field)
        if self.pos >= len(self.text) or self.text[self.pos] not in "]}":
            _fail("expected ']' or '}' closing the range", self.pos)
        include_high = self.text[self.pos] == "]"
        self.pos += 1
        return Term(
            field,
            low=None if low is None else low[0] if include_low else low[1],
            high=None if high is None else high[1] if include_high else high[0],
        )


def _interval(field: str, text: str, at: int) -> tuple[int, int]:
    """The half-open interval a value of an interval field names."""
    if field == "logins_count":
        if not COUNT.fullmatch(text):
            _fail(f"logins_count takes a whole number, not {text!r}", at)
        return int(text), int(text) + 1
    try:
        if DAY.fullmatch(text):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return int(day.timestamp()), int((day + timedelta(days=1)).timestamp())
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        second = int(moment.timestamp() // 1)
    except (ValueError, OverflowError):
        _fail(f"{field} takes a date (YYYY-MM-DD) or an ISO 8601 date-time, not {text!r}", at)
    return second, second + 1


def _term(field: str, text: str, quoted: bool, prefix: bool, at: int) -> Term:
    if field in INTERVAL_FIELDS:
        if prefix:
            _fail(f"{field} takes no wildcard", at)
        low, high = _interval(field, text, at)
        return Term(field, low=low, high=high)
    if prefix and field not in STRING_FIELDS:
        _fail(f"{field} takes no wildcard (prefixes: {', '.join(STRING_FIELDS)})", at)
    if field == "email_verified":
        if text not in ("true", "false"):
            _fail(f"email_verified is true or false, not {text!r}", at)
        return Term(field, text == "true")
    value: Scalar = text
    if field.startswith("app_metadata.") and not quoted:
        if text in ("true", "false"):
            value = text == "true"
        elif JSON_NUMBER.fullmatch(text):
            number = float(text)
            if not math.isfinite(number):
                _fail(f"{text!r} is out of range for a number", at)
            value = int(number) if number.is_integer() and abs(number) < 2**53 else number
    elif field == "email":
        value = normalise_email(text)
    return Term(field, value, prefix)


def parse_query(q: str | None) -> Node | None:
    """The syntax tree of ``q`` (None: no condition)."""
    q = q or ""
    if len(q) > MAX_QUERY_LENGTH:
        raise ValidationError(f"q is longer than {MAX_QUERY_LENGTH} characters")
    return _Parser(q).parse()
