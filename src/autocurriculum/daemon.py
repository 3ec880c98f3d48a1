"""The run loop: the only place with side effects.

Every training step (one batch drawn from the mixture stream) goes through the same boundary:

    observations of the batch -> summarize -> decide(policy, plan, state, obs, requests) -> action
    apply the action before the next batch is drawn: new mixture in the stream OR new reward list
    one line in metrics.jsonl, exporter update, structured log events, status.json, operator acks

Tunix's data thread calls the stream's `next()` once per batch and computes that batch's rewards
right after, so when the stream is asked for batch k+1 the observations of batch k are complete:
that call is the step boundary (DESIGN.md). Training runs in segments that end at checkpoint and
evaluation steps; at the end of a segment nothing is in flight, so model, optimizer, controller
state and stream cursor are saved together and consistently.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from autocurriculum import runlog
from autocurriculum.checkpoint import Checkpoint, CheckpointError, CheckpointStore
from autocurriculum.completion_samples import COMPLETIONS_FILE, CompletionSamples
from autocurriculum.observation import RecordBatch, StepObservation, summarize
from autocurriculum.policy import Factor, Plan, Policy, PolicyError, expand_plan, load

EX_OK = 0
EX_SOFTWARE = 70
EX_DATAERR = 65
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_CONFIG = 78
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Daemon:
    """Drives one run directory through the policy's plan. Build it, then call `run()` once."""

    def __init__(self, policy: Policy, run_dir: Path, *, resume: bool, max_steps: int | None = None,
                 overrides: Sequence[str] = ()) -> None:
        self.policy = policy
        self.overrides = list(overrides)
        self.plan: Plan = expand_plan(policy)
        self.run_dir = run_dir
        self.resume = resume
        self.max_steps = max_steps if max_steps is not None else policy.run.max_steps
        self.step = 0  # batches drawn and observed so far
        self.stop_requested = threading.Event()
        self.done = False
        self.failed = False  # an unexpected error at a step boundary: stopped after a checkpoint
        self._batches: list[RecordBatch] = []  # this step's reward batches, in order
        self._batches_lock = threading.Lock()
        self._dispatch_seconds = 0.0
        self._last_boundary = time.monotonic()
        self._pending_eval: StepObservation | None = None
        self._restore_before: int | None = None  # a collapse restore waiting for the segment to end
        self._batch_ids: list[str] = []
        self._sample: tuple[Sequence[str], Sequence[str], RecordBatch] | None = None  # the step's first batch
        self.samples = CompletionSamples()
        self._reporter: threading.Thread | None = None  # rewrites report.html every metrics.report_every steps
        self.phase_steps: dict[str, int] = {}
        self.transitions: list[dict[str, object]] = []

    # ------------------------------------------------------------------ setup

    def run(self) -> int:
        from autocurriculum import control, logs

        self.run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o700)
        self.log = logs.get_logger("autocurriculum.daemon")
        try:
            self._pidfile = control.acquire_pidfile(self.run_dir)
        except control.AlreadyRunning as error:
            self.log.error(logs.RUN_REFUSED, run_dir=str(self.run_dir), reason=str(error))
            print(f"autocurriculum: {error}", flush=True)
            return EX_TEMPFAIL
        # what `autocurriculum eval` needs to rebuild this run's model and data
        (self.run_dir / "run.json").write_text(json.dumps({"policy": str(Path(self.policy.file).resolve()),
                                                           "overrides": self.overrides}))
        try:
            return self._run_locked()
        finally:
            self._pidfile.release()

    def _run_locked(self) -> int:
        from prometheus_client import CollectorRegistry

        from autocurriculum import control, exporter, logs

        self.inbox = control.ControlInbox(self.run_dir, self.log)
        self.registry = CollectorRegistry()
        self.exporter = exporter.Exporter(self.registry, self.policy, self.plan)
        self._server = None
        if self.policy.metrics.port:
            try:
                self._server = exporter.serve(self.registry, self.policy.metrics.bind, self.policy.metrics.port)
            except (exporter.PortInUse, exporter.MetricsServerError) as error:
                self.log.error(logs.RUN_REFUSED, reason=str(error))
                print(f"autocurriculum: {error}", flush=True)
                return EX_CONFIG
        self._install_signal_handlers()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit fails the write (EFBIG), not the process
        self.log.info(
            logs.RUN_STARTED,
            policy=self.policy.file,
            run_dir=str(self.run_dir),
            resume=self.resume,
            plan_steps=len(self.plan),
            pid=os.getpid(),
        )
        from autocurriculum.data import DataError

        try:
            self._build()
        except (DataError, FileNotFoundError, ValueError) as error:
            self.log.error(logs.RUN_REFUSED, reason=str(error))
            print(f"autocurriculum: {error}", flush=True)
            return EX_DATAERR
        code = self._train()
        self._print_summary()
        if self._server is not None:
            self._server.shutdown()
        return code

    def _install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT/SIGHUP: finish the step, checkpoint, exit 0.

        Tunix installs handlers of its own that do not chain (utils/trajectory_logger.py); the daemon
        puts its own back before every training segment, so they survive whatever Tunix installed.
        """

        def request_stop(signum: int, _frame: object) -> None:
            self.stop_requested.set()

        self._stop_handler = request_stop
        for signum in STOP_SIGNALS:
            signal.signal(signum, request_stop)
        self.inbox.install_wakeup_handler()

    def _ensure_signal_handlers(self) -> None:
        """Put the stop handlers back if anything replaced them (called on the main thread)."""
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not self._stop_handler:
                signal.signal(signum, self._stop_handler)

    def _build(self) -> None:
        from autocurriculum import controller, logs, rewards
        from autocurriculum.library import SourceLibrary

        base_dir = Path(self.policy.file).resolve().parent
        self.base_dir = base_dir
        cache_root = Path(os.path.expanduser(self.policy.model.cache_dir))
        cache_root = cache_root if cache_root.is_absolute() else base_dir / cache_root
        # the data first: a bad file is reported in a second, before JAX and Tunix are even imported
        self.library = SourceLibrary(self.policy, base_dir=base_dir, cache_dir=cache_root / "data")
        from autocurriculum.tunix_adapter import GrpoSession, build_model_bundle, configure_jax

        configure_jax(cache_root / "jax-compilation")
        self.stream = self.library.stream(
            self.plan[0].mixture,
            seed=self.policy.run.seed,
            on_epoch=lambda source, epoch: self.log.info(logs.EPOCH_STARTED, source=source, epoch=epoch),
        )
        self.bundle = build_model_bundle(
            self.policy,
            base_dir,
            corpus=self.library.tokenizer_corpus,
            corpus_recipe=self.library.recipe(),
            warm_examples=self.library.warm_start_batches,
            log=lambda event, **fields: self.log.info(event, **fields),
        )
        self.dispatcher = rewards.RewardDispatcher(count_tokens=self.bundle.count_tokens, on_batch=self._on_batch,
                                                   on_texts=self._on_texts)
        self.state = controller.initial_state(self.plan)
        self.checkpoints = CheckpointStore(self.run_dir, self.policy.run.keep_checkpoints)
        self.session = GrpoSession(self.bundle, self.policy, self.dispatcher.reward_fns(self.plan[0].rewards))
        if self.resume:
            self._restore()
        else:
            self._start_fresh()
        self._ensure_signal_handlers()

    def _start_fresh(self) -> None:
        for name in (runlog.METRICS_LOG, runlog.TRANSITIONS_LOG, runlog.EVAL_LOG, COMPLETIONS_FILE):
            (self.run_dir / name).unlink(missing_ok=True)
        for old in self.checkpoints.all():
            self.checkpoints.discard_after(old.step - 1)

    def _load_newest_whole(self, candidates: Iterable[Checkpoint]) -> tuple[Checkpoint, dict[str, object]] | None:
        """Load the model and optimizer of the first whole checkpoint of `candidates` (newest first).

        A checkpoint that fails its manifest, its state or Orbax's restore is logged and set aside as
        corrupt-*, and the next one is tried; None when none was whole.
        """
        from autocurriculum import logs

        for candidate in candidates:
            problem = self.checkpoints.verify(candidate)
            if problem is None:
                try:
                    state = candidate.read_state()
                    self.session.restore(candidate.model_dir)
                    return candidate, state
                except Exception as error:  # an Orbax or JSON failure on a verified copy: try older
                    problem = f"restore failed: {error}"
            self.log.warning(logs.CHECKPOINT_FALLBACK, step=candidate.step, path=str(candidate.path), problem=problem)
            candidate.path.rename(candidate.path.with_name(f"corrupt-{candidate.path.name}"))
        return None

    def _restore(self) -> None:
        from autocurriculum import controller, logs

        loaded = self._load_newest_whole(self.checkpoints.all())
        if loaded is not None:
            candidate, state = loaded
            self.step = int(state["step"])  # type: ignore[arg-type]
            self.state = controller.ControllerState.from_json(state["controller"])  # type: ignore[arg-type]
            self.stream.restore(state["stream"])  # type: ignore[arg-type]
            self.phase_steps = {str(k): int(v) for k, v in dict(state.get("phase_steps", {})).items()}  # type: ignore[arg-type]
            current = self.plan[self.state.plan_step]
            self.stream.set_mixture(current.mixture)
            self.session.set_reward_fns(self.dispatcher.reward_fns(current.rewards))
            discarded = self._truncate_logs(self.step)
            self.checkpoints.discard_after(self.step)
            self.log.info(
                logs.RUN_RESUMED,
                step=self.step,
                plan_step=self.state.plan_step,
                phase=current.phase,
                checkpoint=str(candidate.path),
                discarded_log_lines=discarded,
            )
            return
        if self.checkpoints.all() or any(self.run_dir.glob("checkpoints/corrupt-*")):
            self.log.warning(logs.CHECKPOINT_FALLBACK, step=0, path=str(self.run_dir), problem="no usable checkpoint; starting from step 0")
        else:
            self.log.info(logs.RUN_RESUMED, step=0, plan_step=0, phase=self.plan[0].phase, checkpoint="", discarded_log_lines=0)
        self._truncate_logs(0)

    def _truncate_logs(self, step: int) -> int:
        """Drop log lines of steps after `step`: the resumed run replays them and writes its own."""
        self.samples.restore(self.run_dir, step)
        discarded = 0
        for name in (runlog.METRICS_LOG, runlog.TRANSITIONS_LOG, runlog.EVAL_LOG):
            path = self.run_dir / name
            if not path.exists():
                continue
            kept = [line for line in runlog.read_lines(path) if int(line["step"]) <= step]  # type: ignore[arg-type]
            total = sum(1 for _ in open(path, encoding="utf-8"))
            discarded += total - len(kept)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as handle:
                for line in kept:
                    handle.write(json.dumps(line, separators=(",", ":")) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(path)
            if name == runlog.TRANSITIONS_LOG:
                self.transitions = kept
        return discarded

    # ------------------------------------------------------------------ training

    def _train(self) -> int:
        from autocurriculum import logs

        every = self.policy.run.checkpoint_every
        eval_every = self.policy.eval.every
        exit_code = EX_OK
        while not self.done and not self.stop_requested.is_set() and self.step < self.max_steps:
            end = min(self.max_steps, (self.step // every + 1) * every)
            if eval_every:
                end = min(end, (self.step // eval_every + 1) * eval_every)
            self._ensure_signal_handlers()
            self.session.train(self._segment(end))
            if self._restore_before is not None:  # between segments: nothing in flight
                self._restore_weights()
            final = self.done or self.stop_requested.is_set() or self.step >= self.max_steps
            if self.step % every == 0 or final:
                saved = self._checkpoint()
                if final:  # the last checkpoint is what a resume needs: its failure is the exit code
                    exit_code = EX_OK if saved else EX_IOERR
            if eval_every and self.step % eval_every == 0 and not self.done:
                self._evaluate()
        if self.failed:
            exit_code = EX_SOFTWARE
        if self.policy.metrics.report_every:  # the last word of the run, in the page a browser tab shows
            if self._reporter is not None:
                self._reporter.join()
            self._write_report()
        self.log.info(
            logs.RUN_FINISHED,
            step=self.step,
            plan_step=self.state.plan_step,
            phase=self.plan[self.state.plan_step].phase,
            done=self.done,
            stopped=self.stop_requested.is_set(),
            lost_output_bytes=logs.lost_output_bytes(),  # output a full disk would not take
        )
        return exit_code

    def _segment(self, end: int) -> Iterator[dict[str, object]]:
        """Yield batches up to step `end`, closing each step's books when the next is asked for."""
        from autocurriculum import data

        batch_size = self.policy.training.prompts_per_step
        drew = False
        while True:
            if drew:
                try:
                    self._finish_step()
                except Exception as error:  # keep the state of the last good step: stop, checkpoint, exit 70
                    from autocurriculum import logs

                    self.log.exception(logs.ALERT, alert="step_boundary_failed", step=self.step,
                                       error=f"{type(error).__name__}: {error}")
                    self.failed = True
                    self.stop_requested.set()
            if self.done or self.stop_requested.is_set() or self.step >= end or self._restore_before is not None:
                return
            items = self.stream.next_batch(batch_size)
            self.step += 1
            self._batch_ids = [item.id for item in items]
            drew = True
            self.session.set_batch_number(self.step)
            yield data.to_tunix_batch(items)

    def _on_batch(self, batch: RecordBatch, seconds: float = 0.0) -> None:
        with self._batches_lock:
            self._batches.append(batch)
            self._dispatch_seconds += seconds

    def _on_texts(self, prompts: Sequence[str], completions: Sequence[str], records: RecordBatch) -> None:
        with self._batches_lock:
            if self._sample is None:
                self._sample = (prompts, completions, records)

    def _finish_step(self) -> None:
        from autocurriculum import controller, logs

        started = time.perf_counter()
        with self._batches_lock:
            batches, self._batches = self._batches, []
            dispatch_seconds, self._dispatch_seconds = self._dispatch_seconds, 0.0
            sample, self._sample = self._sample, None
        observation = summarize(self.step, RecordBatch.concat(batches), self.policy.training.generations_per_prompt)
        requests = self.inbox.pending(after_seq=self.state.last_request_seq)
        evaluation, self._pending_eval = self._pending_eval, None
        before = self.plan[self.state.plan_step]
        decision = controller.decide(self.policy, self.plan, self.state, observation, requests, evaluation)
        self.state = decision.state
        after = self.plan[self.state.plan_step]
        self._apply(decision)
        for result in decision.operator_results:
            self.inbox.acknowledge(result.seq, result.result, result.message)
            self.log.info(
                logs.OVERRIDE_APPLIED,
                seq=result.seq,
                command=result.command,
                result=result.result,
                message=result.message,
                step=self.step,
            )
        now = time.monotonic()
        step_seconds = now - self._last_boundary
        self._last_boundary = now
        controller_seconds = time.perf_counter() - started + dispatch_seconds
        self.phase_steps[before.phase] = self.phase_steps.get(before.phase, 0) + 1
        record = {
            "step": self.step,
            "plan_step": self.state.plan_step,
            "phase": after.phase,
            "part": after.part,
            "time": time.time(),
            "step_seconds": round(step_seconds, 6),
            "controller_seconds": round(controller_seconds, 6),
            "batch_ids": self._batch_ids,
            "observation": observation.to_json(),
            "eval": evaluation.to_json() if evaluation is not None else None,
            "tunix": self.session.tunix_metrics(),
            "requests": [r.to_json() for r in requests],
            "decision": decision.to_json(),
            "operator_results": [
                {"seq": r.seq, "command": r.command, "result": r.result, "message": r.message}
                for r in decision.operator_results
            ],
            **controller.status_fields(decision),
        }
        runlog.append_line(self.run_dir / runlog.METRICS_LOG, record)
        if sample is not None:  # a few texts for a person to read (report.py); a view, never a reason to stop
            self.samples.take(self.step, before.phase, before.part, *sample)
            try:
                self.samples.save(self.run_dir)
            except OSError:
                pass
        if decision.action.kind.value != "none":
            transition = {
                "step": self.step,
                "action": decision.action.kind.value,
                "factor": decision.action.factor.value,
                "from_step": decision.action.from_step,
                "to_step": decision.action.to_step,
                "from_phase": before.label,
                "to_phase": after.label,
                "reason": decision.reason.value,
            }
            runlog.append_line(self.run_dir / runlog.TRANSITIONS_LOG, transition)
            self.transitions.append(transition)
            event = logs.ROLLBACK if decision.action.kind.value == "rollback" else logs.PHASE_SWITCHED
            self.log.info(event, **transition, evidence=decision.evidence)
        self.exporter.update(record)
        self._print_progress(record)
        self._write_status(record)
        every = self.policy.metrics.report_every
        if every and self.step % every == 0 and (self._reporter is None or not self._reporter.is_alive()):
            # in a thread: drawing takes about a second, which the step boundary must not wait for
            self._reporter = threading.Thread(target=self._write_report, name="autocurriculum-report", daemon=True)
            self._reporter.start()

    def _apply(self, decision) -> None:  # controller.Decision
        from autocurriculum.controller import ActionKind

        action = decision.action
        if action.kind is ActionKind.DONE:
            self.done = True
            return
        if action.kind is ActionKind.RESTORE:  # done when the segment has ended (`_restore_weights`)
            self._restore_before = action.before_step
            return
        if action.from_step == action.to_step:
            return
        target = self.plan[action.to_step]
        if action.factor is Factor.DATA:
            self.stream.set_mixture(target.mixture)
        elif action.factor is Factor.REWARDS:
            self.session.set_reward_fns(self.dispatcher.reward_fns(target.rewards))
        else:  # pragma: no cover - decide() never moves without naming the factor
            raise RuntimeError(f"decide() moved from plan step {action.from_step} to {action.to_step} without a factor")

    # ------------------------------------------------------------------ checkpoints and evaluation

    def _checkpoint(self) -> bool:
        from autocurriculum import logs

        started = time.monotonic()
        state = {
            "step": self.step,
            "controller": self.state.to_json(),
            "stream": self.stream.state(),
            "phase_steps": self.phase_steps,
            "policy": self.policy.file,
        }
        try:
            checkpoint = self.checkpoints.save(self.step, state, self.session.save)
        except CheckpointError as error:
            self.log.error(logs.CHECKPOINT_FAILED, step=self.step, error=str(error))
            self.exporter.checkpoint_failed()
            print(f"autocurriculum: {error}; training continues, the previous checkpoints are intact", flush=True)
            return False
        self.exporter.checkpoint_saved()
        self.log.info(
            logs.CHECKPOINT_SAVED, step=self.step, path=str(checkpoint.path), seconds=round(time.monotonic() - started, 3)
        )
        return True

    def _restore_weights(self) -> None:
        """Load model and optimizer from the newest whole checkpoint taken before the collapse began.

        The controller's state, the data stream and the logs go on from here (nothing is replayed):
        only the weights go back, and training continues on new batches.
        """
        from autocurriculum import logs

        before, self._restore_before = self._restore_before, None
        assert before is not None
        loaded = self._load_newest_whole(c for c in self.checkpoints.all() if c.step < before)
        if loaded is None:
            self.log.error(logs.ALERT, alert="restore_unavailable", step=self.step,
                           error=f"no whole checkpoint before step {before}: training goes on from the collapsed weights")
            return
        checkpoint = loaded[0]
        self.log.warning(logs.WEIGHTS_RESTORED, step=self.step, checkpoint=checkpoint.step, path=str(checkpoint.path),
                         collapse_began=before)

    def _write_report(self) -> None:
        """RUN_DIR/report.html from the run's own files; a view on training, never a reason to stop it."""
        from autocurriculum import logs, report

        try:
            report.write_report(self.run_dir)
        except Exception as error:
            self.log.warning(logs.ALERT, alert="report_failed", step=self.step, error=f"{type(error).__name__}: {error}")

    def _evaluate(self) -> None:
        """Held-out evaluation between segments; its figures join the next step's observation."""
        from autocurriculum import evaluation, logs

        try:
            self._pending_eval = evaluation.evaluate_session(self, step=self.step)
        except Exception as error:  # evaluation is a view on training, never a reason to stop it
            self.log.error(logs.ALERT, alert="evaluation_failed", step=self.step, error=f"{type(error).__name__}: {error}")

    # ------------------------------------------------------------------ reporting

    def _print_progress(self, record: dict[str, object]) -> None:
        metrics = record["observation"]["metrics"]  # type: ignore[index]

        def fmt(name: str) -> str:
            value = metrics.get(name)  # type: ignore[union-attr]
            return "  -  " if value is None else f"{value:5.2f}"

        decision = record["decision"]  # type: ignore[assignment]
        note = "" if decision["action"] == "none" else f"  << {decision['action']} ({decision['reason']})"  # type: ignore[index]
        print(
            f"step {record['step']:5d}  {str(record['phase'])[:14]:14s} "
            f"extract {fmt('extraction_rate')}  strict {fmt('strict_compliance')}  refuse {fmt('refusal_rate')}  "
            f"acc {fmt('accuracy')}  len {fmt('mean_length_tokens')}  "
            f"{float(record['step_seconds']):5.2f}s{note}",  # type: ignore[arg-type]
            flush=True,
        )

    def _write_status(self, record: dict[str, object]) -> None:
        from autocurriculum import control

        control.write_status(
            self.run_dir,
            {
                "pid": os.getpid(),
                "policy": self.policy.file,
                "step": self.step,
                "plan_step": self.state.plan_step,
                "plan_steps": len(self.plan),
                "phase": record["phase"],
                "part": record["part"],
                "hold": record.get("hold", False),
                "hold_reason": self.state.hold_reason,
                "last_request_seq": self.state.last_request_seq,
                "done": self.done,
                "last_decision": record["decision"],
                "criteria": record.get("criteria", {}),
                "plateau": record.get("plateau", {}),
                "alerts": record.get("alerts", []),
                "updated": record["time"],
            },
        )

    def _print_summary(self) -> None:
        final = self.plan[self.state.plan_step]
        print("", flush=True)
        print(f"autocurriculum: {self.step} steps, ended in plan step {self.state.plan_step + 1}/{len(self.plan)} ({final.label})"
              f"{' - curriculum complete' if self.done else ''}", flush=True)
        for phase, count in self.phase_steps.items():
            print(f"  {phase:16s} {count:5d} steps", flush=True)
        for transition in self.transitions:
            print(
                f"  step {transition['step']:5d}: {transition['action']:13s} {transition['from_phase']} -> "
                f"{transition['to_phase']} ({transition['reason']})",
                flush=True,
            )


def cmd_run(args: argparse.Namespace) -> int:
    """`autocurriculum run POLICY [--run-dir DIR] [--resume]`."""
    from autocurriculum import logs

    logs.survive_unwritable_output()
    logs.configure()
    try:
        policy = load(Path(args.policy), overrides=getattr(args, "set", None) or ())
    except PolicyError as error:
        print(f"autocurriculum: {error}", flush=True)
        return EX_CONFIG
    run_dir = Path(args.run_dir) if getattr(args, "run_dir", None) else Path(policy.run.run_dir)
    overrides = list(getattr(args, "set", None) or [])
    return Daemon(policy, run_dir, resume=bool(getattr(args, "resume", False)), overrides=overrides).run()
