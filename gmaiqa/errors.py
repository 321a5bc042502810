"""Errors users see. Each names the file, row, group or config key and says what to do."""

from __future__ import annotations

import difflib
import signal

from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate


class GmaiqaError(Exception):
    """Base of every error raised on bad user input (files, manifests, configuration)."""


class ImageReadError(GmaiqaError):
    def __init__(
        self,
        path,
        reason: str | None = None,
        fix: str = "re-export or re-acquire the image, or remove its row",
    ):
        if reason is None:
            # torch's DataLoader re-raises a worker's exception as type(text), the text holding the worker's
            # traceback: the user's message is its last line ("...ImageReadError: PATH: reason; fix")
            message = str(path).rstrip().splitlines()[-1].split("ImageReadError: ", 1)[-1]
            where, _, rest = message.partition(": ")
            reason, _, fix = rest.partition("; ")
            path = where
        self.path, self.reason, self.fix = str(path), reason, fix
        super().__init__(f"{path}: {reason}; {fix}")


class ConfigError(GmaiqaError):
    def __init__(self, key: str, problem: str, fix: str):
        self.key, self.problem, self.fix = key, problem, fix
        super().__init__(f"config `{key}`: {problem}; {fix}")


def is_count(value, smallest: int) -> bool:
    """A whole number (not a bool, not text) of at least ``smallest``: a count of workers, threads or
    images, as the options that take one require."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= smallest


def did_you_mean(word: str, choices, quote: str = "'", prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a mistyped ``word``, else ``""``;
    ``prefix`` goes inside the quotes (``did you mean `gmaiqa check`?``)."""

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {quote}{prefix}{close[0]}{quote}?)" if close else ""


def instantiate(config, *args, **kwargs):
    """``hydra.utils.instantiate``, except that a user error raised by the constructor stays that error:
    Hydra wraps every exception in an ``InstantiationException``, which reached users as a traceback
    (``data.batch_size=1``, ``data.scale_range=[2,1]``) instead of the one message and exit 2."""

    try:
        return hydra_instantiate(config, *args, **kwargs)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, GmaiqaError):
            raise exc.__cause__ from None
        raise


class RunFailed(Exception):
    """A job that went wrong while it ran, not on a mistake in its command line (those are GmaiqaError,
    exit 2): training that became non-finite, a write the disk refused. One message, the run folder's
    ``failed.json`` (with ``record``), exit status 1."""

    exit_status = 1

    def __init__(self, message: str, record: dict | None = None):
        self.record = dict(record or {})
        super().__init__(message)


class Preempted(Exception):
    """The job was asked to stop by a signal (SIGTERM from a scheduler before pre-emption, SIGUSR1
    where a scheduler sends it first) and stopped cleanly: ``last.ckpt`` saved, ``interrupted.json``
    written. Exit status 128 + the signal's number, the shell's convention for a job a signal ended."""

    def __init__(self, signum: int, record: dict | None = None):

        self.signum = int(signum)
        self.hint = ""  # how to resume, set by the command that knows its run folder
        self.signal_name = signal.Signals(self.signum).name
        self.record = {"signal": self.signal_name, **(record or {})}
        where = ", ".join(f"{k} {v}" for k, v in self.record.items() if k in ("stage", "epoch", "step"))
        super().__init__(f"stopped by {self.signal_name}" + (f" ({where})" if where else ""))

    @property
    def exit_status(self) -> int:
        return 128 + self.signum
