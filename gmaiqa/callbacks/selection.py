"""Checkpoint selection as configuration: which epoch of a stage is kept as its result.

A stage's ``selection`` is ``{monitor, mode, constraints}``. After every validation the epoch is kept
when it is better on ``monitor`` than the epoch kept so far, among the epochs that meet every
constraint. Until some epoch meets them, the epoch nearest to their lower bounds is kept as a
fallback (the least summed shortfall, ``Constraint.shortfall``; the better ``monitor`` among equally
near epochs), so a stage always ends with a checkpoint; a fallback is reported (log, ``done.json``,
``metrics.json``, W&B summary, ``gmaiqa summarize``) so that a reader never mistakes it for a
constrained selection.
The lower bounds stay first in a fallback because they are what the paper selects for (a model that
ranks the clearest image first); the monitored loss only orders the epochs that qualify. Falling back
to the lowest loss alone kept an L1 epoch whose validation acc had collapsed to 0.44 (from 0.89 two
epochs before) because its score loss was lowest (experiments/default-model).

The GMANet paper's rules (``conf/selection/paper.yaml``): §4.3 keeps an L0 only when
98 % < val acc < 99 % and 120 <= t0 <= 129 (of its 207 validation groups), then the lowest L_diff
(§3.4); §4.3 and §5.1.1 keep L1, L2 and L1* only when val acc > 98 %, then the lowest L_score.

A constraint bounds one logged validation metric: ``above`` / ``below`` are strict (the paper's
"higher than", "lower than"), ``at_least`` / ``at_most`` inclusive ("between 120 and 129").
``of_groups: N`` says the bounds are counts out of N validation groups (the paper's t0 window on its
207 groups): they are scaled to the number of groups the stage validates on (the metric ``groups``
logged beside it) and rounded to the nearest integer, so 120-129 of 207 becomes 7-7 of 12 and stays
120-129 of 207.

The selected checkpoint is ``checkpoints/best-EEE.ckpt`` (written atomically, the previous one
removed); the callback's state (selected epoch and every epoch's verdict) is part of ``last.ckpt``,
so a resumed stage selects as if it had never stopped.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lightning.pytorch.callbacks import Checkpoint

from gmaiqa.callbacks.checkpointing import save_atomically
from gmaiqa.errors import ConfigError

MODES = ("min", "max")
CONSTRAINED, FALLBACK = "constrained", "fallback"
BOUNDS = ("above", "below", "at_least", "at_most")
COMPARE = {"above": operator.gt, "below": operator.lt, "at_least": operator.ge, "at_most": operator.le}


@dataclass(frozen=True)
class Constraint:
    metric: str
    above: float | None = None
    below: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    of_groups: int | None = None

    def bounds(self, groups: float | None) -> dict[str, float]:
        """The bounds in force for a validation set of ``groups`` groups."""
        scale = 1.0
        if self.of_groups is not None and groups:
            scale = groups / self.of_groups
        out = {}
        for name in BOUNDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = float(round(value * scale)) if self.of_groups is not None else float(value)
        return out

    def holds(self, value: float | None, groups: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        return all(COMPARE[name](float(value), bound) for name, bound in self.bounds(groups).items())

    def shortfall(self, value: float | None, groups: float | None) -> float:
        """How far ``value`` falls short of the lower bounds (``above``, ``at_least``; 0 on or over
        them): a count (``of_groups``) as a share of the validation groups, so the paper's t0 bound
        weighs like its acc bound (a share too); any other metric in its own units. Missing:
        infinitely short. Upper bounds do not count: the paper's ceilings (L0's acc < 99 %, t0 <= 129)
        keep pretraining from fitting too well, its floors keep out checkpoints that rank badly, and
        when no epoch fits both a model that ranks badly is the worse choice."""
        if value is None or math.isnan(value):
            return math.inf
        bounds = self.bounds(groups)
        missed = sum(
            max(bounds[name] - float(value), 0.0) for name in ("above", "at_least") if name in bounds
        )
        if self.of_groups is not None:
            missed /= groups or self.of_groups
        return missed

    def describe(self, groups: float | None = None) -> str:
        b = self.bounds(groups)
        lower = [f"{_num(b[k])} {'<' if k == 'above' else '<='}" for k in ("above", "at_least") if k in b]
        upper = [f"{'<' if k == 'below' else '<='} {_num(b[k])}" for k in ("below", "at_most") if k in b]
        text = " ".join([*lower, self.metric, *upper])
        if self.of_groups is not None:
            scaled = groups and int(groups) != self.of_groups
            text += (
                f" of {_num(groups)} groups (scaled from {self.of_groups})"
                if scaled
                else f" of {self.of_groups} groups"
            )
        return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class SelectionRule:
    monitor: str
    mode: str = "min"
    constraints: tuple[Constraint, ...] = field(default_factory=tuple)

    def better(self, value: float, than: float) -> bool:
        return value < than if self.mode == "min" else value > than

    def describe(self, groups: float | None = None) -> str:
        best = f"{'lowest' if self.mode == 'min' else 'highest'} {self.monitor}"
        if not self.constraints:
            return best
        return f"{best} among epochs with " + " and ".join(c.describe(groups) for c in self.constraints)

    def as_dict(self) -> dict:
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "constraints": [{k: v for k, v in asdict(c).items() if v is not None} for c in self.constraints],
        }


def rule_from_config(stage: Mapping, key: str) -> SelectionRule:
    """A stage's ``selection`` node as a rule; errors name ``key`` (e.g. ``stages.0.selection``)."""
    spec = stage.get("selection")
    if spec is None:
        monitor = stage.get("monitor")
        if monitor is None:
            raise ConfigError(
                f"{key}",
                "the stage has no selection rule",
                "add selection: {monitor: val/loss, mode: min} (see conf/selection/)",
            )

        warnings.warn(
            f"{key.rsplit('.', 1)[0]}.monitor is deprecated and will be removed in the next release: "
            f"use {key}: {{monitor: {monitor}, mode: min}}",
            FutureWarning,
            stacklevel=2,
        )
        spec = {"monitor": monitor, "mode": "min", "constraints": []}
    unknown = sorted(set(spec) - {"monitor", "mode", "constraints"})
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}", "unknown key", "a selection has monitor, mode and constraints"
        )
    if not spec.get("monitor"):
        raise ConfigError(f"{key}.monitor", "missing", "name a logged validation metric, e.g. val/loss_score")
    mode = spec.get("mode", "min")
    if mode not in MODES:
        raise ConfigError(f"{key}.mode", f"unknown mode {mode!r}", f"use one of {list(MODES)}")
    constraints = []
    for i, c in enumerate(spec.get("constraints") or []):
        where = f"{key}.constraints.{i}"
        unknown = sorted(set(c) - {"metric", *BOUNDS, "of_groups"})
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}",
                "unknown key",
                f"a constraint has metric, of_groups and bounds among {list(BOUNDS)}",
            )
        if not c.get("metric"):
            raise ConfigError(f"{where}.metric", "missing", "name a logged validation metric, e.g. val/acc")
        if not any(c.get(b) is not None for b in BOUNDS):
            raise ConfigError(where, f"no bound on {c['metric']}", f"give at least one of {list(BOUNDS)}")
        constraints.append(
            Constraint(
                metric=str(c["metric"]),
                of_groups=c.get("of_groups"),
                **{b: float(c[b]) for b in BOUNDS if c.get(b) is not None},
            )
        )
    return SelectionRule(str(spec["monitor"]), mode, tuple(constraints))


def _groups_metric(metric: str) -> str:
    prefix = metric.rsplit("/", 1)[0] if "/" in metric else ""
    return f"{prefix}/groups" if prefix else "groups"


class SelectCheckpoint(Checkpoint):
    """Keeps the selected epoch's checkpoint as ``best-EEE.ckpt`` (see the module docstring)."""

    def __init__(self, dirpath: str | Path, rule: SelectionRule):
        self.dirpath = Path(dirpath)
        self.rule = rule
        self.selected: dict | None = None  # epoch, step, value, status, path
        self.history: list[dict] = []  # one verdict per validated epoch

    @property
    def state_key(self) -> str:
        return f"SelectCheckpoint[{self.rule.monitor}]"

    def verdict(self, metrics: Mapping[str, float]) -> dict:
        """What this epoch's validation says under the rule (no side effect)."""
        values = {
            name: _value(metrics.get(name))
            for name in {
                self.rule.monitor,
                *(c.metric for c in self.rule.constraints),
                *(_groups_metric(c.metric) for c in self.rule.constraints if c.of_groups is not None),
            }
        }
        met = all(
            c.holds(values[c.metric], values.get(_groups_metric(c.metric))) for c in self.rule.constraints
        )
        shortfall = sum(
            c.shortfall(values[c.metric], values.get(_groups_metric(c.metric))) for c in self.rule.constraints
        )
        # JSON has no infinity: a constraint metric that was never logged is recorded as null
        return {
            "values": values,
            "constraints_met": met,
            "shortfall": shortfall if math.isfinite(shortfall) else None,
        }

    def _shortfall_of(self, epoch: int) -> float:
        """The kept epoch's shortfall, from its verdict (recomputed for a state saved before verdicts
        recorded it)."""
        verdict = next((h for h in self.history if h["epoch"] == epoch), None)
        if verdict is None:
            return math.inf
        if "shortfall" not in verdict:
            verdict = {**verdict, **self.verdict(verdict["values"])}
        return _distance(verdict)

    def _takes(self, value: float, verdict: dict) -> bool:
        if self.selected is None:
            return True
        met, kept_met = verdict["constraints_met"], self.selected["status"] == CONSTRAINED
        if met != kept_met:
            return met
        if not met:  # both fallbacks: the nearer to the constraints, then the better monitor
            kept = self._shortfall_of(self.selected["epoch"])
            this = _distance(verdict)
            if not math.isclose(this, kept, rel_tol=1e-9, abs_tol=1e-12):
                return this < kept
        return self.rule.better(value, self.selected["value"])

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.rule.monitor not in trainer.callback_metrics:
            return
        epoch, step = trainer.current_epoch, trainer.global_step
        verdict = self.verdict(trainer.callback_metrics)
        value = verdict["values"][self.rule.monitor]
        finite = value is not None and math.isfinite(value)
        takes = finite and self._takes(value, verdict)
        self.history = [h for h in self.history if h["epoch"] != epoch]
        # JSON has no NaN: a non-finite monitor is recorded as null, and said so
        values = {k: (v if v is None or math.isfinite(v) else None) for k, v in verdict["values"].items()}
        self.history.append({"epoch": epoch, "step": step, **verdict, "values": values, "finite": finite})
        if not takes:
            return
        path = self.dirpath / f"best-{epoch:03d}.ckpt"
        previous = self.selected["path"] if self.selected else None
        self.selected = {
            "epoch": epoch,
            "step": step,
            "value": value,
            "path": str(path),
            "status": CONSTRAINED if verdict["constraints_met"] else FALLBACK,
        }
        self.dirpath.mkdir(parents=True, exist_ok=True)
        # weights and metadata only (a third of a full checkpoint: Adam keeps two moments per weight);
        # resuming needs the optimiser, and takes it from last.ckpt
        save_atomically(trainer, path, weights_only=True)
        if trainer.is_global_zero and previous and previous != str(path):
            Path(previous).unlink(missing_ok=True)

    def outcome(self) -> dict:
        """The stage's selection, for done.json / metrics.json / W&B / summarize (the per-epoch verdicts
        are in ``history``)."""
        scaled = [_groups_metric(c.metric) for c in self.rule.constraints if c.of_groups is not None]
        groups = self.history[-1]["values"].get(scaled[0]) if scaled and self.history else None
        result = {
            "rule": self.rule.as_dict(),
            "rule_text": self.rule.describe(groups),
            "epochs_validated": len(self.history),
            "epochs_meeting_constraints": sum(h["constraints_met"] for h in self.history),
            "epochs_not_finite": sum(not h.get("finite", True) for h in self.history),
        }
        if self.selected is None:
            return {**result, "status": "none", "epoch": None}
        status = self.selected["status"] if self.rule.constraints else "unconstrained"
        return {
            **result,
            "status": status,
            "epoch": self.selected["epoch"],
            "value": self.selected["value"],
            "checkpoint": self.selected["path"],
        }

    def state_dict(self) -> dict:
        return {"selected": self.selected, "history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.selected = state_dict.get("selected")
        self.history = list(state_dict.get("history") or [])


def _distance(verdict: dict) -> float:
    """A verdict's shortfall as a number (recorded as null when infinite: JSON has no infinity)."""
    return math.inf if verdict["shortfall"] is None else verdict["shortfall"]


def _value(metric) -> float | None:
    if metric is None:
        return None
    return float(metric.item() if hasattr(metric, "item") else metric)
