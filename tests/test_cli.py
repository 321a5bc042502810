"""The console command as users run it."""

import shutil
import subprocess
import sys

import pytest

from gmaiqa.cli import main


def test_synth_then_check_through_the_cli(tmp_path, capsys):
    out = tmp_path / "stacks"
    assert (
        main(
            [
                "synth",
                f"out={out}",
                "preset=blood",
                "groups=3",
                "seed=1",
                "height=48",
                "width=64",
                "images=[4,6]",
            ]
        )
        == 0
    )
    assert main(["check", f"root={out}"]) == 0
    text = capsys.readouterr().out
    assert "groups   3" in text and "OK: dataset is valid" in text
    assert not (tmp_path / "outputs").exists()


def test_check_exits_non_zero_naming_each_problem(tiny_feces, tmp_path, capsys):
    root = tmp_path / "bad"
    shutil.copytree(tiny_feces, root)
    lines = (root / "manifest.csv").read_text().splitlines()
    first, second = lines[1].split(",")[1], lines[2].split(",")[1]
    (root / first).write_bytes((root / first).read_bytes()[:100])
    (root / second).unlink()
    (root / "manifest.csv").write_text("\n".join(lines + [lines[3]]) + "\n")
    assert main(["check", f"root={root}"]) == 1
    text = capsys.readouterr().out
    assert (
        f"{first}: truncated PNG" in text and f"{second}: file not found" in text and "listed twice" in text
    )


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["synth", f"out={tmp_path / 'x'}", "preset=faeces"]) == 2
    assert "did you mean 'feces'" in capsys.readouterr().err
    assert main(["chek"]) == 2
    assert "did you mean `gmaiqa check`" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, key, others",
    [
        (["synth"], "out", []),
        (["check"], "root", []),
        (["train", "data=folder"], "data.root", []),
        (["train", "-m", "data=folder", "seed=1,2"], "data.root", []),
        (["eval", "ckpt=default"], "out", ["data.root"]),
        (["predict", "out=x"], "input", []),
        (["benchmark", "out=x"], "data.root", []),
        (["export"], "ckpt", ["out"]),
        (["summarize"], "dir", []),
        (["report"], "dirs", []),
    ],
)
def test_a_required_key_left_out_is_one_message_naming_every_such_key(
    args, key, others, tmp_path, capsys, monkeypatch
):
    """Hydra's own MissingMandatoryValue surfaced as a traceback and exit 1 once the command first read
    the key (and `gmaiqa synth` wrote its dataset into a folder named ???); now every command stops
    before anything runs, leaving the working folder as it was."""
    monkeypatch.chdir(tmp_path)
    assert main([*args[:1], *(a.replace("=x", f"={tmp_path / 'x'}") for a in args[1:])]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert err.startswith(f"gmaiqa {args[0]}: error: config `{key}`: no value given")
    assert all(f"`{other}`" in err and f"{other}=" in err for other in others)
    assert not (tmp_path / "x").exists() and not any(tmp_path.iterdir())


@pytest.mark.slow
def test_console_script_is_installed(tmp_path):
    exe = shutil.which("gmaiqa") or str(sys.executable).replace("python", "gmaiqa")
    result = subprocess.run([exe, "check", f"root={tmp_path / 'missing'}"], capture_output=True, text=True)
    assert (
        result.returncode == 1
        and "missing: does not exist -> point it at a dataset folder or a stack file" in result.stdout
    )


def test_conf_is_found_in_a_checkout_and_in_the_wheel_layout(tmp_path, monkeypatch):
    import gmaiqa.paths as paths

    assert (paths.conf_dir() / "synth.yaml").is_file()
    wheel = tmp_path / "gmaiqa"
    shutil.copytree(paths.conf_dir(), wheel / "conf")
    monkeypatch.setattr(paths, "PACKAGE_DIR", wheel)
    assert paths.conf_dir() == wheel / "conf"


def test_a_multirun_exits_with_its_worst_job_status(tiny_feces, tmp_path):
    # the valid dataset last: its 0 must not hide the failure before it
    assert (
        main(
            [
                "check",
                "-m",
                f"root={tmp_path / 'missing'},{tiny_feces}",
                f"hydra.sweep.dir={tmp_path / 'sweep'}",
            ]
        )
        != 0
    )
    assert (
        main(["check", "-m", f"root={tiny_feces},{tiny_feces}", f"hydra.sweep.dir={tmp_path / 'sweep2'}"])
        == 0
    )


@pytest.mark.parametrize("command", ["synth", "check", "train", "eval", "predict", "benchmark", "summarize"])
def test_every_command_is_a_thin_entry_with_help(command, capsys):
    import importlib

    from omegaconf import OmegaConf

    from gmaiqa.paths import conf_dir

    entry = importlib.import_module(f"gmaiqa.commands.{command}")
    assert callable(entry.run)
    assert main([command, "--help"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"gmaiqa {command} ") and "Powered by Hydra" not in shown
    own = OmegaConf.load(conf_dir() / f"{command}.yaml")
    for key in own:  # the command's own keys, each with its comment line as written
        if key != "defaults":
            assert f"\n{key}:" in shown, key
    assert ("config groups" in shown) == (command == "train")


def test_summarize_takes_a_bare_folder_and_the_old_flags(capsys):
    from gmaiqa.cli import summarize_arguments

    assert summarize_arguments(["outputs/a-multirun/2026-11-22_10-00-00-1a2b3c"]) == [
        "dir=outputs/a-multirun/2026-11-22_10-00-00-1a2b3c"
    ]
    assert summarize_arguments(["/tmp/with space", "wandb.mode=disabled"]) == [
        "dir='/tmp/with space'",
        "wandb.mode=disabled",
    ]
    assert summarize_arguments(["DIR", "--wandb", "disabled"]) == ["dir=DIR", "logger.wandb.mode=disabled"]
    assert "use logger.wandb.mode=disabled" in capsys.readouterr().err


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "multirun"])
def test_a_training_run_prints_each_line_once_and_no_adverts(tiny_feces, tmp_path, multirun):
    from helpers.tiny import one_step

    args = ["train", "experiment=gmanet_l1_direct", *one_step(tiny_feces), "evaluate=false"]
    args += ["model.head_channels=16", "model.aggregation_channels=16", f"paths.output_root={tmp_path}"]
    args += ["-m", "seed=0,1"] if multirun else []
    done = subprocess.run([sys.executable, "-m", "gmaiqa.cli", *args], capture_output=True, text=True)
    shown = done.stdout + done.stderr
    assert done.returncode == 0, shown[-2000:]
    jobs = 2 if multirun else 1
    assert shown.count("Seed set to 0") == 1 and shown.count("GPU available") == jobs
    assert "litlogger" not in shown.lower() and "Total Flops" not in shown and "LeafSpec" not in shown
    assert "stage l1_direct: gmanet," in shown and "M parameters" in shown


def test_a_mistyped_key_gets_the_closest_key_beside_it_and_no_far_guess():
    from gmaiqa.config_check import precheck
    from gmaiqa.errors import ConfigError

    def message(*overrides):
        with pytest.raises(ConfigError) as error:
            precheck("train", list(overrides))
        return str(error.value)

    assert "did you mean `data.batch_size`" in message("data.batchsize=7")
    assert "did you mean `data.batch_size`" in message("dat.batch_size=7")  # a wrong parent
    assert "did you mean" not in message("model.foo=1")  # nothing beside it is close


@pytest.mark.parametrize(
    "args, key, words",
    [
        (["check", "root=.", "~root"], "root", "`~root` removes a key gmaiqa check reads"),
        (["check", "root=.", "~workers"], "workers", "`~workers` removes a key"),  # null: Hydra's own words
        (["train", "~data.batch_size"], "data.batch_size", "`~data.batch_size` removes a key gmaiqa train"),
        (
            ["train", "~logger"],
            "logger",
            "`~logger` removes a key gmaiqa train reads",
        ),  # a whole config group
        (["check", "root=.", "~wrkers"], "~wrkers", "no such key to remove (did you mean `workers`?)"),
    ],
)
def test_removing_a_key_a_command_reads_is_one_message_not_a_traceback_in_the_run(
    tmp_path, monkeypatch, capsys, args, key, words
):
    """`~root` composed fine and failed inside the command with omegaconf's traceback; `~workers`
    (null by default) got Hydra's "'workers' does not exist". Both exit 2 naming the key, before any
    work, and an entry the user added may still be removed again."""
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"config `{key}`: {words}" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
    added = "+callbacks.timer={_target_:lightning.pytorch.callbacks.Timer}"
    assert main(["train", added, "~callbacks.timer", "--cfg", "job"]) == 0
    assert "timer" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, key, value",
    [
        (["predict", "input=in", "out=out", "method=TENG", "overwrite=no"], "overwrite", "'no'"),
        (["check", "root=in", "json=maybe"], "json", "'maybe'"),
        (["train", "evaluate=yes"], "evaluate", "'yes'"),
        (["train", "-m", "evaluate=true,nope"], "evaluate", "'nope' (swept)"),
    ],
)
def test_a_switch_takes_only_true_or_false(tmp_path, monkeypatch, capsys, args, key, value):
    """Hydra reads `overwrite=no` as the text 'no', which Python takes as true: the typo for false
    replaced the user's predictions. A key that is true or false by default now refuses anything else,
    in every job of a sweep, before the command touches a file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "predictions.csv").write_text("mine\n")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"config `{key}`: must be true or false, not {value}" in err
    assert (tmp_path / "out" / "predictions.csv").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


@pytest.mark.parametrize("override", ["run_id=null", "run_id=''", "run_name=.", "run_id=.."])
def test_a_run_folder_name_that_names_no_folder_is_refused(tmp_path, monkeypatch, capsys, override):
    """`run_id=null` trained into a folder named 'None'; '' or '.' would put the run into its parent."""
    monkeypatch.chdir(tmp_path)
    for multirun in ([], ["-m", "seed=1,2"]):
        assert main(["train", override, *multirun]) == 2
        key = override.split("=")[0]
        err = capsys.readouterr().err
        assert f"config `{key}`: " in err and "names no folder of its own" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("threads", ["-1", "0", "two"])
def test_check_refuses_a_reader_thread_count_below_one(tmp_path, capsys, threads):
    """`check workers=-1` ran with one thread without a word (synth reads -1 as every core)."""
    assert main(["check", f"root={tmp_path}", f"workers={threads}"]) == 2
    assert "config `workers`" in capsys.readouterr().err


def test_two_of_hydras_modes_are_one_message_not_its_traceback(capsys):
    """Hydra raised a bare ValueError ("Only one of --run, --multirun, --cfg, ...") as a traceback."""
    assert main(["train", "-m", "seed=1,2", "--cfg", "job"]) == 2
    err = capsys.readouterr().err
    assert "config `flags`: -m and --cfg cannot be combined" in err and "--cfg job KEY=VALUE" in err
    assert main(["check", "--info", "--cfg", "job"]) == 2
    assert "--info and --cfg cannot be combined" in capsys.readouterr().err


def test_a_users_own_config_folder_is_composed_and_checked_and_config_name_is_refused(tmp_path, capsys):
    """--config-dir skipped every check (precheck stopped at any flag it did not know), and
    --config-name ended in Hydra's own error and status 1. An experiment kept outside the checkout is
    now composed as Hydra will compose it and checked like any other; the command's own config stays."""
    mine = tmp_path / "mine" / "experiment"
    mine.mkdir(parents=True)
    (mine / "wider.yaml").write_text("# @package _global_\nseed: 17\nrun_name: wider\n")
    assert main(["train", "--config-dir", str(tmp_path / "mine"), "experiment=wider", "--cfg", "job"]) == 0
    shown = capsys.readouterr().out
    assert "\nseed: 17\n" in shown and "\nrun_name: wider\n" in shown
    assert main(["train", f"--config-dir={tmp_path / 'mine'}", "experiment=wider", "evaluate=nah"]) == 2
    assert "config `evaluate`: must be true or false" in capsys.readouterr().err
    assert main(["train", "--config-dir", str(tmp_path / "mine"), "experiment=wide"]) == 2
    assert "no option 'wide' (did you mean 'wider'?)" in capsys.readouterr().err
    assert main(["train", "--config-dir", str(tmp_path / "none"), "experiment=wider"]) == 2
    assert "config `--config-dir`: " in capsys.readouterr().err
    assert main(["check", f"root={tmp_path}", "--config-name", "train"]) == 2
    assert "gmaiqa check always reads its own conf/check.yaml" in capsys.readouterr().err
    assert main(["train", "--run", "-m"]) == 2
    assert "--run and -m cannot be combined" in capsys.readouterr().err


def test_a_finished_command_leaves_no_hydra_config_behind(tiny_feces, capsys):
    """A job composed in-process after `main()` (a notebook, a test) must not read the finished app's
    overrides as its own: they would be recorded as its command line."""
    from hydra.core.hydra_config import HydraConfig

    from gmaiqa.runs import job_overrides

    assert main(["check", f"root={tiny_feces}"]) == 0
    assert not HydraConfig.initialized() and job_overrides() is None
