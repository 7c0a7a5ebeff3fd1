"""PyTorch on the CPU: an exported program (`model.pt2`, from `torch.export.save`, the format
PyTorch now recommends) or a TorchScript file (`model.pt`, `.pth`, `.ts`, loaded with
`torch.jit.load`, which torch 2.13 deprecates but SageMaker users still ship). torch is
optional: it is imported when a model loads, with a clear error if absent.

The request array becomes a float32 tensor (the dtype most models are traced with); the output
tensor (or a tuple/list of them) comes back as numpy. Anything else (eager models, other
dtypes, GPUs) is a `model_fn`/`predict_fn` in code/inference.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tideserve.errors import ValidationError
from tideserve.serving.runtimes.base import (
    Framework,
    LoadOptions,
    RequestContext,
    find_model_file,
    leading_axis_rows,
)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ValidationError(
            "The pytorch runtime needs the torch package, which is not installed on this "
            "instance; install torch (CPU build is enough) and start the instance again."
        ) from None
    return torch


def _load(torch: Any, path: Path) -> Any:
    if path.suffix == ".pt2":
        return torch.export.load(str(path)).module()
    with warnings.catch_warnings():  # the deprecation is torch's message to model authors
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(str(path), map_location="cpu")
    model.eval()
    return model


def framework(options: LoadOptions) -> Framework:
    def model_fn(model_dir: str) -> Any:
        torch = _torch()
        if options.threads:
            torch.set_num_threads(options.threads)
        path = find_model_file(model_dir, (".pt2", ".pt", ".pth", ".ts"), "pytorch")
        return _load(torch, path)

    def predict_fn(data: Any, model: Any, context: RequestContext) -> Any:
        torch = _torch()
        tensor = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        with torch.inference_mode():
            output = model(tensor)
        if isinstance(output, tuple | list):
            return [o.detach().numpy() for o in output]
        return output.detach().numpy()

    return Framework("pytorch", model_fn, predict_fn, leading_axis_rows)
