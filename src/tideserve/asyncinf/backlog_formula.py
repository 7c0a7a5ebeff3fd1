"""The async backlog metrics' two formulas (spec §5.2, §1.8), pure and elementwise, so one
sample (the live sampler, backlog.py) and a simulated series (sim/async_run.py) are computed
by the same code."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def per_instance(size: ArrayLike, instances: ArrayLike) -> NDArray[np.float64]:
    """ApproximateBacklogSizePerInstance. At 0 instances it is the whole backlog (divided by
    1), so a target-tracking policy on it alone still scales out from zero once the backlog
    exceeds its target, as AWS documents: 7 queued at 0 instances -> 7.0; at 2 -> 3.5."""
    n = np.maximum(np.asarray(instances, dtype=np.float64), 1.0)
    out: NDArray[np.float64] = np.asarray(size, dtype=np.float64) / n
    return out


def without_capacity(size: ArrayLike, instances: ArrayLike,
                     empty_below: float = 0.0) -> NDArray[np.float64]:
    """HasBacklogWithoutCapacity: 1 while there is a backlog (more than `empty_below`: the
    simulator's fluid queue is never exactly empty) and no instance serves, else 0."""
    has = np.asarray(size, dtype=np.float64) > empty_below
    out: NDArray[np.float64] = (has & (np.asarray(instances) == 0)).astype(np.float64)
    return out
