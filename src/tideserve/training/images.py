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

from tideserve.errors import ValidationError
from tideserve.serving.images import ecr_repository, own_name

_REPOSITORIES = {
    "sagemaker-scikit-learn": "sklearn",
    "sagemaker-xgboost": "xgboost",
    "pytorch-training": "pytorch",
    "sagemaker-pytorch": "pytorch",
}
_FRAMEWORKS = ("sklearn", "xgboost", "pytorch")


def training_framework(image: str) -> str:
    """sklearn, xgboost or pytorch for `image`; ValidationError naming what is accepted."""
    own = own_name(image)
    if own in _FRAMEWORKS:
        return str(own)
    repo = ecr_repository(image)
    if repo in _REPOSITORIES:
        return _REPOSITORIES[str(repo)]
    raise ValidationError(
        f"TrainingImage '{image}' is not supported: use an AWS framework training image for "
        f"scikit-learn, XGBoost or PyTorch ({', '.join(sorted(_REPOSITORIES))}) or "
        "tideserve/sklearn, tideserve/xgboost, tideserve/pytorch.")
