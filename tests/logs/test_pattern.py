"""Filter patterns on the examples of AWS's filter-pattern syntax page (spec §5.6)."""

from __future__ import annotations

import pytest

from tideserve.errors import ValidationError
from tideserve.logs.pattern import parse

APACHE = ('127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.html HTTP/1.0" '
          '404 1534')
JSON_EVENT = ('{"eventType": "UpdateTrail", "level": "ERROR", "latency": 0.25, "status": 503,'
              ' "path": "/invocations", "user": {"id": 7, "tags": ["a", "b"]}, "gone": null,'
              ' "ok": false}')

CASES = [
    # (case, pattern, message, matches)
    ("empty pattern: every event", "", "anything", True),
    ("a blank quoted pattern: every event", '" "', "anything", True),
    ("one term: contained", "ERROR", "an ERROR here", True),
    ("terms are case-sensitive", "ERROR", "an error here", False),
    ("two terms: both, any order", "ERROR ARGUMENTS", "ARGUMENTS were an ERROR", True),
    ("two terms: one missing", "ERROR ARGUMENTS", "an ERROR", False),
    ("quoted phrase: exact", '"INTERNAL SERVER ERROR"', "500 INTERNAL SERVER ERROR!", True),
    ("quoted phrase: words apart", '"INTERNAL SERVER ERROR"', "INTERNAL ERROR SERVER", False),
    ("?-alternatives: one present", "?ERROR ?WARN", "a WARN", True),
    ("?-alternatives: none present", "?ERROR ?WARN", "all INFO", False),
    ("exclusion: absent", "ERROR -ARGUMENTS", "an ERROR", True),
    ("exclusion: present", "ERROR -ARGUMENTS", "ERROR ARGUMENTS", False),
    ("regex term", "%ERR[OA]R%", "xERRAR", True),
    ("json: string equality", '{ $.level = "ERROR" }', JSON_EVENT, True),
    ("json: string inequality", '{ $.level != "ERROR" }', JSON_EVENT, False),
    ("json: wildcard", '{ $.eventType = "Update*" }', JSON_EVENT, True),
    ("json: numeric >= and &&", '{ $.status >= 500 && $.path = "/invocations" }',
     JSON_EVENT, True),
    ("json: || with parentheses", '{ ($.status = 200 || $.latency < 0.5) && $.ok IS FALSE }',
     JSON_EVENT, True),
    ("json: nested member and index", '{ $.user.id = 7 && $.user.tags[1] = "b" }',
     JSON_EVENT, True),
    ("json: presence", "{ $.latency = * }", JSON_EVENT, True),
    ("json: NOT EXISTS of an absent member", "{ $.x NOT EXISTS }", JSON_EVENT, True),
    ("json: NOT EXISTS of a present member", "{ $.level NOT EXISTS }", JSON_EVENT, False),
    ("json: IS NULL", "{ $.gone IS NULL }", JSON_EVENT, True),
    ("json: an object never matches", '{ $.user = "x" }', JSON_EVENT, False),
    ("json: a plain-text event never matches", '{ $.level = "ERROR" }', "level ERROR", False),
    ("space-delimited: all fields with conditions",
     "[ip, user, username, timestamp, request = *.html*, status_code = 4*, bytes]",
     APACHE, True),
    ("space-delimited: wrong field count", "[ip, user, username]", APACHE, False),
    ("space-delimited: ... and an alternative",
     "[..., status_code = 404 || status_code = 410, bytes]", APACHE, True),
    ("space-delimited: a numeric comparison", "[..., bytes > 2000]", APACHE, False),
]


@pytest.mark.parametrize(("pattern", "message", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_filter_pattern(pattern: str, message: str, expected: bool) -> None:
    assert parse(pattern).matches(message) is expected


@pytest.mark.parametrize("pattern", ["{ $.a = 1", "[a, b", "{ a = 1 }", "{ $.a > \"x\" }",
                                     "%a(b)%"])
def test_malformed_patterns_are_invalid_parameters(pattern: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(pattern)
    assert caught.value.code == "InvalidParameterException"


def test_plain_terms_become_the_store_prefilter() -> None:
    assert parse('ERROR "bad input" ?maybe -not').required == ("ERROR", "bad input")
    assert parse('{ $.level = "ERROR" }').required == ("{",)
    assert parse("[a, b = 1]").required == ()
