"""``gmaiqa report``: the study report's spec built from a real (tiny) multirun holds every section with
the right numbers, and its offline HTML references only files that exist."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from gmaiqa.cli import main
from gmaiqa.study.spec import build_spec
from gmaiqa.summarize import collect, table_rows


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
    assert main(["report", str(table1_multirun), f"out={out}", "title=Attention maps"]) == 0
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
        "Attention maps" in text
        and "Checkpoint selection" in text
        and "model/attention_map=tenengrad" in text
    )
    assert main(["report", str(tmp_path / "nothing")]) == 2
