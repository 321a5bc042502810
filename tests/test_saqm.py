"""SAQM (seed paper 002): gradient reversal, γ = 0 at init, Eq. 1-3, shapes; the MOS contract and the
synthetic domain pair; PLCC/SROCC/KROCC against scipy; a short fit + test of each DA configuration."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from gmaiqa.data.mos import load_mos_dataset, split_rated
from gmaiqa.data.mos_datamodule import MODES, MOSDataModule
from gmaiqa.data.report import DatasetError
from gmaiqa.data.synthetic_mos import generate_mos_pair
from gmaiqa.errors import ConfigError
from gmaiqa.metrics import correlations
from gmaiqa.models.saqm import SAQM, reverse_gradient
from helpers.tiny import compose_train, tiny_saqm


def test_gradient_reversal_flips_the_sign_only_through_the_layer():
    x = torch.randn(5, requires_grad=True)
    w = torch.randn(5)
    (reverse_gradient(x) * w).sum().backward()
    torch.testing.assert_close(x.grad, -w)
    assert torch.equal(reverse_gradient(x.detach()), x.detach())  # identity forward (Eq. 4)

    torch.manual_seed(0)
    net = SAQM(channels=64, hidden=16)
    patches = torch.randn(4, 3, 32, 32)
    grads = {}
    for scale in (None, -1.0):  # None: the model's own factor (1, Eq. 5); -1: the branch without reversal
        net.zero_grad()
        net.forward_patches(patches, reversal_scale=scale)["domain_logit"].sum().backward()
        grads[scale] = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    trunk = [n for n in grads[None] if n.startswith("trunk.")]
    assert trunk and all(
        torch.allclose(grads[None][n], -grads[-1.0][n]) for n in trunk
    )  # feature extractor: reversed
    head = [n for n in grads[None] if n.startswith("domain.")]
    assert all(
        torch.allclose(grads[None][n], grads[-1.0][n]) for n in head
    )  # the classifier itself: unchanged
    assert not any(n.startswith("regressor.") for n in grads[None])  # the quality branch is untouched


def test_gamma_starts_at_zero_so_attention_is_off_at_init():
    torch.manual_seed(0)
    net = SAQM(channels=64, hidden=16).eval()
    assert net.attention.gamma.item() == 0
    patches = torch.randn(3, 3, 32, 32)
    before = net.forward_patches(patches)["quality_logit"]
    with torch.no_grad():
        for p in list(net.attention.query.parameters()) + list(net.attention.key.parameters()):
            p.add_(torch.randn_like(p))
    torch.testing.assert_close(net.forward_patches(patches)["quality_logit"], before)


def test_attention_follows_eq_1_to_3():
    torch.manual_seed(0)
    attention = SAQM(channels=64, hidden=16).attention.eval()
    with torch.no_grad():
        attention.gamma.fill_(0.5)
    x = torch.randn(2, 512, 8, 8)
    out, a = attention(x)
    q, k, v = attention.query(x).flatten(2), attention.key(x).flatten(2), attention.value(x).flatten(2)
    s = torch.einsum("bcl,bcj->blj", q, k)  # S[l, j]
    expected_a = torch.softmax(s, dim=2).transpose(1, 2)  # A[j, l], normalised over j
    torch.testing.assert_close(a, expected_a)
    torch.testing.assert_close(a.sum(dim=1), torch.ones(2, 64))
    expected = 0.5 * torch.einsum("bcj,bjl->bcl", v, expected_a) + v
    torch.testing.assert_close(out.flatten(2), expected)


def test_shapes_and_image_score():
    net = SAQM(channels=64, hidden=16).eval()
    out = net.forward_patches(torch.randn(6, 3, 32, 32))
    assert (
        out["quality_logit"].shape == (6,)
        and out["domain_logit"].shape == (6,)
        and out["features"].shape == (6, 64)
    )
    scores = net(torch.rand(2, 3, 64, 96))["output1"]
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()
    with pytest.raises(ValueError, match="32x32"):
        net.forward_patches(torch.randn(1, 3, 16, 16))


def test_default_trunk_is_table_1_and_width_scales_every_layer():
    def conv_widths(net):
        return [m.out_channels for m in net.trunk if isinstance(m, torch.nn.Conv2d)]

    assert conv_widths(SAQM()) == [128, 256, 256, 256, 512, 512, 512]  # Table 1
    assert conv_widths(SAQM(width=0.25, channels=128)) == [32, 64, 64, 64, 128, 128, 128]
    narrow = SAQM(width=0.25, channels=128).eval()
    assert narrow.attention.value[0].in_channels == 128
    assert narrow.forward_patches(torch.randn(2, 3, 32, 32))["features"].shape == (2, 128)
    with pytest.raises(ConfigError, match="model.width"):
        SAQM(width=0)


def test_he_init_keeps_the_activation_scale_so_patches_score_differently_at_init():
    """With PyTorch's default init the last trunk layer's activations were ~20x smaller than the first's
    and the pooled features of different patches differed by ~6e-5, so training started on a plateau."""
    torch.manual_seed(0)
    net = SAQM(width=0.25, channels=128).eval()
    activation_std, h = [], torch.rand(64, 3, 32, 32)
    with torch.no_grad():
        for layer in net.trunk:
            h = layer(h)
            if isinstance(layer, torch.nn.ReLU):
                activation_std.append(h.std().item())
        out = net.forward_patches(torch.rand(64, 3, 32, 32))
    assert activation_std[-1] > 0.5 * activation_std[0]
    assert out["features"].std(0).mean() > 1e-2
    assert all(m.bias.abs().max() == 0 for m in net.trunk if isinstance(m, torch.nn.Conv2d))


def test_correlations_match_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a + rng.normal(size=30)
    b[:5] = b[5]  # ties
    ours = correlations(a, b)
    assert ours["plcc"] == pytest.approx(stats.pearsonr(a, b)[0])
    assert ours["srocc"] == pytest.approx(stats.spearmanr(a, b)[0])
    assert ours["krocc"] == pytest.approx(stats.kendalltau(a, b)[0])


def test_synthetic_pair_has_two_domains_and_mos_falls_with_distortion(mos_pair):
    items = load_mos_dataset(mos_pair)
    assert {i.domain for i in items} == {"natural", "ultrasound"} and len(items) == 2 * 5 * 4
    for domain in ("natural", "ultrasound"):
        mine = [i for i in items if i.domain == domain]
        strength = [int(i.path.stem.rsplit("_d", 1)[1]) for i in mine]
        assert stats.spearmanr(strength, [i.mos for i in mine])[0] < -0.7
    assert max(i.mos for i in items if i.domain == "natural") <= 9  # TID-like scale
    again = generate_mos_pair(mos_pair.parent / "again", references=5, distortions=4, size=64, seed=0)
    assert (again / "manifest.csv").read_text() == (mos_pair / "manifest.csv").read_text()
    with pytest.raises(FileExistsError):
        generate_mos_pair(mos_pair)


def test_distortions_of_one_reference_stay_in_one_split(mos_pair):
    splits = split_rated(load_mos_dataset(mos_pair), seed=3)
    where = {}
    for split, items in splits.items():
        for item in items:
            assert where.setdefault(item.reference, split) == split


def test_mos_contract_reports_every_problem(tmp_path, mos_pair):
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(mos_pair, root)
    rows = list(csv.DictReader(open(root / "manifest.csv")))
    rows[0]["mos"] = "excellent"
    rows[1]["image"] = "natural/missing.png"
    rows.append(dict(rows[2]))
    rows[3]["split"] = "training"
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["image", "mos", "domian", "reference", "split"])
        writer.writeheader()
        writer.writerows(
            {"domian" if k == "domain" else k: v for k, v in r.items()} for r in rows
        )  # a mistyped column
    with pytest.raises(DatasetError) as caught:
        load_mos_dataset(root)
    text = str(caught.value)
    assert "line 2" in text and "not a number" in text and "missing.png" in text
    assert "listed twice" in text and "'training'" in text
    from gmaiqa.cli import main

    assert (
        main(["check", f"root={root}"]) == 1 and main(["check", f"root={mos_pair}"]) == 0
    )  # gmaiqa check knows it
    (root / "manifest.csv").write_text("picture,mos\n")
    with pytest.raises(DatasetError, match="missing column"):
        load_mos_dataset(root)


@pytest.mark.parametrize("mode", MODES)
def test_training_items_per_mode(mode, mos_pair):
    dm = MOSDataModule(root=str(mos_pair), mode=mode, target_label_fraction=0.5, seed=0)
    dm.setup()
    items, labelled = dm.training_items()
    domains = {i.domain for i in items}
    target_labels = sum(flag for i, flag in zip(items, labelled) if i.domain == "ultrasound")
    target_count = sum(i.domain == "ultrasound" for i in items)
    expected = {
        "target_only": ({"ultrasound"}, target_count),
        "source_only": ({"natural"}, 0),
        "unsupervised_da": ({"natural", "ultrasound"}, 0),
        "semi_supervised_da": ({"natural", "ultrasound"}, round(0.5 * target_count)),
    }[mode]
    assert (domains, target_labels) == expected
    assert all(flag for i, flag in zip(items, labelled) if i.domain == "natural")


@pytest.mark.parametrize("mode", MODES)
def test_short_fit_and_test_of_each_configuration(mode, mos_pair, tmp_path):
    from gmaiqa.train import train

    overrides = tiny_saqm(mos_pair) + ["+trainer.limit_train_batches=2", f"paths.run_dir={tmp_path / 'run'}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = train(compose_train(f"saqm_{mode}", overrides))
    for domain in ("natural", "ultrasound"):
        assert {f"{domain}/plcc", f"{domain}/srocc", f"{domain}/krocc"} <= set(summary)
    rows = list(csv.DictReader(open(tmp_path / "run" / "per_image.csv")))
    assert rows and {r["domain"] for r in rows} == {"natural", "ultrasound"}


def test_reversal_waits_for_its_start_then_ramps_up_as_ganin_et_al_unless_constant():
    from types import SimpleNamespace

    from gmaiqa.tasks.quality_metric import SAQMTask, ganin_ramp

    assert ganin_ramp(0.0) == 0.0 and ganin_ramp(0.5) == pytest.approx(0.9866, abs=1e-4)
    assert ganin_ramp(1.0) == pytest.approx(1.0, abs=1e-4) and ganin_ramp(2.0) == ganin_ramp(1.0)
    ramp = [ganin_ramp(p / 10) for p in range(11)]
    assert ramp == sorted(ramp)
    net = SAQM(channels=64, hidden=16, width=0.25, reversal_scale=0.5)
    steps = (
        0,
        25,
        39,
        40,
        55,
        100,
    )  # of 100, reversal_start 0.4: off until step 40, then the ramp over 60 steps
    cases = {
        ("ganin", 0.0): [0.5 * ganin_ramp(s / 100) for s in steps],
        ("constant", 0.0): [0.5] * 6,
        ("ganin", 0.4): [0, 0, 0, 0.0, 0.5 * ganin_ramp(15 / 60), 0.5 * ganin_ramp(1.0)],
        ("constant", 0.4): [0, 0, 0, 0.5, 0.5, 0.5],
    }
    for (schedule, start), expected in cases.items():
        task = SAQMTask(net, reversal_schedule=schedule, reversal_start=start)
        scales = []
        for step in steps:
            task._trainer = SimpleNamespace(global_step=step, estimated_stepping_batches=100)
            scales.append(task.reversal_scale())
        assert scales == pytest.approx(expected), (schedule, start)
    with pytest.raises(ConfigError, match="task.reversal_schedule"):
        SAQMTask(net, reversal_schedule="linear")
    with pytest.raises(ConfigError, match="task.reversal_start"):
        SAQMTask(net, reversal_start=1.0)


def test_domain_classifier_is_blind_to_the_feature_scale():
    """Its LayerNorm input: the reversed gradient can only make the domains alike, not inflate features."""
    net = SAQM(channels=64, hidden=16, width=0.25).eval()
    features = torch.rand(5, 64) + 0.1
    torch.testing.assert_close(net.domain(features * 30.0), net.domain(features), rtol=1e-4, atol=1e-4)


def test_training_step_passes_the_scheduled_reversal_and_leaves_the_net_alone(monkeypatch):
    """The task's schedule reaches the GRL as an argument; the network's configured factor is untouched."""
    from types import SimpleNamespace

    from gmaiqa.tasks.quality_metric import SAQMTask

    net = SAQM(channels=64, hidden=16, width=0.25, reversal_scale=0.5)
    task = SAQMTask(net, mode="unsupervised_da", reversal_schedule="constant", reversal_start=0.2)
    monkeypatch.setattr(task, "log", lambda *args, **kwargs: None)
    seen, real = [], net.forward_patches
    monkeypatch.setattr(
        net,
        "forward_patches",
        lambda p, reversal_scale=None: seen.append(reversal_scale) or real(p, reversal_scale),
    )
    batch = {
        "patches": torch.randn(4, 3, 32, 32),
        "labelled": torch.tensor([True, True, False, False]),
        "target": torch.rand(4),
        "domain": torch.tensor([0.0, 0.0, 1.0, 1.0]),
    }
    for step in (10, 50):  # before and after reversal_start of 100 steps
        task._trainer = SimpleNamespace(global_step=step, estimated_stepping_batches=100)
        assert torch.isfinite(task.training_step(batch, 0))
    assert seen == [0.0, 0.5] and net.reversal_scale == 0.5


@pytest.mark.parametrize("mode", MODES)
def test_the_quality_loss_is_logged_per_step_only_where_every_batch_has_labels(mode, monkeypatch):
    """Under domain adaptation a batch may hold only unlabelled target images: Lightning would repeat a
    step metric's last value on that step, so the quality term is then an epoch mean alone; without
    adaptation every batch is labelled and the term is logged per step too."""
    from types import SimpleNamespace

    from gmaiqa.tasks.quality_metric import SAQMTask

    task = SAQMTask(SAQM(channels=64, hidden=16, width=0.25), mode=mode)
    task._trainer = SimpleNamespace(global_step=0, estimated_stepping_batches=100)
    logged = []
    monkeypatch.setattr(task, "log", lambda name, value, **kw: logged.append((name, kw.get("on_step"))))

    def batch(labelled):
        return {
            "patches": torch.randn(2, 3, 32, 32),
            "labelled": torch.tensor(labelled),
            "target": torch.rand(2),
            "domain": torch.tensor([0.0, 1.0]),
        }

    task.training_step(batch([True, False]), 0)
    assert ("train/loss_quality", not mode.endswith("_da")) in logged
    logged.clear()
    task.training_step(batch([False, False]), 1)  # the target's unlabelled images only
    assert not any(name == "train/loss_quality" for name, _ in logged)
    assert ("train/loss", True) in logged
