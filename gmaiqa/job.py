"""The files that say what a job is and whether it finished - shared by `gmaiqa train` (which writes
them), `gmaiqa summarize` and ``init_from`` (which read them)."""

from __future__ import annotations

DONE = "done.json"  # in a job folder: the job finished (with its figures); in a stage folder: the stage did
JOB = "job.json"  # the job's overrides, seed, commit and package versions, written once
FAILED = "failed.json"  # the job stopped on a user error (its message); a relaunch that finishes removes it
# overrides that choose how or where a job runs, not what it computes: a relaunch may change them, and
# they never tell two variants of a sweep apart
RUNTIME_OVERRIDES = (
    "resume",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.accelerator",
    "data.num_workers",
    "trainer.enable_progress_bar",
    "checkpoint.",
    "hydra/launcher",
    "hydra.",
)
