"""CloudWatch Logs filter patterns (FilterLogEvents' `filterPattern`, spec §5.6): parsed once
into a predicate over a message. Matching is case-sensitive, as AWS's is.

    (empty), " "                     every event
    ERROR Exception                  both terms (substrings), in any order
    "Internal Server Error"          the exact phrase
    ?ERROR ?WARN                     at least one of the ?-terms (beside any plain ones)
    ERROR -ARGUMENTS                 ERROR, and not ARGUMENTS
    %ab+c%                           a regular expression (AWS's subset: no groups)
    { $.level = "ERROR" && ($.ms > 100 || $.path = "/inv*") }
                                     a JSON event: = != with "*" wildcards, numbers with
                                     = != < <= > >=, `= *` (present), IS NULL / IS TRUE /
                                     IS FALSE, NOT EXISTS; && binds tighter than ||
    [ip, user, ..., status = 4*, bytes > 1000]
                                     space-delimited fields ("..." and [...] spans count as
                                     one); `...` stands for any number of fields

Unquoted terms match as substrings (AWS leaves word vs substring unstated; moto and the
agent's local matching use substrings). `terms()` gives the plain substrings every match must
contain, so the store can prefilter with an index-friendly LIKE before the exact check here.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tideserve.errors import ValidationError

Predicate = Callable[[str], bool]
MAX_PATTERN = 1024


def invalid(reason: str) -> ValidationError:
    return ValidationError(f"Invalid filter pattern: {reason}", code="InvalidParameterException")


@dataclass(frozen=True)
class FilterPattern:
    text: str
    matches: Predicate
    # Substrings every matching message holds (a prefilter; may be empty).
    required: tuple[str, ...] = field(default=())


def parse(text: str | None) -> FilterPattern:
    source = (text or "").strip()
    if len(source) > MAX_PATTERN:
        raise invalid(f"longer than {MAX_PATTERN} characters")
    if not source or (source.startswith('"') and source.endswith('"')
                      and not source[1:-1].strip()):
        return FilterPattern(text or "", lambda message: True)
    if source.startswith("{"):
        if not source.endswith("}"):
            raise invalid("If a filter pattern starts with '{' it must end with '}'")
        test = _JsonParser(source[1:-1]).parse()
        # Only a JSON object's members can be selected, so its brace prefilters the scan.
        return FilterPattern(text or "", lambda message: _json_matches(test, message), ("{",))
    if source.startswith("["):
        if not source.endswith("]"):
            raise invalid("If a filter pattern starts with '[' it must end with ']'")
        return _delimited(source[1:-1], text or "")
    return _terms(source, text or "")


# --- term patterns -----------------------------------------------------------------------

_TERM = re.compile(r'\s*([?-]?)(?:"((?:[^"\\]|\\.)*)"|%([^%]+)%|([^\s"]+))')


def _terms(source: str, text: str) -> FilterPattern:
    required: list[Predicate] = []
    excluded: list[Predicate] = []
    optional: list[Predicate] = []
    plain: list[str] = []
    pos = 0
    regexes = 0
    while pos < len(source):
        m = _TERM.match(source, pos)
        if m is None:
            if source[pos:].strip():
                raise invalid(f"cannot read {source[pos:]!r}")
            break
        pos = m.end()
        sign, quoted, regex, bare = m.groups()
        if regex is not None:
            regexes += 1
            if regexes > 2 or "(" in regex or ")" in regex:
                raise invalid("at most two regular expressions, without groups")
            try:
                compiled = re.compile(regex)
            except re.error as exc:
                raise invalid(str(exc)) from None
            test = _regex_test(compiled)
        else:
            term = quoted.replace('\\"', '"') if quoted is not None else bare
            test = _term_test(term)
            if not sign and term:
                plain.append(term)
        {"": required, "-": excluded, "?": optional}[sign].append(test)

    def matches(message: str) -> bool:
        return (all(t(message) for t in required)
                and not any(t(message) for t in excluded)
                and (not optional or any(t(message) for t in optional)))

    return FilterPattern(text, matches, tuple(plain))


def _regex_test(compiled: re.Pattern[str]) -> Predicate:
    return lambda message: compiled.search(message) is not None


def _term_test(term: str) -> Predicate:
    return lambda message: term in message


# --- JSON patterns -----------------------------------------------------------------------

_MISSING = object()
JsonTest = Callable[[Any], bool]
_JSON_TOKEN = re.compile(
    r'\s*(?:(\$(?:\.[A-Za-z0-9_\-@$]+|\[\d+\])*)|("(?:[^"\\]|\\.)*")|(&&|\|\||!=|<=|>=|=|<|>|'
    r'\(|\))|(IS\s+NULL|IS\s+TRUE|IS\s+FALSE|NOT\s+EXISTS)\b|([^\s()&|=!<>"]+))')


class _JsonParser:
    """or := and ('||' and)* ; and := atom ('&&' atom)* ; atom := '(' or ')' | comparison"""

    def __init__(self, source: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        kinds = ("selector", "string", "op", "keyword", "word")
        while pos < len(source):
            if not source[pos:].strip():
                break
            m = _JSON_TOKEN.match(source, pos)
            if m is None or m.end() == pos:
                raise invalid(f"cannot read {source[pos:]!r}")
            kind = next(k for k, g in zip(kinds, m.groups(), strict=True) if g is not None)
            self.tokens.append((kind, m.group(m.lastindex or 0)))
            pos = m.end()
        self.i = 0

    def parse(self) -> JsonTest:
        if not self.tokens:
            raise invalid("empty JSON pattern")
        test = self._or()
        if self.i != len(self.tokens):
            raise invalid(f"unexpected {self.tokens[self.i][1]!r}")
        return test

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise invalid("the pattern ends too soon")
        self.i += 1
        return token

    def _or(self) -> JsonTest:
        parts = [self._and()]
        while self._peek() == ("op", "||"):
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else lambda doc: any(p(doc) for p in parts)

    def _and(self) -> JsonTest:
        parts = [self._atom()]
        while self._peek() == ("op", "&&"):
            self.i += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else lambda doc: all(p(doc) for p in parts)

    def _atom(self) -> JsonTest:
        kind, value = self._take()
        if (kind, value) == ("op", "("):
            inner = self._or()
            if self._take() != ("op", ")"):
                raise invalid("a '(' is not closed")
            return inner
        if kind != "selector":
            raise invalid(f"expected a selector such as $.field, found {value!r}")
        path = _selector_path(value)
        kind, op = self._take()
        if kind == "keyword":
            return _keyword_test(path, " ".join(op.split()))
        if kind != "op" or op not in ("=", "!=", "<", "<=", ">", ">="):
            raise invalid(f"expected a comparison after {value}, found {op!r}")
        vkind, literal = self._take()
        if vkind not in ("string", "word"):
            raise invalid(f"expected a value after {op}, found {literal!r}")
        return _comparison(path, op, literal, quoted=vkind == "string")


def _selector_path(selector: str) -> list[str | int]:
    path: list[str | int] = []
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", selector[1:]):
        path.append(int(index) if index else name)
    return path


def _resolve(doc: Any, path: list[str | int]) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(doc, list) or step >= len(doc):
                return _MISSING
            doc = doc[step]
        else:
            if not isinstance(doc, dict) or step not in doc:
                return _MISSING
            doc = doc[step]
    return doc


def _keyword_test(path: list[str | int], keyword: str) -> JsonTest:
    if keyword == "NOT EXISTS":
        return lambda doc: _resolve(doc, path) is _MISSING
    expected = {"IS NULL": None, "IS TRUE": True, "IS FALSE": False}[keyword]
    return lambda doc: _resolve(doc, path) is expected


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _comparison(path: list[str | int], op: str, literal: str, quoted: bool) -> JsonTest:
    text = json.loads(literal) if quoted else literal
    if not quoted and text == "*" and op == "=":
        return lambda doc: _resolve(doc, path) not in (_MISSING, None)
    number = None if quoted else _number(text)
    if number is not None:
        compare = _NUMERIC_OPS[op]

        def numeric(doc: Any) -> bool:
            found = _resolve(doc, path)
            if isinstance(found, bool) or not isinstance(found, (int, float)):
                return False
            return compare(float(found), number)
        return numeric
    if op not in ("=", "!="):
        raise invalid(f"{op} needs a number, found {literal}")
    want = op == "="

    def textual(doc: Any) -> bool:
        found = _resolve(doc, path)
        if found is _MISSING or isinstance(found, (dict, list)):
            return False
        value = found if isinstance(found, str) else json.dumps(found)
        return _glob(value, text) == want
    return textual


def _glob(value: str, pattern: str) -> bool:
    if "*" not in pattern:
        return value == pattern
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]").replace("?", "[?]"))


def _json_matches(test: JsonTest, message: str) -> bool:
    if not message.lstrip().startswith("{"):
        return False
    try:
        doc = json.loads(message)
    except ValueError:
        return False
    return test(doc)


# --- space-delimited patterns ------------------------------------------------------------

_FIELD = re.compile(r'"([^"]*)"|\[([^\]]*)\]|(\S+)')
_COND = re.compile(r"\s*([A-Za-z0-9_]+)\s*(!=|<=|>=|=|<|>)\s*(\"[^\"]*\"|[^\s|&]+)\s*")


@dataclass(frozen=True)
class _Slot:
    name: str | None  # None: `...`
    test: Callable[[dict[str, str]], bool] | None = None


def _delimited(body: str, text: str) -> FilterPattern:
    slots = [_slot(item.strip()) for item in body.split(",")] if body.strip() else []

    def matches(message: str) -> bool:
        values = [next(g for g in m.groups() if g is not None)
                  for m in _FIELD.finditer(message)]
        bound: dict[str, str] = {}
        if not _bind(slots, values, bound):
            return False
        return all(slot.test(bound) for slot in slots if slot.test is not None)

    return FilterPattern(text, matches)


def _slot(item: str) -> _Slot:
    if item == "...":
        return _Slot(None)
    if re.fullmatch(r"[A-Za-z0-9_]+", item):
        return _Slot(item)
    ors: list[list[tuple[str, str, str]]] = []
    for alternative in item.split("||"):
        conds = []
        for part in alternative.split("&&"):
            m = _COND.fullmatch(part)
            if m is None:
                raise invalid(f"cannot read the field condition {part.strip()!r}")
            conds.append((m.group(1), m.group(2), m.group(3).strip('"')))
        ors.append(conds)
    name = ors[0][0][0]

    def test(bound: dict[str, str]) -> bool:
        return any(all(_field_holds(bound.get(n), op, v) for n, op, v in conds)
                   for conds in ors)
    return _Slot(name, test)


def _field_holds(value: str | None, op: str, want: str) -> bool:
    if value is None:
        return False
    number, have = _number(want), _number(value)
    if number is not None and have is not None:
        return _NUMERIC_OPS[op](have, number)
    if op == "=":
        return _glob(value, want)
    if op == "!=":
        return not _glob(value, want)
    return False


def _bind(slots: list[_Slot], values: list[str], bound: dict[str, str]) -> bool:
    """Match the slots to the fields left to right, `...` taking any number of them."""
    if not slots:
        return not values
    head, rest = slots[0], slots[1:]
    if head.name is None:
        return any(_bind(rest, values[skip:], bound) for skip in range(len(values) + 1))
    if not values:
        return False
    bound[head.name] = values[0]
    return _bind(rest, values[1:], bound)
