"""ARNs and the names inside them, as SageMaker writes them: the ARN carries the lower-cased
name (names are case-insensitive for uniqueness, case-preserving for display)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arns:
    region: str
    account: str

    def sagemaker(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    def model(self, name: str) -> str:
        return self.sagemaker("model", name)

    def endpoint_config(self, name: str) -> str:
        return self.sagemaker("endpoint-config", name)

    def endpoint(self, name: str) -> str:
        return self.sagemaker("endpoint", name)
