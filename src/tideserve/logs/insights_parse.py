"""The Logs Insights subset tideserve runs, parsed into plain command objects.

    query    := command ('|' command)*            (lines starting with # are comments)
    fields   := 'fields' expr ['as' name] (',' ...)*
    display  := 'display' name (',' name)*
    filter   := 'filter' expr
    stats    := 'stats' agg ['as' name] (',' ...)* ['by' expr ['as' name] (',' ...)*]
    sort     := 'sort' expr ['asc'|'desc'] (',' ...)*
    limit    := 'limit' integer
    parse    := 'parse' field "glob with *" 'as' name (',' name)*
              | 'parse' field /regex with (?<name>...) groups/
    expr     := or ; or := and ('or' and)* ; and := not ('and' not)* ; not := 'not' not | cmp
    cmp      := sum [(= != < <= > >=) sum | ['not'] 'like' (string|/re/) | '=~' /re/
                     | ['not'] 'in' '[' literal, ... ']']
    sum      := product (('+'|'-') product)* ; product := unary (('*'|'/'|'%') unary)*
    unary    := '-' unary | atom ; atom := number | string | field | call | '(' expr ')'

Fields are `@message`-style names, dotted JSON paths (`a.b`) or `backquoted names`. A
malformed query raises MalformedQueryError (MalformedQueryException on the wire).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tideserve.errors import ValidationError

MAX_QUERY = 10_000
AGGREGATES = frozenset({"count", "count_distinct", "sum", "avg", "min", "max", "pct",
                        "stddev", "earliest", "latest"})
KEYWORDS = frozenset({"and", "or", "not", "like", "in", "as", "by", "asc", "desc"})
COMMANDS = frozenset({"fields", "display", "filter", "stats", "sort", "limit", "parse"})


class MalformedQueryError(ValidationError):
    code = "MalformedQueryException"


@dataclass(frozen=True)
class Token:
    kind: str  # name, number, string, regex, op, pipe
    text: str
    at: int  # offset in the query


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Any


@dataclass(frozen=True)
class Binary:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Like:
    operand: Any
    pattern: re.Pattern[str]
    negate: bool


@dataclass(frozen=True)
class In:
    operand: Any
    values: tuple[Any, ...]
    negate: bool


@dataclass(frozen=True)
class Named:
    expr: Any
    name: str


@dataclass(frozen=True)
class Fields:
    items: tuple[Named, ...]


@dataclass(frozen=True)
class Display:
    names: tuple[str, ...]


@dataclass(frozen=True)
class Filter:
    expr: Any


@dataclass(frozen=True)
class Stats:
    aggregates: tuple[Named, ...]  # each expr a Call to an aggregate
    by: tuple[Named, ...]


@dataclass(frozen=True)
class Sort:
    keys: tuple[tuple[Any, bool], ...]  # (expr, descending)


@dataclass(frozen=True)
class Limit:
    count: int


@dataclass(frozen=True)
class Parse:
    source: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]  # the fields it sets ...
    groups: tuple[str, ...]  # ... from these groups of `pattern`


Command = Fields | Display | Filter | Stats | Sort | Limit | Parse

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>`[^`]+`|@?[A-Za-z_][A-Za-z0-9_.@$-]*(?<![.-])|@[A-Za-z0-9_.]+)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[smhdw]?)
  | (?P<op>=~|!=|<=|>=|[=<>+\-*/%(),\[\]])
  | (?P<pipe>\|)
""", re.VERBOSE)


def tokenize(query: str) -> list[Token]:
    text = _without_comments(query)
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "/" and _regex_allowed(tokens):
            end = _regex_end(text, pos)
            tokens.append(Token("regex", text[pos + 1:end], pos))
            pos = end + 1
            continue
        m = _TOKEN.match(text, pos)
        if m is None:
            raise MalformedQueryError(f"unexpected symbol {text[pos]!r} at {pos}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    return tokens


def _without_comments(query: str) -> str:
    """Comment lines blanked, keeping every offset (column names quote the query's text)."""
    return "\n".join(" " * len(line) if line.lstrip().startswith("#") else line
                     for line in query.split("\n"))


def _regex_allowed(tokens: list[Token]) -> bool:
    """A '/' opens a regex after `like`, `=~` or `parse <field>`; elsewhere it divides."""
    if not tokens:
        return False
    last = tokens[-1]
    if last.text.lower() == "like" or last.text == "=~":
        return True
    return (len(tokens) >= 2 and tokens[-2].text.lower() == "parse"
            and last.kind == "name")


def _regex_end(text: str, start: int) -> int:
    pos = start + 1
    while pos < len(text):
        if text[pos] == "\\":
            pos += 2
            continue
        if text[pos] == "/":
            return pos
        pos += 1
    raise MalformedQueryError(f"the regular expression at {start} is not closed")


def parse_query(query: str) -> list[Command]:
    if len(query) > MAX_QUERY:
        raise MalformedQueryError(f"a query is at most {MAX_QUERY} characters")
    tokens = tokenize(query)
    commands: list[Command] = []
    start = 0
    for i in range(len(tokens) + 1):
        if i == len(tokens) or tokens[i].kind == "pipe":
            if i == start:
                raise MalformedQueryError("an empty command between pipes")
            commands.append(_Parser(tokens[start:i], query).command())
            start = i + 1
    return commands


class _Parser:
    def __init__(self, tokens: list[Token], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.i = 0

    # --- token helpers --------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise MalformedQueryError("the command ends too soon")
        self.i += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.kind in ("name", "op") and token.text.lower() == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            found = self.peek()
            raise MalformedQueryError(
                f"expected {text!r}" + (f" at {found.at}, found {found.text!r}" if found else ""))

    def done(self) -> None:
        token = self.peek()
        if token is not None:
            raise MalformedQueryError(f"unexpected {token.text!r} at {token.at}")

    def name(self) -> str:
        token = self.take()
        if token.kind != "name" or token.text.lower() in KEYWORDS:
            raise MalformedQueryError(f"expected a field name at {token.at}, "
                                      f"found {token.text!r}")
        return _field_name(token.text)

    # --- commands -------------------------------------------------------------------------

    def command(self) -> Command:
        head = self.take()
        verb = head.text.lower()
        if head.kind != "name" or verb not in COMMANDS:
            raise MalformedQueryError(f"unknown command {head.text!r} at {head.at}")
        result: Command = getattr(self, "_" + verb)()
        self.done()
        return result

    def _fields(self) -> Fields:
        return Fields(tuple(self._named_list()))

    def _display(self) -> Display:
        names = [self.name()]
        while self.accept(","):
            names.append(self.name())
        return Display(tuple(names))

    def _filter(self) -> Filter:
        return Filter(self.expr())

    def _stats(self) -> Stats:
        aggregates = self._named_list()
        for item in aggregates:
            if not (isinstance(item.expr, Call) and item.expr.name in AGGREGATES):
                raise MalformedQueryError(f"stats needs aggregate functions, found {item.name}")
        by = self._named_list() if self.accept("by") else []
        return Stats(tuple(aggregates), tuple(by))

    def _sort(self) -> Sort:
        keys = []
        while True:
            expr = self.expr()
            descending = False
            if self.accept("desc"):
                descending = True
            else:
                self.accept("asc")
            keys.append((expr, descending))
            if not self.accept(","):
                return Sort(tuple(keys))

    def _limit(self) -> Limit:
        token = self.take()
        if token.kind != "number" or not token.text.isdigit() or int(token.text) < 1:
            raise MalformedQueryError(f"limit needs a positive integer, found {token.text!r}")
        return Limit(int(token.text))

    def _parse(self) -> Parse:
        source = self.name()
        token = self.take()
        if token.kind == "regex":
            try:
                pattern = re.compile(token.text.replace("(?<", "(?P<").replace("(?P<=", "(?<=")
                                     .replace("(?P<!", "(?<!"))
            except re.error as exc:
                raise MalformedQueryError(f"bad regular expression: {exc}") from None
            names = tuple(pattern.groupindex)
            if not names:
                raise MalformedQueryError("parse /regex/ needs named groups (?<name>...)")
            return Parse(source, pattern, names, names)
        if token.kind != "string":
            raise MalformedQueryError(f"parse needs a \"glob\" or a /regex/ at {token.at}")
        glob = _unquote(token.text)
        self.expect("as")
        names_list = [self.name()]
        while self.accept(","):
            names_list.append(self.name())
        stars = glob.count("*")
        if stars != len(names_list):
            raise MalformedQueryError(f"the glob has {stars} '*' but {len(names_list)} names")
        parts = glob.split("*")
        regex = re.escape(parts[0]) + "".join(
            f"(?P<g{i}>.*?)" + re.escape(part) for i, part in enumerate(parts[1:]))
        # The last '*' at the end of a glob takes the rest of the message.
        if glob.endswith("*"):
            regex = regex[: regex.rfind(".*?)")] + ".*)"
        groups = tuple(f"g{i}" for i in range(stars))
        return Parse(source, re.compile(regex, re.DOTALL), tuple(names_list), groups)

    def _named_list(self) -> list[Named]:
        items = []
        while True:
            start = self.peek()
            expr = self.expr()
            end = self.tokens[self.i - 1]
            if self.accept("as"):
                name = self.name()
            elif isinstance(expr, Field):
                name = expr.name
            else:
                name = self._source_text(start, end)
            items.append(Named(expr, name))
            if not self.accept(","):
                return items

    def _source_text(self, start: Token | None, end: Token) -> str:
        """How AWS names an unaliased expression: its own text (`count(*)`, `bin(5m)`)."""
        begin = start.at if start is not None else end.at
        finish = end.at + len(end.text) + (2 if end.kind == "regex" else 0)
        return self.text[begin:finish]

    # --- expressions ----------------------------------------------------------------------

    def expr(self) -> Any:
        left = self._and()
        while self.accept("or"):
            left = Binary("or", left, self._and())
        return left

    def _and(self) -> Any:
        left = self._not()
        while self.accept("and"):
            left = Binary("and", left, self._not())
        return left

    def _not(self) -> Any:
        if self.accept("not"):
            return Unary("not", self._not())
        return self._comparison()

    def _comparison(self) -> Any:
        left = self._sum()
        token = self.peek()
        if token is None:
            return left
        lowered = token.text.lower()
        if token.kind == "op" and lowered in ("=", "!=", "<", "<=", ">", ">="):
            self.i += 1
            return Binary(lowered, left, self._sum())
        negate = False
        if lowered == "not" and token.kind == "name":
            following = self.peek(1)
            if following is not None and following.text.lower() in ("like", "in"):
                self.i += 1
                negate = True
                lowered = following.text.lower()
        if lowered in ("like", "=~"):
            self.i += 1
            return Like(left, self._like_pattern(regex_only=lowered == "=~"), negate)
        if lowered == "in":
            self.i += 1
            return In(left, self._list(), negate)
        return left

    def _like_pattern(self, regex_only: bool) -> re.Pattern[str]:
        token = self.take()
        try:
            if token.kind == "regex":
                return re.compile(token.text)
            if token.kind == "string" and not regex_only:
                return re.compile(re.escape(_unquote(token.text)))
        except re.error as exc:
            raise MalformedQueryError(f"bad regular expression: {exc}") from None
        raise MalformedQueryError(f"expected a string or /regex/ at {token.at}")

    def _list(self) -> tuple[Any, ...]:
        self.expect("[")
        values = [self._atom()]
        while self.accept(","):
            values.append(self._atom())
        self.expect("]")
        return tuple(values)

    def _sum(self) -> Any:
        left = self._product()
        while (t := self.peek()) is not None and t.kind == "op" and t.text in "+-":
            self.i += 1
            left = Binary(t.text, left, self._product())
        return left

    def _product(self) -> Any:
        left = self._unary()
        while (t := self.peek()) is not None and t.kind == "op" and t.text in ("*", "/", "%"):
            self.i += 1
            left = Binary(t.text, left, self._unary())
        return left

    def _unary(self) -> Any:
        if self.accept("-"):
            return Unary("-", self._unary())
        return self._atom()

    def _atom(self) -> Any:
        token = self.take()
        if token.kind == "number":
            return Literal(_number(token.text))
        if token.kind == "string":
            return Literal(_unquote(token.text))
        if token.kind == "op" and token.text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if token.kind == "name" and token.text.lower() not in KEYWORDS:
            following = self.peek()
            if following is not None and following.text == "(" and not token.text.startswith(
                    ("@", "`")):
                self.i += 1
                return Call(token.text.lower(), self._arguments())
            return Field(_field_name(token.text))
        raise MalformedQueryError(f"unexpected {token.text!r} at {token.at}")

    def _arguments(self) -> tuple[Any, ...]:
        args: list[Any] = []
        if self.accept(")"):
            return ()
        while True:
            if (t := self.peek()) is not None and t.kind == "op" and t.text == "*":
                self.i += 1
                args.append(Literal("*"))
            else:
                args.append(self.expr())
            if self.accept(")"):
                return tuple(args)
            self.expect(",")


def _field_name(text: str) -> str:
    return text[1:-1] if text.startswith("`") else text


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


_DURATION = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def _number(text: str) -> Any:
    """A number, or a duration (`5m`) as a Literal of milliseconds tagged by a tuple."""
    if text[-1] in _DURATION:
        return ("duration", int(float(text[:-1]) * _DURATION[text[-1]]))
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() \
        else value

