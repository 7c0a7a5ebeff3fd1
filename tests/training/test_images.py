import pytest

from tideserve.errors import ValidationError
from tideserve.training.images import training_framework


@pytest.mark.parametrize(("image", "framework"), [
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
     "sklearn"),
    ("763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310", "pytorch"),
    ("246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost@sha256:" + "0" * 64,
     "xgboost"),
    ("tideserve/sklearn:latest", "sklearn"),
])
def test_training_images_name_their_framework(image: str, framework: str) -> None:
    assert training_framework(image) == framework


@pytest.mark.parametrize("image", [
    "tideserve/onnx",  # a serving runtime, not a training framework
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310",
    "docker.io/library/python:3.12",
])
def test_other_images_are_refused_naming_what_is_accepted(image: str) -> None:
    with pytest.raises(ValidationError, match="sagemaker-scikit-learn"):
        training_framework(image)
