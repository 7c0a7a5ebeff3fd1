"""DataProcessing's JSONPath subset and joins, as AWS documents them."""

from __future__ import annotations

import json

import pytest

from tideserve.transform.filters import FilterError, JsonPath, apply_filter, join

CSV = "text/csv"
JSON = "application/json"


@pytest.mark.parametrize(("path", "line", "expected"), [
    ("$[1:]", b"id7,1,2,3", b"1,2,3"),  # drop an ID column
    ("$[0,-1]", b"id7,1,2,3,0.9", b"id7,0.9"),  # keep the ID and the prediction
    ("$[:2]", b"a,b,c", b"a,b"),
    ("$[-1]", b"a,b,c", b"c"),
    ("$[1]", b'a,"x,y",c', b'"x,y"'),  # quoted fields stay one field
])
def test_csv_records_take_the_index_forms(path, line, expected):
    assert apply_filter(JsonPath.parse(path), line, CSV) == expected


@pytest.mark.parametrize(("path", "record", "expected"), [
    ("$.features", {"id": 1, "features": [1, 2]}, [1, 2]),
    ("$['id','SageMakerOutput']", {"id": 1, "x": 2, "SageMakerOutput": 0.5},
     {"id": 1, "SageMakerOutput": 0.5}),
    ("$.f.['c1','c2']", {"f": {"c1": 1, "c2": 2, "c3": 3}}, {"c1": 1, "c2": 2}),
    ("$.data[0,2]", {"data": [5, 6, 7]}, [5, 7]),
    ("$[*].a", [{"a": 1}, {"a": 2}], [1, 2]),
    ("$.data[1:]", {"data": [5, 6, 7]}, [6, 7]),
])
def test_json_records_take_names_wildcards_indexes_and_slices(path, record, expected):
    out = apply_filter(JsonPath.parse(path), json.dumps(record).encode(), JSON)
    assert json.loads(out) == expected


@pytest.mark.parametrize("text", ["features", "$.f.['c1','c2.g']", "$[", "$[a]"])
def test_invalid_paths_are_refused(text):
    with pytest.raises(ValueError):
        JsonPath.parse(text)


def test_an_index_outside_the_record_is_an_error():
    with pytest.raises(FilterError, match="index 5 is outside the record of 3 fields"):
        apply_filter(JsonPath.parse("$[5]"), b"a,b,c", CSV)


def test_joins_append_csv_outputs_and_nest_json_ones():
    assert join(b"1,2,3", b"1", CSV) == b"1,2,3,1"
    assert json.loads(join(b'{"id": 4}', b"0.9", JSON)) == {"id": 4, "SageMakerOutput": 0.9}
    assert json.loads(join(b"[1, 2]", b"[0]", JSON)) == {"SageMakerInput": [1, 2],
                                                         "SageMakerOutput": [0]}
