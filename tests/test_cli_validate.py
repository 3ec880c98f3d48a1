"""`autocurriculum validate` like `nginx -t`, and the routing of the other subcommands to their modules."""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import pytest

from autocurriculum.cli import SUBCOMMANDS, main
from autocurriculum.exits import EX_CONFIG, EX_NOINPUT

from .bad_policies.cases import BASE, CASES, BadCase
from .conftest import REPO


def _write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_default_prints_phase_one_to_two_as_a_data_step_then_a_rewards_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(REPO / "policies" / "default.toml")]) == 0
    out = capsys.readouterr().out
    step_lines = [line for line in out.splitlines() if line[:1].isdigit()]
    assert step_lines[1].startswith("2. correctness/a: changes the DATA mixture (reward set unchanged)")
    assert step_lines[2].startswith("3. correctness/b: changes the REWARD set (data mixture unchanged)")
    for line in step_lines[1:]:  # every switch names exactly one factor
        assert ("DATA" in line) != ("REWARD" in line), line
    assert "leave when settled" in out and "done when" in out
    assert out.rstrip().endswith("policy OK")


def test_validate_shows_what_runs_and_what_must_hold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = _write(tmp_path, BASE.replace('name = "light_length_penalty"\n', 'name = "light_length_penalty"\nparams = { budget = 40 }\n'))
    assert main(["validate", str(policy)]) == 0
    first = capsys.readouterr().out.split("\n2. ")[0]
    assert "data:    arithmetic 100% [slice 0-0.3]" in first
    assert "rewards: punish_refusal, strict_format_gate, light_length_penalty(budget=40)" in first
    assert "leave when: extraction_rate >= 0.95 AND refusal_rate <= 0.01 AND plateau of extraction_rate (trend)" in first
    assert "budget:  100 steps, then hold" in first


def test_validate_prints_the_resolved_training_knobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(_write(tmp_path, BASE))]) == 0
    defaults = capsys.readouterr().out.split("\ntraining:\n")[1]
    assert "schedule:  constant 0.003\n" in defaults
    assert "adamw b1=0.9 b2=0.999 weight_decay=0.0001, no gradient clipping" in defaults
    assert "generations_per_prompt=4 num_iterations=1 beta=0.04 epsilon=0.2" in defaults
    assert "top_k=off" in defaults
    assert "4 prompts per step; rollout_micro_batch_size=4 train_micro_batch_size=4 compute_logps_micro_batch_size=4" in defaults
    knobs = ('lr_schedule = "warmup_linear"\nwarmup_steps = 20\nend_value = 1e-4\nmax_grad_norm = 0.5\nweight_decay = 0.01\n'
             "b1 = 0.8\nb2 = 0.99\nnum_iterations = 2\nepsilon = 0.3\ntop_k = 40\ntrain_micro_batch_size = 2\n"
             "compute_logps_micro_batch_size = 1\n")
    policy = _write(tmp_path, BASE.replace('prompt_template = "plain"\n', 'prompt_template = "plain"\n' + knobs))
    assert main(["validate", str(policy)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("policy OK")
    resolved = out.split("\ntraining:\n")[1]
    # decay_steps not set: the run's optimizer updates, run.max_steps (300) x num_iterations (2)
    assert "schedule:  warmup_linear, 0 -> 0.003 over warmup_steps=20, -> end_value=0.0001 at decay_steps=600" in resolved
    assert "adamw b1=0.8 b2=0.99 weight_decay=0.01, max_grad_norm=0.5" in resolved
    assert "num_iterations=2 beta=0.04 epsilon=0.3" in resolved
    assert "top_k=40" in resolved
    # an unset rollout micro-batch is Tunix's default: the train micro-batch
    assert "rollout_micro_batch_size=2 train_micro_batch_size=2 compute_logps_micro_batch_size=1" in resolved


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_bad_policy_exits_78_naming_file_path_and_value(case: BadCase, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    policy = _write(tmp_path, case.text(), "bad.toml")
    assert main(["validate", str(policy)]) == EX_CONFIG
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"autocurriculum: {policy}: {case.path}: "), captured.err
    assert f"(got {case.value!r})" in captured.err and case.fragment.split("; ")[-1] in captured.err
    assert captured.err.count("\n") == 1  # one line, no traceback


def test_set_overrides_reach_validation_and_name_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = _write(tmp_path, BASE)
    assert main(["validate", str(policy), "--set", "run.max_steps=0"]) == EX_CONFIG
    assert f"{policy}: run.max_steps: must be >= 1 (got 0)" in capsys.readouterr().err
    assert main(["validate", str(policy), "--set", "phases[1].max_steps=7"]) == 0
    assert "budget:  7 steps, then advance" in capsys.readouterr().out


def test_missing_policy_file_exits_66(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.toml")]) == EX_NOINPUT
    assert f"{tmp_path / 'nope.toml'}: <file>: cannot read policy" in capsys.readouterr().err


def test_module_entry_point_validates_without_importing_jax_or_tunix() -> None:
    probe = ("import sys\nfrom autocurriculum.cli import main\ncode = main(['validate', 'policies/default.toml'])\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'tunix', 'flax', 'prometheus_client'))\n"
             "print('HEAVY', heavy)\nsys.exit(code)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    entry = subprocess.run([sys.executable, "-m", "autocurriculum", "validate", "policies/default.toml"],
                           capture_output=True, text=True, cwd=REPO)
    assert entry.returncode == 0 and entry.stdout.rstrip().endswith("policy OK"), entry.stderr


def test_module_entry_point_exits_78_without_a_traceback(tmp_path: Path) -> None:
    policy = _write(tmp_path, BASE.replace('name = "punish_refusal"', 'name = "punish_refusl"', 1))
    result = subprocess.run([sys.executable, "-m", "autocurriculum", "validate", str(policy)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == EX_CONFIG
    assert (f"{policy}: phases[0].rewards[0].name: unknown reward function (got 'punish_refusl'); "
            "did you mean 'punish_refusal'?") in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_every_subcommand_has_help_with_an_example(subcommand: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([subcommand, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"  autocurriculum {subcommand} " in out


def test_unknown_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["validate", "policies/default.toml", "--bogus"])
    assert exited.value.code == 2 and "--bogus" in capsys.readouterr().err


# --- routing: each subcommand reaches the function its module provides


def test_run_calls_the_daemon_with_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []
    monkeypatch.setitem(sys.modules, "autocurriculum.daemon", types.SimpleNamespace(cmd_run=lambda a: seen.append(a) or 5))
    assert main(["run", "p.toml", "--run-dir", "runs/x", "--resume", "--set", "run.max_steps=50"]) == 5
    assert (seen[0].policy, seen[0].run_dir, seen[0].resume, seen[0].set) == ("p.toml", "runs/x", True, ["run.max_steps=50"])


def test_status_and_ctl_take_their_arguments_from_control_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []
    fake = types.SimpleNamespace(
        add_status_arguments=lambda p: p.add_argument("--colour"),
        cmd_status=lambda a: seen.append(a) or 3,
        add_ctl_arguments=lambda p: p.add_argument("command"),
        cmd_ctl=lambda a: seen.append(a) or 0,
    )
    monkeypatch.setitem(sys.modules, "autocurriculum.control_cli", fake)
    assert main(["status", "--colour", "blue"]) == 3
    assert main(["ctl", "advance"]) == 0
    assert (seen[0].colour, seen[1].command) == ("blue", "advance")


def test_replay_loads_the_policy_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[object, ...]] = []
    monkeypatch.setitem(sys.modules, "autocurriculum.replay",
                        types.SimpleNamespace(replay_file=lambda *a: calls.append(a) or 0))
    good, bad = _write(tmp_path, BASE, "good.toml"), _write(tmp_path, BASE.replace("port = 9464", "port = -1"), "bad.toml")
    assert main(["replay", "m.jsonl", "--policy", str(bad)]) == EX_CONFIG
    assert f"{bad}: metrics.port: must be >= 0 (got -1)" in capsys.readouterr().err
    assert calls == []
    assert main(["replay", "m.jsonl", "--policy", str(good), "--plot", "out.png"]) == 0
    policy, metrics, plot = calls[0]
    assert (getattr(policy, "file"), metrics, plot) == (str(good), Path("m.jsonl"), Path("out.png"))
