"""Request bodies to numpy arrays and predictions back to bytes: the content types of the
SageMaker inference toolkit's default input_fn/output_fn.

Accepted request content types (parameters such as `; charset=utf-8` are ignored):

- `text/csv`: one row per line, comma-separated numbers, no header. Blank lines are skipped.
  Every row must have the same number of columns.
- `application/json`: a list of rows `[[1, 2], [3, 4]]`, a single row `[1, 2]` (kept 1-D; the
  tabular runtimes read a 1-D array as one row), or an object `{"instances": [...]}`
  (TensorFlow-Serving / SageMaker style) or `{"inputs": ...}` (Hugging Face style); the value
  under the key is read like a bare list. Numbers or strings (a text pipeline takes strings);
  mixed or ragged rows are refused.
- `application/x-npy`: one `numpy.save` array (pickled object arrays are refused).
- `application/x-npz`: a `numpy.savez` archive holding exactly one array.

Response types for `Accept`: `application/json` (the default; a prediction array is written as
a nested list, e.g. `[0, 2, 1]`), `text/csv` (a 1-D prediction is one value per line, a 2-D one
is one row per line) and `application/x-npy`. `Accept` may list several types (the first one
supported wins); absent or `*/*` means the default.

Errors are `InvokeError` carrying the status the container answers with: 400 for a body that
does not parse, 415 for a content type or Accept that is not supported (the toolkit's
UnsupportedFormatError status, kept so clients see what SageMaker containers send).
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
NPZ = "application/x-npz"
DECODABLE = (JSON, CSV, NPY, NPZ)
ENCODABLE = (JSON, CSV, NPY)
# Bodies of these types reach a user's input_fn/transform_fn as str, as in the toolkit.
TEXT_TYPES = frozenset((JSON, CSV))


class InvokeError(Exception):
    """An invocation failed with the HTTP status the container answers with: 400 (the request
    body is malformed), 415 (content type or Accept not supported), 500 (the model raised).

    It is the container contract's status, not a domain error: the router turns any non-2xx
    into ModelError (424) for the caller, carrying this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(content_type: str | None) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def decode(body: bytes, content_type: str | None) -> np.ndarray:
    kind = media_type(content_type)
    if kind == JSON:
        return _decode_json(as_text(body, kind))
    if kind == CSV:
        return _decode_csv_fast(body) if isinstance(body, bytes) else _decode_csv(body)
    if kind == NPY:
        return _decode_npy(body)
    if kind == NPZ:
        return _decode_npz(body)
    raise InvokeError(
        415,
        f"Content type '{content_type or ''}' is not supported; "
        f"send one of {', '.join(DECODABLE)}.",
    )


def as_text(body: bytes | str, kind: str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvokeError(400, f"The {kind} body is not valid UTF-8: {exc}") from None


def _decode_json(text: str) -> np.ndarray:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvokeError(400, f"The JSON body does not parse: {exc}") from None
    except RecursionError:  # the client's document, not the model, is at fault
        raise InvokeError(400, "The JSON body is nested too deeply to parse.") from None
    if isinstance(doc, dict):
        key = "instances" if "instances" in doc else "inputs" if "inputs" in doc else None
        if key is None:
            raise InvokeError(
                400,
                'A JSON object body must hold "instances" or "inputs"; '
                f"got keys {sorted(doc)[:5]}.",
            )
        doc = doc[key]
    if not isinstance(doc, list):
        raise InvokeError(400, f"The JSON body must be a list of rows; got {type(doc).__name__}.")
    try:
        array = np.asarray(doc)
    except ValueError as exc:  # ragged rows
        raise InvokeError(400, f"The JSON rows do not form an array: {exc}") from None
    if array.dtype.kind not in "biufU":
        raise InvokeError(
            400, "The JSON body must hold numbers or strings, every row the same length."
        )
    return array


def _decode_csv_fast(body: bytes) -> np.ndarray:
    """numpy's C reader over the bytes: for a large (async) body about twice as fast as the
    line loop below and with no per-cell Python objects (a 200 MB body needs ~the array's
    size, not gigabytes). A body it refuses goes through the loop for the exact message."""
    if not body.strip():
        raise InvokeError(400, "The CSV body is empty.")
    try:
        return np.loadtxt(io.BytesIO(body), delimiter=",", comments=None, ndmin=2,
                          dtype=np.float64, encoding="utf-8")
    except ValueError:
        return _decode_csv(as_text(body, CSV))


def _decode_csv(text: str) -> np.ndarray:
    rows: list[list[float]] = []
    width = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split(",")
        try:
            row = [float(cell) for cell in cells]
        except ValueError:
            bad = next(c for c in cells if not _is_float(c))
            raise InvokeError(400, f"CSV line {number}: {bad.strip()!r} is not a number.") from None
        if width < 0:
            width = len(row)
        elif len(row) != width:
            raise InvokeError(400, f"CSV line {number} has {len(row)} columns; line 1 has {width}.")
        rows.append(row)
    if not rows:
        raise InvokeError(400, "The CSV body is empty.")
    return np.array(rows, dtype=np.float64)


def _is_float(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _decode_npy(body: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvokeError(400, f"The application/x-npy body is not a numpy array: {exc}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive sent as x-npy
        raise InvokeError(400, "The application/x-npy body is an .npz archive; send x-npz.")
    return array


def _decode_npz(body: bytes) -> np.ndarray:
    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as archive:
            names = list(archive.files)
            if len(names) != 1:
                raise InvokeError(
                    400, f"The application/x-npz body must hold one array; it holds {names}."
                )
            return np.asarray(archive[names[0]])
    except (ValueError, OSError, EOFError) as exc:
        raise InvokeError(
            400, f"The application/x-npz body is not a numpy archive: {exc}"
        ) from None


def choose_accept(accept: str | None, default: str = JSON) -> str:
    """The first type in `accept` that encode() can write; `default` when absent or `*/*`."""
    if not accept:
        return default
    for part in accept.split(","):
        kind = media_type(part)
        if kind in ENCODABLE:
            return kind
        if kind in ("*/*", "", "application/*") and default in ENCODABLE:
            return default
    raise InvokeError(
        415, f"Accept '{accept}' is not supported; ask for one of {', '.join(ENCODABLE)}."
    )


def encode(prediction: Any, accept: str | None, default: str = JSON) -> tuple[bytes, str]:
    kind = choose_accept(accept, default)
    if kind == JSON:
        return _encode_json(prediction), JSON
    if kind == CSV:
        return _encode_csv(prediction), CSV
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(prediction), allow_pickle=False)
    return buffer.getvalue(), NPY


def _encode_json(prediction: Any) -> bytes:
    if isinstance(prediction, np.ndarray | np.generic):
        prediction = prediction.tolist()
    return json.dumps(prediction, default=_json_default, allow_nan=True).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _encode_csv(prediction: Any) -> bytes:
    rows = np.asarray(prediction)
    if rows.ndim == 0:
        rows = rows.reshape(1)
    if rows.ndim > 2:
        raise InvokeError(
            415, f"A {rows.ndim}-D prediction cannot be written as text/csv; ask for JSON or NPY."
        )
    values = rows.tolist()
    if rows.ndim == 1:
        return "\n".join(_cell(v) for v in values).encode() + b"\n"
    return "\n".join(",".join(_cell(v) for v in row) for row in values).encode() + b"\n"


def _cell(value: Any) -> str:
    # repr() of a float is the shortest text that reads back to the same float.
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return repr(value) if isinstance(value, float) else str(value)
