"""The Logs Insights subset: parsing, then running over records built as the store's
events would be (newest first)."""

from __future__ import annotations

import pytest

from tideserve.logs.insights_eval import record_of, run
from tideserve.logs.insights_parse import MalformedQueryError, parse_query

T0 = 1_700_000_100_000  # 2023-11-14 22:15:00 UTC, in epoch ms


def records(messages: list[str], step_ms: int = 60_000) -> list[dict]:
    """One event per message, `step_ms` apart from T0, returned newest first."""
    built = [record_of(i + 1, f"AllTraffic/i-{i % 2}", "/aws/sagemaker/Endpoints/e",
                       "123456789012", T0 + i * step_ms, T0 + i * step_ms + 5, m)
             for i, m in enumerate(messages)]
    return built[::-1]


def rows(query: str, recs: list[dict], limit: int | None = None) -> list[dict]:
    return [dict(row) for row in run(parse_query(query), recs, limit).rows]


def test_the_canonical_query_counts_errors_per_five_minutes() -> None:
    # Minutes 0..9 from 22:15; errors at the odd minutes: 16,18 | 21,23 | 25? no: 1,3,5,7,9.
    recs = records(["ERROR x" if i % 2 else "ok" for i in range(10)])
    got = rows("fields @timestamp, @message | filter @message like /ERROR/ "
               "| stats count(*) by bin(5m) | sort @timestamp desc | limit 20", recs)
    assert got == [{"bin(5m)": "2023-11-14 22:20:00.000", "count(*)": "3"},
                   {"bin(5m)": "2023-11-14 22:15:00.000", "count(*)": "2"}]


def test_without_sort_stats_rows_come_in_time_order() -> None:
    got = rows("filter @message like 'Traceback' | stats count(*) by bin(5m)",
               records(["Traceback"] * 10))
    assert [r["bin(5m)"] for r in got] == ["2023-11-14 22:15:00.000", "2023-11-14 22:20:00.000"]


def test_fields_filter_and_limit_over_json_events() -> None:
    recs = records(['{"level": "ERROR", "latency": 7, "req": {"id": "a"}}',
                    '{"level": "INFO", "latency": 9}',
                    '{"level": "ERROR", "latency": 2}'])
    got = rows('fields req.id, latency * 2 as doubled | filter level = "ERROR" and latency > 5',
               recs)
    assert got == [{"req.id": "a", "doubled": "14", "@ptr": "1"}]
    newest = rows("fields @timestamp, @logStream, @log | limit 1", recs)
    assert newest == [{"@timestamp": "2023-11-14 22:17:00.000",
                       "@logStream": "AllTraffic/i-0",
                       "@log": "123456789012:/aws/sagemaker/Endpoints/e", "@ptr": "3"}]


def test_parse_a_glob_and_stats_by_a_field_sorted() -> None:
    recs = records([f"user={u}, action={a}" for u, a in
                    [("ann", "write"), ("bob", "read"), ("ann", "write"), ("cy", "write")]])
    got = rows('parse @message "user=*, action=*" as user, action | filter action != "read" '
               "| stats count(*) as n by user | sort n desc", recs)
    assert got == [{"user": "ann", "n": "2"}, {"user": "cy", "n": "1"}]


def test_parse_a_regex_with_named_groups_and_aggregate() -> None:
    recs = records([f"took {ms} ms" for ms in (10, 20, 30, 40)])
    got = rows(r"parse @message /took (?<ms>\d+) ms/ | stats avg(ms) as mean, max(ms), "
               "count_distinct(ms), pct(ms, 50)", recs)
    assert got == [{"mean": "25", "max(ms)": "40", "count_distinct(ms)": "4",
                    "pct(ms, 50)": "30"}]


def test_filter_not_like_in_and_comments() -> None:
    recs = records(["alpha", "beta", "gamma"])
    got = rows("# a comment line\nfilter @message not like /et/ and @message in "
               '["alpha", "gamma"] | display @message', recs)
    assert [r["@message"] for r in got] == ["gamma", "alpha"]


@pytest.mark.parametrize("query", ["fields", "filter @message like", "stats count(*) by",
                                   "limit x", "frobnicate @message", "sort", "fields a |",
                                   'parse @message "a=*" as a, b', "stats @message"])
def test_malformed_queries(query: str) -> None:
    with pytest.raises(MalformedQueryError):
        parse_query(query)


def test_the_default_sort_streams_and_stops_at_the_limit() -> None:
    scanned = []

    def newest_first():
        for record in records([f"m{i}" for i in range(1000)]):
            scanned.append(record)
            yield record
    outcome = run(parse_query("fields @message | sort @timestamp desc | limit 3"), newest_first())
    assert [dict(r)["@message"] for r in outcome.rows] == ["m999", "m998", "m997"]
    assert len(scanned) <= 4


@pytest.mark.parametrize(("query", "required"), [
    ("fields @timestamp, @message | filter @message like /Traceback/ | stats count(*)",
     ("Traceback",)),
    ('filter @message like "a.b" and @message like /c d/ | limit 1', ("a.b", "c d")),
    ("filter @message like /Trace.*back/", ()),
    ("filter @message like /(?i)traceback/", ()),
    ("filter @message not like /Traceback/", ()),
    ("parse @message 'x=*' as x | filter @message like /x/", ()),
    ("filter level like /ERROR/", ()),
])
def test_literal_likes_become_the_store_prefilter(query: str, required: tuple) -> None:
    from tideserve.logs.insights_eval import required_substrings

    assert required_substrings(parse_query(query)) == required
