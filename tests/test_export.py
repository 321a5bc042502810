"""``gmaiqa export``: the Output1 graph in ONNX and TorchScript scores as the checkpoint does, at any
size, carries its preprocessing, and ``gmaiqa predict ckpt=FILE`` uses it."""

from __future__ import annotations

import csv
import json
import warnings

import pytest
import torch

from gmaiqa.checkpoints import checkpoint_path, load_net
from gmaiqa.cli import main
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
    run = tmp_path / "run"
    code = main(
        ["train", "experiment=gmanet_l1_direct", f"init_from={exported['onnx']}", f"paths.run_dir={run}"]
    )
    assert code == 2 and "exported" in capsys.readouterr().err
    meta = json.loads(json.dumps(load_net(exported["torchscript"])[1]))  # JSON all the way
    assert meta["format"] == "torchscript" and meta["outputs"] == ["score", "score_map"]
