"""Prometheus metrics, on an injected registry, fed from metrics-log records.

The exporter reads exactly the per-step record the daemon appends to metrics.jsonl
(`Exporter.update(record)`, schema in runlog.py), so a live run and a replayed log export the same
series. Names follow Prometheus' rules: prefix `autocurriculum_`, base units (`_seconds`,
`_tokens`), `_ratio` for shares, `_total` for counters (prometheus_client appends it).

The rollout figures are means over the last `metrics.window` steps of the current plan step (the
window restarts at a switch, as the controller's does), so a panel shows what the criteria judge.
Held-out figures (`split="eval"`) are the latest evaluation. Series that belong to one step or one
plan step (criteria, plateau tests, active reward functions, metrics of the current window) are
removed when they no longer apply, so a dashboard never draws an old phase's threshold.

The HTTP server binds 127.0.0.1 unless the policy says otherwise (prometheus_client binds every
interface by default); a port already in use is an error raised before training starts.
"""

from __future__ import annotations

import errno
import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info
from prometheus_client.exposition import start_http_server

from autocurriculum import __version__, observation
from autocurriculum.override import Command
from autocurriculum.policy import Plan, Policy
from autocurriculum.vocabulary import (
    ALERT_CHECKPOINT_FAILED,
    ALERT_HOLD,
    EXPORTED_ALERTS,
    QUIET_ACTIONS,
    REQUEST_RESULTS,
    ActionKind,
)

PREFIX = "autocurriculum"
# observation metric -> (Prometheus name without prefix, help)
SERIES: Mapping[str, tuple[str, str]] = {
    observation.EXTRACTION_RATE: ("answer_extraction_ratio", "Share of completions with a non-empty <answer>"),
    observation.STRICT_COMPLIANCE: ("strict_compliance_ratio", "Share of completions that keep the whole contract"),
    observation.REFUSAL_RATE: ("refusal_ratio", "Share of completions that refuse or dodge"),
    observation.MEAN_LENGTH: ("completion_length_tokens", "Mean completion length"),
    observation.ACCURACY: ("accuracy_ratio", "Share correct inside the contract"),
    observation.HALLUCINATION_RATE: ("hallucination_ratio", "Share wrong and not derived in the reasoning"),
    observation.WRONG_ANSWER_LENGTH: ("wrong_answer_length_tokens", "Mean length of wrong answers"),
    observation.RAMBLING_RATE: ("rambling_ratio", "Share with text outside the tags or over the budget"),
    observation.EMPTY_RATE: ("empty_completion_ratio", "Share of empty completions (collapse)"),
    observation.DISTINCT_RATIO: ("distinct_completion_ratio", "Distinct completions over completions (collapse)"),
    observation.REWARD_MEAN: ("reward_mean", "Mean summed reward"),
    observation.LEARNABLE_GROUPS: ("learnable_group_ratio", "Share of GRPO groups with any reward variance"),
    observation.MEAN_ABS_ADVANTAGE: ("mean_abs_advantage", "Mean absolute GRPO advantage"),
    observation.GRADED: ("graded_completions", "Completions whose item has a gold answer (accuracy's denominator)"),
}
# `<metric>:<domain>` (observation.PER_DOMAIN_METRICS) is exported as `<series>_by_domain{domain=...}`
STEP_BUCKETS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)


class MetricsServerError(RuntimeError):
    """The metrics HTTP server could not start; raised before training starts."""


class PortInUse(MetricsServerError):
    """The metrics port is taken."""


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class Exporter:
    """All of the run's series; `update(record)` once per metrics-log line."""

    def __init__(self, registry: CollectorRegistry, policy: Policy, plan: Plan) -> None:
        self.registry = registry
        self.policy = policy
        self.plan = plan
        self.window: deque[Mapping[str, float]] = deque(maxlen=policy.metrics.window)
        self._window_plan_step: int | None = None
        self._children: dict[tuple[int, str], set[tuple[str, ...]]] = {}  # labelled series now exported
        self._child: dict[tuple[int, tuple[str, ...]], Any] = {}  # their prometheus_client children
        r, p = registry, PREFIX
        Info(f"{p}_build", "autocurriculum build and run", registry=r).info(
            {"version": __version__, "policy": policy.file, "run": policy.run.name}
        )
        phases = list(dict.fromkeys(step.phase for step in plan))
        self.phase = Enum(f"{p}_phase", "Current curriculum phase", states=phases, registry=r)
        self.phase.state(phases[0])
        self.plan_step = Gauge(f"{p}_plan_step", "Current plan step (1-based)", registry=r)
        self.plan_step.set(1)
        self.plan_steps = Gauge(f"{p}_plan_steps", "Number of plan steps", registry=r)
        self.plan_steps.set(len(plan))
        self.training_step = Gauge(f"{p}_training_step", "Training steps observed", registry=r)
        self.steps_in = Gauge(f"{p}_steps_in_plan_step", "Training steps spent in the current plan step", registry=r)
        self.budget = Gauge(f"{p}_plan_step_budget_steps", "Step budget of the current plan step", registry=r)
        self.budget.set(plan[0].max_steps)
        self.last_step_time = Gauge(f"{p}_last_step_timestamp_seconds", "Unix time the last step completed", registry=r)
        self.series = {
            name: Gauge(f"{p}_{prom}", f"{text} (rollout: window mean; eval: latest held-out)", ["split"], registry=r)
            for name, (prom, text) in SERIES.items()
        }
        self.domain_compliance = Gauge(
            f"{p}_domain_compliance_ratio", "Strict compliance per domain", ["domain", "split"], registry=r
        )
        self.domain_accuracy = Gauge(f"{p}_domain_accuracy_ratio", "Accuracy per domain", ["domain", "split"], registry=r)
        self.by_domain = {
            name: Gauge(f"{p}_{SERIES[name][0]}_by_domain", f"{SERIES[name][1]}, per domain", ["domain", "split"],
                        registry=r)
            for name in observation.PER_DOMAIN_METRICS
        }
        self.reward_fn = Gauge(
            f"{p}_reward_function_mean", "Mean reward of each active reward function in the last step", ["function"], registry=r
        )
        self.plateau_statistic = Gauge(
            f"{p}_plateau_statistic", "Plateau test statistic (absent until the test has enough values)", ["metric", "test"],
            registry=r,
        )
        self.plateau_bound = Gauge(
            f"{p}_plateau_bound", "What the plateau statistic is compared with", ["metric", "test"], registry=r
        )
        self.plateau_reached = Gauge(f"{p}_plateau_reached", "1 when the metric has plateaued", ["metric", "test"], registry=r)
        self.criterion_holds = Gauge(f"{p}_criterion_holds", "1 when the phase criterion holds", ["metric"], registry=r)
        self.criterion_threshold = Gauge(
            f"{p}_criterion_threshold", "Threshold of the current phase criterion", ["metric", "comparison"], registry=r
        )
        self.transitions = Counter(
            f"{p}_transitions", "Plan-step transitions", ["from_phase", "to_phase", "reason"], registry=r
        )
        self.rollbacks = Counter(f"{p}_rollbacks", "Switches rolled back after a regression", registry=r)
        self.requests = Counter(
            f"{p}_operator_requests", "Operator requests by command and result", ["command", "result"], registry=r
        )
        for command in Command:  # known label values start at 0, so the first request is an increase
            for result in REQUEST_RESULTS:
                self.requests.labels(command.value, result)
        self.nonfinite = Counter(f"{p}_nonfinite_rewards", "Reward values that were NaN or infinite", registry=r)
        self.alerts = Gauge(f"{p}_alert", "1 while the alert condition holds", ["alert"], registry=r)
        for alert in EXPORTED_ALERTS:
            self.alerts.labels(alert).set(0)
        self.step_seconds = Histogram(
            f"{p}_step_duration_seconds", "Wall time of one training step", registry=r, buckets=STEP_BUCKETS
        )
        self.overhead = Gauge(
            f"{p}_controller_step_seconds",
            "Controller time in the last step: scoring, observations, decide, applying, acks, logs (metrics.jsonl's"
            " controller_seconds; writing that line, the export and status.json are counted in the total)",
            registry=r,
        )
        self.overhead_total = Counter(f"{p}_controller_seconds", "Controller time over whole step boundaries, cumulative",
                                      registry=r)
        self.tunix = Gauge(f"{p}_tunix_figure", "Tunix's own figures passed through (loss, kl, rewards)", ["name"], registry=r)
        self.checkpoint_failures = Counter(f"{p}_checkpoint_failures", "Checkpoints that could not be written", registry=r)

    def checkpoint_failed(self) -> None:
        self.checkpoint_failures.inc()
        self.alerts.labels(ALERT_CHECKPOINT_FAILED).set(1)

    def checkpoint_saved(self) -> None:
        self.alerts.labels(ALERT_CHECKPOINT_FAILED).set(0)

    def boundary_finished(self, seconds: float) -> None:
        """The part of a step boundary after its metrics line was built (writing it, this export, status)."""
        self.overhead_total.inc(max(seconds, 0.0))

    def update(self, record: Mapping[str, Any]) -> None:
        """Export one metrics-log record (a live step or a replayed line)."""
        index = int(record["plan_step"])
        step = self.plan[index]
        self.phase.state(step.phase)
        self.plan_step.set(index + 1)
        self.training_step.set(float(record["step"]))
        self.budget.set(step.max_steps)
        when = _finite(record.get("time"))
        if when is not None:
            self.last_step_time.set(when)
        decision = record.get("decision") or {}
        evidence = decision.get("evidence") or {}
        moved = decision.get("action", ActionKind.NONE.value) not in QUIET_ACTIONS
        self.steps_in.set(0 if moved else float(evidence.get("steps_in_step", 0)))

        obs = record["observation"]
        produced_by = int(decision["from_step"]) if moved else index  # a switching step's batch ran before it
        if self._window_plan_step != produced_by:
            self.window.clear()
            self._window_plan_step = produced_by
        self.window.append({k: v for k, v in obs["metrics"].items() if _finite(v) is not None})
        self._export_split(self._window_means(), "rollout")
        if record.get("eval"):
            self._export_split(record["eval"]["metrics"], "eval")
        rewards: dict[tuple[str, ...], float] = {
            (name,): float(v) for name, v in dict(obs.get("reward_means") or {}).items() if _finite(v) is not None}
        self._set_children(self.reward_fn, rewards)  # only the reward set active in this step
        if obs.get("nonfinite"):
            self.nonfinite.inc(int(obs["nonfinite"]))

        plateau = dict(record.get("plateau") or {})
        statistic: dict[tuple[str, ...], float] = {}
        bound: dict[tuple[str, ...], float] = {}
        reached: dict[tuple[str, ...], float] = {}
        for metric, status in plateau.items():
            labels = (metric, str(status["test"]))
            if status.get("ready", True) and _finite(status["statistic"]) is not None:
                statistic[labels] = float(status["statistic"])
            bound[labels] = float(status["bound"])
            reached[labels] = 1.0 if status["plateaued"] else 0.0
        self._set_children(self.plateau_statistic, statistic)
        self._set_children(self.plateau_bound, bound)
        self._set_children(self.plateau_reached, reached)
        criteria = dict(record.get("criteria") or {})
        self._set_children(self.criterion_holds, {(m,): 1.0 if c["holds"] else 0.0 for m, c in criteria.items()})
        self._set_children(
            self.criterion_threshold, {(m, str(c["comparison"])): float(c["threshold"]) for m, c in criteria.items()}
        )

        alerts = set(record.get("alerts") or ())
        if record.get("hold"):
            alerts.add(ALERT_HOLD)  # automatic switching held (operator, budget or rollback limit)
        for alert in EXPORTED_ALERTS:
            if alert != ALERT_CHECKPOINT_FAILED:
                self.alerts.labels(alert).set(1 if alert in alerts else 0)
        if moved:
            frm = self.plan[int(decision["from_step"])].label
            to = self.plan[int(decision["to_step"])].label
            self.transitions.labels(frm, to, str(decision["reason"])).inc()
            if decision["action"] == ActionKind.ROLLBACK.value:
                self.rollbacks.inc()
        for request in record.get("operator_results") or ():
            self.requests.labels(str(request["command"]), str(request["result"])).inc()
        step_seconds = _finite(record.get("step_seconds"))
        if step_seconds is not None:
            self.step_seconds.observe(step_seconds)
        overhead = _finite(record.get("controller_seconds")) or 0.0
        self.overhead.set(overhead)
        self.overhead_total.inc(max(overhead, 0.0))
        for name, value in dict(record.get("tunix") or {}).items():
            if _finite(value) is not None:
                self.tunix.labels(name).set(value)

    def replay(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Feed a whole metrics log (e.g. runlog.read_lines(path)); returns the number of records."""
        count = 0
        for record in records:
            self.update(record)
            count += 1
        return count

    def _set_children(self, metric: Gauge, values: Mapping[tuple[str, ...], float], scope: str = "") -> None:
        """Set these labelled series; remove the ones this gauge had before (in this scope) and no longer has."""
        key = (id(metric), scope)
        for labels in self._children.get(key, set()) - values.keys():
            metric.remove(*labels)
            self._child.pop((id(metric), labels), None)
        for labels, value in values.items():
            child = self._child.get((id(metric), labels))
            if child is None:  # prometheus_client's labels() is the costly part of an update: look it up once
                child = self._child[(id(metric), labels)] = metric.labels(*labels)
            child.set(value)
        self._children[key] = set(values)

    def _window_means(self) -> dict[str, float]:
        values: dict[str, list[float]] = {}
        for metrics in self.window:
            for name, value in metrics.items():
                values.setdefault(name, []).append(value)
        return {name: math.fsum(v) / len(v) for name, v in values.items()}

    def _export_split(self, metrics: Mapping[str, float], split: str) -> None:
        """Set one split's series to exactly these metrics: a metric the split no longer has is removed."""
        values: dict[Gauge, dict[tuple[str, ...], float]] = {gauge: {} for gauge in self._split_gauges()}
        for name, value in metrics.items():
            if _finite(value) is None:
                continue
            if name in self.series:
                values[self.series[name]][(split,)] = float(value)
            elif name.startswith(observation.DOMAIN_COMPLIANCE_PREFIX):
                values[self.domain_compliance][(name[len(observation.DOMAIN_COMPLIANCE_PREFIX):], split)] = float(value)
            elif name.startswith(observation.DOMAIN_ACCURACY_PREFIX):
                values[self.domain_accuracy][(name[len(observation.DOMAIN_ACCURACY_PREFIX):], split)] = float(value)
            elif (per_domain := observation.split_domain_metric(name)) is not None:
                values[self.by_domain[per_domain[0]]][(per_domain[1], split)] = float(value)
        for gauge, children in values.items():
            self._set_children(gauge, children, scope=split)

    def _split_gauges(self) -> list[Gauge]:
        return [*self.series.values(), self.domain_compliance, self.domain_accuracy, *self.by_domain.values()]

def serve(source: CollectorRegistry | Exporter, bind: str = "127.0.0.1", port: int = 9464) -> WSGIServer:
    """Start the /metrics HTTP server on bind:port and return it (it has `.shutdown()`).

    A taken port raises PortInUse naming the address, the port and the policy field, so the daemon
    can refuse to start before any training; port 0 asks the OS for a free port (tests read
    `server.server_port`), the policy's `metrics.port = 0` means "no server" and is the caller's test.
    """
    registry = source.registry if isinstance(source, Exporter) else source
    try:
        server, _thread = start_http_server(port, addr=bind, registry=registry)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"metrics.port: {bind}:{port} is already in use; stop what holds it, choose another port, "
                "or set metrics.port = 0 to disable the exporter"
            ) from None
        raise MetricsServerError(
            f"metrics.bind/metrics.port: cannot serve metrics on {bind}:{port}: {error.strerror or error}"
        ) from None
    return server
