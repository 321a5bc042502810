"""An exponential moving average of the weights that starts where training starts.

Lightning's ``EMAWeightAveraging`` applies its decay from the first step, so the average keeps the
starting point's share (0.998**n after n steps: 29 % after two 308-step epochs) for most of a short
stage. For the weights that is a blur; for the batch-norm statistics, which the average carries too
(``use_buffers``), it is a fault: a random-init network's running variances are 1, a trained
MobileNetV3's a fifth of that or less, and the mixture, wrong in every layer, left the averaged network
scoring every image of every validation stack alike (a default_model_mobile_ema trial, val acc 0 and
SROCC 0 after two epochs while the raw weights' earlier runs validated at 0.75).

:class:`EMAWeightAveraging` ramps the decay up as TensorFlow's ``ExponentialMovingAverage`` does with
``num_updates``: after n updates the average moves by ``1 - min(decay, (1 + n) / (10 + n))``, so it
spans about the last ninth of the stage's steps until that exceeds ``1 / (1 - decay)`` steps. Everything
else (validation and selection on the average, checkpoints, resume) is Lightning's ``WeightAveraging``
with ``gmaiqa.callbacks.checkpointing`` writing the average into the selected checkpoint.
:func:`check_one_weight_averaging` refuses a job with two averaging callbacks before its run folder
exists.
"""

from __future__ import annotations

from functools import partial

import torch
from lightning.pytorch.callbacks import WeightAveraging

from gmaiqa.errors import ConfigError


def warmed_up_decay(decay: float, updates: int | torch.Tensor) -> float:
    """The decay after ``updates`` earlier updates: ``min(decay, (1 + n) / (10 + n))``."""
    n = float(updates)
    return min(decay, (1.0 + n) / (10.0 + n))


def _ema_step(
    average: torch.Tensor, current: torch.Tensor, updates: torch.Tensor, decay: float
) -> torch.Tensor:
    d = warmed_up_decay(decay, updates)
    return average * d + current * (1.0 - d)


class EMAWeightAveraging(WeightAveraging):
    """An exponential moving average of the weights and buffers, updated after every optimiser step from
    the stage's first, its decay warmed up (module docstring)."""

    def __init__(self, decay: float = 0.998, use_buffers: bool = True, device=None):
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"decay={decay}: use a number between 0 and 1 (e.g. 0.998)")
        self.decay = float(decay)
        super().__init__(device=device, use_buffers=use_buffers, avg_fn=partial(_ema_step, decay=self.decay))


def extra_callbacks(cfg) -> dict:
    """The job's ``callbacks:`` (name -> config), those set to null left out."""
    return {name: extra for name, extra in (cfg.get("callbacks") or {}).items() if extra is not None}


def check_one_weight_averaging(cfg) -> None:
    """Before anything runs: at most one of ``callbacks:`` averages the weights (each would swap its
    own average into the same weights for validation and for the selected checkpoint)."""
    # here, not at import: loads hydra's instantiation helpers only when this runs
    from hydra.utils import get_class

    averaging = []
    for name, extra in extra_callbacks(cfg).items():
        try:
            target = get_class(extra.get("_target_", ""))
        except (ImportError, ValueError, AttributeError):  # instantiate() reports a bad target later
            continue
        if isinstance(target, type) and issubclass(target, WeightAveraging):
            averaging.append(f"callbacks.{name}")
    if len(averaging) > 1:
        raise ConfigError(
            averaging[1],
            f"{' and '.join(averaging)} both average the weights",
            "keep one weight averaging callback (set the other to null)",
        )
