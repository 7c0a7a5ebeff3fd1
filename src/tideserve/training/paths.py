"""Where a training job keeps its files under the server's state dir:

    <state-dir>/training/<job-name>/algo-1.log       the script's stdout and stderr, every
                                                     attempt appended (one stream per job)
    <state-dir>/training/<job-name>/attempt-<n>/     that attempt's /opt/ml (toolkit.Layout)
"""

from __future__ import annotations

from pathlib import Path

from tideserve.training.toolkit import CURRENT_HOST


def job_dir(training_root: Path, job_name: str) -> Path:
    return training_root / job_name.lower()


def log_path(training_root: Path, job_name: str) -> Path:
    """The one place a job's script log lives (what CloudWatch Logs would be fed from)."""
    return job_dir(training_root, job_name) / f"{CURRENT_HOST}.log"


def attempt_dir(training_root: Path, job_name: str, attempt: int) -> Path:
    return job_dir(training_root, job_name) / f"attempt-{attempt}"
