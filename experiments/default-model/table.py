"""Item 5 of issue 18 as a table: per preset, the default model beside the best classical measure and
Tenengrad on the same held-out groups, from the benchmark.csv files run.sh wrote.

    uv run python experiments/default-model/table.py OUT/bench [--json FILE] [--model WEIGHTS]

``--model``: the benchmark's ``ckpt:`` method that is the model under test (default: ``default``, the
shipped model; a weights file is matched by its file name, as benchmark may resolve its path).

The bar: the default model's acc and t0 are each at least the highest any classical measure reached
on that preset (the two may come from different measures). "Best classical" is the benchmark's own
ranking among the classical measures (acc, then SROCC)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

PRESETS = ("feces", "blood", "leucorrhea", "dense", "fluorescence", "reflected")
SHOWN = ("acc", "t0", "t1", "srocc", "z_error_um")


def read(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key in ("acc", "srocc", "z_error_um", "ms_per_image"):
            row[key] = float(row[key])
        for key in ("t0", "t1", "groups"):
            row[key] = int(row[key])
    return rows


def is_model(method: str, model: str) -> bool:
    return method == f"ckpt:{model}" or (model != "default" and method.endswith("/" + Path(model).name))


def preset_rows(rows: list[dict], model_name: str = "default") -> dict:
    classical = [r for r in rows if not r["method"].startswith("ckpt:")]
    model = next(r for r in rows if is_model(r["method"], model_name))
    fp32 = next((r for r in rows if r["method"].startswith("ckpt:") and r is not model), None)
    best = classical[0]  # benchmark.csv is ranked
    top_acc, top_t0 = max(classical, key=lambda r: r["acc"]), max(classical, key=lambda r: r["t0"])
    top = {"acc": top_acc["acc"], "acc_by": top_acc["method"], "t0": top_t0["t0"], "t0_by": top_t0["method"]}
    return {
        "groups": model["groups"],
        "default_model": model,
        "fp32_checkpoint": fp32,
        "best_classical": best,
        "tenengrad": next(r for r in classical if r["method"] == "TENG"),
        "classical_max": top,
        "bar_met": model["acc"] >= top["acc"] and model["t0"] >= top["t0"],
    }


def markdown(table: dict) -> str:
    lines = [
        "| preset | groups | method | acc | t0 | t1 | SROCC | z-error (µm) | highest classical acc, t0 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for preset, entry in table.items():
        named = [("default model (fp16)", entry["default_model"])]
        if entry["fp32_checkpoint"]:
            named.append(("its fp32 checkpoint", entry["fp32_checkpoint"]))
        named += [(f"best classical: {entry['best_classical']['method']}", entry["best_classical"])]
        named += [("Tenengrad", entry["tenengrad"])]
        for i, (name, row) in enumerate(named):
            first = f"{preset} ({'bar met' if entry['bar_met'] else 'bar missed'})" if i == 0 else ""
            groups = entry["groups"] if i == 0 else ""
            top = entry["classical_max"]
            bar = f"{top['acc']:.3f} ({top['acc_by']}), {top['t0']} ({top['t0_by']})" if i == 0 else ""
            lines.append(
                f"| {first} | {groups} | {name} | {row['acc']:.3f} | {row['t0']} | {row['t1']} | "
                f"{row['srocc']:.3f} | {row['z_error_um']:.2f} | {bar} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="the folder holding one benchmark folder per preset")
    parser.add_argument("--json", type=Path, help="also write the table as JSON")
    parser.add_argument("--model", default="default", help="the model under test: default, or a weights file")
    args = parser.parse_args()
    table = {p: preset_rows(read(args.bench / p / "benchmark.csv"), args.model) for p in PRESETS}
    print(markdown(table))
    met = [p for p, e in table.items() if e["bar_met"]]
    print(f"\nbar met on {len(met)} of {len(table)} presets: {', '.join(met) or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
