"""gmaiqa report DIR [DIR ...] [title=...] [out=...]: see ``gmaiqa.study``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gmaiqa.study.html import render_html
from gmaiqa.study.spec import build_spec


def run(cfg: DictConfig) -> int:
    dirs = OmegaConf.to_container(cfg.dirs) if OmegaConf.is_list(cfg.dirs) else [cfg.dirs]
    spec = build_spec(dirs, cfg.title)
    out = Path(cfg.out) if cfg.out else Path(dirs[0]) / "report"
    index = render_html(spec, out)
    figures = sum(len(s.charts) for s in spec.sections)
    print(f"report of {len(spec.sections)} folder(s), {figures} figures -> {index}")
    return 0
