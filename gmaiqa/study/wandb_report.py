"""The online rendering of a study report: a W&B Report saved through the Reports API
(``wandb-workspaces``, the ``reports`` extra), built from the same spec as the offline HTML.

Text and tables are the spec's own (the same Table-1 cells as ``summary.md``). The figures are W&B
panels over the study's runs rather than pictures, so a reviewer can hover, filter and open runs; each
chart of the spec becomes the panel that draws the same data from what the runs logged:

- acc/SROCC bars -> a bar plot per metric of the runs' ``test/<metric>``, grouped by the W&B config key
  ``variant`` (logged by every stage: its overrides without seed, ``gmaiqa.summarize.variant_key``),
  mean with the range over seeds;
- the monitored validation metric per epoch -> a line plot of that metric against ``epoch``;
- score curves of test groups -> media panels of ``test/score_curves`` and ``test/attention_maps``
  (``gmaiqa.callbacks.wandb_reports.log_evaluation``).

Each stage of a folder gets a panel grid whose run set is filtered to the study's W&B groups (the job
labels) and that stage's job type; jobs that recorded no group are found by their run ids.
"""

from __future__ import annotations

from gmaiqa.errors import ConfigError
from gmaiqa.study.spec import Chart, ReportSpec, RunSet, Section, Table

SCORE_MEDIA = ("test/score_curves", "test/attention_maps")


def build_report(spec: ReportSpec, project: str, entity: str | None):
    """The ``wandb_workspaces`` Report object (nothing is sent: ``publish`` saves it)."""
    # here, not at import: loads wandb_workspaces only when this runs
    import wandb_workspaces.reports.v2 as wr

    blocks = [
        wr.TableOfContents(),
        wr.P(
            f"A study of {len(spec.sections)} multirun folder(s), written by `gmaiqa report`. Each section "
            "gives the question, the command that ran it, the test figures (mean ± std across seeds), the "
            "checkpoint each stage kept, and panels over the runs of each stage."
        ),
    ]
    for section in spec.sections:
        blocks += _section_blocks(wr, section, entity)
    owner = {"entity": entity} if entity else {}
    return wr.Report(project=project, title=spec.title, description=spec.title, blocks=blocks, **owner)


def publish(report) -> str:
    """Saves the report to W&B and returns its URL."""

    try:
        report.save()
    except Exception as error:  # the API's own errors: not logged in, no such project, no network
        raise ConfigError(
            "mode",
            f"mode=online: W&B did not save the report to {report.entity}/{report.project} ({error})",
            "check `wandb login` and the project (project=, entity=), "
            "or write the offline report (mode=offline)",
        ) from None
    return report.url


def _section_blocks(wr, section: Section, entity: str | None) -> list:
    blocks = [
        wr.H1(section.title),
        wr.P(section.question),
        wr.MarkdownBlock(f"```\n{section.command}\n```"),
        *(wr.P(note) for note in section.notes),
    ]
    for table in section.tables:
        blocks += [wr.H3(table.title), wr.MarkdownBlock(markdown_table(table))]
    stages = list(dict.fromkeys(run_set.stage for run_set in section.run_sets))
    for stage in stages:
        run_sets = [wr_runset(wr, rs, section.title, entity) for rs in section.run_sets if rs.stage == stage]
        panels = [panel for chart in section.charts for panel in chart_panels(wr, chart, stage)]
        blocks += [wr.H2(f"{section.title}: stage {stage}"), wr.PanelGrid(runsets=run_sets, panels=panels)]
    if not stages:
        blocks.append(
            wr.P(
                "No run of this folder was logged to W&B (logger.wandb.enabled=false): "
                "its figures are in the offline report."
            )
        )
    folders = [link.label for link in section.links if link.kind == "job"]
    if folders:
        blocks += [wr.H3(f"Job folders (under {section.folder})"), wr.UnorderedList(items=folders)]
    return blocks


def wr_runset(wr, run_set: RunSet, section_title: str, entity: str | None):
    """``entity``: the report's, for runs logged to the default entity (``logger.wandb.entity=null``)."""
    return wr.Runset(
        entity=run_set.entity or entity or "",
        project=run_set.project,
        name=f"{section_title} {run_set.stage}",
        filters=runset_filter(run_set),
    )


def runset_filter(run_set: RunSet) -> str:
    """The study's W&B groups and the stage's job type; run ids when some job recorded no group."""
    if run_set.groups and len(run_set.groups) == len(run_set.run_ids):
        groups = sorted(set(run_set.groups))
        return f"Metric('Group') in {groups!r} and Metric('JobType') == {run_set.stage!r}"
    return f"Metric('ID') in {sorted(set(run_set.run_ids))!r}"


def chart_panels(wr, chart: Chart, stage: str) -> list:
    """The W&B panels that draw ``chart`` for the runs of ``stage`` (none when it shows another stage)."""
    if chart.stage not in (None, stage):
        return []
    if chart.kind == "bars":
        return [
            wr.BarPlot(
                title=f"test {metric} per variant (mean; range over seeds)",
                metrics=[wr.SummaryMetric(f"test/{metric}")],
                groupby=wr.Config("variant"),
                groupby_aggfunc="mean",
                groupby_rangefunc="minmax",
                orientation="v",
            )
            for metric in chart.data
        ]
    if chart.kind == "curves":
        return [wr.LinePlot(title=chart.title, x=chart.x_label, y=[chart.y_label])]
    if chart.kind == "score_curves":
        return [wr.MediaBrowser(title=key, media_keys=[key]) for key in SCORE_MEDIA]
    raise ValueError(f"no W&B panel for a {chart.kind!r} chart")


def markdown_table(table: Table) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)
