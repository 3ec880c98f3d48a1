"""End to end: real daemon processes driving real Tunix GRPO on the tiny model.

Slow (tens of seconds per run): the first run in a fresh checkout also trains the tokenizer and the
short warm start of tests/policies/e2e.toml, cached for the rest.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from . import daemon_process as dp
from . import tensorboard_events as tb

pytestmark = pytest.mark.slow
STEPS = 40
COMPLETIONS_PER_STEP = 16  # tests/policies/e2e.toml: 4 prompts x 4 generations


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("e2e") / "reference"
    process = dp.start(run_dir, f"run.max_steps={STEPS}")
    assert dp.finish(process) == 0, dp.log_of(run_dir)
    return run_dir


def test_a_real_grpo_run_switches_by_itself(reference_run: Path) -> None:
    records = dp.lines(reference_run / "metrics.jsonl")
    transitions = dp.lines(reference_run / "transitions.jsonl")
    assert len(records) == STEPS
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    automatic = [t for t in transitions if t["reason"] in ("criteria_and_plateau", "settled")]
    assert automatic, transitions
    first = automatic[0]
    assert (first["from_step"], first["to_step"], first["factor"]) == (0, 1, "data")
    switch = next(r for r in records if r["step"] == first["step"])
    assert all(c["holds"] for c in switch["decision"]["evidence"]["criteria"].values())
    assert all(p["plateaued"] for p in switch["decision"]["evidence"]["plateau"].values())
    for t in transitions:  # never both factors
        assert t["factor"] in ("data", "rewards")
    assert any(r["tunix"].get("loss") is not None for r in records)  # Tunix's own figures pass through
    # one record per completion, emitted by Tunix's once-per-batch hook
    assert all(r["observation"]["completions"] == COMPLETIONS_PER_STEP for r in records)
    # lengths are the rollout's own token counts: the figure Tunix logs for the same completions
    assert all(r["observation"]["metrics"]["mean_length_tokens"] == pytest.approx(r["tunix"]["completions_mean_length"])
               for r in records)
    summary = dp.log_of(reference_run)
    assert "steps, ended in plan step" in summary


def test_kill_9_then_resume_replays_the_uninterrupted_run(reference_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    process = dp.start(run_dir, f"run.max_steps={STEPS}")
    dp.wait_for_steps(run_dir, 24, process)
    dp.kill9(process)
    resumed = dp.start(run_dir, f"run.max_steps={STEPS}", resume=True)
    assert dp.finish(resumed) == 0, dp.log_of(run_dir)
    reference = dp.lines(reference_run / "metrics.jsonl")
    replayed = dp.lines(run_dir / "metrics.jsonl")
    assert [r["step"] for r in replayed] == list(range(1, STEPS + 1))
    for ref, got in zip(reference, replayed):  # every figure but the clock's: data, observations, rewards, loss
        assert dp.without_wall_clock(got) == dp.without_wall_clock(ref), got["step"]
    assert dp.lines(run_dir / "transitions.jsonl") == dp.lines(reference_run / "transitions.jsonl")
    assert "run_resumed" in dp.log_of(run_dir)
    # TensorBoard: the killed process's events after the checkpoint are purged, the resumed process
    # writes them again (Tunix's counters shifted to the daemon's steps): each step once, as uninterrupted
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert tb.scalars(run_dir / "tensorboard") == tb.scalars(reference_run / "tensorboard")


def test_tensorboard_event_files_hold_tunix_loss_and_the_daemons_phase_and_transitions(reference_run: Path) -> None:
    """The e2e (quickstart-shaped) policy writes RUN_DIR/tensorboard; TensorBoard's reader finds both sides there."""
    series = tb.scalars(reference_run / "tensorboard")
    records = dp.lines(reference_run / "metrics.jsonl")
    switches = {t["step"] for t in dp.lines(reference_run / "transitions.jsonl")}
    every_step = list(range(1, STEPS + 1))
    for tag in ("actor/train/loss", "actor/train/kl", "actor/train/learning_rate", "rewards/train/sum",
                "completions/train/mean_length",
                "curriculum/train/phase_index", "curriculum/train/plan_step", "curriculum/train/transition",
                "curriculum/train/transitions", "curriculum/train/extraction_rate"):
        assert tb.steps(series[tag]) == every_step, tag  # Tunix's and the daemon's at the same steps
    # Tunix's figures of batch k at step k: its reward sum is the daemon's reward mean of step k, and its
    # loss of update k is what the metrics line of step k + 1 carries (Tunix draws a batch ahead)
    assert [v for _, v in series["rewards/train/sum"]] == pytest.approx(
        [r["observation"]["metrics"]["reward_mean"] for r in records], abs=1e-6)
    assert [v for _, v in series["actor/train/loss"][:-1]] == pytest.approx(
        [r["tunix"]["loss"] for r in records[1:]], rel=1e-5, abs=1e-7)
    assert [v for _, v in series["curriculum/train/plan_step"]] == [r["plan_step"] for r in records]
    assert [v for _, v in series["actor/train/learning_rate"]] == pytest.approx([3e-3] * STEPS)  # e2e.toml: constant
    phases = list(dict.fromkeys(r["phase"] for r in records))
    assert [v for _, v in series["curriculum/train/phase_index"]] == [phases.index(r["phase"]) for r in records]
    assert {s for s, v in series["curriculum/train/transition"] if v == 1.0} == switches
    assert switches and series["curriculum/train/transitions"][-1] == (STEPS, len(switches))
    first = min(switches)  # the automatic switch: its criteria, as the controller judged them, beside the loss
    criteria = records[first - 1]["criteria"]
    assert criteria
    for metric, criterion in criteria.items():
        assert [dict(series[f"curriculum/train/criteria/{metric}/{field}"])[first] for field in ("holds", "threshold")] \
            == [1.0, pytest.approx(criterion["threshold"])], metric


def test_sigterm_finishes_the_step_checkpoints_and_exits_zero(tmp_path: Path) -> None:
    run_dir = tmp_path / "term"
    process = dp.start(run_dir, "run.max_steps=500")
    dp.wait_for_steps(run_dir, 5, process)
    process.send_signal(signal.SIGTERM)
    assert dp.finish(process, 120) == 0
    last = dp.lines(run_dir / "metrics.jsonl")[-1]["step"]
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith("step_"))
    assert checkpoints[-1] == f"step_{last:08d}"


def test_a_second_daemon_on_the_same_run_directory_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "busy"
    first = dp.start(run_dir, "run.max_steps=500")
    dp.wait_for_steps(run_dir, 2, first)
    second = dp.start(run_dir, "run.max_steps=500")
    assert dp.finish(second, 120) == 75
    first.send_signal(signal.SIGTERM)
    assert dp.finish(first, 120) == 0
    assert "is in use by daemon pid" in dp.log_of(run_dir) or any(
        "is in use by daemon pid" in p.read_text() for p in run_dir.parent.glob("busy.*.log"))


def test_eval_report_figures_match_a_direct_count_over_its_jsonl(reference_run: Path, tmp_path: Path) -> None:
    import json
    import re
    import subprocess
    import sys

    out = tmp_path / "report"
    result = subprocess.run([sys.executable, "-m", "autocurriculum", "eval", "--run-dir", str(reference_run),
                             "--out", str(out)], capture_output=True, text=True, cwd=dp.REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = (out / "README.md").read_text()
    assert (out / "figures.png").stat().st_size > 0
    assert "## Judging prompt" in report
    for decoding in ("greedy", "sampled"):
        rows = [json.loads(line) for line in (out / f"judge-{decoding}.jsonl").read_text().splitlines()]
        assert rows and all({"prompt", "completion", "gold"} <= set(r) for r in rows)
        n = len(rows)
        counts = {k: sum(r["outcome"] == k for r in rows)
                  for k in ("correct", "wrong", "answered", "unformatted", "refused")}
        assert sum(counts.values()) == n
        graded = sum(bool(r["gold"]) and r["grading"] != "none" for r in rows)
        section = report.split(f"## {decoding} decoding")[1]
        row = re.search(r"\| all \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", section)
        assert row is not None
        assert (int(row.group(1)), int(row.group(2))) == (n, graded)
        assert float(row.group(6)) == round(counts["correct"] / graded, 3)  # correct inside the contract, over graded
        assert float(row.group(5)) == round(counts["refused"] / n, 3)
        for kind, count in counts.items():
            assert f"### {kind} ({count} of {n})" in section


def test_a_users_tunix_reward_function_trains_through_the_real_daemon(tmp_path: Path) -> None:
    """A reward written for Tunix (tests/user_rewards/tunix_style.py) beside the built-ins, on real GRPO:
    its values are in metrics.jsonl and on the daemon's /metrics."""
    import urllib.request

    user_reward = dp.REPO / "tests" / "user_rewards" / "tunix_style.py"
    policy = dp.policy_with_rewards(dp.E2E_POLICY, tmp_path, f'name = "brevity"\nfunction = "{user_reward}:brevity"')
    run_dir = tmp_path / "run"
    port = dp.free_port()
    process = dp.start(run_dir, "run.max_steps=200", f"metrics.port={port}", policy=policy)
    try:
        dp.wait_for_steps(run_dir, 3, process)
        exposition = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        process.send_signal(signal.SIGTERM)
        assert dp.finish(process, 120) == 0, dp.log_of(run_dir)
    records = dp.lines(run_dir / "metrics.jsonl")
    assert all("brevity" in r["observation"]["reward_means"] for r in records if r["plan_step"] == 0)
    assert all(r["observation"]["reward_means"]["brevity"] <= 0.0 for r in records if r["plan_step"] == 0)
    assert 'autocurriculum_reward_function_mean{function="brevity"}' in exposition
