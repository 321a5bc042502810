"""Helpers shared by the benchmark scripts: timing and the table + JSON output."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch


def best_of(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Best wall time in seconds over ``repeats`` (the least disturbed run on a noisy machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def report(name: str, rows: list[dict], out: str | Path) -> None:
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(_fmt(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for r in rows:
        print("  ".join(_fmt(r[k]).ljust(widths[k]) for k in keys))
    record = {
        "benchmark": name,
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "rows": rows,
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(record, indent=1))
    print(f"-> {out}")


def cpu_model() -> str:
    """The CPU's marketing name: ``platform.processor()`` is empty on Linux, and the same script's figures
    differ by machine (AVX2 against AVX-512/AMX changes which precision is faster)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
