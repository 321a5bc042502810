"""Ranking distillation (gmaiqa.tasks.distillation): the loss by hand and its invariances, the settings
and the teacher's fit refused naming the key, and the teacher kept outside the student. The end-to-end
fit with a teacher checkpoint: tests/test_train.py."""

from __future__ import annotations

import copy

import pytest
import torch

from gmaiqa.errors import ConfigError
from gmaiqa.tasks.distillation import (
    DistillSettings,
    Teacher,
    check_teacher,
    distill_key,
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
    assert distill_settings({"teacher": "default"}) == ("default", 1.0, None)
    assert distill_settings({"teacher": "a.ckpt", "weight": "0.5"}) == ("a.ckpt", 0.5, None)
    assert distill_settings({"teacher": "default", "groups": "*-feces/*"}).groups == ("*-feces/*",)
    assert distill_settings({"teacher": "default", "groups": ["a*", "b*"]}).groups == ("a*", "b*")


@pytest.mark.parametrize(
    "node, key",
    [
        ({"teacher": "default", "weight": 0}, "task.distill.weight"),
        ({"teacher": "default", "weight": -1}, "task.distill.weight"),
        ({"teacher": "default", "weight": "much"}, "task.distill.weight"),
        ({"teacher": "default", "weight": float("inf")}, "task.distill.weight"),
        ({"teacher": "default", "weigth": 1.0}, "task.distill.weigth"),
        ({"weight": 1.0}, "task.distill.teacher"),
        ({"teacher": "default", "groups": []}, "task.distill.groups"),
        ({"teacher": "default", "groups": ""}, "task.distill.groups"),
        ({"teacher": "default", "groups": ["*-feces/*", 3]}, "task.distill.groups"),
        ({"teacher": "default", "groups": {"feces": 1}}, "task.distill.groups"),
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
    task.teacher = Teacher(teacher_net.eval(), DistillSettings("t.ckpt", 1.0))
    assert set(task.state_dict()) == bare
    assert {id(p) for p in task.parameters()} == {id(p) for p in student.parameters()}
    assert copy.deepcopy(task).teacher is task.teacher

    image = torch.randn(3, 3, 64, 96, requires_grad=True)
    task.train()
    scores = task.teacher.scores(image, None)
    assert scores.shape == (3,) and not scores.requires_grad and not teacher_net.training


def _tiny_task_with_teacher(groups):
    """A student and a teacher of the same small network; the teacher's weights differ so that its
    order of a batch is not the student's."""
    from gmaiqa.models import build_gmanet
    from gmaiqa.tasks import FocusQualityTask

    torch.manual_seed(0)
    small = {"backbone": "resnet18", "mask_attention_depth": 0, "aggregation_channels": 8, "head_channels": 8}
    with pytest.warns(UserWarning):  # no ImageNet weights here
        student, teacher_net = build_gmanet(**small), build_gmanet(**small)
    task = FocusQualityTask(student)
    task.teacher = Teacher(teacher_net.eval(), DistillSettings("t.ckpt", 1.0, groups))
    task.logged = []  # no trainer to log to here: (name, on_step) of what the step logs
    task.log = lambda name, value, **kw: task.logged.append((name, kw.get("on_step")))
    task.log_dict = lambda values, **kw: task.logged.extend((k, kw.get("on_step")) for k in values)
    return task


def _group_batch(group_name):
    torch.manual_seed(1)
    return {
        "image": torch.randn(3, 3, 64, 96),
        "attention": torch.rand(3, 1, 64, 96),
        "score": torch.tensor([100.0, 60.0, 20.0]),
        "clearest": 0,
        "group_name": group_name,
    }


def test_distillation_limited_to_groups_adds_the_term_on_matching_batches_only():
    """task.distill.groups: a matching batch's loss is the GMANet loss plus weight x the ranking term
    against the teacher; any other batch's is the GMANet loss alone, and the teacher is not run."""
    task = _tiny_task_with_teacher(("*-feces/*",))
    task.train()
    taught, plain = _group_batch("00-feces/g0003"), _group_batch("08-fluorescence/g0003")
    calls = []
    scores = task.teacher.scores
    task.teacher.scores = lambda *a: calls.append(1) or scores(*a)

    with torch.no_grad():
        outputs = task.net(taught["image"], taught["attention"])
        gmanet = task.loss(outputs, taught["score"], taught["clearest"])["loss"]
        teachers = scores(taught["image"], taught["attention"])
        term = ranking_distillation_loss(outputs["output1"].float(), teachers)
        assert term.item() > 0
        assert task.training_step(taught, 0).item() == pytest.approx((gmanet + term).item(), rel=1e-5)
        assert len(calls) == 1
        # the term of the taught batches is logged as their epoch mean only: a step value would repeat
        # on the untaught steps (Lightning keeps a step metric's last value)
        assert ("train/distill_epoch", False) in task.logged
        assert not any(name.startswith("train/distill") and on_step for name, on_step in task.logged)
        task.logged.clear()
        assert task.training_step(plain, 0).item() == pytest.approx(gmanet.item(), rel=1e-5)
        assert len(calls) == 1
        assert not any(name.startswith("train/distill") for name, _ in task.logged)
    assert task.teacher.record() == {"teacher": "t.ckpt", "weight": 1.0, "groups": ["*-feces/*"]}
    everywhere = _tiny_task_with_teacher(None)
    assert everywhere.teacher.teaches("08-fluorescence/g0003")
    assert "groups" not in everywhere.teacher.record()


def test_groups_that_match_no_training_group_are_refused_naming_some():
    teacher = Teacher(torch.nn.Identity(), DistillSettings("t.ckpt", 1.0, ("*-feces/*", "*-blood/*")))
    teacher.check_groups(["03-blood/g0001", "08-fluorescence/g0001"])
    none = r"matches none of the 2 training groups \(e.g. 08-dense/g0001"
    with pytest.raises(ConfigError, match=none) as refused:
        teacher.check_groups(["08-dense/g0001", "09-dense/g0002"])
    assert refused.value.key == "task.distill.groups"
    assert not teacher.teaches("feces/g0001")  # a glob over the whole name, not a substring


def test_the_task_checks_the_groups_against_its_training_split_when_fit_starts():
    from types import SimpleNamespace

    task = _tiny_task_with_teacher(("*-feces/*",))
    stacks = lambda *names: [SimpleNamespace(group=n) for n in names]  # noqa: E731
    datamodule = SimpleNamespace(splits={"train": stacks("00-feces/g0001"), "val": stacks("01-dense/g0002")})
    task._trainer = SimpleNamespace(datamodule=datamodule)
    task.on_fit_start()
    datamodule.splits["train"] = stacks("01-dense/g0001")
    with pytest.raises(ConfigError, match="matches none of the 1 training groups"):
        task.on_fit_start()


def test_a_stages_own_distillation_is_named_by_its_own_key(monkeypatch):
    """A stage that sets its own ``stages.N.task.distill`` hears about it under that key, from the
    task's teacher as from the settings check; a stage that inherits the job's hears ``task.distill``."""
    from omegaconf import OmegaConf

    from gmaiqa.tasks import FocusQualityTask, focus_quality

    cfg = OmegaConf.create(
        {"stages": [{"name": "l0"}, {"name": "l1", "task": {"distill": {"teacher": "t.ckpt"}}}]}
    )
    assert [distill_key(cfg, stage) for stage in cfg.stages] == ["task.distill", "stages.1.task.distill"]

    loaded = {}

    def load(settings, *, student_meta, key):
        loaded["key"] = key
        return Teacher(torch.nn.Identity(), settings, key)

    monkeypatch.setattr(focus_quality.Teacher, "load", load)
    task = FocusQualityTask(
        torch.nn.Identity(),
        distill={"teacher": "t.ckpt", "groups": "*-feces/*"},
        distill_key="stages.1.task.distill",
    )
    assert loaded["key"] == "stages.1.task.distill"
    with pytest.raises(ConfigError) as refused:
        task.teacher.check_groups(["08-dense/g0001"])
    assert refused.value.key == "stages.1.task.distill.groups"
    with pytest.raises(ConfigError) as refused:
        FocusQualityTask(
            torch.nn.Identity(),
            distill={"teacher": "t.ckpt", "weight": 0},
            distill_key="stages.1.task.distill",
        )
    assert refused.value.key == "stages.1.task.distill.weight"
