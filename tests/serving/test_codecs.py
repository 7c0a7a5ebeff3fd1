"""The wire formats of the default input_fn/output_fn."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tideserve.serving.codecs import InvokeError, choose_accept, decode, encode


def _saved(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    if len(arrays) == 1 and "npy" in arrays:
        np.save(buffer, arrays["npy"])
    else:
        np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_csv_skips_blank_lines_and_reads_floats() -> None:
    assert decode(b"1,2\n\n3.5,-4e1\n", "text/csv").tolist() == [[1.0, 2.0], [3.5, -40.0]]


@pytest.mark.parametrize(
    ("body", "rows"),
    [
        (b"5", [[5.0]]),  # one cell is still a 2-D row
        (b"1\n2\n", [[1.0], [2.0]]),
        (b" 1 , 2 \r\n3,4", [[1.0, 2.0], [3.0, 4.0]]),
        (b"nan,inf\n1_0,2", [[float("nan"), float("inf")], [10.0, 2.0]]),  # float()'s forms
    ],
)
def test_csv_reads_the_same_rows_as_pythons_float(body: bytes, rows: list) -> None:
    assert np.array_equal(decode(body, "text/csv"), np.array(rows), equal_nan=True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"1,2\n3,x\n", "CSV line 2: 'x' is not a number."),
        (b"1,2\n\n3\n", "CSV line 3 has 1 columns; line 1 has 2."),
        (b"1,2,\n", "CSV line 1: '' is not a number."),
        (b"\n \n", "The CSV body is empty."),
        (b"1,\xff", "The text/csv body is not valid UTF-8"),
        (b"# comment\n1,2", "CSV line 1: '# comment' is not a number."),
    ],
)
def test_csv_errors_name_the_line_and_the_cell(body: bytes, message: str) -> None:
    with pytest.raises(InvokeError) as caught:
        decode(body, "text/csv")
    assert caught.value.status == 400 and caught.value.message.startswith(message)


def test_json_keeps_strings_for_text_pipelines() -> None:
    assert decode(b'["good film", "bad film"]', "application/json").tolist() == [
        "good film",
        "bad film",
    ]


def test_json_refuses_mixed_rows() -> None:
    with pytest.raises(InvokeError, match="numbers or strings") as caught:
        decode(b'[[1, "a", null]]', "application/json")
    assert caught.value.status == 400


@pytest.mark.parametrize("depth", [100, 100_000])
def test_json_nested_too_deeply_is_the_clients_error(depth: int) -> None:
    body = b"[" * depth + b"1" + b"]" * depth
    with pytest.raises(InvokeError) as caught:
        decode(body, "application/json")
    assert caught.value.status == 400


def test_npz_with_one_array_and_npz_sent_as_npy() -> None:
    rows = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(decode(_saved(x=rows), "application/x-npz"), rows)
    with pytest.raises(InvokeError, match="one array"):
        decode(_saved(x=rows, y=rows), "application/x-npz")
    with pytest.raises(InvokeError, match="send x-npz"):
        decode(_saved(x=rows), "application/x-npy")


def test_pickled_object_arrays_are_refused() -> None:
    with pytest.raises(InvokeError) as caught:
        decode(_saved(npy=np.array([{"a": 1}], dtype=object)), "application/x-npy")
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("prediction", "accept", "body"),
    [
        (np.array([0, 2, 1]), "application/json", b"[0, 2, 1]"),
        (np.array([[0.25, 0.75]]), "text/csv", b"0.25,0.75\n"),
        (np.array([1.5, 2.0]), "text/csv", b"1.5\n2.0\n"),
        (np.array(["setosa"]), "application/json", b'["setosa"]'),
        ({"scores": np.array([0.5])}, "application/json", b'{"scores": [0.5]}'),
    ],
)
def test_encode(prediction, accept: str, body: bytes) -> None:
    assert encode(prediction, accept) == (body, accept)


def test_encode_npy_round_trips() -> None:
    body, content_type = encode(np.array([[1, 2]]), "application/x-npy")
    assert content_type == "application/x-npy"
    assert np.load(io.BytesIO(body)).tolist() == [[1, 2]]


def test_accept_negotiation() -> None:
    assert choose_accept(None) == "application/json"
    assert choose_accept("*/*", default="text/csv") == "text/csv"
    assert choose_accept("text/html, text/csv;q=0.9") == "text/csv"
    with pytest.raises(InvokeError) as caught:
        choose_accept("text/html")
    assert caught.value.status == 415
