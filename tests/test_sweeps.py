"""Every sweep and experiment composes and runs a fast dev run; a real (tiny) multirun with
cross-dataset evaluation is summarised as the paper's Table 1; the parallel launcher runs jobs."""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from gmaiqa.cli import _register_resolvers, main
from gmaiqa.paths import conf_dir
from helpers import previous_default
from helpers.tiny import compose_train, one_step, tiny_saqm

# the grid sweeps (Hydra's basic sweeper); sweep=search is Optuna's, run by tests/test_search.py
SWEEPS = sorted(p.stem for p in (conf_dir() / "sweep").glob("*.yaml") if p.stem != "search")
EXPERIMENTS = sorted(p.stem for p in (conf_dir() / "experiment").glob("*.yaml"))


def sweep_jobs(name: str, extra: list[str] = ()) -> list[list[str]]:
    """The override list of every job `gmaiqa train -m sweep=NAME` launches (Hydra's own expansion)."""
    _register_resolvers()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"sweep={name}"], return_hydra_config=True)
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()] + list(extra)
    batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)
    return batches[0]


@pytest.mark.parametrize("name", SWEEPS)
def test_every_job_of_every_sweep_composes(name):
    jobs = sweep_jobs(name)
    seeds = [o for job in jobs for o in job if o.startswith("seed=")]
    assert sorted(set(seeds)) == [f"seed={i}" for i in range(5)]  # the paper's five rounds
    variants = {tuple(o for o in job if not o.startswith("seed=")) for job in jobs}
    assert len(jobs) == 5 * len(variants) and len(variants) == {"seeds": 1, "baselines": 3, "saqm_da": 4}.get(
        name, 2
    )
    for job in jobs:
        cfg = compose_train(None, [f"sweep={name}", *job, "paths.run_dir=/tmp/unused"])
        assert cfg.stages and cfg.seed in range(5)


def test_the_ablation_sweeps_vary_what_the_paper_varies():
    variants = {
        name: {o for job in sweep_jobs(name) for o in job if not o.startswith("seed=")} for name in SWEEPS
    }
    assert variants["mask_depth"] == {"experiment=gmanet_paper_l2", "experiment=gmanet_l1_direct"}
    assert variants["attention_map"] == {"model/attention_map=local_max", "model/attention_map=tenengrad"}
    assert variants["aux_outputs"] == {"experiment=gmanet_paper", "experiment=gmanet_no_aux"}
    assert variants["backbone"] == {"model/backbone=vgg16_bn", "model/backbone=resnet50"}
    assert variants["baselines"] == {
        f"experiment=baseline_{m}" for m in ("wadiqam_nr", "wadiqam_fr", "twostream_iqa")
    }
    no_aux = compose_train("gmanet_no_aux", ["paths.run_dir=/tmp/unused"], one_epoch=False)
    assert no_aux.model.aux_outputs is False and no_aux.stages[0].max_epochs == 100  # §5.1.3
    l2 = compose_train("gmanet_paper_l2", ["paths.run_dir=/tmp/unused"], one_epoch=False)
    assert [s.model.mask_attention_depth for s in l2.stages] == [0, 1, 2]
    tenengrad = compose_train("quickstart", ["model/attention_map=tenengrad", "paths.run_dir=/tmp/unused"])
    assert tenengrad.model.attention_map.kind == "tenengrad"  # experiments leave the sweepable choice alone


@pytest.mark.parametrize("name", SWEEPS)
def test_every_sweep_runs_a_fast_dev_run(name, tiny_feces, mos_pair, tmp_path):
    # the launch composes the overrides before the sweep picks the experiment: force-add SAQM-only keys
    saqm = [("++" + o) if o.startswith(("data.patches", "model.")) else o for o in tiny_saqm(mos_pair)]
    fast = (
        saqm + ["+trainer.max_steps=1", "+trainer.limit_val_batches=2"]
        if name == "saqm_da"
        else one_step(tiny_feces)
    )
    code = main(
        ["train", "-m", f"sweep={name}", "seed=0", *fast, f"paths.output_root={tmp_path}", "run_id=dev"]
    )
    assert code == 0
    done = sorted(tmp_path.glob("*-multirun/dev/*/done.json"))
    assert len(done) == len(sweep_jobs(name, ["seed=0"]))


# experiments with a dedicated fit + test elsewhere (their own data contract and overrides)
RUN_ELSEWHERE = {
    "baseline": "test_baselines.py::test_short_fit_and_eval",
    "saqm": "test_saqm.py::test_short_fit_and_test_of_each_configuration",
    **{
        f"baseline_{m}": "test_baselines.py::test_short_fit_and_eval"
        for m in ("wadiqam_nr", "wadiqam_fr", "twostream_iqa")
    },
    **{
        f"saqm_{m}": "test_saqm.py::test_short_fit_and_test_of_each_configuration"
        for m in ("target_only", "source_only", "unsupervised_da", "semi_supervised_da")
    },
    "defocus_regressor": "test_defocus.py::test_short_fit_and_test",
    "gmanet_l0": "test_train.py::test_l0_run_writes_checkpoint_metrics_and_tables",
    "gmanet_l1": "test_train.py::test_later_stages_start_strictly_from_earlier_weights",
    "gmanet_l2": "test_train.py::test_later_stages_start_strictly_from_earlier_weights",
    "gmanet_l1_direct": "test_train.py::test_l1_direct_and_the_two_stage_protocol",
    "quickstart": "test_train.py::test_l1_direct_and_the_two_stage_protocol",
    # needs a trained light model and the shipped VGG16-BN as teacher; the mechanism on tiny data:
    "default_model_mobile_distill": "test_train.py::test_a_distilled_fit_keeps_its_teacher_out_of_the_ckpt",
}


def test_every_experiment_is_run_by_some_test():
    assert set(RUN_ELSEWHERE) <= set(EXPERIMENTS)
    here = Path(__file__).parent
    for where in RUN_ELSEWHERE.values():
        module, test = where.split("::")
        source = (here / module).read_text()
        assert f"def {test}(" in source, where


@pytest.mark.parametrize("name", [e for e in EXPERIMENTS if e not in RUN_ELSEWHERE])
def test_every_experiment_runs_a_fast_dev_run(name, tiny_feces, tmp_path):
    from gmaiqa.train import train

    overrides = one_step(tiny_feces) + [f"paths.run_dir={tmp_path / 'run'}"]
    if compose_train(name, overrides, one_epoch=False).stages[0].get("requires_init"):
        # the VGG16-BN fine-tunes (default_model_finetune_stack*): the VGG16-BN weights file the
        # repository keeps, which shipped before the MobileNetV3 that init_from=default names now
        overrides.append(f"init_from={previous_default.WEIGHTS_FILE}")
    cfg = compose_train(name, overrides, one_epoch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = train(cfg)
    assert [s["stage"] for s in summary["stages"]] == [s.name for s in cfg.stages]
    assert (tmp_path / "run" / "done.json").is_file()


def test_summarize_a_multirun_as_table_1(table1_multirun, tmp_path):
    from gmaiqa.wandb_offline import find_runs, read_run

    sweep = table1_multirun
    jobs = sorted(p.parent for p in sweep.glob("*/done.json"))
    assert len(jobs) == 4
    # each stage was evaluated on both extra datasets, every group of them
    stage_eval = json.loads((jobs[0] / "l1_direct" / "eval" / "blood" / "metrics.json").read_text())
    assert stage_eval["groups"] == 3

    assert main(["summarize", str(sweep)]) == 0
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert {r["variant"] for r in rows} == {"model/attention_map=local_max", "model/attention_map=tenengrad"}
    assert {r["dataset"] for r in rows} == {"test", "leucorrhea", "blood"} and {r["stage"] for r in rows} == {
        "l1_direct"
    }
    # recompute one cell from the jobs' own files
    row = next(
        r
        for r in rows
        if r["variant"] == "model/attention_map=tenengrad"
        and r["dataset"] == "leucorrhea"
        and r["metric"] == "t0"
    )
    values = []
    for job in jobs:
        if "model/attention_map=tenengrad" in json.loads((job / "job.json").read_text())["overrides"]:
            values.append(
                json.loads((job / "l1_direct" / "eval" / "leucorrhea" / "metrics.json").read_text())["t0"]
            )
    mean = sum(values) / 2
    std = math.sqrt(sum((v - mean) ** 2 for v in values))
    assert (
        int(row["n"]) == 2
        and float(row["mean"]) == pytest.approx(mean)
        and float(row["std"]) == pytest.approx(std)
    )
    table = (sweep / "summary.md").read_text()
    assert (
        "| variant | stage | seeds | selection | test acc | test t0 | test t1 | test srocc | leucorrhea acc"
        in table
    )
    statuses = [
        json.loads((job / "done.json").read_text())["stages"][0]["selection"]["status"] for job in jobs
    ]
    assert set(statuses) <= {"constrained", "fallback"}  # how each row's checkpoints were chosen, per job
    assert "one train/val/test split for every round (data.split_seed=0)" in table
    runs = [read_run(r) for r in find_runs(sweep / "wandb")]
    assert any(any(f.startswith("media/table/summary/table") for f in run["files"]) for run in runs)
    assert main(["summarize", str(tmp_path / "nothing-here")]) == 2


def test_parallel_launcher_runs_the_jobs(tiny_feces, tmp_path):
    code = main(
        [
            "train",
            "-m",
            "sweep=seeds",
            "seed=0,1",
            "hydra/launcher=local_parallel",
            "hydra.launcher.n_jobs=2",
            *one_step(tiny_feces),
            f"paths.output_root={tmp_path}",
            "run_id=parallel",
        ]
    )
    assert code == 0
    assert len(list(tmp_path.glob("gmanet-multirun/parallel/*/done.json"))) == 2


def test_slurm_launcher_composes():
    _register_resolvers()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", "trainer=ddp", "sweep=backbone"],
            return_hydra_config=True,
        )
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher") and cfg.hydra.launcher.max_num_timeout >= 1
    assert cfg.trainer.strategy._target_ == "gmaiqa.distributed.JobDDPStrategy"


@pytest.mark.parametrize(
    "alias, base",
    [
        *[
            (f"baseline_{m}", ["experiment=baseline", f"model={m}"])
            for m in ("wadiqam_nr", "wadiqam_fr", "twostream_iqa")
        ],
        *[
            (f"saqm_{m}", ["experiment=saqm", f"data.mode={m}"])
            for m in ("target_only", "source_only", "unsupervised_da", "semi_supervised_da")
        ],
    ],
)
def test_the_named_experiments_are_their_base_with_one_choice(alias, base):
    """baseline_<model> and saqm_<mode> keep their names (sweeps, earlier runs) but hold no copy."""
    fixed = ["paths.run_dir=/tmp/unused", "run_id=same"]
    named = OmegaConf.to_container(compose_train(alias, fixed, one_epoch=False), resolve=True)
    composed = OmegaConf.to_container(compose_train(None, base + fixed, one_epoch=False), resolve=True)
    assert named == composed and named["run_name"] == alias
    assert len((conf_dir() / "experiment" / f"{alias}.yaml").read_text().splitlines()) <= 8
