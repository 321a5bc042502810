"""Overrides that shrink any training job to seconds on a 2-core CPU, and composition of train configs."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from gmaiqa.cli import _register_resolvers
from gmaiqa.paths import conf_dir


def tiny_data(root: Path) -> list[str]:
    return [
        f"data.root={root}",
        "data.synthetic=null",
        "data.resize=[64,96]",
        "data.crop=[32,48]",
        "data.batch_size=3",
        "data.num_workers=0",
        "data.validate=headers",
        "data.block=[8,8]",
        "inference.patch=[32,48]",
        "inference.step=[32,48]",
        "inference.max_pixels=24576",  # 16 windows of 32x48
        "trainer.accelerator=cpu",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
    ]


SMALL_GMANET = ["model.head_channels=32", "model.aggregation_channels=32"]
# For jobs launched as processes that keep last.ckpt every step (the resume and signal tests): with its
# optimiser state a VGG16-BN checkpoint is 244 MB, MobileNetV3-Large's 57 MB, and the writes were most of
# a launch's time (24 s against 14 s a launch here). What those tests check does not depend on the trunk.
LIGHT_GMANET = [*SMALL_GMANET, "model/backbone=mobilenet_v3_large"]


def tiny_overrides(root: Path, run_dir: Path) -> list[str]:
    """GMANet with small heads; two training batches and one validation group per epoch."""
    return (
        tiny_data(root)
        + SMALL_GMANET
        + ["+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", f"paths.run_dir={run_dir}"]
    )


def one_step(root: Path) -> list[str]:
    """A fast dev run for any experiment (any model, any number of stages): one step and one validation
    group per stage."""
    return tiny_data(root) + [
        "+trainer.max_steps=1",
        "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1",
        "logger=none",
    ]


def compose_train(experiment: str | None, overrides: list[str], one_epoch: bool = True):
    _register_resolvers()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=([f"experiment={experiment}"] if experiment else []) + overrides)
    if one_epoch:
        with open_dict(cfg):
            for stage in cfg.stages:
                stage.max_epochs = 1
    return cfg


def tiny_saqm(root: Path) -> list[str]:
    """SAQM on a small MOS pair (see the mos_pair fixture), its trunk and attention block narrowed."""
    return [
        f"data.root={root}",
        "data.synthetic=null",
        "data.patches_per_image=2",
        "data.batch_size=4",
        "data.num_workers=0",
        "model.channels=64",
        "model.hidden=16",
        "model.width=0.25",
        "trainer.accelerator=cpu",
        "logger=none",
        "trainer.enable_progress_bar=false",
    ]
