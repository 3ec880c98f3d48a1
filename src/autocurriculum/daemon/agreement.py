"""What the processes of a multi-process run agree on, and how: policy, step, stop, decision.

Why process 0 decides and the others take its decision (rather than each deciding on the same
inputs): the decision is then identical by construction, bytes for bytes, including the operator
requests only process 0 reads from the run directory. Per step the daemon makes two collectives:
- `agree_on_step`: every process's (step, digest of the batch ids, digest of the observation, stop
  wish) gathered on all; different steps or batches stop the run (the processes would train on
  different data), and a stop asked of any process (a signal) stops all at the same step;
- `share_decision`: process 0's decision (controller state, action, reason, evidence) sent to all.
In Tunix 0.1.7 every process feeds the SAME global batch (jit takes a host value as the global
array), so each process's observation already is the global batch's; the digest proves they agree.
Every process writes its own line per step in RUN_DIR/processes/N.log (what it applied), which is
how a test or an operator checks that they moved together.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from autocurriculum import runlog
from autocurriculum.controller import Decision
from autocurriculum.controller_state import Action, ControllerState
from autocurriculum.coordination import Coordinator, PeerLost, policy_differences
from autocurriculum.exits import BadSetting
from autocurriculum.observation import StepObservation
from autocurriculum.plan import Factor
from autocurriculum.policy import Policy
from autocurriculum.vocabulary import ActionKind, Reason

PROCESSES_DIR = "processes"


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def policy_form(policy: Policy) -> dict[str, object]:
    """The policy as compared between processes: every value, not where its file lies."""
    form = dataclasses.asdict(policy)
    form.pop("file", None)
    return json.loads(json.dumps(form, default=str))  # type: ignore[no-any-return]


def check_same_policy(coordinator: Coordinator, policy: Policy) -> None:
    """Refuse (BadSetting, exit 78 on every process) when the processes were started with different policies."""
    if coordinator.process_count == 1:
        return
    mine = json.dumps(policy_form(policy), sort_keys=True).encode()
    forms = [json.loads(raw) for raw in coordinator.all_gather(mine, "the policy comparison")]
    differences = policy_differences(forms)
    if differences:
        raise BadSetting(f"the processes were started with different policies: {'; '.join(differences)}")


def step_digest(step: int, batch_ids: Sequence[str], observation: StepObservation) -> dict[str, object]:
    return {"step": step, "batch": _digest(list(batch_ids)),
            "observation": _digest({"metrics": dict(observation.metrics), "completions": observation.completions})}


def agree_on_step(coordinator: Coordinator, digest: Mapping[str, object], stop_wish: bool) -> bool:
    """Check every process is at the same step on the same batch; True when any of them asks to stop."""
    mine = json.dumps({**digest, "stop": stop_wish}, sort_keys=True).encode()
    everyone = [json.loads(raw) for raw in coordinator.all_gather(mine, f"step {digest['step']}'s boundary")]
    for index, theirs in enumerate(everyone):
        for key in ("step", "batch", "observation"):
            if theirs[key] != everyone[0][key]:
                raise PeerLost(f"process {index} disagrees with process 0 on step {digest['step']}'s {key} "
                               f"({theirs[key]} vs {everyone[0][key]}): the processes no longer train together")
    return any(bool(theirs["stop"]) for theirs in everyone)


def share_decision(coordinator: Coordinator, decision: Decision | None) -> Decision:
    """Process 0's decision on every process (`decision` is None on the others)."""
    payload = b""
    if decision is not None:
        action = decision.action
        payload = json.dumps({
            "state": decision.state.to_json(), "reason": decision.reason.value, "evidence": dict(decision.evidence),
            "action": [action.kind.value, action.from_step, action.to_step, action.factor.value, action.before_step],
        }, sort_keys=True, allow_nan=False).encode()
    shared = coordinator.from_primary(payload, "the step's decision")
    if decision is not None and coordinator.process_index == 0:
        return decision
    data = json.loads(shared)
    kind, from_step, to_step, factor, before_step = data["action"]
    return Decision(state=ControllerState.from_json(data["state"]),
                    action=Action(ActionKind(kind), int(from_step), int(to_step), Factor(factor), int(before_step)),
                    reason=Reason(data["reason"]), evidence=data["evidence"])


def role_fields(coordinator: Coordinator) -> dict[str, object]:
    """The first log line's fields saying which process this is and what it writes (none for one process)."""
    if coordinator.process_count == 1:
        return {}
    index, count = coordinator.process_index, coordinator.process_count
    role = ("process 0: writes the run directory's logs, status and acks, serves /metrics, answers status/ctl"
            if index == 0 else f"process {index} of {count}: process 0 writes the run directory's logs, serves "
            f"/metrics and answers status/ctl; this process writes only {PROCESSES_DIR}/{index}.log")
    return {"process": index, "processes": count, "role": role}


def decide_together(coordinator: Coordinator, step: int, batch_ids: Sequence[str], observation: StepObservation,
                    stop_wish: bool, decide: Callable[[], Decision], log: ProcessLog) -> tuple[Decision, bool]:
    """One step's agreement: (process 0's decision, whether all stop now); logged in processes/N.log."""
    digest = step_digest(step, batch_ids, observation)
    started = time.perf_counter()
    stop = agree_on_step(coordinator, digest, stop_wish)
    gathered = time.perf_counter()
    mine = decide() if coordinator.process_index == 0 else None
    decided = time.perf_counter()
    decision = share_decision(coordinator, mine)
    # what agreeing cost this step: the gather and the broadcast, not process 0's decide() between them
    log.step(step, decision, digest, (gathered - started) + (time.perf_counter() - decided))
    return decision, stop


def stream_cursors(coordinator: Coordinator, mine: Mapping[str, object]) -> list[object]:
    """Every process's stream cursor, in process order (for the checkpoint's state)."""
    raw = coordinator.all_gather(json.dumps(dict(mine), sort_keys=True).encode(), "the stream cursors")
    return [json.loads(item) for item in raw]


class ProcessLog:
    """RUN_DIR/processes/N.log: one line per step of what this process applied (multi-process runs only)."""

    def __init__(self, run_dir: Path, process_index: int) -> None:
        self.path = run_dir / PROCESSES_DIR / f"{process_index}.log"

    def start(self, resume_step: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # a resume writes the steps after its checkpoint again
            kept = [line for line in runlog.read_lines(self.path) if int(str(line["step"])) <= resume_step]
            runlog.rewrite_lines(self.path, kept)

    def step(self, step: int, decision: Decision, digest: Mapping[str, object], seconds: float) -> None:
        action = decision.action
        runlog.append_line(self.path, {
            "step": step, "plan_step": decision.state.plan_step, "action": action.kind.value,
            "from_step": action.from_step, "to_step": action.to_step, "factor": action.factor.value,
            "reason": decision.reason.value, "hold": decision.state.hold, "batch": digest["batch"],
            "observation": digest["observation"], "coordination_seconds": round(seconds, 6)})
