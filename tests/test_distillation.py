"""Ranking distillation (gmaiqa.tasks.distillation): the loss by hand and its invariances, the settings
and the teacher's fit refused naming the key, and the teacher kept outside the student. The end-to-end
fit with a teacher checkpoint: tests/test_train.py."""

from __future__ import annotations

import copy

import pytest
import torch

from gmaiqa.errors import ConfigError
from gmaiqa.tasks.distillation import (
    Teacher,
    check_teacher,
    distill_settings,
    ranking_distillation_loss,
)


def _smooth_l1(x: float) -> float:
    return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5


def test_the_loss_by_hand_over_every_pair():
    student = torch.tensor([3.0, 1.0, 0.0])
    teacher = torch.tensor([0.0, 1.0, 3.0])
    # pairs (0,1), (0,2), (1,2): student gaps 2, 3, 1; teacher gaps -1, -3, -2
    expected = (_smooth_l1(3) + _smooth_l1(6) + _smooth_l1(3)) / 3
    assert ranking_distillation_loss(student, teacher).item() == pytest.approx(expected)


def test_the_loss_ignores_an_offset_and_sees_every_swap():
    teacher = torch.tensor([10.0, 40.0, 25.0, 5.0])
    assert ranking_distillation_loss(teacher + 17.0, teacher).item() == 0.0
    assert ranking_distillation_loss(teacher - 3.0, teacher).item() == 0.0
    swapped = teacher[[1, 0, 2, 3]]
    assert ranking_distillation_loss(swapped, teacher).item() > 0


def test_a_step_on_the_loss_moves_the_students_order_toward_the_teachers():
    teacher = torch.tensor([50.0, 20.0, 10.0, 30.0])
    student = torch.tensor([10.0, 20.0, 30.0, 25.0], requires_grad=True)
    optimizer = torch.optim.SGD([student], lr=5.0)
    for _ in range(200):
        optimizer.zero_grad()
        ranking_distillation_loss(student, teacher).backward()
        optimizer.step()
    assert torch.argsort(student.detach()).tolist() == torch.argsort(teacher).tolist()


def test_the_teacher_gets_no_gradient():
    student = torch.tensor([1.0, 2.0], requires_grad=True)
    teacher = torch.tensor([2.0, 0.0], requires_grad=True)
    ranking_distillation_loss(student, teacher.detach()).backward()
    assert student.grad is not None and teacher.grad is None


@pytest.mark.parametrize("student, teacher", [((3,), (4,)), ((1,), (1,)), ((2, 3), (2, 3))])
def test_unequal_or_too_small_score_vectors_are_refused(student, teacher):
    with pytest.raises(ValueError, match="two equal 1-D score vectors"):
        ranking_distillation_loss(torch.zeros(student), torch.zeros(teacher))


def test_settings_default_weight_and_off():
    assert distill_settings(None) is None
    assert distill_settings({"teacher": "default"}) == ("default", 1.0)
    assert distill_settings({"teacher": "a.ckpt", "weight": "0.5"}) == ("a.ckpt", 0.5)


@pytest.mark.parametrize(
    "node, key",
    [
        ({"teacher": "default", "weight": 0}, "task.distill.weight"),
        ({"teacher": "default", "weight": -1}, "task.distill.weight"),
        ({"teacher": "default", "weight": "much"}, "task.distill.weight"),
        ({"teacher": "default", "weight": float("inf")}, "task.distill.weight"),
        ({"teacher": "default", "weigth": 1.0}, "task.distill.weigth"),
        ({"weight": 1.0}, "task.distill.teacher"),
        ("default", "task.distill"),
    ],
)
def test_bad_settings_name_their_key(node, key):
    with pytest.raises(ConfigError) as refused:
        distill_settings(node)
    assert refused.value.key == key


def _meta(normalize="stack", block=(16, 16), family="gmanet"):
    return {
        "family": family,
        "higher_is_better": True,
        "data": {"normalize": normalize},
        "model": {"attention_map": {"kind": "local_max", "block": list(block)}},
    }


def test_a_teacher_trained_on_other_inputs_is_refused_naming_what_differs():
    check_teacher(_meta(), _meta(), "t.ckpt")
    with pytest.raises(ConfigError, match=r"data.normalize stack \(here image\)") as refused:
        check_teacher(_meta(), _meta(normalize="image"), "t.ckpt")
    assert refused.value.key == "task.distill.teacher"
    with pytest.raises(ConfigError, match=r"attention block \[16, 16\] \(here \[8, 8\]\)"):
        check_teacher(_meta(), _meta(block=(8, 8)), "t.ckpt", key="stages.0.task.distill")
    with pytest.raises(ConfigError, match="not a GMANet focus scorer"):
        check_teacher(_meta(family="defocus"), _meta(), "t.ckpt")


def test_the_teacher_stays_outside_the_student():
    """A task holding a teacher: its parameters, state dict and a deep copy (what weight averaging makes)
    hold the student alone, and the teacher scores under no_grad, whatever mode the student is in."""
    from gmaiqa.models import build_gmanet
    from gmaiqa.tasks import FocusQualityTask

    torch.manual_seed(0)
    small = {"backbone": "resnet18", "mask_attention_depth": 0, "aggregation_channels": 8, "head_channels": 8}
    with pytest.warns(UserWarning):  # no ImageNet weights here
        student, teacher_net = build_gmanet(**small), build_gmanet(**small)
    task = FocusQualityTask(student)
    bare = set(task.state_dict())
    task.teacher = Teacher(teacher_net.eval(), "t.ckpt", 1.0)
    assert set(task.state_dict()) == bare
    assert {id(p) for p in task.parameters()} == {id(p) for p in student.parameters()}
    assert copy.deepcopy(task).teacher is task.teacher

    image = torch.randn(3, 3, 64, 96, requires_grad=True)
    task.train()
    scores = task.teacher.scores(image, None)
    assert scores.shape == (3,) and not scores.requires_grad and not teacher_net.training
