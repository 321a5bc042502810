"""What eval, predict and benchmark check before anything is created (their ``check``): the output
folder, the split, the checkpoint(s), the method names, the data folder and the reading options; before
the scoring machinery (Lightning: seconds to import) is loaded."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gmaiqa.data.pixels import size_pair
from gmaiqa.data.splits import check_split
from gmaiqa.default_scorer import checked_method
from gmaiqa.errors import ConfigError, is_count
from gmaiqa.methods import check_methods, expand_methods, predict_measure
from gmaiqa.outputs import OUTPUTS, check_out


def check_dataset_root(key: str, root) -> None:
    """A dataset given to a command is a folder or a single stack file (``gmaiqa.data.dataset``)."""
    # here, not at import: loads cv2, tifffile only when this runs
    from gmaiqa.data.dataset import root_problem

    if root and (bad := root_problem(str(root))) is not None:
        what, fix = bad
        raise ConfigError(key, f"{root} {what}", fix)


def check_scoring(command: str, cfg: DictConfig) -> None:
    """eval, predict, benchmark: the output folder, the split, the checkpoint(s), the method names and the
    data folder, before the scoring machinery (Lightning: seconds to import) is loaded."""
    # here, not at import: loads torch only when this runs
    from gmaiqa.checkpoints import read_checkpoint

    check_out(cfg.out, cfg.overwrite, OUTPUTS[command])
    if "split" in cfg:
        check_split(cfg.split)
    if command == "predict" and cfg.get("method"):
        predict_measure(cfg)
    elif command == "predict" and cfg.get("ckpt") is None:
        checked_method(read_checkpoint)
    elif command in ("eval", "predict"):
        read_checkpoint(cfg.ckpt)
    root_key = "input" if command == "predict" else "data.root"
    root = OmegaConf.select(cfg, root_key)
    check_dataset_root(root_key, root)
    if root and Path(root).is_dir():
        dataset, out = Path(root).resolve(), Path(cfg.out).resolve()
        if out == dataset or dataset in out.parents:
            raise ConfigError(
                "out",
                f"{cfg.out} lies inside the dataset {root}",
                f"choose a folder outside it: what {command} writes (tables, clearest images, W&B files) "
                "would be read as part of the data the next time",
            )
    check_scoring_options(cfg, "" if command == "predict" else "data.")
    if command == "benchmark":
        check_methods(expand_methods(cfg.methods))


def check_scoring_options(cfg: DictConfig, data_prefix: str) -> None:
    """The options every scoring command shares, each a clear error naming its key (they used to fail
    inside the data loader or the preprocessing, or an accelerator=gpu without a GPU ran on the CPU)."""
    # its choices: the schema (gmaiqa.schemas.commands.Accelerator), at composition
    if cfg.accelerator in ("gpu", "cuda"):
        # here, not at import: loads torch only when this runs
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "accelerator",
                f"{cfg.accelerator} asked for, but torch sees no CUDA device here",
                "use accelerator=cpu, or auto (CUDA where there is one)",
            )
    workers = cfg.num_workers
    if not is_count(workers, 0):
        raise ConfigError("num_workers", f"{workers!r}", "give a number of worker processes, 0 for none")

    if cfg.get("resize") != "native":
        size_pair(
            cfg.get("resize"),
            "resize",
            what="is not a size",
            fix="use resize=[H,W], resize=native, or leave it out",
        )
    size_pair(
        cfg.get("block"),
        "block",
        smallest=2,
        what="is not a block φ of at least 2x2",
        fix="use e.g. block=[8,8], or leave it out",
    )
    check_reading_choices(cfg, data_prefix)


def check_reading_choices(cfg: DictConfig, prefix: str) -> None:
    """``validate`` and ``uniform_sizes`` of a command that reads a dataset, named as that command
    spells them (``data.validate`` for eval and benchmark, ``validate`` for check and predict)."""
    # here, not at import: loads cv2, tifffile only when this runs
    from gmaiqa.data.dataset import check_reading

    check_reading(
        OmegaConf.select(cfg, f"{prefix}validate"), OmegaConf.select(cfg, f"{prefix}uniform_sizes"), prefix
    )
