"""ONNX: one `.onnx` file run by onnxruntime on the CPU.

The request array is cast to the model's first input type (float32 for skl2onnx models). The
answer is the model's first output (the label for a converted classifier); with the predict
method `predict_proba` (see runtimes.base) it is the second output, the probabilities, turned
into a rows x classes array when the converter wrapped them in a ZipMap (a list of dicts).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tideserve.errors import ValidationError
from tideserve.serving.codecs import InvokeError
from tideserve.serving.runtimes.base import (
    Framework,
    LoadOptions,
    RequestContext,
    as_rows,
    default_predict_method,
    find_model_file,
    predict_method,
    tabular_rows,
)

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": np.str_,
}


class OnnxModel:
    def __init__(self, session: Any) -> None:
        self.session = session
        first = session.get_inputs()[0]
        self.input_name: str = first.name
        self.dtype = _DTYPES.get(first.type)
        if self.dtype is None:
            raise ValidationError(f"ONNX input type {first.type} is not supported.")
        self.output_names: list[str] = [o.name for o in session.get_outputs()]

    def run(self, rows: np.ndarray, method: str) -> Any:
        if method == "predict_proba" and len(self.output_names) < 2:
            raise InvokeError(400, "This ONNX model has one output; it has no predict_proba.")
        index = 1 if method == "predict_proba" else 0
        output = self.session.run([self.output_names[index]], {self.input_name: rows})[0]
        if isinstance(output, list) and output and isinstance(output[0], dict):
            keys = sorted(output[0])
            return np.array([[row[k] for k in keys] for row in output])
        return output


def framework(options: LoadOptions) -> Framework:
    default_method = default_predict_method(options.env)

    def model_fn(model_dir: str) -> Any:
        import onnxruntime

        path = find_model_file(model_dir, (".onnx",), "onnx")
        session_options = onnxruntime.SessionOptions()
        if options.threads:
            session_options.intra_op_num_threads = options.threads
            session_options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(path), session_options, providers=["CPUExecutionProvider"]
        )
        return OnnxModel(session)

    def predict_fn(data: Any, model: Any, context: RequestContext) -> Any:
        method = predict_method(context, default_method)
        if method not in ("predict", "predict_proba"):
            raise InvokeError(
                400, f"The ONNX runtime answers predict or predict_proba, not {method}."
            )
        rows = as_rows(data)
        return model.run(rows.astype(model.dtype, copy=False), method)

    return Framework("onnx", model_fn, predict_fn, tabular_rows)
