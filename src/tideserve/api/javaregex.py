"""Java-style regular expressions from botocore models, run with Python's `re`.

AWS services validate `pattern` constraints with Java's `Pattern.matches()` — the whole value
must match — so a compiled pattern here is always used with `fullmatch`. (`^[a-z](-*[a-z]){0,62}`
has no `$`, yet AWS rejects `bad name!`.)

What Python's `re` can't take is rewritten:
- `\\p{L}`, `\\p{N}`, `\\p{Zs}`, ... (Unicode general categories) become explicit code-point
  ranges built from `unicodedata` — exact for the Unicode version Python ships, built once and
  only when a pattern needs them (~0.3 s);
- `\\p{Print}`, `\\p{Alnum}`, `\\p{ASCII}`, ... are Java's POSIX classes, which are ASCII-only
  unless UNICODE_CHARACTER_CLASS is set, so they become ASCII ranges;
- `\\uD800\\uDC00`-style UTF-16 surrogate pairs become the single code point they encode;
- `\\z` -> `\\Z`, Java's `\\Z` -> `(?=\\n?\\Z)`; a quantifier on `$` (`$...{1,128}`, seen in
  models) is dropped, since an anchor repeated is the anchor;
- a `-` right after a class escape inside `[...]` is literal in Java, so it is escaped.
Anything else unsupported (`\\P{..}` inside a class, `&&` intersections) raises
`UnsupportedPattern`; callers skip that constraint rather than reject good input.
One known difference: Java counts string length in UTF-16 units, Python in code points.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from functools import cache

_POSIX = {
    "Lower": [(0x61, 0x7A)],
    "Upper": [(0x41, 0x5A)],
    "ASCII": [(0x00, 0x7F)],
    "Alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "Digit": [(0x30, 0x39)],
    "Alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "Punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "Graph": [(0x21, 0x7E)],
    "Print": [(0x20, 0x7E)],
    "Blank": [(0x20, 0x20), (0x09, 0x09)],
    "Cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "XDigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
    "Space": [(0x20, 0x20), (0x09, 0x0D)],
}


class UnsupportedPattern(ValueError):
    pass


@cache
def compile_java(pattern: str) -> re.Pattern[str]:
    """Compile a botocore (Java) pattern for use with `fullmatch`; cached per pattern."""
    try:
        return re.compile(translate(pattern))
    except re.error as exc:
        raise UnsupportedPattern(f"{pattern!r}: {exc}") from exc


def translate(pattern: str) -> str:
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            text, i = _escape(pattern, i, in_class)
            out.append(text)
        elif c == "[" and not in_class:
            in_class = True
            out.append(c)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):  # a leading ] is literal
                out.append("\\]")
                i += 1
        elif c == "]" and in_class:
            in_class = False
            out.append(c)
            i += 1
        elif c == "&" and in_class and pattern.startswith("&&", i):
            raise UnsupportedPattern(f"{pattern!r}: character-class intersection")
        elif c == "[" and in_class:
            raise UnsupportedPattern(f"{pattern!r}: nested character class")
        elif c == "$" and not in_class and pattern.startswith("{", i + 1):
            out.append("$")
            i = pattern.index("}", i) + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """Translate the escape at pattern[i] ('\\'); return (text, index after it)."""
    nxt = pattern[i + 1]
    if nxt in "pP" and pattern.startswith("{", i + 2):
        end = pattern.index("}", i)
        return _property(pattern, pattern[i + 3 : end], nxt == "P", in_class, end + 1)
    if nxt in "pP":  # one-letter form: \pL
        return _property(pattern, pattern[i + 2], nxt == "P", in_class, i + 3)
    if nxt == "u":
        return _utf16(pattern, i)
    if nxt == "x" and pattern.startswith("{", i + 2):
        end = pattern.index("}", i)
        return f"\\U{int(pattern[i + 3 : end], 16):08x}", end + 1
    if nxt == "z":
        return "\\Z", i + 2
    if nxt == "Z":
        return "(?=\\n?\\Z)", i + 2
    if nxt in "hHRXvVGkQE":
        raise UnsupportedPattern(f"{pattern!r}: \\{nxt}")
    return pattern[i : i + 2], i + 2


def _property(pattern: str, name: str, negate: bool, in_class: bool, after: int) -> tuple[str, int]:
    body = _ranges_text(_property_ranges(pattern, name))
    if not in_class:
        return ("[^" if negate else "[") + body + "]", after
    if negate:
        raise UnsupportedPattern(f"{pattern!r}: \\P{{{name}}} inside a class")
    # Java reads `[\p{Z}-_]` as "Z, '-', '_'"; in Python the '-' would start a range.
    if pattern.startswith("-", after) and not pattern.startswith("-]", after):
        return body + "\\-", after + 1
    return body, after


def _utf16(pattern: str, i: int) -> tuple[str, int]:
    code = int(pattern[i + 2 : i + 6], 16)
    if 0xD800 <= code <= 0xDBFF and pattern.startswith("\\u", i + 6):
        low = int(pattern[i + 8 : i + 12], 16)
        if 0xDC00 <= low <= 0xDFFF:
            point = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            return f"\\U{point:08x}", i + 12
    return f"\\u{code:04x}", i + 6


def _property_ranges(pattern: str, name: str) -> list[tuple[int, int]]:
    name = name.removeprefix("Is") if name.startswith("Is") and len(name) <= 4 else name
    if name in _POSIX:
        return _POSIX[name]
    table = _category_table()
    ranges = [r for cat, rs in table.items() if cat.startswith(name) for r in rs]
    if not ranges or len(name) > 2:
        raise UnsupportedPattern(f"{pattern!r}: \\p{{{name}}}")
    return sorted(ranges)


def _ranges_text(ranges: list[tuple[int, int]]) -> str:
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


@cache
def _category_table() -> dict[str, list[tuple[int, int]]]:
    """Unicode general category (Lu, Nd, Zs, ...) -> contiguous code-point ranges."""
    table: dict[str, list[tuple[int, int]]] = defaultdict(list)
    start, current = 0, unicodedata.category("\x00")
    for point in range(1, 0x110000):
        category = unicodedata.category(chr(point))
        if category != current:
            table[current].append((start, point - 1))
            start, current = point, category
    table[current].append((start, 0x10FFFF))
    return dict(table)
