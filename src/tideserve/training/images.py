"""Which framework a training job's `TrainingImage` names.

AWS framework training images are accepted from any account, region and tag, as inference
images are (serving/images.py), e.g.
`683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3` or
`763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310`. The
scikit-learn and XGBoost images are the same repositories for training and serving; PyTorch
has its own training repository. tideserve runs the user's script with the server's Python,
so the framework only decides what the image is taken to be.
"""

from __future__ import annotations

import re

from tideserve.errors import ValidationError

_REPOSITORIES = {
    "sagemaker-scikit-learn": "sklearn",
    "sagemaker-xgboost": "xgboost",
    "pytorch-training": "pytorch",
    "sagemaker-pytorch": "pytorch",
}
_ECR = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+?)(?::[\w.-]+|@sha256:[0-9a-f]{64})?$"
)
_OWN = re.compile(r"^tideserve/(?P<framework>sklearn|xgboost|pytorch)(?::[\w.-]+)?$")


def training_framework(image: str) -> str:
    """sklearn, xgboost or pytorch for `image`; ValidationError naming what is accepted."""
    own = _OWN.match(image)
    if own:
        return own.group("framework")
    ecr = _ECR.match(image)
    if ecr and ecr.group("repo") in _REPOSITORIES:
        return _REPOSITORIES[ecr.group("repo")]
    raise ValidationError(
        f"TrainingImage '{image}' is not supported: use an AWS framework training image for "
        f"scikit-learn, XGBoost or PyTorch ({', '.join(sorted(_REPOSITORIES))}) or "
        "tideserve/sklearn, tideserve/xgboost, tideserve/pytorch.")
