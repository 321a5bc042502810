"""A training stage that goes wrong says so and stops, losing nothing it had.

* :class:`FiniteTraining` - the first non-finite loss (checked before its backward pass) or gradient
  norm (before the optimiser step) stops the stage with one message naming stage, epoch and step; the
  weights are still those of the last finite step, so ``last.ckpt`` and the selected checkpoint stay
  finite (``gmaiqa.callbacks.checkpointing`` refuses to save non-finite weights as well). Lightning's
  ``detect_anomaly`` finds the operation but costs a traceback and several times the step time;
  ``EarlyStopping(check_finite=True)`` looks at a validation metric only, after a whole epoch of NaN
  steps (and then ends the stage as if it had finished). Under fp16 mixed precision the gradient scaler
  skips steps with infinite gradients by design, so only the loss is checked there.
* :data:`signals` - SIGTERM (and SIGUSR1, which schedulers send first) end the stage at the next batch
  boundary: Lightning's own handler stops its loops (``SIGTERMException``), ``ResumeCheckpoint`` saves
  ``last.ckpt`` and ``gmaiqa.stages`` turns the stop into :class:`gmaiqa.errors.Preempted`. Outside a
  fit (data generation, the test of a stage) the signal stops the job at once. Under SLURM with
  Lightning's auto-requeue, SIGUSR1 is left to Lightning (it saves ``hpc_ckpt_N.ckpt`` and requeues).
"""

from __future__ import annotations

import contextlib
import math
import signal

import torch
from lightning.pytorch.callbacks import Callback

from gmaiqa.errors import Preempted, RunFailed

CAUSES = (
    "the learning rate may be too high (task.optimizer.lr), or the data may hold non-finite or extreme "
    "values (`gmaiqa check root=DIR validate=full` reads every pixel)"
)


class NonFiniteTraining(RunFailed):
    pass


def stopped_at(trainer, stage: str) -> dict:
    return {"stage": stage, "epoch": int(trainer.current_epoch), "step": int(trainer.global_step)}


def non_finite(what: str, value: float, record: dict) -> NonFiniteTraining:
    word = "NaN" if math.isnan(value) else "infinite"
    return NonFiniteTraining(
        f"stage {record['stage']}: the {what} became {word} at epoch {record['epoch']}, step "
        f"{record['step']}; the stage stopped and no later stage starts (no non-finite weights were saved: "
        f"a last.ckpt holds the last finite step's); {CAUSES}",
        {**record, "cause": f"{what} {word}"},
    )


def weights_finite(module: torch.nn.Module) -> bool:
    """Every floating-point parameter and buffer finite (one reduction per tensor)."""
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    return all(bool(torch.isfinite(t).all()) for t in tensors)


class FiniteTraining(Callback):
    def __init__(self, stage: str):
        self.stage = stage

    def _stop_if(self, trainer, bad: bool, what: str, value: float) -> None:
        if trainer.world_size > 1:  # a NaN on one rank's batch stops every rank, or the others would wait
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise non_finite(what, value, stopped_at(trainer, self.stage))

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        value = float(loss.detach().float().sum())
        self._stop_if(trainer, not math.isfinite(value), "training loss", value)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if "16" in str(trainer.precision) and "bf16" not in str(trainer.precision):
            return  # fp16: the gradient scaler skips infinite steps itself
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if not grads:
            return
        norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
        self._stop_if(trainer, not math.isfinite(norm), "gradient norm", norm)


class SignalWatch:
    """Which stop signal arrived, and what it does: inside a fit, ask Lightning's loops to stop at the
    next batch boundary; elsewhere, stop the job now (:class:`Preempted`)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.trainer = None
        self.where: dict = {}

    def handle(self, signum, frame) -> None:
        self.received = int(signum)
        if self.trainer is not None:
            # Lightning's SIGTERM handler does this for SIGTERM; SIGUSR1 asks for the same stop
            self.trainer._signal_connector.received_sigterm = True
            return
        raise Preempted(signum, self.where)

    @contextlib.contextmanager
    def installed(self):
        """The handlers for the life of a job (Lightning adds its own around each fit and calls these
        from them); the previous ones come back afterwards."""
        # here, not at import: loads lightning only when this runs
        from lightning.fabric.plugins.environments import SLURMEnvironment

        names = [signal.SIGTERM]
        if hasattr(signal, "SIGUSR1") and not SLURMEnvironment.detect():
            names.append(signal.SIGUSR1)
        self.received, self.trainer, self.where = None, None, {}
        previous = {s: signal.signal(s, self.handle) for s in names}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextlib.contextmanager
    def fitting(self, trainer, stage: str):
        """Around ``trainer.fit``: a signal stops the loops cleanly; a stop becomes :class:`Preempted`."""
        # here, not at import: loads lightning only when this runs
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        self.trainer, self.where = trainer, {"stage": stage}
        try:
            yield
        except SIGTERMException:
            raise Preempted(self.received or signal.SIGTERM, stopped_at(trainer, stage)) from None
        finally:
            self.trainer = None


signals = SignalWatch()
