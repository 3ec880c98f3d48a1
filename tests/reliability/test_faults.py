"""Reliability with real processes: kill -9 at random moments, corrupt and full-disk checkpoints,
bad data files, a taken metrics port, a reward returning NaN for 100 steps. Nothing lost, nothing
repeated, every failure said clearly. (The operator storm is in tests/test_control.py.)"""

from __future__ import annotations

import random
import re
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autocurriculum.checkpoint import CheckpointStore

from .. import daemon_process as dp
from ..conftest import REPO

pytestmark = pytest.mark.slow
STEPS = 30
SETS = (f"run.max_steps={STEPS}", "run.checkpoint_every=5")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reliability") / "reference"
    assert dp.finish(dp.start(run_dir, *SETS)) == 0, dp.log_of(run_dir)
    return run_dir


def test_ten_kill_9_at_random_moments_lose_and_repeat_nothing(reference: Path, tmp_path: Path) -> None:
    """Exactly 10 kills, each once the run has logged a pre-drawn number of steps (plus 0-1.5 s), each
    followed by a resume; then every metrics line equals the uninterrupted run's except wall-clock fields:
    observations, rewards, Tunix's loss and KL, decisions, batch ids."""
    run_dir = tmp_path / "killed"
    rnd = random.Random(7)
    targets = sorted(rnd.sample(range(2, STEPS - 4), 10))  # steps logged before each kill
    process = dp.start(run_dir, *SETS)
    for kills, target in enumerate(targets):
        deadline = time.monotonic() + 600
        while len(dp.lines(run_dir / "metrics.jsonl")) < target:
            assert process.poll() is None, f"the run ended before kill {kills + 1}: {dp.log_of(run_dir)[-2000:]}"
            assert time.monotonic() < deadline, f"no progress to step {target}"
            time.sleep(0.05)
        time.sleep(rnd.uniform(0.0, 1.5))
        assert process.poll() is None, f"the run ended before kill {kills + 1}"
        dp.kill9(process)
        process = dp.start(run_dir, *SETS, resume=True)
    assert dp.finish(process) == 0, dp.log_of(run_dir)
    got, want = dp.lines(run_dir / "metrics.jsonl"), dp.lines(reference / "metrics.jsonl")
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))
    for mine, theirs in zip(got, want):
        assert dp.without_wall_clock(mine) == dp.without_wall_clock(theirs), mine["step"]
    assert dp.lines(run_dir / "transitions.jsonl") == dp.lines(reference / "transitions.jsonl")
    assert dp.log_of(run_dir).count("run_resumed") >= 1


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_good_one(tmp_path: Path) -> None:
    run_dir = tmp_path / "corrupt"
    assert dp.finish(dp.start(run_dir, "run.max_steps=12", "run.checkpoint_every=5")) == 0
    latest = run_dir / "checkpoints" / "step_00000012"
    victim = max((p for p in (latest / "model").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim.write_bytes(b"\0" * victim.stat().st_size)
    assert dp.finish(dp.start(run_dir, "run.max_steps=14", "run.checkpoint_every=5", resume=True)) == 0
    log = dp.log_of(run_dir)
    assert "checkpoint_fallback" in log and "checksum does not match" in log
    assert '"checkpoint": "' + str(run_dir / "checkpoints" / "step_00000010") in log
    assert (run_dir / "checkpoints" / "corrupt-step_00000012").is_dir()
    assert [r["step"] for r in dp.lines(run_dir / "metrics.jsonl")] == list(range(1, 15))


def test_a_full_disk_while_checkpointing_is_a_clear_error_and_damages_no_checkpoint(reference: Path, tmp_path: Path) -> None:
    # `reference` has cached the base model and compiled programs, which this run must not have to write
    run_dir = tmp_path / "full"
    run_dir.mkdir()
    # bytes per file: 8 lines of metrics log (~19 kB) fit; a checkpoint's Orbax _METADATA (~35 kB, its size fixed
    # by the state tree) does not. Not the data files: OCDBT splits them into chunks whose sizes vary from run to
    # run, so with a 60 kB limit a checkpoint sometimes fitted and the fault was not injected at all.
    limit = 30_000

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    args = [sys.executable, "-m", "autocurriculum", "run", str(dp.E2E_POLICY), "--run-dir", str(run_dir),
            "--set", "run.max_steps=8", "--set", "run.checkpoint_every=4"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=REPO, preexec_fn=small_files, timeout=600)
    assert result.returncode == 74, result.stdout[-2000:] + result.stderr[-2000:]
    assert "checkpoint_failed" in result.stderr and "File too large" in result.stderr
    assert "previous checkpoints are intact" in result.stdout
    store = CheckpointStore(run_dir, keep=3)
    assert not list((run_dir / "checkpoints").glob(".tmp*"))  # no partial copy left behind
    assert not (run_dir / "checkpoints" / "step_00000008").exists()  # the failed one is absent
    assert all(store.verify(c) is None for c in store.all())  # every checkpoint present is whole
    assert len(dp.lines(run_dir / "metrics.jsonl")) == 8  # training went on


def test_a_disk_that_fills_mid_run_under_the_daemons_own_output_keeps_the_good_checkpoint(reference: Path,
                                                                                       tmp_path: Path) -> None:
    """The file limit falls on a running daemon after a good checkpoint, and its output file is on the same "disk".

    Orbax's failing save fills the output with tracebacks until that file reaches the limit too; a
    print or log line that cannot be written used to raise from the checkpoint's error handling and
    end the run with exit 1. Now the lost output is dropped and the run ends as a full disk should.
    """
    run_dir = tmp_path / "fills"
    limit = 30_000  # as above: metrics lines fit, a checkpoint does not
    process = dp.start(run_dir, "run.max_steps=10", "run.checkpoint_every=5")
    output = next(run_dir.parent.glob("fills.run.*.log"))
    try:
        good = run_dir / "checkpoints" / "step_00000005"
        deadline = time.monotonic() + 600
        while not good.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (limit, limit))
        # The output of a long run is already large: bring this one to within 100 bytes of the limit,
        # so the daemon's next lines fill it (how much Orbax's tracebacks add alone varies from run to run).
        with open(output, "a") as pad:
            pad.write("." * max(0, limit - 100 - output.stat().st_size) + "\n")
        code = dp.finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert output.stat().st_size == limit  # the daemon's own output did fill up: the case under test
    assert code == 74, output.read_text()[-3000:]
    store = CheckpointStore(run_dir, keep=3)
    assert [c.step for c in store.all()] == [5] and store.verify(store.all()[0]) is None  # the good one, whole
    assert not list((run_dir / "checkpoints").glob(".tmp*"))
    assert [r["step"] for r in dp.lines(run_dir / "metrics.jsonl")] == list(range(1, 11))  # training went on


@pytest.mark.parametrize("content, expected", [
    ('{"question": "q", "answer": "#### 1"}\n{broken\n', "train.jsonl:2: not a JSON line"),
    ('{"question": "q", "answer": "no marker"}\n', "####"),
    ('{"prompt": "q", "answer": "#### 1"}\n', "column 'question' not in"),
    ("", "no items"),
    ('{"question": "", "answer": "#### 1"}\n', "'question' (column 'question') is missing or empty"),
    ('[1, 2]\n', "must be an object"),
    ('{"question": "q", "answer": "#### 1"}\n' * 3 + "\x00\x01garbage\n", "not a JSON line"),
    ('{"question": 5, "answer": null}\n', "'answer' (column 'answer') is missing or empty"),
    ('{"question": "q"}\n', "column 'answer' not in"),
    ('{"question": "q", "answer": "#### 1"\n', "not a JSON line"),
])
def test_bad_data_files_exit_65_with_a_clear_message(tmp_path: Path, content: str, expected: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text(content)
    policy = tmp_path / "policy.toml"
    text = dp.E2E_POLICY.read_text().replace('cache_dir = "../../.cache/autocurriculum"',
                                             f'cache_dir = "{REPO / ".cache" / "autocurriculum"}"')
    text, replaced = re.subn(r'\[sources\.arithmetic\]\nkind = "arithmetic"\ndomain = "math"\noptions = \{[^}]*\}',
                             f'[sources.arithmetic]\nkind = "gsm8k"\ndomain = "math"\npath = "{data}"', text)
    assert replaced == 1
    policy.write_text(text)
    result = subprocess.run([sys.executable, "-m", "autocurriculum", "run", str(policy), "--run-dir", str(tmp_path / "run")],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 65, result.stdout[-1500:] + result.stderr[-1500:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("autocurriculum: ") and expected in last
    assert "Traceback" not in result.stdout + result.stderr


def test_a_taken_metrics_port_is_refused_before_training(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "autocurriculum", "run", str(dp.E2E_POLICY), "--run-dir",
                                 str(tmp_path / "run"), "--set", f"metrics.port={port}"],
                                capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 78
    assert f"metrics.port: 127.0.0.1:{port} is already in use" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # refused before any training step


NAN_STEPS = 100
AFTER_NAN = 60  # the e2e policy switches within 40 steps of a clean start; room to spare
# The poisoned reward is the length penalty: the gate goes on teaching the contract, so the criteria
# come to hold while the fault lasts and only the alert stands between the controller and a switch.
# (Poisoning the gate itself leaves phase 1 without its format signal for 100 steps: in one CI run
# the model collapsed to empty output and could not meet the criteria in the 60 steps after.)


def _scrape_alert(port: int, alert: str) -> float | None:
    import urllib.request

    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    found = re.search(rf'^autocurriculum_alert\{{alert="{alert}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


def test_a_lasting_collapse_restores_the_checkpoint_before_it_then_holds(tmp_path: Path) -> None:
    """Batches 9-20 look collapsed (empty completions); checkpoints every 4 steps; one restore allowed."""
    run_dir = tmp_path / "collapse"
    run_dir.mkdir()
    with open(tmp_path / "collapse.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("collapse_daemon.py")), "9", "20", "run", str(dp.E2E_POLICY),
             "--run-dir", str(run_dir), "--set", "run.max_steps=30", "--set", "run.checkpoint_every=4",
             "--set", "judgement.max_restores=1"],
            stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        try:
            code = dp.finish(process)
        finally:
            if process.poll() is None:
                process.kill()
    output = (tmp_path / "collapse.log").read_text()
    assert code == 0, output[-3000:]
    moves = [(t["step"], t["action"], t["reason"]) for t in dp.lines(run_dir / "transitions.jsonl") if t["step"] >= 9]
    patience = 5  # the default collapse_patience
    assert moves[:2] == [(8 + patience, "restore_checkpoint", "collapse_restore"),  # collapsed steps 9-13
                         (13 + patience, "hold", "collapse_restore_limit_hold")]  # collapsed again 14-18
    restored = [line for line in output.splitlines() if '"weights_restored"' in line]
    assert len(restored) == 1 and '"checkpoint": 8' in restored[0] and '"collapse_began": 9' in restored[0]
    records = dp.lines(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 31))  # training went on, held
    assert records[-1]["hold"] and "max_restores 1" in str(records[-1]["decision"]["evidence"].get("hold_reason"))


def test_a_reward_returning_nan_for_100_steps_never_switches_alerts_and_the_run_continues(tmp_path: Path) -> None:
    run_dir = tmp_path / "nan"
    run_dir.mkdir()
    port = dp.free_port()
    with open(tmp_path / "nan.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("nan_reward_daemon.py")), "light_length_penalty",
             str(NAN_STEPS), "run", str(dp.E2E_POLICY), "--run-dir", str(run_dir),
             "--set", f"run.max_steps={NAN_STEPS + AFTER_NAN}", "--set", "run.checkpoint_every=50",
             "--set", f"metrics.port={port}"],
            stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    try:
        dp.wait_for_steps(run_dir, 20, process)
        during = _scrape_alert(port, "nonfinite_rewards")  # the real exporter, scraped mid-fault
        assert dp.finish(process) == 0, (tmp_path / "nan.log").read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    assert during == 1.0
    records = dp.lines(run_dir / "metrics.jsonl")
    transitions = dp.lines(run_dir / "transitions.jsonl")
    steps = [r["step"] for r in records]  # the run went on, to max_steps or to the curriculum's end
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > NAN_STEPS + 10
    assert len(steps) == NAN_STEPS + AFTER_NAN or transitions[-1]["action"] == "done", transitions
    poisoned, clean = records[:NAN_STEPS], records[NAN_STEPS:]
    assert all(r["observation"]["nonfinite"] == 16 and "nonfinite_rewards" in r["alerts"] for r in poisoned)
    assert all(r["decision"]["action"] == "none" for r in poisoned)  # no verdict rests on a NaN step
    last = poisoned[-5:]  # the phase-1 criteria held as the fault ended: only the alert stopped a switch
    assert sum(r["observation"]["metrics"]["extraction_rate"] for r in last) / 5 >= 0.6
    assert all(r["observation"]["nonfinite"] == 0 and "nonfinite_rewards" not in r["alerts"] for r in clean)
    assert transitions and all(t["step"] > NAN_STEPS for t in transitions), transitions  # judged again after
    assert any(r["tunix"].get("loss") is not None for r in poisoned)  # Tunix trained through it (nansum)
