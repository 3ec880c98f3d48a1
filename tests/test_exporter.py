"""The exporter: golden exposition, windows, stale series, replay = live, HTTP server and its errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from autocurriculum import runlog, vocabulary
from autocurriculum.exporter import Exporter, MetricsServerError, PortInUse, serve
from autocurriculum.policy import expand_plan, load

from .conftest import REPO
from .synthetic_run import full_tour

POLICY = load(REPO / "policies" / "tiny.toml")
PLAN = expand_plan(POLICY)


def exporter() -> tuple[CollectorRegistry, Exporter]:
    registry = CollectorRegistry()
    return registry, Exporter(registry, POLICY, PLAN)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample except the `_created` timestamps, keyed by name and sorted labels."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def types(registry: CollectorRegistry) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(generate_latest(registry).decode())}


def record(step: int, plan_step: int, metrics: dict[str, float], **fields: object) -> dict[str, object]:
    observation = {"step": step, "completions": 16, "metrics": metrics,
                   "reward_means": fields.pop("reward_means", {}), "nonfinite": fields.pop("nonfinite", 0)}
    decision = {"action": "none", "reason": "grace_period", "from_step": plan_step, "to_step": plan_step,
                "factor": "none", "evidence": {"steps_in_step": fields.pop("steps_in_step", 1), "alerts": []}}
    decision.update(fields.pop("decision", {}))  # type: ignore[arg-type]
    return {"step": step, "plan_step": plan_step, "phase": PLAN[plan_step].phase, "part": PLAN[plan_step].part,
            "time": 100.0 + step, "observation": observation, "decision": decision, "eval": None,
            "operator_results": [], "alerts": [], "hold": False, "criteria": {}, "plateau": {}, **fields}


# Four steps written by hand: a grace step, an operator hold with a NaN reward and an evaluation,
# the switch to plan step 2, and the first step after it.
NOT_READY = {"test": "trend", "statistic": 1e9, "bound": 0.125, "plateaued": False, "ready": False}
GOLDEN_RECORDS = [
    record(1, 0, {"extraction_rate": 0.5, "mean_length_tokens": 20.0, "domain_compliance:math": 0.25},
           reward_means={"strict_format_gate": -0.25, "punish_refusal": 0.0}, step_seconds=0.3, controller_seconds=0.002,
           tunix={"loss": 0.5, "kl": "n/a"},
           criteria={"extraction_rate": {"value": None, "comparison": ">=", "threshold": 0.95, "holds": False}},
           plateau={"extraction_rate": NOT_READY}),
    record(2, 0, {"extraction_rate": 1.0, "mean_length_tokens": 30.0, "domain_compliance:math": 0.75},
           reward_means={"strict_format_gate": 0.5}, nonfinite=1, steps_in_step=2, step_seconds=0.7,
           controller_seconds=0.004, eval={"step": 2, "completions": 8, "metrics": {"accuracy": 0.625}},
           hold=True, alerts=["nonfinite_rewards"], decision={"action": "hold", "reason": "operator_hold"},
           operator_results=[{"seq": 1, "command": "hold", "result": "applied", "message": "held"}],
           criteria={"extraction_rate": {"value": 0.75, "comparison": ">=", "threshold": 0.95, "holds": False}},
           plateau={"extraction_rate": {**NOT_READY, "statistic": 0.01, "plateaued": True, "ready": True}}),
    record(3, 1, {"extraction_rate": 0.75}, reward_means={"strict_format_gate": 0.5, "punish_refusal": 0.0},
           steps_in_step=3, step_seconds=1.5, controller_seconds=0.003, tunix={"loss": 0.25},
           decision={"action": "swap_data", "reason": "criteria_and_plateau", "from_step": 0, "to_step": 1, "factor": "data"},
           criteria={"extraction_rate": {"value": 0.96, "comparison": ">=", "threshold": 0.95, "holds": True}},
           plateau={"extraction_rate": {**NOT_READY, "statistic": 0.02, "plateaued": True, "ready": True}}),
    record(4, 1, {"extraction_rate": 0.25, "strict_compliance": 0.125}, reward_means={"strict_format_gate": 0.25},
           steps_in_step=1, step_seconds=12.0, controller_seconds=0.001,
           criteria={"extraction_rate": {"value": None, "comparison": ">=", "threshold": 0.9, "holds": False}}),
]

# What Prometheus must see after the four records, worked out by hand from the records above.
GOLDEN = """\
# TYPE autocurriculum_build_info gauge
autocurriculum_build_info{policy="POLICY",run="tiny-quickstart",version="0.1.0"} 1
# TYPE autocurriculum_phase gauge
autocurriculum_phase{autocurriculum_phase="behaviour"} 0
autocurriculum_phase{autocurriculum_phase="correctness"} 1
autocurriculum_phase{autocurriculum_phase="generalisation"} 0
# TYPE autocurriculum_plan_step gauge
autocurriculum_plan_step 2
# TYPE autocurriculum_plan_steps gauge
autocurriculum_plan_steps 4
# TYPE autocurriculum_training_step gauge
autocurriculum_training_step 4
# TYPE autocurriculum_steps_in_plan_step gauge
autocurriculum_steps_in_plan_step 1
# TYPE autocurriculum_plan_step_budget_steps gauge
autocurriculum_plan_step_budget_steps 200
# TYPE autocurriculum_last_step_timestamp_seconds gauge
autocurriculum_last_step_timestamp_seconds 104
# TYPE autocurriculum_answer_extraction_ratio gauge
autocurriculum_answer_extraction_ratio{split="rollout"} 0.25
# TYPE autocurriculum_strict_compliance_ratio gauge
autocurriculum_strict_compliance_ratio{split="rollout"} 0.125
# TYPE autocurriculum_accuracy_ratio gauge
autocurriculum_accuracy_ratio{split="eval"} 0.625
# TYPE autocurriculum_reward_function_mean gauge
autocurriculum_reward_function_mean{function="strict_format_gate"} 0.25
# TYPE autocurriculum_criterion_holds gauge
autocurriculum_criterion_holds{metric="extraction_rate"} 0
# TYPE autocurriculum_criterion_threshold gauge
autocurriculum_criterion_threshold{comparison=">=",metric="extraction_rate"} 0.9
# TYPE autocurriculum_transitions_total counter
autocurriculum_transitions_total{from_phase="behaviour",reason="criteria_and_plateau",to_phase="correctness/a"} 1
# TYPE autocurriculum_rollbacks_total counter
autocurriculum_rollbacks_total 0
# TYPE autocurriculum_operator_requests_total counter
autocurriculum_operator_requests_total{command="advance",result="applied"} 0
autocurriculum_operator_requests_total{command="advance",result="rejected"} 0
autocurriculum_operator_requests_total{command="hold",result="applied"} 1
autocurriculum_operator_requests_total{command="hold",result="rejected"} 0
autocurriculum_operator_requests_total{command="resume",result="applied"} 0
autocurriculum_operator_requests_total{command="resume",result="rejected"} 0
autocurriculum_operator_requests_total{command="set",result="applied"} 0
autocurriculum_operator_requests_total{command="set",result="rejected"} 0
# TYPE autocurriculum_nonfinite_rewards_total counter
autocurriculum_nonfinite_rewards_total 1
# TYPE autocurriculum_alert gauge
autocurriculum_alert{alert="collapse"} 0
autocurriculum_alert{alert="no_reward_variance"} 0
autocurriculum_alert{alert="nonfinite_rewards"} 0
autocurriculum_alert{alert="nonfinite_metrics"} 0
autocurriculum_alert{alert="hold"} 0
autocurriculum_alert{alert="budget_exhausted"} 0
autocurriculum_alert{alert="guard_regression"} 0
autocurriculum_alert{alert="checkpoint_failed"} 0
# TYPE autocurriculum_step_duration_seconds histogram
autocurriculum_step_duration_seconds_bucket{le="0.05"} 0
autocurriculum_step_duration_seconds_bucket{le="0.1"} 0
autocurriculum_step_duration_seconds_bucket{le="0.2"} 0
autocurriculum_step_duration_seconds_bucket{le="0.5"} 1
autocurriculum_step_duration_seconds_bucket{le="1.0"} 2
autocurriculum_step_duration_seconds_bucket{le="2.0"} 3
autocurriculum_step_duration_seconds_bucket{le="5.0"} 3
autocurriculum_step_duration_seconds_bucket{le="10.0"} 3
autocurriculum_step_duration_seconds_bucket{le="30.0"} 4
autocurriculum_step_duration_seconds_bucket{le="60.0"} 4
autocurriculum_step_duration_seconds_bucket{le="120.0"} 4
autocurriculum_step_duration_seconds_bucket{le="+Inf"} 4
autocurriculum_step_duration_seconds_count 4
autocurriculum_step_duration_seconds_sum 14.5
# TYPE autocurriculum_controller_step_seconds gauge
autocurriculum_controller_step_seconds 0.001
# TYPE autocurriculum_controller_seconds_total counter
autocurriculum_controller_seconds_total 0.01
# TYPE autocurriculum_tunix_figure gauge
autocurriculum_tunix_figure{name="loss"} 0.25
# TYPE autocurriculum_checkpoint_failures_total counter
autocurriculum_checkpoint_failures_total 0
"""


def test_golden_exposition_after_four_hand_written_records() -> None:
    registry, exp = exporter()
    for line in GOLDEN_RECORDS:
        exp.update(line)
    text = GOLDEN.replace("POLICY", POLICY.file)
    expected = {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}
    actual = samples(registry)
    assert set(actual) == set(expected), (sorted(set(actual) - set(expected)), sorted(set(expected) - set(actual)))
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value), key
    expected_types = {f.name: f.type for f in text_string_to_metric_families(text)}
    declared = types(registry)  # families without samples (e.g. plateau tests of no plan step) are declared too
    assert {name: declared.get(name) for name in expected_types} == expected_types


def test_the_steps_before_the_switch_are_windowed_and_the_alerts_follow_the_record() -> None:
    registry, exp = exporter()
    exp.update(GOLDEN_RECORDS[0])
    first = samples(registry)
    assert ("autocurriculum_plateau_statistic", (("metric", "extraction_rate"), ("test", "trend"))) not in first  # not ready
    assert first[("autocurriculum_plateau_bound", (("metric", "extraction_rate"), ("test", "trend")))] == 0.125
    exp.update(GOLDEN_RECORDS[1])
    second = samples(registry)
    assert second[("autocurriculum_answer_extraction_ratio", (("split", "rollout"),))] == pytest.approx(0.75)
    assert second[("autocurriculum_completion_length_tokens", (("split", "rollout"),))] == pytest.approx(25.0)
    assert second[("autocurriculum_domain_compliance_ratio", (("domain", "math"), ("split", "rollout")))] == pytest.approx(0.5)
    assert second[("autocurriculum_plateau_statistic", (("metric", "extraction_rate"), ("test", "trend")))] == 0.01
    assert second[("autocurriculum_alert", (("alert", "hold"),))] == 1
    assert second[("autocurriculum_alert", (("alert", "nonfinite_rewards"),))] == 1
    exp.update(GOLDEN_RECORDS[2])  # the switching step's batch still belongs to plan step 1's window
    third = samples(registry)
    assert third[("autocurriculum_answer_extraction_ratio", (("split", "rollout"),))] == pytest.approx(0.75)
    assert third[("autocurriculum_steps_in_plan_step", ())] == 0


def test_every_alert_of_the_vocabulary_is_exported_and_follows_the_record() -> None:
    every = {value for name, value in vars(vocabulary).items() if name.startswith("ALERT_")}
    registry, exp = exporter()
    exported = {labels[0][1] for name, labels in samples(registry) if name == "autocurriculum_alert"}
    assert exported == every  # each at 0 from the start
    for alert in sorted(every - {vocabulary.ALERT_CHECKPOINT_FAILED, vocabulary.ALERT_HOLD}):  # raised by the daemon
        exp.update(record(1, 0, {}, alerts=[alert]))
        raised = {labels[0][1] for (name, labels), value in samples(registry).items()
                  if name == "autocurriculum_alert" and value == 1}
        assert raised == {alert}
    exp.update(record(2, 0, {}))
    assert not [value for (name, _), value in samples(registry).items() if name == "autocurriculum_alert" and value]


def test_a_failed_checkpoint_raises_its_alert_until_one_succeeds() -> None:
    registry, exp = exporter()
    exp.checkpoint_failed()
    assert samples(registry)[("autocurriculum_alert", (("alert", "checkpoint_failed"),))] == 1
    assert samples(registry)[("autocurriculum_checkpoint_failures_total", ())] == 1
    exp.checkpoint_saved()
    assert samples(registry)[("autocurriculum_alert", (("alert", "checkpoint_failed"),))] == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=1, max_size=40))
def test_the_rollout_value_is_the_mean_of_the_current_plan_steps_last_window(steps: list[tuple[bool, float]]) -> None:
    """Reference: values since the last switch (a switching step's own value counts for the old step)."""
    registry, exp = exporter()
    plan_step, since_switch = 0, []
    for number, (switch, value) in enumerate(steps, start=1):
        switch = switch and plan_step + 1 < len(PLAN)
        if switch:
            decision = {"action": "swap_data", "reason": "criteria_and_plateau", "from_step": plan_step,
                        "to_step": plan_step + 1, "factor": "data"}
            exp.update(record(number, plan_step + 1, {"extraction_rate": value}, decision=decision))
            since_switch.append(value)
            expected = since_switch[-POLICY.metrics.window:]
            plan_step, since_switch = plan_step + 1, []
        else:
            exp.update(record(number, plan_step, {"extraction_rate": value}))
            since_switch.append(value)
            expected = since_switch[-POLICY.metrics.window:]
        got = samples(registry)[("autocurriculum_answer_extraction_ratio", (("split", "rollout"),))]
        assert got == pytest.approx(sum(expected) / len(expected))


def test_a_replayed_log_exports_exactly_what_the_live_run_exported(tmp_path: Path) -> None:
    records = full_tour(POLICY, PLAN)
    live_registry, live = exporter()
    log = tmp_path / runlog.METRICS_LOG
    for line in records:
        live.update(line)
        runlog.append_line(log, line)
    replay_registry, replayed = exporter()
    assert replayed.replay(runlog.read_lines(log)) == len(records)
    assert samples(replay_registry) == samples(live_registry)
    exported = samples(live_registry)
    assert exported[("autocurriculum_rollbacks_total", ())] == 1
    assert exported[("autocurriculum_phase", (("autocurriculum_phase", "generalisation"),))] == 1


def test_the_exposition_passes_promtool_check_metrics() -> None:
    promtool = __import__("shutil").which("promtool")
    assert promtool, "promtool is missing: the README's test command installs Debian's prometheus package"
    registry, exp = exporter()
    exp.replay(full_tour(POLICY, PLAN))
    result = subprocess.run([promtool, "check", "metrics"], input=generate_latest(registry), capture_output=True)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_serve_binds_loopback_by_default_and_answers_on_metrics() -> None:
    registry, exp = exporter()
    exp.update(GOLDEN_RECORDS[0])
    server = serve(exp, port=0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
        assert 'autocurriculum_phase{autocurriculum_phase="behaviour"} 1.0' in body
    finally:
        server.shutdown()
        server.server_close()


def test_a_taken_port_is_a_clear_error_naming_address_port_and_field() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUse) as caught:
            serve(CollectorRegistry(), "127.0.0.1", port)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "metrics.port" in message and "already in use" in message


def test_an_unusable_bind_address_is_a_clear_error() -> None:
    with pytest.raises(MetricsServerError, match=r"metrics\.bind.*no-such-host\.invalid:9464"):
        serve(CollectorRegistry(), "no-such-host.invalid", 9464)


def test_the_daemon_modules_that_must_stay_pure_do_not_import_prometheus() -> None:
    code = ("import sys; import autocurriculum.controller, autocurriculum.plateau, autocurriculum.observation;"
            "print('prometheus_client' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip() == "False", result.stderr


def test_the_readme_maps_every_metric_to_its_one_prometheus_series_and_its_tunix_name() -> None:
    """One documented mapping: the README's table is the exporter's, and the aliases are metrics.jsonl's."""
    from autocurriculum.exporter import SERIES
    from autocurriculum.observation import STEP_METRICS, StepObservation

    readme = (REPO / "README.md").read_text()
    rows = {line.split("|")[1].strip().split()[0].strip("`"): line.split("|")[2].strip().strip("`")
            for line in readme.splitlines() if line.startswith("| `") and line.count("|") == 4}
    assert {metric: rows.get(metric) for metric in STEP_METRICS} == {m: SERIES[m][0] for m in STEP_METRICS}
    observation = StepObservation(1, 8, {"mean_length_tokens": 31.5, "learnable_group_ratio": 0.75, "reward_mean": 0.25},
                                  reward_means={"strict_format_gate": 0.5})
    aliases = observation.tunix_aliases()
    assert aliases == {"completions/mean_length": 31.5, "frac_reward_zero_std": 0.25, "rewards/score/mean": 0.25,
                       "rewards/strict_format_gate/mean": 0.5}
    for alias in ("completions/mean_length", "frac_reward_zero_std", "rewards/score/mean", "rewards/<name>/mean"):
        assert f"`{alias}`" in readme


def test_per_domain_figures_are_exported_with_a_domain_label_and_pass_promtool() -> None:
    registry, exp = exporter()
    exp.update(record(1, 0, {"refusal_rate": 0.25, "refusal_rate:code": 0.5, "refusal_rate:math": 0.0,
                             "mean_length_tokens:open": 31.0, "graded_completions": 12.0,
                             "graded_completions:open": 0.0, "accuracy:code": 0.125, "domain_compliance:open": 0.75}))
    got = samples(registry)
    rollout = (("domain", "code"), ("split", "rollout"))
    assert got[("autocurriculum_refusal_ratio_by_domain", rollout)] == 0.5
    assert got[("autocurriculum_refusal_ratio_by_domain", (("domain", "math"), ("split", "rollout")))] == 0.0
    assert got[("autocurriculum_accuracy_ratio_by_domain", rollout)] == 0.125
    assert got[("autocurriculum_completion_length_tokens_by_domain", (("domain", "open"), ("split", "rollout")))] == 31.0
    assert got[("autocurriculum_graded_completions_by_domain", (("domain", "open"), ("split", "rollout")))] == 0.0
    assert got[("autocurriculum_graded_completions", (("split", "rollout"),))] == 12.0
    assert got[("autocurriculum_domain_compliance_ratio", (("domain", "open"), ("split", "rollout")))] == 0.75
    promtool = __import__("shutil").which("promtool")
    assert promtool, "promtool is missing: the README's test command installs Debian's prometheus package"
    result = subprocess.run([promtool, "check", "metrics"], input=generate_latest(registry), capture_output=True)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
