"""Which runtime serves a model, from its container `Image`.

tideserve's own names are `tideserve/<runtime>[:tag]`. AWS framework inference images are
accepted from any account, region and tag and mapped to the matching runtime, so a
CreateModel call written for SageMaker works unchanged, e.g.
`683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3`.
"""

from __future__ import annotations

import re

from tideserve.errors import ValidationError

RUNTIMES = ("sklearn", "xgboost", "onnx", "pytorch", "python")

# ECR repository name (after the registry host) -> runtime.
_AWS_REPOSITORIES = {
    "sagemaker-scikit-learn": "sklearn",
    "sagemaker-xgboost": "xgboost",
    "xgboost": "xgboost",
    "pytorch-inference": "pytorch",
    "sagemaker-pytorch": "pytorch",
}

_ECR = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+?)(?::(?P<tag>[\w.-]+)|@sha256:[0-9a-f]{64})?$"
)
_OWN = re.compile(r"^tideserve/(?P<runtime>[a-z0-9]+)(?::[\w.-]+)?$")


def own_name(image: str) -> str | None:
    """`sklearn` for `tideserve/sklearn[:tag]`; None for any other image."""
    own = _OWN.match(image)
    return own.group("runtime") if own else None


def ecr_repository(image: str) -> str | None:
    """The repository of an ECR image URI (any account, region, tag or digest), e.g.
    `sagemaker-scikit-learn`; None for anything else. Training images (training/images.py)
    are read the same way."""
    ecr = _ECR.match(image)
    return ecr.group("repo") if ecr else None


def resolve_runtime(image: str) -> str:
    """The runtime name for `image`, or ValidationError naming what is accepted."""
    own = own_name(image)
    if own in RUNTIMES:
        return str(own)
    repo = ecr_repository(image)
    if repo in _AWS_REPOSITORIES:
        return _AWS_REPOSITORIES[str(repo)]
    raise ValidationError(
        f"Image '{image}' is not supported: use one of "
        f"{', '.join('tideserve/' + r for r in RUNTIMES)} or an AWS framework inference image "
        f"for scikit-learn, XGBoost or PyTorch ({', '.join(sorted(_AWS_REPOSITORIES))})."
    )
