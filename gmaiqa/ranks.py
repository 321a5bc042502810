"""Which process of a distributed job this is, from the environment alone: importable by the precheck and
the run folder's lock without Lightning or torch (``gmaiqa.distributed`` starts the ranks)."""

from __future__ import annotations

import os


def is_rank_zero() -> bool:
    """Whether this process is global rank 0, known before any Trainer exists (a plain run is).
    Only rank 0 writes run files; the other ranks read them."""
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key]) == 0
    local = int(os.environ.get("LOCAL_RANK", 0) or 0)
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", 0)) or 0)
    return local == 0 and node == 0
