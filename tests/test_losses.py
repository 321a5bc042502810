"""GMANet losses against hand-computed values (§3.3, Eq. 8-12)."""

import pytest
import torch

from gmaiqa.losses import GMANetLoss, rank_gate, rank_loss, score_loss


def _smooth_l1(x):
    x = abs(x)
    return 0.5 * x * x if x < 1 else x - 0.5


def test_score_loss_by_hand():
    pred, target = torch.tensor([100.5, 90.0, 50.0]), torch.tensor([100.0, 93.0, 50.0])
    assert score_loss(pred, target).item() == pytest.approx((0.125 + 2.5 + 0.0) / 3)


def test_rank_loss_by_hand():
    pred = torch.tensor([98.0, 97.0, 60.0])  # clearest first
    target = torch.tensor([100.0, 95.0, 40.0])
    # gaps: predicted 1, 38; annotated 5, 60 -> smoothL1(-4) = 3.5, smoothL1(-22) = 21.5
    assert rank_loss(pred, target, 0).item() == pytest.approx((3.5 + 21.5) / 2)


def test_alpha_both_branches():
    assert rank_gate(torch.tensor([90.0, 80.0, 85.0]), 0).item() == 0  # clearest ranked first
    assert rank_gate(torch.tensor([90.0, 91.0, 85.0]), 0).item() == 1
    assert rank_gate(torch.tensor([90.0, 90.0]), 0).item() == 0  # a tie is no violation (max(., 0) = 0)


def test_total_loss_weights_and_gate():
    target = torch.tensor([100.0, 95.0, 40.0])
    ranked = torch.tensor([98.0, 97.0, 60.0])  # α = 0
    unranked = torch.tensor([96.0, 97.0, 60.0])  # α = 1
    outputs = {"output1": ranked, "output2": unranked, "output3": ranked}
    terms = GMANetLoss()(outputs, target, clearest=0)
    l1 = (_smooth_l1(-2) + _smooth_l1(2) + _smooth_l1(20)) / 3
    l2_score = (_smooth_l1(-4) + _smooth_l1(2) + _smooth_l1(20)) / 3
    l2_diff = (_smooth_l1(-1 - 5) + _smooth_l1(36 - 60)) / 2
    assert terms["output1/alpha"].item() == 0 and terms["output2/alpha"].item() == 1
    assert terms["output1/loss"].item() == pytest.approx(l1)
    assert terms["output2/loss"].item() == pytest.approx(l2_score + l2_diff)
    assert terms["loss"].item() == pytest.approx(1.0 * l1 + 0.8 * (l2_score + l2_diff) + 0.6 * l1)


def test_without_aux_outputs_only_output1_counts():
    target = torch.tensor([100.0, 50.0])
    pred = torch.tensor([90.0, 60.0])
    terms = GMANetLoss()({"output1": pred}, target, clearest=0)
    assert terms["loss"].item() == pytest.approx(terms["output1/loss"].item())
    assert "output2/loss" not in terms


def test_gradient_flows_through_rank_term_only_when_gated():
    target = torch.tensor([100.0, 50.0])
    pred = torch.tensor([60.0, 70.0], requires_grad=True)  # wrong order: α = 1
    GMANetLoss()({"output1": pred}, target, 0)["loss"].backward()
    # d/dŝ_c: score term -1/2 (|x|>1 regime), rank term: gap -10 vs 50 -> -1 per pair -> total -1.5
    assert pred.grad[0].item() == pytest.approx(-0.5 - 1.0)
