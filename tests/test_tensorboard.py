"""TensorBoard: the controller's figures of a step, Tunix's logging backend, and the daemon's use of both.

Fast: the figures are a pure function of a metrics-log line; the backend is exercised with the
real tensorboardX writer and read back with TensorBoard's own reader; the daemon runs in-process on
the scripted trainer. The real Tunix run that writes both Tunix's loss and these figures into one
set of event files is in tests/test_e2e.py.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autocurriculum import logs
from autocurriculum.curriculum_figures import STEP_ALERTS, phase_order, step_figures
from autocurriculum.daemon import RunOptions, run_daemon
from autocurriculum.exits import EX_CONFIG
from autocurriculum.policy import PolicyError, expand_plan, load
from autocurriculum.tensorboard_log import TensorboardLog

from .conftest import REPO
from .fake_trainer import ScriptedBackend, good, send_signal
from .tensorboard_events import scalars

FAST_POLICY = REPO / "tests" / "policies" / "fast.toml"

# a switching step's metrics line, as the daemon writes it (trimmed to the fields the figures read)
SWITCH_LINE: dict[str, Any] = {
    "step": 8, "plan_step": 1, "phase": "correctness", "part": "a",
    "observation": {"metrics": {"extraction_rate": 0.8125, "accuracy": 0.0625, "domain_compliance:math": 0.75,
                                "wrong_answer_length_tokens": None}},
    "eval": None,
    "decision": {"action": "swap_data", "reason": "criteria_and_plateau", "from_step": 0, "to_step": 1},
    "criteria": {"extraction_rate": {"value": 0.85, "comparison": ">=", "threshold": 0.6, "holds": True},
                 "refusal_rate": {"value": 0.25, "comparison": "<=", "threshold": 0.2, "holds": False}},
    "plateau": {"extraction_rate": {"test": "trend", "statistic": 0.25, "bound": 0.5, "plateaued": True, "ready": True},
                "accuracy": {"test": "trend", "statistic": None, "bound": 0.5, "plateaued": False, "ready": False}},
    "alerts": ["no_reward_variance"], "hold": True, "rollbacks": 1,
}


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    logs.configure(json=True, level=30, stream=sys.stderr)


# ---------------------------------------------------------------- the figures of a step


def test_a_switching_step_has_its_phase_plan_step_transition_criteria_plateau_and_alerts() -> None:
    figures = step_figures(SWITCH_LINE, phase_index={"behaviour": 0, "correctness": 1}, transitions=3)
    assert {k: figures[k] for k in ("phase_index", "plan_step", "transition", "transitions", "hold", "rollbacks")} == {
        "phase_index": 1.0, "plan_step": 1.0, "transition": 1.0, "transitions": 3.0, "hold": 1.0, "rollbacks": 1.0}
    assert {k: v for k, v in figures.items() if k.startswith("criteria/")} == {
        "criteria/extraction_rate/value": 0.85, "criteria/extraction_rate/threshold": 0.6,
        "criteria/extraction_rate/holds": 1.0, "criteria/refusal_rate/value": 0.25,
        "criteria/refusal_rate/threshold": 0.2, "criteria/refusal_rate/holds": 0.0}
    # a test whose window is not full yet has a bound and a verdict but no statistic
    assert {k: v for k, v in figures.items() if k.startswith("plateau/")} == {
        "plateau/extraction_rate/statistic": 0.25, "plateau/extraction_rate/bound": 0.5,
        "plateau/extraction_rate/plateaued": 1.0, "plateau/accuracy/bound": 0.5, "plateau/accuracy/plateaued": 0.0}
    # every alert, raised or not (a held run raises "hold")
    assert {k: v for k, v in figures.items() if k.startswith("alert/")} == {
        f"alert/{a}": 1.0 if a in ("no_reward_variance", "hold") else 0.0 for a in STEP_ALERTS}
    # the observed metrics under their own names (a metric without a value, None, is left out)
    assert {k: figures[k] for k in ("extraction_rate", "accuracy", "domain_compliance:math")} == {
        "extraction_rate": 0.8125, "accuracy": 0.0625, "domain_compliance:math": 0.75}
    assert "wrong_answer_length_tokens" not in figures
    assert not any(k.startswith("eval/") for k in figures)


def test_a_quiet_step_is_no_transition_and_an_evaluated_step_has_its_held_out_figures() -> None:
    quiet = {**SWITCH_LINE, "decision": {"action": "none"}, "alerts": [], "hold": False,
             "eval": {"metrics": {"accuracy": 0.5, "extraction_rate": float("nan")}}}
    figures = step_figures(quiet, phase_index={"correctness": 0}, transitions=0)
    assert (figures["transition"], figures["hold"], figures["alert/hold"]) == (0.0, 0.0, 0.0)
    assert {k: v for k, v in figures.items() if k.startswith("eval/")} == {"eval/accuracy": 0.5}


def test_phases_are_numbered_in_the_policys_order() -> None:
    plan = expand_plan(load(FAST_POLICY))
    assert phase_order(plan) == {"behaviour": 0, "correctness": 1, "generalisation": 2}


# ---------------------------------------------------------------- Tunix's logging backend


def test_the_backend_is_silent_until_opened_and_outlives_tunixs_close(tmp_path: Path) -> None:
    log = TensorboardLog()
    log.log_scalar("actor/train/loss", np.float32(9.0), step=1)  # before open: nowhere to go
    log.open(tmp_path / "tb", first_step=1)
    log.log_scalar("actor/train/loss", np.float32(0.5), step=1)
    log.log_scalar("/rewards/train/sum", np.asarray([1.0, 3.0]), step=1)  # an array: its mean
    log.log_scalar("prompts", np.asarray(["a text"]), step=1)  # not a number: left out
    log.close()  # Tunix closes its logger at the end of every training segment
    log.log_scalar("actor/train/loss", 0.25, step=2)
    log.log_figures(2, {"phase_index": 1.0, "criteria/x/value": float("nan"), "eval/accuracy": 0.75})
    log.finish()
    assert scalars(tmp_path / "tb") == {"actor/train/loss": [(1, 0.5), (2, 0.25)], "rewards/train/sum": [(1, 2.0)],
                                        "curriculum/train/phase_index": [(2, 1.0)], "curriculum/eval/accuracy": [(2, 0.75)]}


def test_a_resumed_writer_voids_the_steps_after_the_checkpoint_and_shifts_the_actors_updates(tmp_path: Path) -> None:
    first = TensorboardLog()
    first.open(tmp_path, first_step=1)
    for step in range(1, 9):  # the killed process wrote steps 1-8
        first.log_scalar("actor/train/loss", float(step), step=step)
        first.log_figures(step, {"plan_step": 0.0})
    first.finish()
    resumed = TensorboardLog()  # resumed from the checkpoint at step 5: Tunix counts its updates from 0 again
    resumed.open(tmp_path, first_step=6, step_offsets={"actor/": 5})
    for update in range(1, 4):
        resumed.log_scalar("actor/train/loss", 100.0 + update, step=update)
        resumed.log_figures(5 + update, {"plan_step": 1.0})
    resumed.finish()
    series = scalars(tmp_path)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    assert series["actor/train/loss"] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0),
                                          (6, 101.0), (7, 102.0), (8, 103.0)]
    assert series["curriculum/train/plan_step"] == [(s, 0.0) for s in range(1, 6)] + [(s, 1.0) for s in range(6, 9)]


# ---------------------------------------------------------------- the daemon


def run(run_dir: Path, *sets: str, resume: bool = False, **options: Any) -> ScriptedBackend:
    backend = ScriptedBackend(script=good, hooks=options.pop("hooks", {}))
    run_daemon(load(FAST_POLICY, overrides=list(sets)), run_dir, RunOptions(resume=resume, backend=backend, **options))
    return backend


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_daemon_opens_the_log_in_the_run_directory_and_writes_each_steps_figures(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    backend = run(run_dir, "metrics.tensorboard_dir=tensorboard")
    trainer = backend.trainer
    assert trainer is not None
    assert trainer.metrics_logs == [(run_dir / "tensorboard", 1)]
    records = lines(run_dir / "metrics.jsonl")
    switched = {t["step"] for t in lines(run_dir / "transitions.jsonl")}
    assert [step for step, _ in trainer.figures] == [r["step"] for r in records] == list(range(1, 29))
    assert {step for step, f in trainer.figures if f["transition"] == 1.0} == switched == {7, 14, 21, 28}
    assert [f["plan_step"] for _, f in trainer.figures] == [float(r["plan_step"]) for r in records]
    assert [f["transitions"] for _, f in trainer.figures][-1] == 4.0
    by_step = dict(trainer.figures)
    assert [by_step[step]["phase_index"] for step in (6, 7, 20, 21)] == [0.0, 1.0, 1.0, 2.0]


def test_without_the_setting_nothing_is_opened_and_an_absolute_directory_is_kept(tmp_path: Path) -> None:
    trainer = run(tmp_path / "off", "run.max_steps=3").trainer
    assert trainer is not None and (trainer.metrics_logs, trainer.figures) == ([], [])
    elsewhere = tmp_path / "shared" / "tb"
    trainer = run(tmp_path / "abs", "run.max_steps=3", f"metrics.tensorboard_dir={elsewhere}").trainer
    assert trainer is not None and trainer.metrics_logs == [(elsewhere, 1)]


def test_a_resume_opens_at_the_step_after_its_checkpoint_and_a_fresh_run_removes_old_event_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    setting = "metrics.tensorboard_dir=tb"
    run(run_dir, setting, hooks={12: send_signal(signal.SIGTERM)}, handle_signals=True)  # checkpoint at 12
    events = run_dir / "tb" / "events.out.tfevents.1.host"
    assert events.parent.is_dir()  # the daemon made it; the scripted trainer writes no event file: one as a writer left it
    events.write_bytes(b"")
    resumed = run(run_dir, setting, "run.max_steps=15", resume=True).trainer
    assert resumed is not None and resumed.metrics_logs == [(run_dir / "tb", 13)]
    assert [step for step, _ in resumed.figures] == [13, 14, 15]
    assert events.exists()  # a resume keeps what the earlier process wrote (its later steps are purged)
    fresh = run(run_dir, setting, "run.max_steps=2").trainer
    assert fresh is not None and fresh.metrics_logs == [(run_dir / "tb", 1)]
    assert not events.exists()


def test_a_directory_name_with_spaces_around_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as refused:
        load(FAST_POLICY, overrides=["metrics.tensorboard_dir= tb"])
    assert "metrics.tensorboard_dir" in str(refused.value)


def test_a_directory_the_run_cannot_write_is_refused_in_one_line_before_training(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory")
    capsys.readouterr()
    backend = ScriptedBackend(script=good)
    result = run_daemon(load(FAST_POLICY, overrides=[f"metrics.tensorboard_dir={in_the_way}/tb"]), tmp_path / "run",
                        RunOptions(backend=backend))
    assert (result.exit_code, result.steps) == (EX_CONFIG, 0)
    assert backend.trainer is not None and backend.trainer.trained_batches == 0
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"autocurriculum: {FAST_POLICY}: metrics.tensorboard_dir = ")
    assert f"{in_the_way}/tb" in errors[0]
