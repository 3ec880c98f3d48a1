"""Prometheus metrics, on an injected registry, fed from metrics-log records.

The exporter reads exactly the per-step record the daemon appends to metrics.jsonl
(`Exporter.update(record)`), so a live run and a replayed log export the same series. Names follow
Prometheus' rules: base units (`_seconds`, `_tokens`), `_ratio` for shares, `_total` for counters.
The HTTP server binds 127.0.0.1 unless the policy says otherwise (prometheus_client binds every
interface by default) and a port already in use is an error before training starts.
"""

from __future__ import annotations

import errno
import socket
from collections import deque
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info
from prometheus_client.exposition import start_http_server

from autocurriculum import __version__, observation
from autocurriculum.policy import Plan, Policy

PREFIX = "autocurriculum"
# observation metric -> (Prometheus name, help)
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
}
ALERTS = ("collapse", "no_reward_variance", "nonfinite_rewards", "hold", "checkpoint_failed")


class PortInUse(RuntimeError):
    """The metrics port is taken; raised before training starts."""


class Exporter:
    def __init__(self, registry: CollectorRegistry, policy: Policy, plan: Plan) -> None:
        self.policy = policy
        self.plan = plan
        self.window: deque[Mapping[str, float]] = deque(maxlen=policy.metrics.window)
        r, p = registry, PREFIX
        Info(f"{p}_build", "autocurriculum build", registry=r).info(
            {"version": __version__, "policy": policy.file, "run": policy.run.name})
        phases = list(dict.fromkeys(step.phase for step in plan))
        self.phase = Enum(f"{p}_phase", "Current curriculum phase", states=phases, registry=r)
        self.phase.state(phases[0])
        self.plan_step = Gauge(f"{p}_plan_step", "Current plan step (1-based)", registry=r)
        self.plan_steps = Gauge(f"{p}_plan_steps", "Number of plan steps", registry=r)
        self.plan_steps.set(len(plan))
        self.training_step = Gauge(f"{p}_training_step", "Training steps observed", registry=r)
        self.steps_in = Gauge(f"{p}_steps_in_plan_step", "Steps spent in the current plan step", registry=r)
        self.budget = Gauge(f"{p}_plan_step_budget_steps", "Step budget of the current plan step", registry=r)
        self.series = {
            name: Gauge(f"{p}_{prom}", f"{text} (rollout: window mean; eval: latest held-out)", ["split"], registry=r)
            for name, (prom, text) in SERIES.items()
        }
        self.domain_compliance = Gauge(f"{p}_domain_compliance_ratio", "Strict compliance per domain",
                                       ["domain", "split"], registry=r)
        self.domain_accuracy = Gauge(f"{p}_domain_accuracy_ratio", "Accuracy per domain", ["domain", "split"], registry=r)
        self.reward_fn = Gauge(f"{p}_reward_function_mean", "Mean reward of each active reward function",
                               ["function"], registry=r)
        self.plateau_statistic = Gauge(f"{p}_plateau_statistic", "Plateau test statistic", ["metric", "test"], registry=r)
        self.plateau_bound = Gauge(f"{p}_plateau_bound", "What the plateau statistic is compared with",
                                   ["metric", "test"], registry=r)
        self.plateau_reached = Gauge(f"{p}_plateau_reached", "1 when the metric has plateaued", ["metric", "test"], registry=r)
        self.criterion_holds = Gauge(f"{p}_criterion_holds", "1 when the phase criterion holds", ["metric"], registry=r)
        self.criterion_threshold = Gauge(f"{p}_criterion_threshold", "Threshold of the phase criterion",
                                         ["metric", "comparison"], registry=r)
        self.transitions = Counter(f"{p}_transitions", "Plan-step transitions", ["from_phase", "to_phase", "reason"], registry=r)
        self.rollbacks = Counter(f"{p}_rollbacks", "Switches rolled back after a regression", registry=r)
        self.requests = Counter(f"{p}_operator_requests", "Operator requests by command and result",
                                ["command", "result"], registry=r)
        self.nonfinite = Counter(f"{p}_nonfinite_rewards", "Reward values that were NaN or infinite", registry=r)
        self.alerts = Gauge(f"{p}_alert", "1 while the alert condition holds", ["alert"], registry=r)
        for alert in ALERTS:
            self.alerts.labels(alert).set(0)
        self.step_seconds = Histogram(f"{p}_step_duration_seconds", "Wall time of one training step", registry=r,
                                      buckets=(0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120))
        self.overhead = Gauge(f"{p}_controller_step_seconds", "Controller time (rewards, observations, decide, export, logs) in the last step", registry=r)
        self.overhead_total = Counter(f"{p}_controller_seconds", "Controller time, cumulative", registry=r)
        self.tunix = Gauge(f"{p}_tunix_figure", "Tunix's own figures passed through (loss, kl, rewards)",
                           ["name"], registry=r)
        self.checkpoint_failures = Counter(f"{p}_checkpoint_failures", "Checkpoints that could not be written", registry=r)

    def checkpoint_failed(self) -> None:
        self.checkpoint_failures.inc()
        self.alerts.labels("checkpoint_failed").set(1)

    def update(self, record: Mapping[str, object]) -> None:
        """Export one metrics-log record (a live step or a replayed line)."""
        step = self.plan[int(record["plan_step"])]  # type: ignore[arg-type]
        self.phase.state(step.phase)
        self.plan_step.set(step.index + 1)
        self.training_step.set(float(record["step"]))  # type: ignore[arg-type]
        self.budget.set(step.max_steps)
        decision = record.get("decision") or {}
        evidence = decision.get("evidence", {}) if isinstance(decision, dict) else {}
        self.steps_in.set(float(evidence.get("steps_in_step", 0)))
        obs = record["observation"]  # type: ignore[index]
        metrics: Mapping[str, float] = obs["metrics"]  # type: ignore[index]
        self.window.append(metrics)
        self._export_split(self._window_means(), "rollout")
        if record.get("eval"):
            self._export_split(record["eval"]["metrics"], "eval")  # type: ignore[index]
        for name, value in dict(obs.get("reward_means", {})).items():  # type: ignore[union-attr]
            self.reward_fn.labels(name).set(value)
        if obs.get("nonfinite"):  # type: ignore[union-attr]
            self.nonfinite.inc(int(obs["nonfinite"]))  # type: ignore[index]
        for metric, status in dict(record.get("plateau", {})).items():  # type: ignore[union-attr]
            self.plateau_statistic.labels(metric, status["test"]).set(status["statistic"])
            self.plateau_bound.labels(metric, status["test"]).set(status["bound"])
            self.plateau_reached.labels(metric, status["test"]).set(1 if status["plateaued"] else 0)
        for metric, status in dict(record.get("criteria", {})).items():  # type: ignore[union-attr]
            self.criterion_holds.labels(metric).set(1 if status["holds"] else 0)
            self.criterion_threshold.labels(metric, status["comparison"]).set(status["threshold"])
        alerts = set(record.get("alerts", []))  # type: ignore[arg-type]
        if record.get("hold"):
            alerts.add("hold")
        for alert in ALERTS:
            if alert != "checkpoint_failed":
                self.alerts.labels(alert).set(1 if alert in alerts else 0)
        if isinstance(decision, dict) and decision.get("action") not in (None, "none", "hold", "resume", "done"):
            frm = self.plan[int(decision["from_step"])].label
            to = self.plan[int(decision["to_step"])].label
            self.transitions.labels(frm, to, decision["reason"]).inc()
            if decision["action"] == "rollback":
                self.rollbacks.inc()
        for request in record.get("operator_results", []) or []:  # type: ignore[union-attr]
            self.requests.labels(request["command"], request["result"]).inc()
        self.step_seconds.observe(float(record.get("step_seconds", 0.0)))  # type: ignore[arg-type]
        overhead = float(record.get("controller_seconds", 0.0))  # type: ignore[arg-type]
        self.overhead.set(overhead)
        self.overhead_total.inc(overhead)
        for name, value in dict(record.get("tunix", {})).items():  # type: ignore[union-attr]
            self.tunix.labels(name).set(value)

    def _window_means(self) -> dict[str, float]:
        sums: dict[str, list[float]] = {}
        for metrics in self.window:
            for name, value in metrics.items():
                sums.setdefault(name, []).append(value)
        return {name: sum(values) / len(values) for name, values in sums.items()}

    def _export_split(self, metrics: Mapping[str, float], split: str) -> None:
        for name, value in metrics.items():
            if name in self.series:
                self.series[name].labels(split).set(value)
            elif name.startswith(observation.DOMAIN_COMPLIANCE_PREFIX):
                self.domain_compliance.labels(name[len(observation.DOMAIN_COMPLIANCE_PREFIX):], split).set(value)
            elif name.startswith(observation.DOMAIN_ACCURACY_PREFIX):
                self.domain_accuracy.labels(name[len(observation.DOMAIN_ACCURACY_PREFIX):], split).set(value)


def serve(registry: CollectorRegistry, bind: str, port: int):  # -> the server, with .shutdown()
    """Start the /metrics HTTP server; a taken port is PortInUse naming the address and the field."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.bind((bind, port))
    except OSError as error:
        what = "already in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        raise PortInUse(f"metrics.port: {bind}:{port} is {what}; choose another port (or 0 to disable the exporter)") from None
    finally:
        probe.close()
    server, _thread = start_http_server(port, addr=bind, registry=registry)
    return server
