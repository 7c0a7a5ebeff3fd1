"""Server settings: what `tideserve up` was started with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
AWS_PERIOD_SECONDS = 60


@dataclass(frozen=True)
class Settings:
    state_dir: Path = field(default_factory=lambda: Path(".tideserve"))
    host: str = "127.0.0.1"
    port: int = 8080
    # The metric period in seconds. AWS's is 60; every AWS duration derived from it (alarm
    # windows, cooldowns) is scaled by period / 60, so --period 2 runs 30 times faster.
    period: float = 60.0
    region: str = DEFAULT_REGION
    # Further regions a SigV4 credential scope may name (besides `region`); none by default,
    # so a signature scoped to any other region is refused, as AWS's regional endpoints do.
    allowed_regions: tuple[str, ...] = ()
    account: str = DEFAULT_ACCOUNT
    database_url: str | None = None
    # The key that seals access-key secrets in the database (control/secret_box.py);
    # None = <state_dir>/secret.key. Keep it apart from database backups.
    secret_key_file: Path | None = None
    # Unpickling runs code: joblib/pickle model files load only when this is set.
    trust_pickle: bool = False
    # An fsspec URL prefix that s3://bucket/key maps onto (s3://, file:///mnt/s3, memory://);
    # None = the embedded store under <state-dir>/s3. Options: fsspec storage options.
    object_store: str | None = None
    object_store_options: dict[str, Any] = field(default_factory=dict, hash=False)
    # The most a model's data may unpack to, in bytes (archive.py's DEFAULT_MAX_MODEL_BYTES:
    # 30 GB, a SageMaker hosting instance's default storage volume).
    max_model_bytes: int = 30 * 10**9
    # The HTTP edge (api/http_guard.py): seconds a request's header may take from its first
    # byte, seconds a kept-alive connection may idle between requests, and the connections one
    # client (peer IP) may hold open; its least recently used idle one makes room past that.
    header_timeout: float = 10.0
    keep_alive_timeout: int = 30
    max_connections_per_client: int = 1024
    # Seconds the router waits for a model's answer (serving/router.py: 55, under botocore's
    # 60-s read timeout, so the client gets ModelError instead of retrying).
    model_timeout: float = 55.0
    # Tracing (tracing/setup.py): where spans go over OTLP/HTTP (None: kept in memory only,
    # unless OTEL_EXPORTER_OTLP_* say otherwise), and the share of requests traced, 0 to 1
    # (None: OTEL_TRACES_SAMPLER, by default every request).
    otlp_endpoint: str | None = None
    trace_sample_ratio: float | None = None

    def __post_init__(self) -> None:
        # Resolved once, at startup: instances run with their model directory as working
        # directory, so a relative state dir (and every path under it) would point elsewhere.
        object.__setattr__(self, "state_dir", Path(self.state_dir).resolve())

    @property
    def signing_regions(self) -> frozenset[str]:
        return frozenset({self.region, *self.allowed_regions})

    @property
    def time_scale(self) -> float:
        """Multiply an AWS duration in seconds by this to get ours."""
        return self.period / AWS_PERIOD_SECONDS
