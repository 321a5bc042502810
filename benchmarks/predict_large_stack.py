"""Wall time of `gmaiqa predict` with the default scorer on a 20-plane 2048x2048 16-bit stack (issue 32's
target): what a microscopist waits for, the process start and the reading included.

    uv run python benchmarks/predict_large_stack.py [--work DIR] [--repeats 2] [--method NAME ...]

Renders one fluorescence stack (the preset's 16-bit mono camera) at 2048x2048 with 20 planes once into
``--work`` as a multi-page TIFF, then times ``gmaiqa predict input=stack.tif`` as a separate process, with
no ``ckpt=``/``method=`` (the default scorer) and with each ``--method`` for comparison. Best of
``--repeats`` wall times; table printed, JSON in benchmarks/results/predict_large_stack.json.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

from gmaiqa import default_scorer  # noqa: E402
from gmaiqa.data.synth_config import config_from  # noqa: E402
from gmaiqa.data.synthetic import render_group  # noqa: E402


def make_stack(path: Path) -> None:
    if path.is_file():
        return
    cfg = config_from(
        preset="fluorescence", height=2048, width=2048, images=[20, 20], object_scale=1.0, seed=0
    )
    images, _ = render_group(cfg, 0)
    assert images[0].dtype == np.uint16
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.stack(images), metadata={"axes": "ZYX"})


def predict_seconds(stack: Path, out: Path, extra: list[str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = ["gmaiqa", "predict", f"input={stack}", f"out={out}", "clearest_images=false", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("outputs/predict-large-stack"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--method", action="append", default=[], help="also time predict method=NAME")
    parser.add_argument("--out", default="benchmarks/results/predict_large_stack.json")
    args = parser.parse_args()
    stack = args.work / "stack.tif"
    make_stack(stack)
    rows = []
    for label, extra in [
        (f"default ({default_scorer.method()})", []),
        *((m, [f"method={m}"]) for m in args.method),
    ]:
        seconds = min(predict_seconds(stack, args.work / "out", extra) for _ in range(args.repeats))
        rows.append(
            {
                "scorer": label,
                "stack": "20 x 2048x2048 uint16",
                "seconds": seconds,
                "ms_per_plane": seconds * 50,
            }
        )
    report("predict_large_stack", rows, args.out)


if __name__ == "__main__":
    main()
