"""``gmaiqa report``: the study report's spec built from a real (tiny) multirun holds every section with
the right numbers, and its offline HTML references only files that exist."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gmaiqa.cli import main
from gmaiqa.study.spec import build_spec
from gmaiqa.summarize import collect, table_rows
from gmaiqa.wandb_offline import find_runs, read_run
from helpers.tiny import one_step


class References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.anchors, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        if "id" in attrs:
            self.anchors.append(attrs["id"])

    def handle_data(self, data):
        self.text.append(data)


def test_the_spec_has_every_section_with_the_summary_numbers(table1_multirun):
    spec = build_spec([table1_multirun], title="attention maps")
    (section,) = spec.sections
    assert spec.title == "attention maps" and section.title == "table1"
    assert section.question == "What changes with model/attention_map?"
    assert (
        section.command.startswith("gmaiqa train -m ")
        and "model/attention_map=local_max,tenengrad" in section.command
    )
    assert "seed=0,1" in section.command
    table, selection = section.tables
    assert (table.columns, table.rows) == table_rows(*_summary(table1_multirun))  # = summary.md's cells
    assert [r[0] for r in table.rows] == ["model/attention_map=local_max", "model/attention_map=tenengrad"]
    assert len(selection.rows) == 4 and {r[2] for r in selection.rows} == {"l1_direct"}
    kinds = {c.kind: c for c in section.charts}
    assert set(kinds) == {"bars", "curves", "score_curves"}
    bars = kinds["bars"].data
    assert set(bars) == {"acc", "srocc"} and all(len(seeds) == 2 for seeds in bars["acc"].values())
    jobs = sorted(p.parent for p in table1_multirun.glob("*/done.json"))
    accs = sorted(json.loads((j / "done.json").read_text())["stages"][0]["metrics"]["acc"] for j in jobs)
    assert sorted(v for seeds in bars["acc"].values() for v in seeds) == accs
    assert len(kinds["curves"].data) == 4  # one line per job
    assert sum(link.label.endswith("job folder") for link in section.links) == 4


def _summary(folder: Path):
    table, datasets, _, selections = collect(folder)
    return table, datasets, selections


def test_the_offline_report_is_self_contained(table1_multirun, tmp_path, capsys):
    out = tmp_path / "report"
    # a title as the shell hands it over: free text, unquoted
    assert main(["report", str(table1_multirun), f"out={out}", "title=Attention maps (round 2)"]) == 0
    assert "-> " in capsys.readouterr().out
    page = References()
    page.feed((out / "index.html").read_text())
    # acc/SROCC bars, the one stage's learning curves, score curves: drawn beside the page, nothing remote
    assert page.images == ["figures/s0_bars.png", "figures/s0_curve_l1_direct.png", "figures/s0_scores.png"]
    for reference in page.images + [link for link in page.links if not link.startswith("#")]:
        assert not reference.startswith(("http:", "https:", "/")), reference
        assert (out / reference).exists(), reference
    assert all(link[1:] in page.anchors for link in page.links if link.startswith("#"))
    text = " ".join(page.text)
    assert (
        "Attention maps (round 2)" in text
        and "Checkpoint selection" in text
        and "model/attention_map=tenengrad" in text
    )
    assert main(["report", str(tmp_path / "nothing")]) == 2


@pytest.fixture(scope="module")
def logged_multirun(tiny_feces, tmp_path_factory) -> Path:
    """Two variants of the attention-map sweep, one step each, logged to offline W&B runs."""
    root = tmp_path_factory.mktemp("logged")
    args = ["train", "-m", "sweep=attention_map", "experiment=gmanet_l1_direct", "seed=0"]
    args += [a for a in one_step(tiny_feces) if not a.startswith("logger=")]
    args += ["logger.wandb.model_artifact=none", f"paths.output_root={root}", "run_id=logged"]
    assert main([*args, f"paths.cache_dir={root / 'cache'}"]) == 0
    return root / "ablation_attention_map-multirun" / "logged"


def test_the_online_report_filters_the_study_runs_and_draws_every_chart(logged_multirun):
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces.expr import expr_to_filters

    from gmaiqa.study.wandb_report import build_report, markdown_table

    spec = build_spec([logged_multirun], title="Attention maps")
    (section,) = spec.sections
    runs = [read_run(r) for r in find_runs(logged_multirun)]
    assert len(runs) == 2 and {r["job_type"] for r in runs} == {"l1_direct"}
    # every stage logs its variant (overrides, seed aside): the key the bars group by
    variants = sorted(r["config"]["variant"] for r in runs)
    assert [v.replace("tenengrad", "local_max") for v in variants] == [variants[0]] * 2
    assert "model/attention_map=local_max" in variants[0] and "model/attention_map=tenengrad" in variants[1]
    assert not any(word in variants[0] for word in ("seed=", "paths.", "run_id="))

    report = build_report(spec, project="focus", entity="lab")
    assert (report.project, report.entity, report.title) == ("focus", "lab", "Attention maps")
    texts = [getattr(b, "text", "") for b in report.blocks]
    assert section.title in texts and section.question in texts
    assert any(section.command in t for t in texts if isinstance(t, str))
    # the tables are the spec's (so summary.md's) cells
    for table in section.tables:
        assert markdown_table(table) in texts
    (grid,) = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    (runset,) = grid.runsets
    assert (runset.entity, runset.project) == ("lab", "gmaiqa")  # where the runs were logged
    parsed = expr_to_filters(runset.filters)
    by_key = {f.key.name: f for f in parsed.filters}
    assert sorted(by_key["group"].value) == sorted(r["group"] for r in runs)
    assert by_key["jobType"].value == "l1_direct"

    bars = [p for p in grid.panels if isinstance(p, wr.BarPlot)]
    assert [p.metrics[0].name for p in bars] == ["test/acc", "test/srocc"]
    assert all(p.groupby == wr.Config("variant") for p in bars)
    (curve,) = [p for p in grid.panels if isinstance(p, wr.LinePlot)]
    monitor = next(c.y_label for c in section.charts if c.kind == "curves")
    assert (curve.x, curve.y) == ("epoch", [monitor])
    assert any(monitor in h for r in runs for h in r["history"])  # the plotted metric was logged
    media = [p.media_keys for p in grid.panels if isinstance(p, wr.MediaBrowser)]
    assert media == [["test/score_curves"], ["test/attention_maps"]]
    media_logged = {k.removesuffix("/_type") for r in runs for h in r["history"] for k in h}
    assert {"test/score_curves", "test/attention_maps"} <= media_logged  # what the media panels show


def test_report_online_saves_and_prints_the_url(logged_multirun, monkeypatch, capsys):
    import gmaiqa.study.wandb_report as online

    saved = []
    monkeypatch.setattr(online, "publish", lambda report: saved.append(report) or "https://wandb.ai/lab/r/1")
    assert main(["report", str(logged_multirun), "mode=online", "entity=lab"]) == 0
    assert "https://wandb.ai/lab/r/1" in capsys.readouterr().out
    assert saved[0].entity == "lab" and saved[0].project == "gmaiqa"


def test_report_online_without_login_or_runs_says_what_to_do(
    logged_multirun, table1_multirun, monkeypatch, tmp_path, capsys
):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc with a key of the developer's
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    assert main(["report", str(logged_multirun), "mode=online"]) == 2
    assert "wandb login" in capsys.readouterr().err
    assert main(["report", str(table1_multirun), "mode=online", "entity=lab"]) == 2
    assert "no job of these folders logged to W&B" in capsys.readouterr().err
    assert main(["report", str(table1_multirun), "mode=html"]) == 2
    assert "config `mode`: 'html'; choose one of ['offline', 'online']" in capsys.readouterr().err
