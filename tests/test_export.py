"""``gmaiqa export``: the Output1 graph in ONNX and TorchScript scores as the checkpoint does, at any
size, carries its preprocessing, and ``gmaiqa predict ckpt=FILE`` uses it."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
import torch

from gmaiqa.checkpoints import checkpoint_path, load_net
from gmaiqa.cli import main
from gmaiqa.data.synthetic import PRESETS
from gmaiqa.export import WEIGHTS_KEY, half_check_scores, half_check_stacks
from gmaiqa.inference import InferenceSettings, predict_scores

warnings.filterwarnings("ignore", message=".*random init.*")


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exported")
    files = {"onnx": folder / "model.onnx", "torchscript": folder / "model.pt"}
    for fmt, path in files.items():
        assert main(["export", f"ckpt={trained_run}", f"out={path}", f"format={fmt}"]) == 0
    return files


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_scores_equal_pytorch_at_other_sizes(trained_run, exported, fmt):
    net, meta = load_net(trained_run)
    runtime, recorded = load_net(exported[fmt])
    if fmt == "torchscript":  # the aggregation module and heads 2-3 are not in the file
        names = [name for name, _ in runtime.graph.named_parameters()]
        assert names and not any(("deconv" in n or "head2" in n or "head3" in n) for n in names)
    assert recorded["preprocessing"]["block"] == [8, 8] and recorded["preprocessing"]["resize"] == [64, 96]
    assert recorded["inputs"] == ["image", "attention"] and recorded["stage"] == meta["stage"]
    assert runtime.uses_attention_map
    g = torch.Generator().manual_seed(3)
    for size in ((32, 48), (64, 96), (80, 112)):  # traced at 32x48: height and width are dynamic
        image, amap = torch.randn(3, 3, *size, generator=g), torch.rand(3, 1, *size, generator=g)
        with torch.no_grad():
            expected = net.output1(image, amap)
        torch.testing.assert_close(runtime.output1(image, amap), expected, rtol=1e-3, atol=1e-4)
        torch.testing.assert_close(
            runtime.output1_map(image, amap), net.output1_map(image, amap), rtol=1e-3, atol=1e-3
        )
    settings = InferenceSettings(patch=(32, 48), step=(16, 24))
    torch.testing.assert_close(
        predict_scores(runtime, image, amap, settings),
        predict_scores(net, image, amap, settings),
        rtol=1e-3,
        atol=1e-4,
    )


def test_predict_with_an_exported_file_picks_the_same_images(trained_run, exported, tiny_feces, tmp_path):
    tables = {}
    for name, ckpt in (("ckpt", checkpoint_path(trained_run)), *exported.items()):
        out = tmp_path / name
        assert main(["predict", f"ckpt={ckpt}", f"input={tiny_feces}", f"out={out}", "num_workers=0"]) == 0
        with open(out / "predictions.csv") as handle:
            tables[name] = list(csv.DictReader(handle))
    for name in exported:
        assert [r["image"] for r in tables[name]] == [r["image"] for r in tables["ckpt"]]
        got = torch.tensor([float(r["score"]) for r in tables[name]])
        want = torch.tensor([float(r["score"]) for r in tables["ckpt"]])
        torch.testing.assert_close(got, want, rtol=1e-3, atol=2e-4)


def test_export_refuses_what_it_cannot_do(trained_run, exported, tmp_path, capsys):
    assert main(["export", f"ckpt={trained_run}", f"out={exported['onnx']}"]) == 2
    assert "overwrite=true" in capsys.readouterr().err
    assert main(["export", f"ckpt={trained_run}", f"out={tmp_path / 'm.x'}", "format=tflite"]) == 2
    assert "format" in capsys.readouterr().err
    assert not (tmp_path / "m.x").exists()
    for tolerance in ("-0.1", "2", "loose"):
        assert main(["export", f"ckpt={trained_run}", f"out={tmp_path / 'm.pt'}", "format=weights",
                     f"half_tolerance={tolerance}"]) == 2  # fmt: skip
        assert "half_tolerance" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()
    run = tmp_path / "run"
    code = main(
        ["train", "experiment=gmanet_l1_direct", f"init_from={exported['onnx']}", f"paths.run_dir={run}"]
    )
    assert code == 2 and "exported" in capsys.readouterr().err
    meta = json.loads(json.dumps(load_net(exported["torchscript"])[1]))  # JSON all the way
    assert meta["format"] == "torchscript" and meta["outputs"] == ["score", "score_map"]


def test_a_weights_file_starts_a_training_stage_output1_loaded_and_the_auxiliary_outputs_fresh(
    trained_run, tmp_path, capsys
):
    """Fine-tuning an exported model (the shipped default one included) on one's own stacks: its
    Output1 path loads into the stage's network, which has the aggregation module and heads 2-3 too."""
    from gmaiqa.checkpoints import init_weights_from
    from gmaiqa.errors import ConfigError, instantiate

    out = tmp_path / "model.pt"
    assert main(["export", f"ckpt={trained_run}", f"out={out}", "format=weights"]) == 0
    stored = torch.load(out, weights_only=True)[WEIGHTS_KEY]
    _, meta = load_net(trained_run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = instantiate(dict(meta["model"]))
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    capsys.readouterr()
    init_weights_from(net, out)
    assert f"Output1's {len(stored)} tensors from {out}" in capsys.readouterr().out
    loaded = net.state_dict()
    assert net.aux_outputs and set(stored) < set(loaded)
    for name, value in loaded.items():
        if name in stored:  # fp16 in the file, fp32 in the network
            assert value.dtype == fresh[name].dtype
            torch.testing.assert_close(value, stored[name].to(value.dtype), rtol=0, atol=0)
        else:
            assert name.startswith(("deconv", "head2", "head3")), name
            torch.testing.assert_close(value, fresh[name], rtol=0, atol=0)
    assert any(not torch.equal(loaded[k], fresh[k]) for k in stored if fresh[k].is_floating_point())
    # a network whose Output1 path differs is refused, naming the key and a differing tensor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wider = instantiate({**meta["model"], "head_channels": 32})
    with pytest.raises(ConfigError, match="init_from.*does not fit this model's Output1 path.*head1"):
        init_weights_from(wider, out)


def test_weights_file_holds_output1_in_half_precision_and_scores_as_the_checkpoint(
    trained_run, tiny_feces, tmp_path, capsys
):
    out = tmp_path / "model.pt"
    assert main(["export", f"ckpt={trained_run}", f"out={out}", "format=weights"]) == 0
    printed = capsys.readouterr().out
    net, meta = load_net(trained_run)
    runtime, recorded = load_net(out)
    assert "MiB" in printed and "float16 weights" in printed
    # Output1's path alone (trunk, head 1), stored in fp16 and run in fp32
    stored = torch.load(out, weights_only=True)[WEIGHTS_KEY]
    assert not any(k.startswith(("deconv", "head2", "head3")) for k in stored)
    assert set(stored) == set(net.without_auxiliary_outputs().state_dict())
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    assert recorded["weights_dtype"] == "float16" and not recorded["model"]["aux_outputs"]
    assert {p.dtype for p in runtime.parameters()} == {torch.float32}
    # how it was trained travels with it
    made = recorded["provenance"]
    assert made["run"] == trained_run.name and made["seed"] == meta["seed"] and made["stage"] == meta["stage"]
    assert made["git_commit"] == meta["git_commit"] and "git_dirty" in made
    assert made["command"] is None  # trained_run is composed in-process: there was no command line
    # the recorded half-precision check repeats from the file: its stacks (one rendered group per preset,
    # at the checkpoint's pixel size) come back from the recipe it records, the recorded scores are the
    # fp32 network's, and the fp16 weights stay within the tolerance of them
    check = recorded["half_check"]
    assert check["inputs"]["presets"] == sorted(PRESETS) and check["groups"] == len(PRESETS)
    stacks = half_check_stacks(check["inputs"], tmp_path / "half")
    assert [len(s) for s in stacks] == [check["inputs"]["images"]] * len(PRESETS)
    reference = check["fp32_scores"]
    for got, want in zip(half_check_scores(net, meta, stacks), reference):
        torch.testing.assert_close(torch.tensor(got), torch.tensor(want), rtol=1e-5, atol=1e-5)
    rounded = half_check_scores(runtime, recorded, stacks)
    flat = [torch.tensor(v) for v in (sum(rounded, []), sum(reference, []))]
    assert flat[0].ne(flat[1]).any(), "fp16 rounding should move the scores a little"
    assert check["passed"] and check["score_scale"] == 100 and check["tolerance"] == 0.01
    torch.testing.assert_close(flat[0], flat[1], rtol=0, atol=check["tolerance"] * check["score_scale"])
    assert check["same_pick"] == sum(np.argmax(a) == np.argmax(b) for a, b in zip(rounded, reference))
    assert check["same_pick"] == check["groups"]
    # the images predict picks are the checkpoint's
    picks = {}
    for name, ckpt in (("ckpt", trained_run), ("weights", out)):
        assert main(["predict", f"ckpt={ckpt}", f"input={tiny_feces}", f"out={tmp_path / name}"]) == 0
        with open(tmp_path / name / "clearest.csv") as handle:
            picks[name] = [row["image"] for row in csv.DictReader(handle)]
    assert picks["weights"] == picks["ckpt"]
    assert f"model: {out} (gmanet {meta['stage']})" in capsys.readouterr().out


def test_weights_file_keeps_fp32_when_half_precision_moves_scores_too_far(trained_run, tmp_path, capsys):
    out = tmp_path / "model.pt"
    assert main(["export", f"ckpt={trained_run}", f"out={out}", "format=weights", "half_tolerance=0"]) == 0
    assert "float32 weights" in capsys.readouterr().out
    stored = torch.load(out, weights_only=True)[WEIGHTS_KEY]
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float32}
    net, _ = load_net(trained_run)
    runtime, recorded = load_net(out)
    assert recorded["half_check"]["max_abs"] > 0 and not recorded["half_check"]["passed"]
    g = torch.Generator().manual_seed(5)
    image, amap = torch.randn(2, 3, 64, 96, generator=g), torch.rand(2, 1, 64, 96, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(runtime.output1(image, amap), net.output1(image, amap))


@pytest.mark.parametrize(
    ("fp32", "fp16", "same_pick", "passed"),
    [
        # 100 % off near 0 but 0.3 points at most: every image keeps its place
        ([0.001, 50.0, 90.0], [0.002, 50.3, 90.2], 1, True),
        ([0.001, 50.0, 90.0], [0.001, 51.2, 90.0], 1, False),  # 1.2 points: over 1 % of the 0-100 scale
        ([0.001, 89.95, 90.0], [0.001, 90.0, 89.9], 0, False),  # 0.1 points, but the clearest changes
    ],
)
def test_half_check_is_on_the_score_scale_and_keeps_every_pick(monkeypatch, fp32, fp16, same_pick, passed):
    """Half precision is judged on the paper's 0-100 scale, not relative to each score (which grows
    without bound for the most blurred images, scored near 0), and never at the price of a pick."""
    import gmaiqa.export as export

    scores = iter([[fp32], [fp16]])
    monkeypatch.setattr(export, "half_check_stacks", lambda recipe, folder: [])
    monkeypatch.setattr(export, "half_check_scores", lambda net, meta, stacks: next(scores))
    check = export.half_precision_error(torch.nn.Linear(1, 1), {}, tolerance=0.01)
    assert check["fp32_scores"] == [fp32] and check["groups"] == 1
    largest = max(abs(a - b) for a, b in zip(fp16, fp32))
    assert check["max_abs"] == pytest.approx(largest, abs=1e-5)  # the check takes it in float32
    assert check["same_pick"] == same_pick and check["passed"] is passed
