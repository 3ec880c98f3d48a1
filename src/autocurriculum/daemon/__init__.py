"""The daemon: drives one run directory through a policy's single-factor plan.

Its parts, one concept each:
- runner: the `Daemon` — segments of training, the step boundary's bookkeeping, checkpoints;
- boundary: what a step leaves behind, and applying a decision (data OR rewards) to the run;
- resume: where a run starts again from (resume, collapse restore) and what of its logs it keeps;
- reporting: progress lines, status.json, the end-of-run summary;
- lifecycle: the run directory's lock, the stop signals, the run file.
The trainer is reached only through the `autocurriculum.trainer.Trainer` protocol and built by
`autocurriculum.wiring`; importing this package imports no JAX or Tunix.

Two ways in: `run_daemon(policy, run_dir, options)` in-process (a notebook, a test), returning a
`RunResult`; and `cmd_run(args)`, the command line's, which also owns the process's output and signals.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autocurriculum.coordination import Coordinator, process_group
from autocurriculum.daemon.runner import Daemon
from autocurriculum.exits import RefusedInput
from autocurriculum.policy import Policy, PolicyError, load, policy_exit_code
from autocurriculum.wiring import TrainerBackend

__all__ = ["Daemon", "RunOptions", "RunResult", "cmd_run", "run_daemon"]


@dataclass(frozen=True)
class RunOptions:
    resume: bool = False
    max_steps: int | None = None  # default: the policy's run.max_steps
    overrides: Sequence[str] = ()  # the --set overrides the policy was loaded with (recorded in run.json)
    handle_signals: bool = False  # SIGTERM/SIGINT/SIGHUP stop the run (main thread only; restored after)
    backend: TrainerBackend | None = None  # default: Tunix GRPO (wiring.grpo_backend)
    coordinator: Coordinator | None = None  # default: one process (coordination.SingleProcess)


@dataclass(frozen=True)
class RunResult:
    exit_code: int  # exits.py
    steps: int
    plan_step: int
    phase: str
    done: bool  # the curriculum's terminal step was completed
    stopped: bool  # a stop was requested (signal or request_stop)
    transitions: list[dict[str, object]] = field(default_factory=list)


def run_daemon(policy: Policy, run_dir: Path, options: RunOptions = RunOptions()) -> RunResult:
    """Run the daemon in this process until the curriculum ends, max_steps, or a stop; never raises for bad data."""
    daemon = Daemon(policy, run_dir, resume=options.resume, max_steps=options.max_steps,
                    overrides=options.overrides, backend=options.backend, coordinator=options.coordinator)
    code = daemon.run(handle_signals=options.handle_signals)
    plan_step = daemon.state.plan_step
    return RunResult(exit_code=code, steps=daemon.step, plan_step=plan_step, phase=daemon.plan[plan_step].phase,
                     done=daemon.done, stopped=daemon.stop_requested.is_set(), transitions=list(daemon.transitions))


def cmd_run(args: argparse.Namespace) -> int:
    """`autocurriculum run POLICY [--run-dir DIR] [--resume] [--set KEY=VALUE] [--coordinator ... --process-id N]`.

    A multi-process run is joined (jax.distributed) before anything else touches JAX; every process
    gets the same command and the same (shared) run directory.
    """
    from autocurriculum import logs

    logs.survive_unwritable_output()
    logs.configure()
    overrides = list(getattr(args, "set", None) or [])
    try:
        policy = load(Path(args.policy), overrides=overrides)
    except PolicyError as error:
        print(f"autocurriculum: {error}", file=sys.stderr, flush=True)
        return policy_exit_code(error)
    run_dir = Path(args.run_dir) if getattr(args, "run_dir", None) else Path(policy.run.run_dir)
    try:
        group = process_group(getattr(args, "coordinator", None), getattr(args, "num_processes", None),
                              getattr(args, "process_id", None), peer_timeout=getattr(args, "peer_timeout", 60.0),
                              auto=bool(getattr(args, "distributed", False)))
        coordinator: Coordinator | None = None
        if group is not None:
            from autocurriculum.tunix_adapter.distributed import join

            coordinator = join(group)
    except RefusedInput as error:
        print(f"autocurriculum: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    options = RunOptions(resume=bool(getattr(args, "resume", False)), overrides=overrides, handle_signals=True,
                         coordinator=coordinator)
    return run_daemon(policy, run_dir, options).exit_code
