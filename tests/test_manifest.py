"""The dataset contract and `check`: every problem is reported with its file/line and a fix."""

import csv
import shutil

import numpy as np
import pytest

from gmaiqa.data.dataset import inspect_dataset, load_dataset
from gmaiqa.data.report import DatasetError


def _rows(root):
    with open(root / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _write(root, rows, columns=None):
    columns = columns or list(rows[0].keys())
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _errors(root):
    return [str(p) for p in inspect_dataset(root).errors]


def test_synthetic_dataset_is_valid_and_summarised(tiny_feces):
    report = inspect_dataset(tiny_feces)
    assert report.ok, report.problems
    s = report.summary()
    assert s["groups"] == 8 and s["groups_with_scores"] == 8 and s["image_sizes"] == {"96x128": s["images"]}
    stack = report.stacks[0]
    assert stack.z == tuple(range(len(stack))) and stack.scores[stack.clearest] == 100


def test_check_never_modifies_the_dataset(feces_copy):
    broken = feces_copy / _rows(feces_copy)[0]["image"]
    broken.write_bytes(b"broken")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in feces_copy.rglob("*") if p.is_file()}
    assert not inspect_dataset(feces_copy).ok
    assert before == {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in feces_copy.rglob("*") if p.is_file()}


def test_truncated_missing_and_duplicated_rows_are_each_named(feces_copy):
    rows = _rows(feces_copy)
    cut = feces_copy / rows[3]["image"]
    cut.write_bytes(cut.read_bytes()[:200])
    (feces_copy / rows[10]["image"]).unlink()
    _write(feces_copy, rows + [rows[20]])
    errors = "\n".join(_errors(feces_copy))
    assert f"{rows[3]['image']}: truncated PNG" in errors
    assert f"{rows[10]['image']}: file not found" in errors
    assert f"image {rows[20]['image']} is listed twice" in errors and "line" in errors
    with pytest.raises(DatasetError, match="truncated PNG"):
        load_dataset(feces_copy)


def test_group_level_problems(feces_copy):
    rows = _rows(feces_copy)
    g0 = [r for r in rows if r["group"] == "g0000"]
    g1 = [r for r in rows if r["group"] == "g0001"]
    g2 = [r for r in rows if r["group"] == "g0002"]
    g3 = [r for r in rows if r["group"] == "g0003"]
    g0[1]["z"] = g0[0]["z"]  # duplicate (group, z)
    g1[1]["clearest"] = "1"  # two clearest
    g2[0]["score"] = "120"  # out of range
    g2[1]["score"] = "nan"
    g3[:] = g3[:1]  # one image left
    _write(feces_copy, g0 + g1 + g2 + g3)
    errors = "\n".join(_errors(feces_copy))
    assert "duplicate (group, z) = (g0000" in errors
    assert "group 'g0001': 2 images marked clearest" in errors
    assert "score 120 is outside [0, 100]" in errors
    assert "score is NaN" in errors
    assert "group 'g0003': only 1 image" in errors


def test_mixed_sizes_inside_a_group(feces_copy):
    import cv2

    path = feces_copy / _rows(feces_copy)[0]["image"]
    cv2.imwrite(str(path), np.zeros((50, 60, 3), np.uint8))
    errors = "\n".join(_errors(feces_copy))
    # the odd file by name, and the way to proceed without re-exporting
    assert "group 'g0000': mixed image sizes: 8 images are 96x128, but g0000/z00.png (50x60)" in errors
    assert "data.uniform_sizes=crop" in errors


def test_clearest_is_derived_from_scores_and_checked_against_them(feces_copy):
    rows = _rows(feces_copy)
    for r in rows:
        r["clearest"] = ""
    _write(feces_copy, rows)
    stacks = load_dataset(feces_copy, validate="none")
    assert all(s.scores[s.clearest] == 100 for s in stacks)
    wrong = [r for r in rows if r["group"] == "g0000"]
    wrong[0]["clearest"] = "1" if wrong[0]["score"] != "100" else "0"
    wrong[1]["clearest"] = "1" if wrong[0]["score"] == "100" else ""
    _write(feces_copy, rows)
    assert any("marked clearest scores" in e for e in _errors(feces_copy))


def test_clearest_only_and_unlabelled_groups(feces_copy):
    rows = _rows(feces_copy)
    _write(feces_copy, rows, ["group", "image", "z", "clearest"])  # like the paper's blood/leucorrhea sets
    s = inspect_dataset(feces_copy).summary()
    assert s["groups_with_clearest_only"] == 8 and s["groups_with_scores"] == 0
    with pytest.raises(DatasetError, match="has no scores"):
        load_dataset(feces_copy, require_labels=True)
    _write(feces_copy, rows, ["group", "image", "z"])
    assert inspect_dataset(feces_copy).summary()["unlabelled_groups"] == 8


def test_missing_columns_and_typos(feces_copy):
    rows = _rows(feces_copy)
    _write(feces_copy, [{"group": r["group"], "image": r["image"]} for r in rows], ["group", "image"])
    assert "missing required column(s) ['z']" in _errors(feces_copy)[0]
    renamed = [{**r, "scores": r["score"]} for r in rows]
    _write(feces_copy, renamed, ["group", "image", "z", "scores"])
    warnings = [str(p) for p in inspect_dataset(feces_copy).warnings]
    assert any("did you mean 'score'" in w for w in warnings)


def test_bad_cells_name_their_line(feces_copy):
    rows = _rows(feces_copy)
    rows[4]["z"] = "two"
    rows[5]["split"] = "training"
    rows[6]["clearest"] = "yes please"
    _write(feces_copy, rows)
    errors = "\n".join(_errors(feces_copy))
    assert "manifest.csv line 6: z='two' is not an integer" in errors
    assert "manifest.csv line 7: split 'training'" in errors
    assert "manifest.csv line 8: clearest='yes please'" in errors


def test_folder_of_folders_for_prediction(tiny_feces, tmp_path):
    root = tmp_path / "plain"
    for stack in load_dataset(tiny_feces)[:2]:
        (root / stack.group).mkdir(parents=True)
        for i, path in enumerate(stack.paths):
            shutil.copy(path, root / stack.group / f"img{i}.png")  # natural order: img2 < img10
    report = inspect_dataset(root)
    assert report.ok and not report.has_manifest
    stack = report.stacks[0]
    assert [p.name for p in stack.paths] == [f"img{i}.png" for i in range(len(stack))]
    assert not stack.labelled


def test_a_folder_of_nothing_but_images_is_one_z_stack(tiny_feces, tmp_path, capsys):
    """A microscope's export of one file per plane: pointing at that folder scores that stack."""
    from gmaiqa.cli import main

    stack = load_dataset(tiny_feces)[0]
    root = tmp_path / "stack 7"
    root.mkdir()
    for i, path in enumerate(stack.paths):
        shutil.copy(path, root / f"img{i}.png")  # natural order: img2 < img10
    report = inspect_dataset(root)
    assert report.ok and not report.warnings
    (only,) = report.stacks
    assert only.group == "stack 7" and [p.name for p in only.paths] == [
        f"img{i}.png" for i in range(len(stack))
    ]
    assert main(["check", f"root={root}"]) == 0
    assert "(images of one z-stack)" in capsys.readouterr().out


def test_single_images_beside_groups_are_named_in_a_warning_not_made_a_group(tiny_feces, tmp_path):
    root = tmp_path / "plain"
    stack = load_dataset(tiny_feces)[0]
    shutil.copytree(stack.paths[0].parent, root / "g1")
    shutil.copy(stack.paths[0], root / "stray.png")
    report = inspect_dataset(root)
    assert report.ok and [s.group for s in report.stacks] == ["g1"]
    (warning,) = report.warnings
    assert "1 single image(s) beside the z-stacks belong to no group (stray.png)" in str(warning)


def test_headers_validation_skips_decoding(feces_copy):
    path = feces_copy / _rows(feces_copy)[0]["image"]
    path.write_bytes(path.read_bytes()[:-20])  # header intact, end cut
    assert inspect_dataset(feces_copy, validate="headers").ok
    assert not inspect_dataset(feces_copy, validate="full").ok
