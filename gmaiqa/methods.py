"""What a scoring method's name means - a classical focus measure, a rank fusion (``rank:A+B``), the
default scorer (``default``) or a checkpoint (``ckpt:PATH``) - checked before anything is scored, for
``benchmark methods=[...]`` and ``predict method=NAME``."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from gmaiqa.default_model import NAME as DEFAULT_MODEL
from gmaiqa.default_scorer import NAME as DEFAULT_SCORER
from gmaiqa.default_scorer import checked_method
from gmaiqa.errors import ConfigError, GmaiqaError


def expand_methods(methods) -> list[str]:
    """``methods=all_classical`` (alone or in a list) stands for every registered classical measure."""
    # here, not at import: loads torch only when this runs
    from gmaiqa.focus import ALL_CLASSICAL, classical_names

    if isinstance(methods, str):
        listed = [methods]
    else:
        listed = list(
            OmegaConf.to_container(methods, resolve=True) if OmegaConf.is_config(methods) else methods
        )
    expanded: list[str] = []
    for method in listed:
        for name in classical_names() if str(method).lower() == ALL_CLASSICAL else [str(method)]:
            if name not in expanded:
                expanded.append(name)
    return expanded


def check_methods(methods: list[str]) -> list[str]:
    """Every method exists before any is run: a classical measure's name, or ``ckpt:PATH`` to a readable
    checkpoint (or a finished run folder, replaced by its checkpoint)."""
    # here, not at import: loads torch only when this runs
    from gmaiqa.checkpoints import checkpoint_path, read_checkpoint
    from gmaiqa.focus import get_measure

    if not methods:
        raise ConfigError("methods", "no method given", "e.g. methods=[TENG,LMG,ckpt:outputs/.../best.ckpt]")
    checked = []
    for method in methods:
        if method == DEFAULT_SCORER:  # what predict scores with given neither ckpt= nor method=
            checked_method(read_checkpoint)
            checked.append(method)
        elif method.startswith("ckpt:"):
            key, target = f"methods ({method})", method[len("ckpt:") :]
            read_checkpoint(target, key=key)
            checked.append(method if target == DEFAULT_MODEL else f"ckpt:{checkpoint_path(target, key=key)}")
        else:
            try:
                get_measure(method)
            except GmaiqaError as exc:
                raise ConfigError(
                    "methods",
                    str(exc),
                    "name measures of `gmaiqa.focus`, rank:A+B (a rank fusion), default or ckpt:PATH",
                ) from None
            checked.append(method)
    return checked


def predict_measure(cfg: DictConfig):
    """``predict method=NAME``: the classical focus measure (or rank fusion) that scores instead of a
    network, named alone (a ``ckpt=`` beside it is a contradiction, not a choice)."""
    # here, not at import: loads torch only when this runs
    from gmaiqa.focus import get_measure

    if cfg.get("ckpt") is not None:
        raise ConfigError(
            "method",
            f"method={cfg.method} and ckpt={cfg.ckpt} both name what scores",
            "give one: ckpt= for a network, method= for a classical focus measure",
        )
    try:
        return get_measure(str(cfg.method))
    except GmaiqaError as exc:
        raise ConfigError(
            "method", str(exc), "name a measure of `gmaiqa benchmark methods=all_classical`"
        ) from None
