"""gmaiqa report DIR [DIR ...] [title=...] [out=...] [mode=offline|online]: see ``gmaiqa.study``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gmaiqa.errors import ConfigError
from gmaiqa.study.html import render_html
from gmaiqa.study.spec import ReportSpec, build_spec

MODES = ("offline", "online")


def run(cfg: DictConfig) -> int:
    if cfg.mode not in MODES:
        raise ConfigError("mode", f"{cfg.mode!r} is not a report mode", f"choose one of {', '.join(MODES)}")
    dirs = OmegaConf.to_container(cfg.dirs) if OmegaConf.is_list(cfg.dirs) else [cfg.dirs]
    spec = build_spec(dirs, cfg.title)
    if cfg.mode == "online":
        return run_online(spec, cfg)

    out = Path(cfg.out) if cfg.out else Path(dirs[0]) / "report"
    index = render_html(spec, out)
    figures = sum(len(s.charts) for s in spec.sections)
    print(f"report of {len(spec.sections)} folder(s), {figures} figures -> {index}")
    return 0


def run_online(spec: ReportSpec, cfg: DictConfig) -> int:
    try:
        from gmaiqa.study.wandb_report import build_report, publish
    except ImportError:
        raise ConfigError(
            "mode",
            "online reports need the W&B Reports API (wandb-workspaces)",
            "use `uv run --extra reports gmaiqa report ...`",
        ) from None
    logged = [run_set for section in spec.sections for run_set in section.run_sets]
    if not logged:
        raise ConfigError(
            "mode",
            "mode=online: no job of these folders logged to W&B",
            "use the offline report (mode=offline), or train with logger.wandb.enabled=true",
        )
    project = cfg.project or logged[0].project
    entity = cfg.entity or logged[0].entity
    report = build_report(spec, project, entity or default_entity())
    url = publish(report)
    print(
        f"W&B report of {len(spec.sections)} folder(s) -> {url}\n"
        "(runs logged offline appear in its panels after `wandb sync` of their wandb/offline-run-* folders)"
    )
    return 0


def default_entity() -> str:
    # here, not at import: loads wandb only when this runs
    import wandb

    try:
        return wandb.Api().default_entity
    except Exception as error:  # wandb raises its own UsageError, or a network error, here
        raise ConfigError(
            "mode",
            f"mode=online could not reach W&B ({error})",
            "log in with `wandb login` (or set WANDB_API_KEY), or write the offline report (mode=offline)",
        ) from None
