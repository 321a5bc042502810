"""The offline rendering of a study report: ``OUT/index.html`` with its figures as PNG files beside it
(``OUT/figures``), tables as HTML and links relative to ``OUT``, readable in a browser without a server
or network."""

from __future__ import annotations

import html
import os
from pathlib import Path

from gmaiqa.study.spec import Chart, ReportSpec, Section

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1300px; color: #222; padding: 0 1em; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #aaa; }
.table { overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.8em; }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
th { background: #f0f0f0; } code { background: #f4f4f4; padding: 1px 4px; }
figure { display: inline-block; vertical-align: top; margin: 0.5em 0; width: 49%; }
figure.wide { width: 100%; }
figure img { width: 100%; } figcaption { font-size: 0.85em; color: #555; }
"""


def render_html(spec: ReportSpec, out: Path) -> Path:
    out = Path(out)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    body = [f"<h1>{html.escape(spec.title)}</h1>"]
    body.append(
        "<ul>"
        + "".join(f'<li><a href="#{_anchor(s)}">{html.escape(s.title)}</a></li>' for s in spec.sections)
        + "</ul>"
    )
    for section in spec.sections:
        body += _section(section, out, figures)
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(spec.title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
    index = out / "index.html"
    partial = index.with_name(".index.html.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(index)
    return index


def _anchor(section: Section) -> str:
    return "".join(c if c.isalnum() else "-" for c in section.title)


def _section(section: Section, out: Path, figures: Path) -> list[str]:
    parts = [
        f'<h2 id="{_anchor(section)}">{html.escape(section.title)}</h2>',
        f"<p><b>{html.escape(section.question)}</b></p>",
        f"<p>Command: <code>{html.escape(section.command)}</code></p>",
        *(f"<p>{html.escape(note)}</p>" for note in section.notes),
    ]
    for table in section.tables:
        parts.append(f'<h3>{html.escape(table.title)}</h3><div class="table"><table><tr>')
        parts.append("".join(f"<th>{html.escape(c)}</th>" for c in table.columns) + "</tr>")
        for row in table.rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
        parts.append("</table></div>")
    if section.charts:
        parts.append("<h3>Figures</h3>")
    for chart in section.charts:
        path = figures / f"{chart.name}.png"
        draw(chart, path)
        width = "" if chart.kind == "curves" else ' class="wide"'  # panels side by side need the page
        parts.append(
            f'<figure{width}><img src="{html.escape(os.path.relpath(path, out))}" '
            f'alt="{html.escape(chart.title)}"><figcaption>{html.escape(chart.title)}</figcaption></figure>'
        )
    if section.wandb_runs:
        ids = ", ".join(html.escape(i) for i in section.wandb_runs)
        parts.append(f"<p>W&amp;B run ids (after <code>wandb sync</code>, filter by them): {ids}</p>")
    if section.links:
        parts.append("<h3>Runs</h3><ul>")
        for link in section.links:
            target = os.path.relpath(link.path, out)
            parts.append(f'<li><a href="{html.escape(target)}">{html.escape(link.label)}</a></li>')
        parts.append("</ul>")
    return parts


def draw(chart: Chart, path: Path) -> None:
    # here, not at import: loads matplotlib only when this runs
    import matplotlib

    matplotlib.use("Agg")
    # here, not at import: loads matplotlib only when this runs
    import matplotlib.pyplot as plt

    if chart.kind == "bars":
        panels = list(chart.data.items()) or [("no test figures", {})]
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
        for ax, (metric, per_label) in zip(axes[0], panels):
            labels = list(per_label)
            means = [sum(v) / len(v) for v in per_label.values()]
            ax.bar(range(len(labels)), means, color="#9ab", label="mean")
            for i, values in enumerate(per_label.values()):
                ax.scatter([i] * len(values), values, color="#234", s=14, zorder=3)
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
            ax.set_title(metric)
            ax.set_ylim(0, 1.05)
    elif chart.kind == "curves":
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for label, points in chart.data.items():
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", ms=3, label=label)
        ax.set_xlabel(chart.x_label)
        ax.set_ylabel(chart.y_label)
        ax.legend(fontsize=6)
    else:  # score curves: each group's predicted scores beside its annotation (rescaled to 0-1)
        groups = list(chart.data.items())
        fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.2), squeeze=False)
        for ax, (group, curves) in zip(axes[0], groups):
            for key, style in (("predicted", "-o"), ("annotated", "--s")):
                values = curves[key]
                low, high = min(values), max(values)
                scaled = [(v - low) / (high - low) if high > low else 0.5 for v in values]
                ax.plot(scaled, style, ms=3, label=key)
            ax.set_title(group, fontsize=8)
            ax.set_xlabel(chart.x_label)
        axes[0][0].legend(fontsize=7)
    fig.suptitle(chart.title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
