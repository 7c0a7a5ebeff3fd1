"""Building the training-job service from the server's parts (server.build calls this once)."""

from __future__ import annotations

from sqlalchemy import Engine

from tideserve.clock import Clock
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.fleet.spot import SpotCapacity
from tideserve.logs.service import Logs
from tideserve.objectstore.remote import FsspecObjects
from tideserve.settings import Settings
from tideserve.training.record import JobStore
from tideserve.training.runner import JobContext
from tideserve.training.service import TrainingJobs
from tideserve.training.tables import add_missing_columns
from tideserve.training.transfer import EmbeddedObjects, ExternalObjects, JobObjects


def build_training_jobs(engine: Engine, settings: Settings, ledger: Ledger, catalog: Catalog,
                        clock: Clock, external: FsspecObjects | None,
                        logs: Logs | None = None,
                        spot: SpotCapacity | None = None) -> TrainingJobs:
    """`spot`: the fleet's spot capacity, shared with transform jobs (server.py)."""
    add_missing_columns(engine)  # schema.create_all has made the table; older ones gain columns
    objects: JobObjects = (ExternalObjects(external) if external is not None
                           else EmbeddedObjects(settings.state_dir / "s3"))
    spot = spot or SpotCapacity.from_state_dir(settings.state_dir, settings.time_scale)
    ctx = JobContext(store=JobStore(engine), objects=objects, spot=spot, ledger=ledger,
                     catalog=catalog, clock=clock, root=settings.state_dir / "training",
                     time_scale=settings.time_scale, region=settings.region, logs=logs)
    return TrainingJobs(ctx, settings.account, ControlStore(engine).put_tags)
