"""A quiet command line: every line a user sees once, and none that advertises or warns about code that
is not theirs. Called by each command once Hydra has set up logging."""

from __future__ import annotations

import logging
import warnings

# third-party deprecations the user can do nothing about (they come from inside Lightning)
KNOWN_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    # the task computes attention maps after transfer (gmaiqa.data.transforms.with_attention) on purpose
    r".*overridden `on_after_batch_transfer` in `LightningModule`.*",
    # optuna 2 (hydra-optuna-sweeper's) imports SQLAlchemy 1 names
    r".*declarative_base\(\)`` function is now available.*",
)


def ignore_known_warnings() -> None:
    for pattern in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


# messages that advertise other products
ADVERTS = ("litlogger", "LitLogger")


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(word in str(record.msg) for word in ADVERTS)


def quiet_third_party() -> None:
    """Lightning logs through its own console handler and, under Hydra, through the root logger's too,
    so every INFO line appeared twice: its own handler goes when the root logger has a console."""
    root = logging.getLogger()
    root_console = any(type(h) is logging.StreamHandler for h in root.handlers)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if root_console and type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
                logger.propagate = True  # Lightning stops propagation when it adds its own handler
    for handler in [*root.handlers, *logging.getLogger("lightning.pytorch").handlers]:
        if not any(isinstance(f, _DropAdverts) for f in handler.filters):
            handler.addFilter(_DropAdverts())
    ignore_known_warnings()
