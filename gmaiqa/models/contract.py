"""The contract every model family meets, so that tasks, scoring, benchmarks and export treat them alike
(checked for every config in ``conf/model/`` by ``tests/test_model_contract.py``):

* a pure ``nn.Module`` (no Lightning), built from ``conf/model/<name>.yaml`` by its ``_target_`` with
  keyword-only arguments that are its own: a phase of the protocol such as GMANet's mask attention from
  L1 on is set by the stage (``stages[i].model``), not accepted and rejected by every model;
* ``forward(image, attention=None)``: ``image`` (B, 3, H, W) as the data pipeline prepares it (resized,
  z-scored), ``attention`` (B, 1, H, W) the attention map of the same pixels or None; returns a dict
  whose ``output1`` (B,) is one score per image (more keys are the model's own: auxiliary outputs,
  patch scores, a score map);
* ``uses_attention_map``: whether ``forward`` needs ``attention`` (scoring passes None otherwise);
* optionally ``output1(image, attention)`` -> (B,), equal to ``forward``'s ``output1`` without computing
  what only training needs (GMANet's aggregation module and auxiliary heads), and
  ``output1_map(image, attention)`` -> its score map, with ``receptive_field`` and ``reduction`` (input
  pixels per map cell): scoring then uses them (``gmaiqa.inference``: Output1-only inference, tiled
  single-pass scoring, ``gmaiqa export``);
* the score direction is not the model's but its task's (a focus-quality task: higher = clearer; the
  defocus task: lower = clearer), recorded in every checkpoint and applied by ``gmaiqa.scoring``; the
  preprocessing it needs (resize, attention map kind and φ) is the data config, recorded there too.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class FocusModel(Protocol):
    uses_attention_map: bool

    def forward(
        self, image: torch.Tensor, attention: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]: ...
