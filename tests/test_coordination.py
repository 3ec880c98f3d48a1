"""The coordination layer's pure parts: where a multi-process run is asked for, what processes compare,
how process 0's decision reaches the others, and a checkpoint written by several processes.

The collectives themselves run between two real processes in tests/test_multiprocess.py; here a
scripted coordinator stands in for "the other process" so each rule can fail on its own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from autocurriculum import controller
from autocurriculum.checkpoint import CheckpointError, CheckpointStore
from autocurriculum.coordination import PeerLost, ProcessGroup, SingleProcess, policy_differences, process_group
from autocurriculum.daemon import agreement
from autocurriculum.exits import BadSetting
from autocurriculum.observation import StepObservation
from autocurriculum.policy import expand_plan, load

from .conftest import REPO

FAST = REPO / "tests" / "policies" / "fast.toml"


class Scripted:
    """Process `index` of `count`: gathers return `others` after its own payload; from_primary returns `primary`."""

    def __init__(self, index: int, count: int, others: list[bytes] | None = None, primary: bytes = b"") -> None:
        self.process_index, self.process_count = index, count
        self.others, self.primary = others or [], primary
        self.barriers: list[str] = []

    def all_gather(self, payload: bytes, what: str) -> list[bytes]:
        return [payload, *self.others] if self.process_index == 0 else [*self.others, payload]

    def from_primary(self, payload: bytes, what: str) -> bytes:
        return payload if self.process_index == 0 else self.primary

    def barrier(self, what: str) -> None:
        self.barriers.append(what)


def test_one_process_is_the_default_and_flags_win_over_jax_environment() -> None:
    assert process_group(None, None, None, environ={}) is None
    assert process_group(None, None, None, environ={"JAX_NUM_PROCESSES": "1"}) is None
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "2"}
    assert process_group(None, None, None, environ=env) == ProcessGroup("10.0.0.1:1234", 4, 2)
    assert process_group("h:1", 2, 1, environ=env) == ProcessGroup("h:1", 2, 1)


@pytest.mark.parametrize(("flags", "env", "message"), [
    (("h:1", 2, None), {}, "--process-id / JAX_PROCESS_ID"),
    ((None, None, None), {"JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES: 'two' is not a whole number"),
    (("h:1", 2, 2), {}, "--process-id / JAX_PROCESS_ID: 2 is not in 0..1"),
    (("nowhere", 2, 0), {}, "'nowhere' is not HOST:PORT"),
])
def test_a_partial_or_impossible_process_group_is_a_configuration_error(flags, env, message) -> None:
    with pytest.raises(BadSetting, match=message):
        process_group(*flags, environ=env)


def test_policy_differences_name_the_field_and_both_values() -> None:
    same = {"training": {"learning_rate": 0.003, "mesh": {"fsdp": 2}}}
    other = {"training": {"learning_rate": 0.001, "mesh": {"fsdp": 2}}}
    assert policy_differences([same, same]) == []
    assert policy_differences([same, other]) == ["training.learning_rate is 0.003 on process 0 but 0.001 on process 1"]


def test_processes_started_with_different_policies_refuse() -> None:
    policy = load(FAST)
    agreement.check_same_policy(SingleProcess(), policy)
    mine = json.dumps(agreement.policy_form(policy)).encode()
    agreement.check_same_policy(Scripted(0, 2, [mine]), policy)
    theirs = load(FAST, overrides=["run.seed=7"])
    with pytest.raises(BadSetting, match=re.escape("run.seed is 0 on process 0 but 7 on process 1")):
        agreement.check_same_policy(Scripted(0, 2, [json.dumps(agreement.policy_form(theirs)).encode()]), policy)


def observation(step: int, extraction: float = 0.5) -> StepObservation:
    return StepObservation(step=step, completions=16, metrics={"extraction_rate": extraction})


def test_processes_at_different_steps_or_batches_stop_and_any_stop_is_everyones() -> None:
    digest = agreement.step_digest(3, ["a", "b"], observation(3))
    ours = json.dumps({**digest, "stop": False}).encode()
    assert agreement.agree_on_step(Scripted(0, 2, [ours]), digest, stop_wish=False) is False
    assert agreement.agree_on_step(Scripted(0, 2, [json.dumps({**digest, "stop": True}).encode()]), digest, False)
    other_batch = agreement.step_digest(3, ["a", "c"], observation(3))
    with pytest.raises(PeerLost, match="process 1 disagrees with process 0 on step 3's batch"):
        agreement.agree_on_step(Scripted(0, 2, [json.dumps({**other_batch, "stop": False}).encode()]), digest, False)
    other_step = agreement.step_digest(4, ["a", "b"], observation(4))
    with pytest.raises(PeerLost, match="step"):
        agreement.agree_on_step(Scripted(0, 2, [json.dumps({**other_step, "stop": False}).encode()]), digest, False)


def test_process_0s_decision_arrives_whole_on_the_others() -> None:
    policy = load(FAST)
    plan = expand_plan(policy)
    state = controller.initial_state(plan)
    for step in range(1, 4):
        decision = controller.decide(policy, plan, state, observation(step, 0.2 * step))
        state = decision.state
    sent = Scripted(0, 2)
    payload: list[bytes] = []
    sent.from_primary = lambda data, what: payload.append(data) or data  # type: ignore[method-assign]
    assert agreement.share_decision(sent, decision) is decision
    received = agreement.share_decision(Scripted(1, 2, primary=payload[0]), None)
    assert received.state == decision.state
    assert (received.action, received.reason) == (decision.action, decision.reason)
    assert received.evidence == json.loads(json.dumps(decision.evidence))


def test_a_checkpoint_of_several_processes_is_finished_by_process_0_alone(tmp_path: Path) -> None:
    def model(directory: Path) -> None:
        directory.mkdir()
        (directory / "shard").write_text("weights")

    first = Scripted(0, 2, [b""])
    saved = CheckpointStore(tmp_path, 3, first, owner_pid=123).save(5, {"step": 5}, model)
    assert first.barriers == ["checkpoint 5: staging"]
    assert (saved.path / "state.json").is_file() and (saved.path / "MANIFEST.json").is_file()
    assert CheckpointStore(tmp_path, 3).verify(saved) is None
    # process 1 writes its shards only; a failure on any process fails the checkpoint on all
    other = Scripted(1, 2, [b""], primary=b"")
    (tmp_path / "checkpoints" / ".tmp-step_00000010-123").mkdir()
    CheckpointStore(tmp_path, 3, other, owner_pid=123).save(10, {"step": 10}, model)
    assert not (tmp_path / "checkpoints" / "step_00000010").exists()
    failing = Scripted(0, 2, [b"could not write checkpoint: disk full on process 1"])
    with pytest.raises(CheckpointError, match="disk full on process 1"):
        CheckpointStore(tmp_path, 3, failing, owner_pid=123).save(15, {"step": 15}, model)
    assert not (tmp_path / "checkpoints" / ".tmp-step_00000015-123").exists()


def test_distributed_leaves_the_run_to_jax_detection() -> None:
    group = process_group(None, None, None, environ={}, auto=True)
    assert group is not None and group.auto
    with pytest.raises(BadSetting, match="--peer-timeout"):
        process_group(None, None, None, environ={}, auto=True, peer_timeout=0)
