"""How long a wrong command line takes to be refused, and what it leaves: each case runs as a fresh
`gmaiqa` process (as a user starts it) in an empty folder; wall time, exit status and the files left.

    uv run python benchmarks/bench_refusals.py [--checkout DIR] [--out benchmarks/results/bench_refusals.json]

`--checkout DIR` times another checkout's package with this environment (e.g. a `git worktree` of an
earlier commit) in the same run, for a before/after ratio. Times are the best of `--repeats`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

CASES = [
    ["train", "data.validate=fulll"],
    ["train", "trainer.devices=abc"],
    ["train", "logger.wandb.mode=onlin"],
    ["train", "data.batch_size=abc"],
    ["train", "task.optimizer.lr=-1"],
    ["benchmark", "data.root=/tmp", "out=/tmp/gmaiqa-bench-refusal", "logger.wandb.mode=ofline"],
]


LIMIT_S = 90  # a command line not refused by then has started the job: stopped, reported as such


def refuse(checkout: Path, argv: list[str]) -> tuple[float, int | str, list[str]]:
    probe = (
        f"import sys; sys.path.insert(0, {str(checkout)!r}); "
        f"from gmaiqa.cli import main; sys.exit(main({argv!r}))"
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        # its own session: a job that started instead of a refusal is stopped with every worker it forked
        proc = subprocess.Popen(
            [sys.executable, "-c", probe],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            status: int | str = proc.wait(timeout=LIMIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = f"still running after {LIMIT_S} s"
        seconds = time.perf_counter() - start
        left = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))
    return seconds, status, left


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkout", type=Path, default=None, help="another checkout to compare with")
    parser.add_argument("--out", default="benchmarks/results/bench_refusals.json")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1]
    checkouts = [("this", here)] + ([("other", args.checkout.resolve())] if args.checkout else [])
    rows = []
    for argv in CASES:
        row = {"command": " ".join(argv)}
        for label, checkout in checkouts:
            first = refuse(checkout, argv)
            # a job that started instead of a refusal is not timed twice
            runs = [first] + [refuse(checkout, argv) for _ in range(args.repeats - 1) if first[1] == 2]
            seconds, status, left = min(runs, key=lambda run: run[0])
            row |= {
                f"{label}_s": round(seconds, 2),
                f"{label}_exit": status,
                f"{label}_files_left": len(left),
            }
        if args.checkout:
            row["other/this"] = round(row["other_s"] / row["this_s"], 1)
        rows.append(row)
    report("refusals", rows, args.out)


if __name__ == "__main__":
    main()
