"""Several processes, one curriculum: two real `autocurriculum run` processes (multi-controller JAX on
CPU, gloo collectives, one device each) training the tiny model with a mesh spanning both.

Slow: each run compiles the model (tens of seconds); the steps themselves take seconds. The two-process
run is compared with a single-process run of the same policy: both draw the same global batch
(every process feeds the whole batch, tunix_adapter/distributed.py), so their metrics must agree.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from . import daemon_process as dp
from .conftest import REPO

pytestmark = pytest.mark.slow
BOUND = 30  # max_steps of the two-process run, which a SIGTERM ends sooner
EVAL = ("eval.every=5", "eval.items_per_domain=8")  # held-out evaluation every 5 steps, on 8 items
TWO = ("training.mesh.fsdp=2", "run.checkpoint_every=5", *EVAL)


def start_processes(run_dir: Path, *sets: str, resume: bool = False, count: int = 2,
                    peer_timeout: float = 30) -> list[subprocess.Popen[str]]:
    """`count` processes of one run, each with its own output file RUN_DIR.pN.*.log next to the run directory."""
    port = dp.free_port()
    processes = []
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        args = [sys.executable, "-m", "autocurriculum", "run", str(dp.E2E_POLICY), "--run-dir", str(run_dir),
                "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(count), "--process-id", str(index),
                "--peer-timeout", str(peer_timeout)]
        if resume:
            args.append("--resume")
        for item in sets:
            args += ["--set", item]
        out = open(run_dir.parent / f"{run_dir.name}.p{index}.{time.time_ns()}.log", "a")  # noqa: SIM115 - the child's
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "JAX_PLATFORMS": "cpu"}
        processes.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env))
    return processes


def output_of(run_dir: Path, index: int) -> str:
    files = sorted(run_dir.parent.glob(f"{run_dir.name}.p{index}.*.log"), key=lambda p: p.stat().st_mtime_ns)
    return files[-1].read_text() if files else ""


def ctl(run_dir: Path, *args: str) -> int:
    return subprocess.run([sys.executable, "-m", "autocurriculum", "ctl", *args, "--run-dir", str(run_dir),
                           "--wait", "120"], cwd=REPO, capture_output=True, text=True).returncode


def process_lines(run_dir: Path, index: int) -> list[dict[str, object]]:
    """What process `index` applied, step by step (without the seconds its collectives took)."""
    return [{k: v for k, v in line.items() if k != "coordination_seconds"}
            for line in dp.lines(run_dir / "processes" / f"{index}.log")]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> tuple[Path, str, list[int]]:
    """Two processes until a SIGTERM to process 1: after the first automatic switch a `ctl hold`, then
    `resume`, then the signal two steps later — which must stop both at the same step."""
    run_dir = tmp_path_factory.mktemp("two") / "run"
    port = dp.free_port()
    processes = start_processes(run_dir, *TWO, f"run.max_steps={BOUND}", f"metrics.port={port}")
    try:
        deadline = time.monotonic() + 600
        while not dp.lines(run_dir / "transitions.jsonl"):
            assert all(p.poll() is None for p in processes), output_of(run_dir, 0) + output_of(run_dir, 1)
            assert time.monotonic() < deadline, "no automatic switch"
            time.sleep(0.2)
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert ctl(run_dir, "hold", "--reason", "look") == 0
        assert ctl(run_dir, "resume", "--reason", "go on") == 0
        resumed_at = len(dp.lines(run_dir / "metrics.jsonl"))
        dp.wait_for_steps(run_dir, resumed_at + 2, processes[0])
        processes[1].send_signal(signal.SIGTERM)
        codes = [dp.finish(p) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0], output_of(run_dir, 0) + output_of(run_dir, 1)
    return run_dir, scraped, [p.pid for p in processes]


def steps_of(run_dir: Path) -> int:
    return len(dp.lines(run_dir / "metrics.jsonl"))


def test_two_processes_apply_the_same_action_at_every_step(two_processes) -> None:
    run_dir, _, _ = two_processes
    first, second = process_lines(run_dir, 0), process_lines(run_dir, 1)
    steps = steps_of(run_dir)
    assert 10 <= steps < BOUND  # stopped by the SIGTERM to process 1, both at the same step:
    assert [line["step"] for line in first] == list(range(1, steps + 1))
    assert (run_dir / "checkpoints" / f"step_{steps:08d}").is_dir()  # ...after one checkpoint of both
    assert first == second  # action, plan step, hold, batch and observation digests: line for line
    switches = [line for line in first if line["action"] != "none"]
    assert any(line["reason"] == "criteria_and_plateau" for line in switches), switches
    held = [line["step"] for line in first if line["hold"]]
    assert held and held == list(range(held[0], held[-1] + 1)) and held[-1] < steps  # held, then resumed
    assert [line["action"] for line in first if line["action"] in ("hold", "resume")] == ["hold", "resume"]


def test_only_process_0_writes_the_run_directory_and_serves_metrics(two_processes) -> None:
    run_dir, scraped, pids = two_processes
    records = dp.lines(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, steps_of(run_dir) + 1))  # one writer: no step twice
    assert sorted(p.name for p in (run_dir / "processes").iterdir()) == ["0.log", "1.log"]
    assert int((run_dir / "run.json").stat().st_size) > 0
    assert "autocurriculum_plan_steps 4.0" in scraped  # process 0's exporter, scraped once mid-run
    step_line = next(line for line in scraped.splitlines() if line.startswith("autocurriculum_training_step "))
    assert float(step_line.split()[1]) >= 1
    acks = [json.loads(p.read_text()) for p in (run_dir / "control" / "acks").glob("*.json")]
    assert sorted(a["result"] for a in acks) == ["applied", "applied"]
    second_started = next(json.loads(line) for line in output_of(run_dir, 1).splitlines()
                          if line.startswith("{") and '"run_started"' in line)
    assert second_started["process"] == 1 and "process 0 writes the run directory" in str(second_started["role"])
    assert "step     1" not in output_of(run_dir, 1)  # its progress is in processes/1.log, not in the run's
    # the requests are recorded once, by process 0, at the steps process 1 applied them too
    operated = [(r["step"], r["decision"]["action"]) for r in records if r["requests"]]
    assert operated == [(line["step"], line["action"]) for line in process_lines(run_dir, 1)
                        if line["action"] in ("hold", "resume")]
    assert [action for _, action in operated] == ["hold", "resume"]
    assert pids[0] != pids[1]


def test_two_processes_record_what_one_process_does_on_the_same_global_batch(two_processes, tmp_path) -> None:
    run_dir, _, _ = two_processes
    single = tmp_path / "single"
    steps = steps_of(run_dir)
    process = dp.start(single, f"run.max_steps={steps}", "run.checkpoint_every=5", *EVAL)
    assert dp.finish(process) == 0, dp.log_of(single)
    ones, twos = dp.lines(single / "metrics.jsonl"), dp.lines(run_dir / "metrics.jsonl")
    assert len(ones) == len(twos) == steps
    for one, two in zip(ones, twos, strict=True):  # the same batches, completions and rewards, step by step
        assert one["batch_ids"] == two["batch_ids"]
        assert one["observation"] == two["observation"], one["step"]
        if not two["requests"]:  # the hold and the resume: the operator's, in the two-process run only
            assert one["decision"]["action"] == two["decision"]["action"], one["step"]
    transitions = [t for t in dp.lines(run_dir / "transitions.jsonl") if t["action"] not in ("hold", "resume")]
    assert transitions == dp.lines(single / "transitions.jsonl")  # but for the operator's hold and resume
    assert any(t["reason"] == "criteria_and_plateau" for t in transitions)
    # held-out evaluation: every process generates, process 0 alone writes eval.jsonl, once per eval step,
    # with the figures a single process computes on the same checkpointed weights
    evaluations, single_evaluations = dp.lines(run_dir / "eval.jsonl"), dp.lines(single / "eval.jsonl")
    assert [e["step"] for e in evaluations] == list(range(5, steps + 1, 5))
    assert [(e["greedy"], e["sampled"]) for e in evaluations] == [(e["greedy"], e["sampled"]) for e in single_evaluations]


def test_a_killed_process_stops_its_peer_and_both_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "fault"
    steps = 12
    processes = start_processes(run_dir, *TWO, f"run.max_steps={steps}", peer_timeout=10)
    try:
        dp.wait_for_steps(run_dir, 7, processes[0])
        dp.kill9(processes[1])
        killed = time.monotonic()
        code = processes[0].wait(120)
        waited = time.monotonic() - killed
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    survivor = output_of(run_dir, 0)
    print(f"the survivor exited {waited:.1f}s after its peer was killed, with {code}")
    assert code != 0 and waited < 60, (code, waited)
    assert ("another task died" in survivor or "no peer reached" in survivor), survivor[-3000:]
    resumed = start_processes(run_dir, *TWO, f"run.max_steps={steps}", resume=True)
    codes = [dp.finish(p) for p in resumed]
    assert codes == [0, 0], output_of(run_dir, 0) + output_of(run_dir, 1)
    records = dp.lines(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, steps + 1))  # every step logged once
    assert process_lines(run_dir, 0) == process_lines(run_dir, 1)
    assert [line["step"] for line in process_lines(run_dir, 1)] == list(range(1, steps + 1))
    assert "run_resumed" in output_of(run_dir, 0)


def test_processes_with_different_policies_refuse_to_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "differ"
    port = dp.free_port()
    processes = []
    for index, rate in enumerate(("3e-3", "1e-3")):
        args = [sys.executable, "-m", "autocurriculum", "run", str(dp.E2E_POLICY), "--run-dir", str(run_dir),
                "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(index),
                "--set", "training.mesh.fsdp=2", "--set", f"training.learning_rate={rate}"]
        processes.append(subprocess.Popen(args, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          env={**os.environ, "JAX_PLATFORMS": "cpu"}))
    results = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [78, 78]
    refusal = [line for line in results[0][1].splitlines() if line.startswith("autocurriculum:")]
    assert len(refusal) == 1 and "training.learning_rate is 0.003 on process 0 but 0.001 on process 1" in refusal[0]


def test_a_mesh_that_does_not_span_the_processes_devices_is_a_configuration_error(tmp_path: Path) -> None:
    run_dir = tmp_path / "mesh"
    processes = start_processes(run_dir, "training.mesh.fsdp=1", "eval.every=0")
    codes = [dp.finish(p, timeout=300) for p in processes]
    assert codes == [78, 78]
    lines = [line for line in output_of(run_dir, 0).splitlines() if line.startswith("autocurriculum:")]
    assert len(lines) == 1 and "training.mesh asks for fsdp=1 x tp=1 = 1 devices" in lines[0]
    assert "must span all of their devices" in lines[0]


def test_one_process_on_two_devices_shards_the_weights_and_trains(tmp_path: Path) -> None:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    run_dir = tmp_path / "sharded"
    done = subprocess.run([sys.executable, "-m", "tests.sharded_run", str(dp.E2E_POLICY), str(run_dir), "4"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert (found["exit_code"], found["steps"], found["devices"]) == (0, 4, 2)
    assert found["mesh"] == {"fsdp": 2, "tp": 1}
    assert found["split"] > 0  # arrays really split across the two devices, not copied to both
    example = found["example"]
    assert len(example["shards"]) == 2 and example["devices"] == [0, 1]
    assert all(2 * math.prod(shard) == math.prod(example["shape"]) for shard in example["shards"])  # half each
    assert [r["step"] for r in dp.lines(run_dir / "metrics.jsonl")] == [1, 2, 3, 4]
    assert all(r["tunix"].get("loss") is not None for r in dp.lines(run_dir / "metrics.jsonl")[1:])


def test_a_peer_that_never_reaches_a_boundary_trips_the_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The watchdog around the boundary collectives (for a hang JAX's heartbeat would not end): a gather
    no peer answers calls the timeout action with the collective's name, within the peer timeout."""
    import threading

    from jax.experimental import multihost_utils

    from autocurriculum.tunix_adapter.distributed import JaxCoordinator

    released = threading.Event()
    tripped: list[tuple[str, float, float]] = []
    started = time.monotonic()

    def never_answered(value: object) -> object:
        released.wait(30)
        return value

    def on_timeout(what: str, timeout: float) -> None:
        tripped.append((what, timeout, time.monotonic() - started))
        released.set()  # stands in for the process exiting

    monkeypatch.setattr(multihost_utils, "process_allgather", never_answered)
    JaxCoordinator(0.5, on_timeout).all_gather(b"x", "step 7's boundary")
    assert len(tripped) == 1 and tripped[0][:2] == ("step 7's boundary", 0.5) and tripped[0][2] < 5
    tripped.clear()
    monkeypatch.setattr(multihost_utils, "process_allgather", lambda value: value)  # a peer that answers
    JaxCoordinator(0.5, on_timeout).all_gather(b"x", "step 8's boundary")
    time.sleep(0.8)
    assert tripped == []


@pytest.mark.parametrize(("flags", "message"), [
    (["--distributed"], "--distributed: JAX found no multi-process run to join"),
    (["--coordinator", "127.0.0.1:1", "--num-processes", "2"], "needs --process-id / JAX_PROCESS_ID as well"),
])
def test_a_multi_process_run_that_cannot_be_joined_is_one_line_and_exit_78(flags, message, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "autocurriculum", "run", str(dp.E2E_POLICY), "--run-dir",
                           str(tmp_path / "run"), *flags], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 78
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr, done.stderr
