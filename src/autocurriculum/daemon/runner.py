"""The run loop: the only place with side effects.

Every training step (one batch drawn from the mixture stream) goes through the same boundary:

    observations of the batch -> summarize -> decide(policy, plan, state, obs, requests) -> action
    apply the action before the next batch is drawn: new mixture in the stream OR new reward list
    one line in metrics.jsonl, exporter update, structured log events, status.json, operator acks

With several processes (multi-controller JAX) each runs this loop; at every boundary they agree on
the step, the batch and a stop, process 0 decides and the others apply its decision, and only
process 0 writes the run directory's logs, status, acks and serves metrics (agreement.py).

The trainer draws batch k+1 only after it has scored batch k, so that draw is the step boundary
(docs/design.md, "The step boundary"; boundary.py). Training runs in segments that end at checkpoint
and evaluation steps (docs/design.md, "Why training runs in segments"); at the end of a segment
nothing is in flight, so the trainer's state, the controller state and the stream cursor are saved
together and consistently (resume.py).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from autocurriculum import control, controller, logs, runlog
from autocurriculum.checkpoint import CheckpointError, CheckpointStore
from autocurriculum.completion_samples import COMPLETIONS_FILE, CompletionSamples
from autocurriculum.coordination import Coordinator, SingleProcess
from autocurriculum.daemon import agreement, lifecycle, resume
from autocurriculum.daemon.boundary import StepObservations, apply_action
from autocurriculum.daemon.figures_log import FiguresLog
from autocurriculum.daemon.reporting import progress_line, summary_lines, transition_record, write_status
from autocurriculum.data import to_tunix_batch
from autocurriculum.exits import (
    EX_CONFIG,
    EX_IOERR,
    EX_OK,
    EX_SOFTWARE,
    EX_TEMPFAIL,
    RefusedInput,
)
from autocurriculum.observation import StepObservation, summarize
from autocurriculum.policy import Plan, Policy, expand_plan
from autocurriculum.trainer import Batch
from autocurriculum.wiring import TrainerBackend, build_run, structlog_events


class Daemon:
    """Drives one run directory through the plan. Build it, then call `run()` once.

    `backend` builds the trainer (default: Tunix GRPO, wiring.grpo_backend); `handle_signals`
    installs the stop handlers (the command line does; an in-process caller may not own signals).
    """

    def __init__(self, policy: Policy, run_dir: Path, *, resume: bool, max_steps: int | None = None,
                 overrides: Sequence[str] = (), backend: TrainerBackend | None = None,
                 coordinator: Coordinator | None = None) -> None:
        self.policy = policy
        self.coordinator: Coordinator = coordinator or SingleProcess()
        self.primary = self.coordinator.process_index == 0  # the one process with side effects
        self.together = self.coordinator.process_count > 1
        self._agreed_stop = False  # several processes: a stop all of them agreed on, at the same step
        self.overrides = list(overrides)
        self.plan: Plan = expand_plan(policy)
        self.run_dir = run_dir
        self.resume = resume
        self.max_steps = max_steps if max_steps is not None else policy.run.max_steps
        self.backend = backend
        self.step = 0  # batches drawn and observed so far
        self.stop_requested = threading.Event()
        self.done = False
        self.failed = False  # an unexpected error at a step boundary: stopped after a checkpoint
        self.observations = StepObservations()
        self.samples = CompletionSamples()  # a few recent completions per phase, for the report
        self._reporter: threading.Thread | None = None  # rewrites report.html every metrics.report_every steps
        self._signals: lifecycle.StopSignals | None = None
        self._last_boundary = time.monotonic()
        self._pending_eval: StepObservation | None = None
        self._restore_before: int | None = None  # a collapse restore waiting for the segment to end
        self._batch_ids: list[str] = []
        self.phase_steps: dict[str, int] = {}
        self.transitions: list[dict[str, object]] = []
        self.state = controller.initial_state(self.plan)
        self.log: Any = logs.get_logger("autocurriculum.daemon")

    def request_stop(self) -> None:
        """Finish the current step, checkpoint, and return (what SIGTERM does, for in-process callers)."""
        self.stop_requested.set()

    # ------------------------------------------------------------------ lifecycle

    def run(self, *, handle_signals: bool = False) -> int:
        """The whole run; the exit code (exits.py). Holds the run directory's pidfile throughout (process 0)."""
        if not self.primary:  # process 0 holds the run directory; this one writes only processes/N.log
            self.run_dir.mkdir(parents=True, exist_ok=True)
            return self._run_locked(handle_signals)
        lifecycle.prepare_run_dir(self.run_dir)
        try:
            pidfile = control.acquire_pidfile(self.run_dir, woken_by_signal=handle_signals)
        except control.AlreadyRunning as error:
            self.log.error(logs.RUN_REFUSED, run_dir=str(self.run_dir), reason=str(error))
            print(f"autocurriculum: {error}", file=sys.stderr, flush=True)
            return EX_TEMPFAIL
        lifecycle.write_run_file(self.run_dir, self.policy.file, self.overrides)
        try:
            return self._run_locked(handle_signals)
        finally:
            if self._signals is not None:
                self._signals.restore()
                self._signals = None
            pidfile.release()

    def _run_locked(self, handle_signals: bool) -> int:
        from prometheus_client import CollectorRegistry

        from autocurriculum import exporter

        self.inbox = control.ControlInbox(self.run_dir, self.log) if self.primary else None
        self.registry = CollectorRegistry()
        self.exporter = exporter.Exporter(self.registry, self.policy, self.plan)
        server = None
        if self.policy.metrics.port and self.primary:
            try:
                server = exporter.serve(self.registry, self.policy.metrics.bind, self.policy.metrics.port)
            except (exporter.PortInUse, exporter.MetricsServerError) as error:
                self.log.error(logs.RUN_REFUSED, reason=str(error))
                print(f"autocurriculum: {self.policy.file}: {error}", file=sys.stderr, flush=True)
                return EX_CONFIG
        try:
            if handle_signals:
                self._signals = lifecycle.StopSignals(self.stop_requested, self.inbox)
                self._signals.install()
            self.log.info(logs.RUN_STARTED, policy=self.policy.file, run_dir=str(self.run_dir), resume=self.resume,
                          plan_steps=len(self.plan), pid=os.getpid(),
                          **agreement.role_fields(self.coordinator))
            try:
                agreement.check_same_policy(self.coordinator, self.policy)
                self._build()
            except (RefusedInput, FileNotFoundError, ValueError) as error:
                return lifecycle.refuse(error, self.policy.file, self.log)
            code = self._train()
            for line in summary_lines(self.step, self.plan, self.state.plan_step, self.done, self.phase_steps,
                                      self.transitions):
                print(line, flush=True)
            return code
        finally:
            if server is not None:
                server.shutdown()

    def _ensure_signal_handlers(self) -> None:
        if self._signals is not None:
            self._signals.ensure()

    # ------------------------------------------------------------------ setup and resume

    def _build(self) -> None:
        parts = build_run(self.policy, plan=self.plan, log=structlog_events(self.log),
                          on_batch=self.observations.on_batch, backend=self.backend,
                          on_texts=self.observations.on_texts)
        self.library, self.stream, self.dispatcher, self.trainer = parts.library, parts.stream, parts.dispatcher, parts.trainer
        self.state = controller.initial_state(self.plan)
        owner = int(self.coordinator.from_primary(str(os.getpid()).encode(), "process 0's pid").decode())
        self.checkpoints = CheckpointStore(self.run_dir, self.policy.run.keep_checkpoints, self.coordinator, owner)
        self.process_log = agreement.ProcessLog(self.run_dir, self.coordinator.process_index)
        self.figures = FiguresLog(self.policy, self.plan, self.run_dir, self.log)  # TensorBoard, when asked for
        if self.primary:  # process 0 alone writes event files, as it alone writes the run directory's logs
            self.figures.prepare()
        if self.resume:
            self._restore()
        elif self.primary:
            self._start_fresh()
        if self.primary:
            self.figures.open(self.trainer, first_step=self.step + 1)
        if self.together:
            self.process_log.start(self.step)
            self.coordinator.barrier("the run directory is ready")
        self._ensure_signal_handlers()

    def _start_fresh(self) -> None:
        resume.start_fresh(self.run_dir, self.checkpoints)
        (self.run_dir / COMPLETIONS_FILE).unlink(missing_ok=True)

    def _restore(self) -> None:
        loaded = resume.load_agreed(self.checkpoints, self.trainer, self.checkpoints.all(), self.log, self.coordinator)
        if not self.primary:  # process 0 keeps the logs and the checkpoints in order
            if loaded is not None:
                self._resume_from(*loaded)
            return
        if loaded is None:
            if resume.has_damaged_checkpoints(self.run_dir, self.checkpoints):
                self.log.warning(logs.CHECKPOINT_FALLBACK, step=0, path=str(self.run_dir),
                                 problem="no usable checkpoint; starting from step 0")
            else:
                self.log.info(logs.RUN_RESUMED, step=0, plan_step=0, phase=self.plan[0].phase, checkpoint="",
                              discarded_log_lines=0)
            resume.truncate_logs(self.run_dir, 0)
            self.samples.restore(self.run_dir, 0)
            return
        point = self._resume_from(*loaded)
        current = self.plan[self.state.plan_step]
        discarded, self.transitions = resume.truncate_logs(self.run_dir, self.step)
        self.samples.restore(self.run_dir, self.step)
        self.checkpoints.discard_after(self.step)
        self.log.info(logs.RUN_RESUMED, step=self.step, plan_step=self.state.plan_step, phase=current.phase,
                      checkpoint=str(point.checkpoint.path), discarded_log_lines=discarded)

    def _resume_from(self, checkpoint: Any, state: dict[str, object]) -> resume.ResumePoint:
        """Step, controller state, this process's stream cursor, mixture and rewards from a checkpoint."""
        point = resume.resume_point(checkpoint, state)
        self.step, self.state, self.phase_steps = point.step, point.controller, point.phase_steps
        self.stream.restore(resume.own_stream(state, self.coordinator.process_index))
        current = self.plan[self.state.plan_step]
        self.stream.set_mixture(current.mixture)
        self.trainer.set_reward_fns(self.dispatcher.reward_fns(current.rewards))
        return point

    # ------------------------------------------------------------------ training

    def _train(self) -> int:
        every = self.policy.run.checkpoint_every
        eval_every = self.policy.eval.every
        exit_code = EX_OK
        while not self._over():
            end = min(self.max_steps, (self.step // every + 1) * every)
            if eval_every:
                end = min(end, (self.step // eval_every + 1) * eval_every)
            self._ensure_signal_handlers()
            self.trainer.train(self._segment(end))
            if self._restore_before is not None:  # between segments: nothing in flight
                self._restore_weights()
            final = self._over()
            if self.step % every == 0 or final:
                saved = self._checkpoint()
                if final:  # the last checkpoint is what a resume needs: its failure is the exit code
                    exit_code = EX_OK if saved else EX_IOERR
            if eval_every and self.step % eval_every == 0 and not self.done:
                self._evaluate()
        if self.failed:
            exit_code = EX_SOFTWARE
        if self.policy.metrics.report_every and self.primary:  # the last word of the run, in the page a browser tab shows
            if self._reporter is not None:
                self._reporter.join()
            self._write_report()
        self.log.info(logs.RUN_FINISHED, step=self.step, plan_step=self.state.plan_step,
                      phase=self.plan[self.state.plan_step].phase, done=self.done,
                      stopped=self.stop_requested.is_set(),
                      lost_output_bytes=logs.lost_output_bytes())  # output a full disk would not take
        return exit_code

    def _over(self) -> bool:
        """The run ends: the curriculum is done, a stop was asked for, or max_steps was reached."""
        return self.done or self._stopping() or self.step >= self.max_steps

    def _stopping(self) -> bool:
        """A stop is due: asked for (one process), or agreed by all at the last boundary (several)."""
        return self._agreed_stop if self.together else self.stop_requested.is_set()

    def _segment(self, end: int) -> Iterator[Batch]:
        """Yield batches up to step `end`, closing each step's books when the next is asked for."""
        batch_size = self.policy.training.prompts_per_step
        drew = False
        while True:
            if drew:
                try:
                    self._finish_step()
                except Exception as error:  # keep the state of the last good step: stop, checkpoint, exit 70
                    self.log.exception(logs.ALERT, alert="step_boundary_failed", step=self.step,
                                       error=f"{type(error).__name__}: {error}")
                    self.failed = True
                    self.stop_requested.set()
            if self.done or self._stopping() or self.step >= end or self._restore_before is not None:
                return
            items = self.stream.next_batch(batch_size)
            self.step += 1
            self._batch_ids = [item.id for item in items]
            drew = True
            self.trainer.set_batch_number(self.step)
            yield to_tunix_batch(items)

    def _finish_step(self) -> None:
        """Close step `self.step`: judge it, apply the decision, and record it everywhere.

        `controller_seconds` in the metrics line is the whole boundary up to that line (scoring the
        batch in the reward calls, the roll-up, decide, applying, the completion sample, the
        transitions log and its events); what follows it (writing the line, the operators' acks —
        given once the line recording them exists —, the export, the progress line, status.json) is
        added to the exporter's cumulative controller time once it is done.
        """
        started = time.perf_counter()
        records, dispatch_seconds = self.observations.take()
        observation = summarize(self.step, records, self.policy.training.generations_per_prompt)
        requests = self.inbox.pending(after_seq=self.state.last_request_seq) if self.inbox is not None else []
        evaluation, self._pending_eval = self._pending_eval, None
        before = self.plan[self.state.plan_step]
        if self.together:
            decision = self._decide_together(observation, requests, evaluation)
            if not self.primary:  # what process 0 records, this one only applies (and logs in processes/N.log)
                self.state = decision.state
                self._apply(decision)
                self.phase_steps[before.phase] = self.phase_steps.get(before.phase, 0) + 1
                return
        else:
            decision = controller.decide(self.policy, self.plan, self.state, observation, requests, evaluation)
        self.state = decision.state
        after = self.plan[self.state.plan_step]
        self._apply(decision)
        now = time.monotonic()
        step_seconds, self._last_boundary = now - self._last_boundary, now
        self.phase_steps[before.phase] = self.phase_steps.get(before.phase, 0) + 1
        sample = self.observations.take_sample()
        if sample is not None:  # a few texts for a person to read (report.py); a view, never a reason to stop
            try:
                self.samples.take(self.step, before.phase, before.part, *sample)
                self.samples.save(self.run_dir)
            except (OSError, ValueError) as error:  # a full disk loses the sample, not the run
                self.log.warning(logs.ALERT, alert="completion_sample_failed", step=self.step,
                                 error=f"{type(error).__name__}: {error}")
        if decision.action.kind is not controller.ActionKind.NONE:
            transition = transition_record(self.step, decision, before, after)
            runlog.append_line(self.run_dir / runlog.TRANSITIONS_LOG, transition)
            self.transitions.append(transition)
            event = logs.ROLLBACK if decision.action.kind is controller.ActionKind.ROLLBACK else logs.PHASE_SWITCHED
            self.log.info(event, **transition, evidence=decision.evidence)
        tunix = self.trainer.tunix_metrics()
        recorded = time.perf_counter()
        record = runlog.metrics_record(
            step=self.step, after=after, decision=decision, observation=observation, evaluation=evaluation,
            requests=requests, tunix=tunix, time=time.time(), step_seconds=step_seconds,
            controller_seconds=recorded - started + dispatch_seconds, batch_ids=self._batch_ids)
        runlog.append_line(self.run_dir / runlog.METRICS_LOG, record)
        self.figures.step(record, len(self.transitions))
        for result in decision.operator_results:  # acknowledged once the line that records them is written
            assert self.inbox is not None  # process 0 read the requests
            self.inbox.acknowledge(result.seq, result.result, result.message)
            self.log.info(logs.OVERRIDE_APPLIED, seq=result.seq, command=result.command, result=result.result,
                          message=result.message, step=self.step)
        self.exporter.update(record)
        print(progress_line(record), flush=True)
        write_status(self.run_dir, record, policy_file=self.policy.file, plan=self.plan, state=self.state,
                     done=self.done)
        every = self.policy.metrics.report_every
        if every and self.step % every == 0 and (self._reporter is None or not self._reporter.is_alive()):
            # in a thread: drawing takes about a second, which the step boundary must not wait for
            self._reporter = threading.Thread(target=self._write_report, name="autocurriculum-report", daemon=True)
            self._reporter.start()
        self.exporter.boundary_finished(time.perf_counter() - recorded)

    def _decide_together(self, observation: StepObservation, requests: Sequence[control.OperatorRequest],
                         evaluation: StepObservation | None) -> controller.Decision:
        """Agree on the step and a stop, decide on process 0, take its decision everywhere, log it here."""
        decision, stop = agreement.decide_together(
            self.coordinator, self.step, self._batch_ids, observation, self.stop_requested.is_set(),
            lambda: controller.decide(self.policy, self.plan, self.state, observation, requests, evaluation),
            self.process_log)
        self._agreed_stop = self._agreed_stop or stop
        return decision

    def _apply(self, decision: controller.Decision) -> None:
        applied = apply_action(decision, self.plan, self.stream, self.trainer, self.dispatcher)
        self.done = self.done or applied.done
        if applied.restore_before is not None:
            self._restore_before = applied.restore_before

    # ------------------------------------------------------------------ checkpoints and evaluation

    def _checkpoint(self) -> bool:
        started = time.monotonic()
        state = resume.checkpoint_state(self.step, self.state, self.stream.state(), self.phase_steps, self.policy.file)
        if self.together:  # every process's cursor (they draw the same batches; a resume restores each its own)
            state["streams"] = agreement.stream_cursors(self.coordinator, self.stream.state())
        try:
            checkpoint = self.checkpoints.save(self.step, state, self.trainer.save)
        except CheckpointError as error:
            self.log.error(logs.CHECKPOINT_FAILED, step=self.step, error=str(error))
            self.exporter.checkpoint_failed()
            print(f"autocurriculum: {error}; training continues, the previous checkpoints are intact", flush=True)
            return False
        self.exporter.checkpoint_saved()
        self.log.info(logs.CHECKPOINT_SAVED, step=self.step, path=str(checkpoint.path),
                      seconds=round(time.monotonic() - started, 3))
        return True

    def _restore_weights(self) -> None:
        """Load the trainer's state from the newest whole checkpoint taken before the collapse began.

        The controller's state, the data stream and the logs go on from here (nothing is replayed):
        only the weights go back, and training continues on new batches.
        """
        before, self._restore_before = self._restore_before, None
        assert before is not None
        loaded = resume.load_agreed(self.checkpoints, self.trainer,
                                    (c for c in self.checkpoints.all() if c.step < before), self.log, self.coordinator)
        if loaded is None:
            self.log.error(logs.ALERT, alert="restore_unavailable", step=self.step,
                           error=f"no whole checkpoint before step {before}: training goes on from the collapsed weights")
            return
        checkpoint = loaded[0]
        self.log.warning(logs.WEIGHTS_RESTORED, step=self.step, checkpoint=checkpoint.step, path=str(checkpoint.path),
                         collapse_began=before)

    def _write_report(self) -> None:
        """RUN_DIR/report.html from the run's own files; a view on training, never a reason to stop it."""
        from autocurriculum import report

        try:
            report.write_report(self.run_dir)
        except Exception as error:
            self.log.warning(logs.ALERT, alert="report_failed", step=self.step, error=f"{type(error).__name__}: {error}")

    def _evaluate(self) -> None:
        """Held-out evaluation between segments; its figures join the next step's observation."""
        from autocurriculum import evaluation

        try:
            self._pending_eval = evaluation.evaluate_session(
                self.trainer, self.dispatcher, self.library.heldout(), temperature=self.policy.training.temperature,
                step=self.step, run_dir=self.run_dir, log=self.log,
                record=self.primary)  # every process generates (a collective), process 0 alone writes eval.jsonl
        except Exception as error:  # evaluation is a view on training, never a reason to stop it
            self.log.error(logs.ALERT, alert="evaluation_failed", step=self.step, error=f"{type(error).__name__}: {error}")
