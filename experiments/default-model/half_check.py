"""The shipped fp16 weights against the fp32 checkpoint they came from, on real-looking images: the
largest score difference (absolute and relative) and whether every group's clearest pick is the same,
from the predictions.csv of `gmaiqa predict` run with each (run.sh does).

    uv run python experiments/default-model/half_check.py FP32_PREDICT_DIR FP16_PREDICT_DIR..."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def scores(folder: Path) -> dict[tuple[str, str], float]:
    with open(folder / "predictions.csv", newline="") as handle:
        return {(r["group"], r["image"]): float(r["score"]) for r in csv.DictReader(handle)}


def picks(folder: Path) -> dict[str, str]:
    with open(folder / "clearest.csv", newline="") as handle:
        return {r["group"]: r["image"] for r in csv.DictReader(handle)}


def main() -> None:
    pairs = list(zip(sys.argv[1::2], sys.argv[2::2]))
    images, groups, same, worst_abs, worst_rel = 0, 0, 0, 0.0, 0.0
    for full_dir, half_dir in pairs:
        full, half = scores(Path(full_dir)), scores(Path(half_dir))
        assert full.keys() == half.keys(), f"{full_dir} and {half_dir} scored different images"
        for key, value in full.items():
            difference = abs(half[key] - value)
            worst_abs = max(worst_abs, difference)
            worst_rel = max(worst_rel, difference / max(abs(value), 1e-6))
        images += len(full)
        full_picks, half_picks = picks(Path(full_dir)), picks(Path(half_dir))
        groups += len(full_picks)
        same += sum(full_picks[g] == half_picks[g] for g in full_picks)
    result = {"images": images, "groups": groups, "same_pick": same}
    print(json.dumps({**result, "max_abs": worst_abs, "max_rel": worst_rel}))


if __name__ == "__main__":
    main()
