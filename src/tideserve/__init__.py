"""tideserve: self-hosted ML model hosting with SageMaker's API and Application Auto Scaling's
semantics."""

__version__ = "0.1.0"
