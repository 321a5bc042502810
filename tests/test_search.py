"""``sweep=search``: an Optuna search (hydra-optuna-sweeper) of 4 trials as a fast dev run; each trial's
objective is its final stage's selected validation value, the best trial is recorded and reported."""

from __future__ import annotations

import json

from omegaconf import OmegaConf

from gmaiqa.cli import main
from gmaiqa.study.spec import build_spec
from helpers.tiny import one_step

SMALL = ["model.head_channels=16", "model.aggregation_channels=16", "evaluate=false"]


def test_a_search_of_four_trials_records_its_best_trial(tiny_feces, tmp_path, capsys):
    args = ["train", "-m", "sweep=search", "experiment=gmanet_l1_direct", "hydra.sweeper.n_trials=4"]
    args += [*one_step(tiny_feces), *SMALL, f"paths.output_root={tmp_path}", "run_id=s"]
    assert main(args) == 0
    folder = tmp_path / "search-multirun" / "s"
    trials = {}
    for done in sorted(folder.glob("*/done.json")):
        overrides = json.loads((done.parent / "job.json").read_text())["overrides"]
        value = json.loads(done.read_text())["stages"][-1]["selection"]["value"]
        trials[done.parent.name] = (dict(o.split("=", 1) for o in overrides), value)
    assert len(trials) == 4
    lrs = {float(params["task.optimizer.lr"]) for params, _ in trials.values()}
    assert len(lrs) == 4 and all(1e-6 <= lr <= 1e-3 for lr in lrs)  # sampled, log-uniform range
    best = OmegaConf.to_container(OmegaConf.load(folder / "optimization_results.yaml"))
    params, value = min(trials.values(), key=lambda t: t[1])
    assert best["best_value"] == value
    assert float(best["best_params"]["task.optimizer.lr"]) == float(params["task.optimizer.lr"])
    (section,) = build_spec([folder]).sections
    search = section.tables[0]
    assert search.title.startswith("Hyper-parameter search (Optuna, 4 trials)")
    assert float(search.rows[0][-1]) == float(f"{value:.4g}")  # best first
    # the search must minimise what the final stage's selection minimises
    capsys.readouterr()
    assert main([*args[:-1], "run_id=wrong", "hydra.sweeper.direction=maximize"]) == 2
    assert "hydra.sweeper.direction=minimize" in capsys.readouterr().err
