"""``ckpt=wandb:ENTITY/PROJECT/NAME:ALIAS``: a stage's model artifact used as a checkpoint (the W&B
client is replaced here: no machine of CI reaches a W&B server)."""

from __future__ import annotations

import shutil

import wandb

from gmaiqa.checkpoints import checkpoint_path
from gmaiqa.cli import main


class FakeApi:
    """The part of ``wandb.Api`` gmaiqa uses: ``artifact(reference, type).download()``."""

    folder = None
    asked: list = []

    def artifact(self, reference, type=None):
        FakeApi.asked.append((reference, type))
        if FakeApi.folder is None:
            raise ValueError(f"artifact '{reference}' not found")
        return self

    def download(self):
        return str(FakeApi.folder)


def test_predict_takes_a_model_artifact(trained_run, tiny_feces, tmp_path, monkeypatch, capsys):
    FakeApi.folder = tmp_path / "artifact"
    FakeApi.folder.mkdir()
    shutil.copy(checkpoint_path(trained_run), FakeApi.folder)
    monkeypatch.setattr(wandb, "Api", FakeApi)
    reference = "lab/gmaiqa/gmanet_l1_direct-l1_direct:seed-0"
    args = [
        "predict",
        f"ckpt=wandb:{reference}",
        f"input={tiny_feces}",
        f"out={tmp_path / 'out'}",
        "num_workers=0",
    ]
    assert main(args) == 0
    assert FakeApi.asked[-1] == (reference, "model") and (tmp_path / "out" / "clearest.csv").is_file()
    FakeApi.folder = None  # offline, or no such artifact: one message naming it and what to do
    assert main([*args[:-2], f"out={tmp_path / 'again'}", "num_workers=0"]) == 2
    err = capsys.readouterr().err
    assert f"cannot fetch the W&B model artifact '{reference}'" in err and "wandb login" in err
    assert not (tmp_path / "again").exists()
