"""The fast tier: the real daemon runs whole curricula in-process on a scripted trainer, in about a second each.

The stream, the reward dispatcher, decide(), the checkpoints, the control files, the exporter and the
logs are the real ones; only the model is replaced by tests/fake_trainer.py, whose completions follow
a script. Each test reads what the daemon did from its own outputs (metrics.jsonl, transitions.jsonl,
status.json, acks, checkpoints) and from what it applied to the stream and the trainer.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from autocurriculum import control, controller, logs
from autocurriculum.daemon import RunOptions, RunResult, run_daemon
from autocurriculum.data import MixtureStream
from autocurriculum.exits import EX_DATAERR, EX_IOERR, EX_OK, EX_SOFTWARE, EX_TEMPFAIL
from autocurriculum.override import Command
from autocurriculum.policy import Policy, expand_plan, load
from autocurriculum.runlog import METRICS_SCHEMA_VERSION

from .conftest import REPO
from .fake_trainer import Script, ScriptedBackend, by_batch, empty, free_form, good, send_signal

FAST_POLICY = REPO / "tests" / "policies" / "fast.toml"
# with the `good` script: behaviour -> correctness/a at 7, -> correctness/b at 14, -> generalisation at 21, done at 28
TOUR = [(7, "swap_data", "correctness/a"), (14, "swap_rewards", "correctness/b"), (21, "swap_data", "generalisation"),
        (28, "done", "generalisation")]


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    logs.configure(json=True, level=30, stream=sys.stderr)


def policy(*sets: str, path: Path = FAST_POLICY) -> Policy:
    return load(path, overrides=list(sets))


def run(run_dir: Path, *sets: str, script: Script = good, resume: bool = False, path: Path = FAST_POLICY,
        **options: Any) -> tuple[RunResult, ScriptedBackend]:
    backend = ScriptedBackend(script=script, hooks=options.pop("hooks", {}), fail_save=options.pop("fail_save", False),
                              copy_per_reward=options.pop("copy_per_reward", False))
    result = run_daemon(policy(*sets, path=path), run_dir, RunOptions(resume=resume, backend=backend, **options))
    return result, backend


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def moves(run_dir: Path) -> list[tuple[int, str, str]]:
    return [(t["step"], t["action"], t["to_phase"]) for t in lines(run_dir / "transitions.jsonl")]


# ---------------------------------------------------------------- a whole curriculum


@pytest.mark.parametrize("copy_per_reward", [False, True], ids=["one list", "a copy per reward function"])
def test_a_whole_curriculum_runs_in_process_and_records_every_step(tmp_path: Path, copy_per_reward: bool) -> None:
    """Also when the trainer hands each reward function its own copy of the completions: one record each."""
    run_dir = tmp_path / "run"
    result, backend = run(run_dir, copy_per_reward=copy_per_reward)
    assert (result.exit_code, result.steps, result.done, result.phase) == (EX_OK, 28, True, "generalisation")
    assert moves(run_dir) == TOUR
    records = lines(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 29))
    assert all(r["schema"] == METRICS_SCHEMA_VERSION for r in records)
    assert all(len(r["batch_ids"]) == 4 and r["observation"]["completions"] == 16 for r in records)
    assert records[0]["observation"]["metrics"]["extraction_rate"] == 1.0
    assert all(r["aliases"]["completions/mean_length"] == r["observation"]["metrics"]["mean_length_tokens"]
               for r in records)  # Tunix's name for the same figure, in every line
    assert records[0]["tunix"] == {"loss": 0.5}  # the trainer's own figures, after one batch
    assert [r["decision"]["action"] for r in records if r["decision"]["action"] != "none"] == [a for _, a, _ in TOUR]
    assert [(r["plan_step"], r["phase"], r["part"]) for r in records if r["step"] in (6, 7, 14, 21)] == [
        (0, "behaviour", ""), (1, "correctness", "a"), (2, "correctness", "b"), (3, "generalisation", "")]
    status = json.loads((run_dir / "status.json").read_text())
    assert {k: status[k] for k in ("step", "plan_step", "plan_steps", "phase", "done", "hold")} == {
        "step": 28, "plan_step": 3, "plan_steps": 4, "phase": "generalisation", "done": True, "hold": False}
    assert status["last_decision"]["action"] == "done" and "domain_compliance:qa" in status["criteria"]
    assert [c.name for c in sorted((run_dir / "checkpoints").iterdir())] == [
        "step_00000020", "step_00000025", "step_00000028"]  # every 5 steps, the last 3 kept, the final one
    assert backend.trainer is not None and backend.trainer.trained_batches == 28


def test_the_daemon_applies_data_or_rewards_never_both_in_one_step(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked on what reached the stream and the trainer, step by step, not on the decisions' labels."""
    backend = ScriptedBackend()
    mixtures: list[int] = []
    original = MixtureStream.set_mixture

    def set_mixture(stream: MixtureStream, mixture: Any) -> None:
        if backend.trainer is not None:  # not the stream's own first mixture
            mixtures.append(backend.trainer.batch_number)
        original(stream, mixture)

    monkeypatch.setattr(MixtureStream, "set_mixture", set_mixture)
    fast = policy()
    result = run_daemon(fast, tmp_path / "run", RunOptions(backend=backend))
    assert result.done
    assert backend.trainer is not None
    rewards = [number for number, _ in backend.trainer.reward_sets if number > 0]
    assert (mixtures, rewards) == ([7, 21], [14])  # each switch changed what its plan step changes, and only that
    assert not set(mixtures) & set(rewards)
    plan = expand_plan(fast)
    assert backend.trainer.reward_sets[-1][1] == tuple(r.name for r in plan[-1].rewards)


# ---------------------------------------------------------------- judgement: rollback, collapse restore


def test_a_regression_after_a_switch_rolls_the_data_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    mixtures: list[object] = []
    original = MixtureStream.set_mixture
    monkeypatch.setattr(MixtureStream, "set_mixture", lambda s, m: (mixtures.append(m), original(s, m))[1])
    plan = expand_plan(policy())
    result, _ = run(run_dir, "run.max_steps=25", script=by_batch(good, worse=(range(8, 40), free_form)))
    assert moves(run_dir) == [(7, "swap_data", "correctness/a"), (19, "rollback", "behaviour")]
    assert mixtures == [plan[0].mixture, plan[1].mixture, plan[0].mixture]  # the stream's first, the swap, the rollback
    assert (result.exit_code, result.steps, result.phase) == (EX_OK, 25, "behaviour")
    rollback = lines(run_dir / "metrics.jsonl")[18]
    assert rollback["decision"]["reason"] == "rollback_regression" and rollback["rollbacks"] == 1


def test_a_lasting_collapse_restores_the_checkpoint_before_it_then_holds(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result, backend = run(run_dir, "run.max_steps=30", "run.checkpoint_every=4", "judgement.max_restores=1",
                          script=by_batch(good, collapsed=(range(9, 21), empty)))
    assert moves(run_dir) == [(7, "swap_data", "correctness/a"), (13, "restore_checkpoint", "correctness/a"),
                              (18, "hold", "correctness/a")]
    assert backend.trainer is not None and backend.trainer.restored == [8]  # the step-8 checkpoint's weights
    assert backend.trainer.trained_batches == 8 + (30 - 13)  # the collapsed batches 9-13 were undone
    records = lines(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 31))  # controller, stream and logs went on
    assert records[12]["decision"]["before_step"] == 9 and "collapse" in records[12]["alerts"]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["hold"] is True and status["last_decision"]["action"] == "none"
    assert (result.exit_code, result.done) == (EX_OK, False)


# ---------------------------------------------------------------- operator requests


def test_operator_requests_are_applied_once_at_a_boundary_and_acknowledged(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    seqs: dict[str, int] = {}

    def submit(name: str, command: Command, phase: str = "") -> None:
        seqs[name] = control.submit(run_dir, command, phase, reason=f"test {name}")

    hooks = {2: lambda: submit("hold", Command.HOLD), 9: lambda: submit("set", Command.SET, "correctness"),
             12: lambda: submit("typo", Command.SET, "no_such_phase"), 14: lambda: submit("resume", Command.RESUME)}
    result, _ = run(run_dir, "run.max_steps=16", hooks=hooks)
    acks = {name: control.read_ack(run_dir, seq) for name, seq in seqs.items()}
    assert {name: (a.result if a else None) for name, a in acks.items()} == {
        "hold": "applied", "set": "applied", "typo": "rejected", "resume": "applied"}
    assert "unknown phase" in acks["typo"].message  # type: ignore[union-attr]
    records = lines(run_dir / "metrics.jsonl")
    applied = [(r["step"], o["seq"]) for r in records for o in r["operator_results"]]
    # a request written while batch N trains is applied at step N's boundary
    assert applied == [(2, seqs["hold"]), (9, seqs["set"]), (12, seqs["typo"]), (14, seqs["resume"])]
    # held from step 2, so phase 1's criteria at step 7 moved nothing; `set` walked one factor per boundary
    assert moves(run_dir) == [(2, "hold", "behaviour"), (9, "swap_data", "correctness/a"),
                              (10, "swap_rewards", "correctness/b"), (14, "resume", "correctness/b")]
    assert result.exit_code == EX_OK


# ---------------------------------------------------------------- checkpoints, resume, stop


def comparable(record: dict[str, Any]) -> tuple[object, ...]:
    """What must be the same in a resumed run as in an uninterrupted one (not the timings)."""
    return (record["step"], record["plan_step"], record["batch_ids"], record["observation"], record["decision"])


def test_a_stopped_run_resumes_where_it_stopped_and_ends_like_an_uninterrupted_one(tmp_path: Path) -> None:
    whole, _ = run(tmp_path / "whole")
    stopped, _ = run(tmp_path / "split", hooks={12: send_signal(signal.SIGTERM)}, handle_signals=True)
    assert (stopped.exit_code, stopped.steps, stopped.stopped, stopped.done) == (EX_OK, 12, True, False)
    assert (tmp_path / "split" / "checkpoints" / "step_00000012").is_dir()  # the stop's own checkpoint
    state = json.loads((tmp_path / "split" / "checkpoints" / "step_00000012" / "state.json").read_text())
    assert state["step"] == 12 and state["controller"]["plan_step"] == 1 and state["stream"]["mixture"]
    resumed, backend = run(tmp_path / "split", resume=True)
    assert backend.trainer is not None and backend.trainer.restored == [12]
    assert (resumed.exit_code, resumed.steps, resumed.done) == (EX_OK, 28, True)
    assert moves(tmp_path / "split") == moves(tmp_path / "whole") == TOUR
    assert [comparable(r) for r in lines(tmp_path / "split" / "metrics.jsonl")] == [
        comparable(r) for r in lines(tmp_path / "whole" / "metrics.jsonl")]  # same items, same decisions
    assert whole.phase == resumed.phase


def test_resume_cuts_the_logs_back_to_the_checkpoint_and_skips_a_damaged_one(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run(run_dir, "run.max_steps=17")  # checkpoints at 5, 10, 15 and the final 17; logs to 17
    newest = run_dir / "checkpoints" / "step_00000017" / "state.json"
    newest.write_text(newest.read_text().replace('"step": 17', '"step": 71'))  # fails its manifest
    resumed, backend = run(run_dir, "run.max_steps=18", resume=True)
    assert backend.trainer is not None and backend.trainer.restored == [15]
    assert (run_dir / "checkpoints" / "corrupt-step_00000017").is_dir()
    assert [r["step"] for r in lines(run_dir / "metrics.jsonl")] == list(range(1, 19))  # 16-17 written again
    assert moves(run_dir) == TOUR[:2]
    assert resumed.exit_code == EX_OK


def test_a_checkpoint_of_an_unknown_state_version_is_refused_naming_the_file(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    run(run_dir, "run.max_steps=5")
    checkpoint = run_dir / "checkpoints" / "step_00000005"
    state = json.loads((checkpoint / "state.json").read_text())
    state["controller"]["schema_version"] = 99  # written by a future version; the manifest made to agree
    (checkpoint / "state.json").write_text(json.dumps(state))
    manifest = json.loads((checkpoint / "MANIFEST.json").read_text())
    manifest["files"]["state.json"] = {"size": (checkpoint / "state.json").stat().st_size,
                                       "sha256": hashlib.sha256((checkpoint / "state.json").read_bytes()).hexdigest()}
    (checkpoint / "MANIFEST.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    result, _ = run(run_dir, resume=True)
    assert result.exit_code == EX_DATAERR
    err = capsys.readouterr().err
    assert f"{checkpoint / 'state.json'}: controller state has schema_version 99" in err.strip().splitlines()[-1]
    assert "Traceback" not in err


def test_sigterm_in_process_finishes_the_step_checkpoints_and_restores_the_handlers(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    result, _ = run(tmp_path / "run", hooks={3: send_signal(signal.SIGTERM)}, handle_signals=True)
    assert (result.exit_code, result.steps, result.stopped) == (EX_OK, 3, True)
    assert [r["step"] for r in lines(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 3]
    assert (tmp_path / "run" / "checkpoints" / "step_00000003" / "MANIFEST.json").is_file()
    assert signal.getsignal(signal.SIGTERM) is before


def test_without_handle_signals_the_daemon_leaves_the_process_signals_alone(tmp_path: Path) -> None:
    seen: list[object] = []
    hooks = {2: lambda: seen.append(signal.getsignal(signal.SIGTERM))}
    result, _ = run(tmp_path / "run", "run.max_steps=3", hooks=hooks)
    assert seen == [signal.getsignal(signal.SIGTERM)] and result.exit_code == EX_OK


# ---------------------------------------------------------------- failures and their exit codes


def test_bad_data_exits_65_naming_the_file_before_any_trainer_is_built(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "1+1?", "answer": "#### 2"}\n{"question": oops\n')
    text = FAST_POLICY.read_text().replace(
        '[sources.arithmetic]\nkind = "arithmetic"\ndomain = "math"\noptions = { count = 4000, steps = 1, max_number = 20 }',
        f'[sources.arithmetic]\nkind = "jsonl"\ndomain = "math"\npath = "{broken}"')
    assert 'kind = "jsonl"' in text
    (tmp_path / "bad.toml").write_text(text)
    result, backend = run(tmp_path / "run", path=tmp_path / "bad.toml")
    assert result.exit_code == EX_DATAERR and backend.trainer is None
    err = capsys.readouterr().err
    assert f"{broken}:2" in err.strip().splitlines()[-1] and "Traceback" not in err


def test_a_failing_step_boundary_stops_after_a_checkpoint_with_exit_70(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    original = controller.decide

    def decide(policy: Policy, plan: Any, state: Any, observation: Any, *rest: Any) -> Any:
        if observation.step == 4:
            raise RuntimeError("a bug in decide")
        return original(policy, plan, state, observation, *rest)

    monkeypatch.setattr(controller, "decide", decide)
    result, _ = run(tmp_path / "run")
    assert (result.exit_code, result.steps) == (EX_SOFTWARE, 4)
    assert [r["step"] for r in lines(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 3]
    assert (tmp_path / "run" / "checkpoints" / "step_00000004").is_dir()


def test_a_final_checkpoint_that_cannot_be_written_exits_74(tmp_path: Path) -> None:
    result, _ = run(tmp_path / "run", "run.max_steps=3", fail_save=True)
    assert (result.exit_code, result.steps) == (EX_IOERR, 3)
    assert not list((tmp_path / "run" / "checkpoints").iterdir())


def test_a_second_daemon_on_a_held_run_directory_exits_75(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = control.acquire_pidfile(run_dir)
    try:
        result, backend = run(run_dir)
    finally:
        holder.release()
    assert result.exit_code == EX_TEMPFAIL and backend.trainer is None


# ---------------------------------------------------------------- the controller's own time


def test_controller_time_covers_the_whole_step_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slow parts of the boundary before the metrics line (the completion sample) are in its
    controller_seconds; slow parts after it (status.json) are in the exporter's cumulative total."""
    import time

    from prometheus_client import generate_latest

    from autocurriculum.completion_samples import CompletionSamples
    from autocurriculum.daemon import Daemon
    from autocurriculum.daemon import runner

    before_line, after_line = 0.02, 0.03
    save, write_status = CompletionSamples.save, runner.write_status

    def slow_save(self: CompletionSamples, run_dir: Path) -> None:
        time.sleep(before_line)
        save(self, run_dir)

    def slow_status(*args: Any, **kwargs: Any) -> None:
        time.sleep(after_line)
        write_status(*args, **kwargs)

    monkeypatch.setattr(CompletionSamples, "save", slow_save)
    monkeypatch.setattr(runner, "write_status", slow_status)
    daemon = Daemon(policy("run.max_steps=4"), tmp_path / "run", resume=False, backend=ScriptedBackend())
    assert daemon.run() == EX_OK
    recorded = [r["controller_seconds"] for r in lines(tmp_path / "run" / "metrics.jsonl")]
    assert len(recorded) == 4 and all(seconds >= before_line for seconds in recorded)
    exposition = generate_latest(daemon.registry).decode()
    total = next(float(line.split()[1]) for line in exposition.splitlines()
                 if line.startswith("autocurriculum_controller_seconds_total "))
    assert total >= sum(recorded) + 4 * after_line
