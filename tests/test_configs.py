"""Every configuration the project ships composes against its schema, passes the precheck, and builds:
each experiment's data module, and each stage's model and task (the pattern of lightning-hydra-template's
tests/test_configs.py). A schema's choice or type refused at composition is named by its key."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch import LightningDataModule
from omegaconf import OmegaConf

from gmaiqa.config_check import precheck
from gmaiqa.errors import ConfigError
from gmaiqa.inference import InferenceSettings
from gmaiqa.paths import conf_dir
from gmaiqa.schemas.data import Validation
from gmaiqa.schemas.logger import ModelArtifact, WandbMode
from gmaiqa.stages import stage_model, stage_task
from helpers.tiny import compose_train

EXPERIMENTS = sorted(p.stem for p in (conf_dir() / "experiment").glob("*.yaml"))
# what each command needs on the command line before its config is complete (its ??? keys); {data} is an
# (empty) folder, {out} one that does not exist yet
REQUIRED = {
    "synth": ["out={out}"],
    "check": ["root={data}"],
    "eval": ["ckpt=default", "data.root={data}", "out={out}"],
    "predict": ["input={data}", "out={out}"],
    "benchmark": ["data.root={data}", "out={out}"],
    "export": ["ckpt={run}", "out={out}.onnx"],  # a trained run (the shipped default is an export already)
    "summarize": ["dir={data}"],
    "report": ["dirs=[{data}]"],
    "autofocus": ["out={out}"],
}


def required(command: str, tmp_path, run=None) -> list[str]:
    (tmp_path / "data").mkdir(exist_ok=True)
    return [
        o.format(data=tmp_path / "data", out=tmp_path / "out", run=run) for o in REQUIRED.get(command, [])
    ]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_passes_the_precheck_and_builds(name, tmp_path):
    cfg = compose_train(name, ["paths.run_dir=/tmp/unused"], one_epoch=False)
    given = []
    if cfg.stages[0].get("requires_init"):
        # a protocol that continues earlier weights is refused without them, before any folder exists
        with pytest.raises(ConfigError, match="config `init_from`"):
            precheck("train", [f"experiment={name}"])
        given = ["init_from=default"]  # a file that exists; whether it fits the network is the run's check
    assert precheck("train", [f"experiment={name}", *given]) == 1
    datamodule = instantiate(cfg.data)  # reads nothing: the data are made or read in setup()
    assert isinstance(datamodule, LightningDataModule), type(datamodule)
    inference = InferenceSettings.from_mapping(OmegaConf.to_container(cfg.inference, resolve=True)).record()
    data = OmegaConf.to_container(cfg.data, resolve=True)
    for stage in cfg.stages:
        with torch.device("meta"):  # the architecture without its memory or ImageNet weights
            net = instantiate(stage_model(cfg, stage))
        task_cfg = stage_task(cfg, stage)  # as gmaiqa.stages.run_stage builds it
        report = task_cfg.pop("report", None)
        meta = {"model": stage_model(cfg, stage), "data": data}  # what a teacher's fit is checked against
        task = instantiate(task_cfg)(net, inference=inference, meta=meta)
        assert sum(p.numel() for p in net.parameters()) > 0 and hasattr(task, "training_step"), stage.name
        if report:
            assert hasattr(instantiate(report, out_dir=tmp_path), "on_test_epoch_end"), stage.name


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_every_command_config_composes_against_its_schema(command, tmp_path, request):
    run = request.getfixturevalue("trained_run") if command == "export" else None
    assert precheck(command, required(command, tmp_path, run)) == 1


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_every_command_is_typed_by_its_own_schema(command, tmp_path):
    from gmaiqa.config_compose import compose_command
    from gmaiqa.schemas.commands import COMMAND_SCHEMAS

    cfg = compose_command(command, required(command, tmp_path))
    assert OmegaConf.get_type(cfg) is COMMAND_SCHEMAS[command]
    # every key the YAML sets is one the schema declares (a key only in the YAML would be untyped)
    declared = set(COMMAND_SCHEMAS[command].__dataclass_fields__)
    written = OmegaConf.load(conf_dir() / f"{command}.yaml")
    assert set(written) - {"defaults"} <= declared, set(written) - declared


def test_the_synth_schema_keeps_the_generators_fields_and_defaults():
    """`gmaiqa synth`'s schema is light (no numpy) so it repeats SynthConfig's user-facing fields: the
    same names, types and defaults, or a key would be typed one way and generated another."""
    import dataclasses

    from gmaiqa.data.synth_config import SynthConfig
    from gmaiqa.schemas.commands import SynthCommand

    generator = {f.name: f for f in dataclasses.fields(SynthConfig)}
    for spec in dataclasses.fields(SynthCommand):
        if spec.name in ("out", "workers", "overwrite"):
            continue  # where and how synth writes, not what it renders
        assert spec.name in generator, spec.name
        default = spec.default if spec.default_factory is dataclasses.MISSING else spec.default_factory()
        made = generator[spec.name]
        expected = made.default if made.default_factory is dataclasses.MISSING else made.default_factory()
        same = list(default) == list(expected) if isinstance(default, list) else default == expected
        assert same, spec.name


def test_the_schemas_type_the_shipped_defaults():
    cfg = compose_train("quickstart", ["paths.run_dir=/tmp/unused"], one_epoch=False)
    assert OmegaConf.get_type(cfg.logger).__name__ == "TrainLogger"
    assert (
        cfg.logger.wandb.mode is WandbMode.offline and cfg.logger.wandb.model_artifact is ModelArtifact.upload
    )
    assert cfg.data.validate is Validation.full


@pytest.mark.parametrize(
    ("command", "override", "key", "named"),
    [
        ("train", "data.validate=fulll", "data.validate", "did you mean 'full'"),
        ("train", "data.uniform_sizes=crp", "data.uniform_sizes", "did you mean 'crop'"),
        ("train", "data.normalize=stak", "data.normalize", "did you mean 'stack'"),
        ("train", "data.batch_size=abc", "data.batch_size", "is not a whole number"),
        ("train", "logger.wandb.mode=onlin", "logger.wandb.mode", "did you mean 'online'"),
        ("train", "logger.wandb.enabled=maybe", "logger.wandb.enabled", "true or false"),
        ("benchmark", "logger.wandb.mode=ofline", "logger.wandb.mode", "did you mean 'offline'"),
        ("summarize", "logger.wandb.mode=disabld", "logger.wandb.mode", "did you mean 'disabled'"),
        ("train", "trainer.devices=abc", "trainer.devices", "'abc' is not a number of devices"),
        ("train", "trainer.precision=16-mix", "trainer.precision", "did you mean '16-mixed'"),
        ("train", "trainer.accelerator=gpus", "trainer.accelerator", "did you mean 'gpu'"),
        ("train", "+trainer.num_nodes=0", "trainer.num_nodes", "at least 1"),
        # each command's own keys (gmaiqa/schemas/commands.py)
        ("predict", "accelerator=gpus", "accelerator", "did you mean 'gpu'"),
        ("predict", "validate=ful", "validate", "did you mean 'full'"),
        ("predict", "overwrite=maybe", "overwrite", "must be true or false"),
        ("eval", "split=tst", "split", "did you mean 'test'"),
        ("eval", "data.uniform_sizes=crp", "data.uniform_sizes", "did you mean 'crop'"),
        ("benchmark", "data.split_seed=abc", "data.split_seed", "is not a whole number"),
        ("export", "format=onx", "format", "did you mean 'onnx'"),
        ("check", "workers=two", "workers", "is not a whole number"),
        ("synth", "groups=abc", "groups", "is not a whole number"),
        ("synth", "step_um=far", "step_um", "is not a number"),
        ("autofocus", "stage=simulatd", "stage", "did you mean 'simulated'"),
        ("autofocus", "budget=abc", "budget", "is not a whole number"),
        ("report", "mode=onlin", "mode", "did you mean 'online'"),
    ],
)
def test_a_wrong_choice_or_type_is_named_by_its_key(command, override, key, named, tmp_path):
    with pytest.raises(ConfigError) as caught:
        precheck(command, [*required(command, tmp_path), override])
    message = str(caught.value)
    assert caught.value.key == key and named in message, message


@pytest.mark.parametrize(
    "override",
    ["data.validate=fulll", "trainer.devices=abc", "logger.wandb.mode=onlin", "trainer.precision=8"],
)
def test_a_wrong_value_is_refused_before_torch_or_lightning_is_imported(override, tmp_path):
    """The refusal takes the precheck's time (Hydra's composition), not torch's import: nothing heavy is
    loaded, which is what kept `logger.wandb.mode=onlin` waiting 26-37 s."""
    import subprocess
    import sys

    probe = (
        "import sys; from gmaiqa.cli import main; "
        f"code = main(['train', {override!r}]); "
        "heavy = sorted(m for m in ('torch', 'lightning', 'wandb') if m in sys.modules); "
        "print('RESULT', code, heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "RESULT 2 []" in out.stdout, out.stdout + out.stderr
    assert list(tmp_path.iterdir()) == [], "a refused command created files"
