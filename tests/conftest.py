"""Shared fixtures: tiny synthetic datasets written once per session (CPU, seconds)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

TINY = {"height": 96, "width": 128, "images": (6, 9), "object_scale": 0.25}


@pytest.fixture(autouse=True)
def _log_handlers_on_open_streams():
    """A library that adds its own console handler when first imported (lightning, torchmetrics) binds
    it to the stderr pytest captured for the test that imported it; once that test ended, a later test's
    log lines went to the closed stream and printed "--- Logging error --- Traceback" into that later
    test's output (test_cli before test_bad_input). Such handlers write to this test's stderr instead."""
    import logging
    import sys

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in (lg for lg in loggers if isinstance(lg, logging.Logger)):
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                handler.stream = sys.stderr  # not setStream: it flushes the closed stream first


@pytest.fixture(scope="session")
def tiny_feces(tmp_path_factory) -> Path:
    """8 labelled feces groups at 96x128 (never modified by tests: copy it first)."""
    from gmaiqa.data.synthetic import config_from
    from gmaiqa.data.synthetic_dataset import generate

    root = tmp_path_factory.mktemp("data") / "feces"
    generate(config_from(preset="feces", groups=8, seed=0, **TINY), root)
    return root


@pytest.fixture(scope="session")
def feces_12(tmp_path_factory) -> Path:
    """12 labelled feces groups at 96x128 (7 train / 2 val / 3 test): enough for every split to give
    each of 2 DDP ranks at least one group."""
    from gmaiqa.data.synthetic import config_from
    from gmaiqa.data.synthetic_dataset import generate

    root = tmp_path_factory.mktemp("data12") / "feces"
    generate(config_from(preset="feces", groups=12, seed=0, **TINY), root)
    return root


@pytest.fixture(scope="session")
def mos_pair(tmp_path_factory) -> Path:
    """The synthetic natural / ultrasound MOS pair, 5 references x 4 distortions per domain at 64x64."""
    from gmaiqa.data.synthetic_mos import generate_mos_pair

    return generate_mos_pair(
        tmp_path_factory.mktemp("mos") / "pair", references=5, distortions=4, size=64, seed=0
    )


@pytest.fixture(scope="session")
def trained_run(tiny_feces, tmp_path_factory) -> Path:
    """A finished one-stage GMANet L1 run on ``tiny_feces`` (one step, small heads): its folder."""
    import warnings

    from gmaiqa.train import train
    from helpers.tiny import compose_train, one_step

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    small = ["model.head_channels=16", "model.aggregation_channels=16", "evaluate=false"]
    cfg = compose_train("gmanet_l1_direct", one_step(tiny_feces) + small + [f"paths.run_dir={run_dir}"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg)
    return run_dir


def tiny_eval_datasets() -> list[str]:
    out = ["eval_datasets=synthetic_presets"]
    for name in ("leucorrhea", "blood"):
        out += [
            f"eval_datasets.{name}.synthetic.height=96",
            f"eval_datasets.{name}.synthetic.width=128",
            f"eval_datasets.{name}.synthetic.groups=3",
            f"eval_datasets.{name}.synthetic.images=[4,5]",
            f"eval_datasets.{name}.synthetic.workers=1",
        ]
    return out


@pytest.fixture(scope="session")
def table1_multirun(tiny_feces, tmp_path_factory) -> Path:
    """A real multirun: the attention-map sweep, two variants x two seeds, one L1* step each, evaluated
    on tiny leucorrhea and blood sets (read by the summarize and report tests, never modified)."""
    from gmaiqa.cli import main
    from helpers.tiny import one_step

    root = tmp_path_factory.mktemp("multirun")
    args = ["train", "-m", "sweep=attention_map", "experiment=gmanet_l1_direct", "seed=0,1"]
    args += [*one_step(tiny_feces), *tiny_eval_datasets(), f"paths.output_root={root}"]
    assert main([*args, f"paths.cache_dir={root / 'cache'}", "run_id=table1"]) == 0
    return root / "ablation_attention_map-multirun" / "table1"


@pytest.fixture
def feces_copy(tiny_feces, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(tiny_feces, target)
    return target
