"""Resume and restore: where a run starts again from, and what of its logs it keeps.

A checkpoint holds the trainer's state and the daemon's (step, controller state, stream cursor, steps
per phase) together, taken between segments when nothing is in flight. Resuming takes the newest
checkpoint that is whole, sets aside the damaged ones, and cuts the logs back to its step: the
resumed run writes those steps again. A collapse restore loads only the trainer's state from the
newest whole checkpoint before the collapse began; controller, stream and logs go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autocurriculum import logs, runlog
from autocurriculum.checkpoint import STATE, Checkpoint, CheckpointStore
from autocurriculum.controller import ControllerState
from autocurriculum.coordination import Coordinator
from autocurriculum.json_values import as_int, as_mapping
from autocurriculum.trainer import Trainer

RUN_LOGS = (runlog.METRICS_LOG, runlog.TRANSITIONS_LOG, runlog.EVAL_LOG)


@dataclass(frozen=True)
class ResumePoint:
    """The daemon's side of a checkpoint (its state.json), read back."""

    checkpoint: Checkpoint
    step: int
    controller: ControllerState
    stream: Mapping[str, object]
    phase_steps: dict[str, int]


def checkpoint_state(step: int, controller: ControllerState, stream: Mapping[str, object],
                     phase_steps: Mapping[str, int], policy_file: str) -> dict[str, object]:
    """What a checkpoint's state.json holds next to the trainer's state."""
    return {"step": step, "controller": controller.to_json(), "stream": dict(stream),
            "phase_steps": dict(phase_steps), "policy": policy_file}


def start_fresh(run_dir: Path, checkpoints: CheckpointStore) -> None:
    """A new run in a used directory: no log line and no checkpoint of the previous run survive."""
    for name in RUN_LOGS:
        (run_dir / name).unlink(missing_ok=True)
    for old in checkpoints.all():
        checkpoints.discard_after(old.step - 1)


def load_newest_whole(checkpoints: CheckpointStore, trainer: Trainer, candidates: Iterable[Checkpoint],
                      log: Any) -> tuple[Checkpoint, dict[str, object]] | None:
    """Load the trainer's state from the first whole checkpoint of `candidates` (newest first).

    A checkpoint that fails its manifest, its state or the trainer's restore is logged (`log`: a
    structlog logger) and set aside as corrupt-*, and the next one is tried; None when none was whole.
    """
    for candidate in candidates:
        problem = checkpoints.verify(candidate)
        if problem is None:
            try:
                state = candidate.read_state()
                trainer.restore(candidate.model_dir)
                return candidate, state
            except Exception as error:  # an Orbax or JSON failure on a verified copy: try older
                problem = f"restore failed: {error}"
        _set_aside(candidate, problem, log)
    return None


def _set_aside(candidate: Checkpoint, problem: str, log: Any) -> None:
    """Log why `candidate` cannot be resumed from and rename it corrupt-*, so no later resume tries it again."""
    log.warning(logs.CHECKPOINT_FALLBACK, step=candidate.step, path=str(candidate.path), problem=problem)
    candidate.path.rename(candidate.path.with_name(f"corrupt-{candidate.path.name}"))


def resume_point(checkpoint: Checkpoint, state: Mapping[str, object]) -> ResumePoint:
    """The daemon's state from a checkpoint's state.json (whose manifest verified).

    A controller state of an unknown schema version raises controller_state.StateFormatError (a
    ValueError) naming the file: the daemon refuses the resume with that message.
    """
    return ResumePoint(
        checkpoint=checkpoint,
        step=as_int(state["step"]),
        controller=ControllerState.from_json(as_mapping(state["controller"]), file=str(checkpoint.path / STATE)),
        stream=as_mapping(state["stream"]),
        phase_steps={str(k): as_int(v) for k, v in as_mapping(state.get("phase_steps", {})).items()},
    )


def truncate_logs(run_dir: Path, step: int) -> tuple[int, list[dict[str, object]]]:
    """Drop log lines of steps after `step`; the resumed run replays them and writes its own.

    Returns the number of lines dropped and the transitions kept.
    """
    discarded = 0
    transitions: list[dict[str, object]] = []
    for name in RUN_LOGS:
        path = run_dir / name
        if not path.exists():
            continue
        kept = [line for line in runlog.read_lines(path) if as_int(line["step"]) <= step]
        with open(path, encoding="utf-8") as handle:
            total = sum(1 for _ in handle)
        discarded += total - len(kept)
        runlog.rewrite_lines(path, kept)
        if name == runlog.TRANSITIONS_LOG:
            transitions = kept
    return discarded, transitions


def has_damaged_checkpoints(run_dir: Path, checkpoints: CheckpointStore) -> bool:
    return bool(checkpoints.all()) or any(run_dir.glob(f"{checkpoints.root.name}/corrupt-*"))


def load_agreed(checkpoints: CheckpointStore, trainer: Trainer, candidates: Iterable[Checkpoint], log: Any,
                coordinator: Coordinator) -> tuple[Checkpoint, dict[str, object]] | None:
    """`load_newest_whole` for every process of the run: process 0 picks the checkpoint, all restore it.

    Why process 0 picks: the checkpoints are shared, and a process that set a damaged one aside while
    another restored it would resume a different step. Process 0 verifies the candidates (setting the
    damaged ones aside), names the newest whole one to the others, and every process restores that
    one (Orbax reads each process's shards). A restore that fails on any process stops the run.
    """
    if coordinator.process_count == 1:
        return load_newest_whole(checkpoints, trainer, candidates, log)
    chosen = -1
    if coordinator.process_index == 0:
        for candidate in candidates:
            problem = checkpoints.verify(candidate)
            if problem is None:
                chosen = candidate.step
                break
            _set_aside(candidate, problem, log)
    chosen = int(coordinator.from_primary(str(chosen).encode(), "the checkpoint to resume from").decode())
    if chosen < 0:
        return None
    checkpoint = next(c for c in checkpoints.all() if c.step == chosen)
    state = checkpoint.read_state()
    trainer.restore(checkpoint.model_dir)
    coordinator.barrier(f"restored checkpoint {chosen}")
    return checkpoint, state


def own_stream(state: Mapping[str, object], process_index: int) -> Mapping[str, object]:
    """This process's stream cursor from a checkpoint's state (every process's is saved; one process: "stream")."""
    streams = state.get("streams")
    if isinstance(streams, list) and process_index < len(streams):
        return as_mapping(streams[process_index])
    return as_mapping(state["stream"])
