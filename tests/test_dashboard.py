"""Dashboard lint, promtool on every expression and alert rule, names checked against the exporter."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml  # PyYAML comes with the installed stack (datasets)
from prometheus_client import CollectorRegistry

from autocurriculum.exporter import Exporter
from autocurriculum.policy import expand_plan, load

from .conftest import REPO
from .synthetic_run import full_tour

GRAFANA = REPO / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "autocurriculum.json").read_text())
GRAFANA_UNITS = {"none", "percentunit", "s", "short"}


def builder():  # grafana/ is not a package: load the script as a module
    spec = importlib.util.spec_from_file_location("build_dashboard", GRAFANA / "build_dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_dashboard"] = module
    spec.loader.exec_module(module)
    return module


def exprs() -> list[str]:
    found = [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]
    found += [a["expr"] for a in DASHBOARD["annotations"]["list"]]
    return found


def alert_rules() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load((GRAFANA / "alerts.yml").read_text())["groups"] for rule in group["rules"]]


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: the README's test command installs Debian's prometheus package"
    return path


def test_committed_json_is_what_the_builder_produces() -> None:
    assert (GRAFANA / "dashboards" / "autocurriculum.json").read_text() == builder().render(), \
        "run: python grafana/build_dashboard.py"
    check = subprocess.run([sys.executable, str(GRAFANA / "build_dashboard.py"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_every_panel_has_a_query_a_unit_a_description_and_a_unique_id() -> None:
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        assert panel["targets"], panel["title"]
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit in GRAFANA_UNITS or str(unit).startswith("suffix:"), (panel["title"], unit)
        assert panel["description"].strip(), panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]


def test_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in DASHBOARD["panels"]:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[(x, y)] = panel["title"]


def test_the_only_datasource_is_the_template_variable_and_there_are_no_import_inputs() -> None:
    text = json.dumps(DASHBOARD)
    assert "__inputs" not in DASHBOARD and "__requires" not in DASHBOARD
    assert set(re.findall(r"\$\{?(\w+)\}?", text)) == {"datasource"}
    template = DASHBOARD["templating"]["list"]
    assert [(v["name"], v["type"], v["query"]) for v in template] == [("datasource", "datasource", "prometheus")]
    datasources = [p["datasource"] for p in DASHBOARD["panels"]]
    datasources += [t["datasource"] for p in DASHBOARD["panels"] for t in p["targets"]]
    datasources += [a["datasource"] for a in DASHBOARD["annotations"]["list"]]
    assert all(d == {"type": "prometheus", "uid": "${datasource}"} for d in datasources)


def test_the_dashboard_answers_the_questions_the_issue_asks() -> None:
    joined = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in DASHBOARD["panels"]}
    assert any(p["type"] == "state-timeline" and "autocurriculum_phase" in joined[p["title"]] for p in DASHBOARD["panels"])
    for metric in ("answer_extraction_ratio", "refusal_ratio", "completion_length_tokens", "accuracy_ratio",
                   "domain_compliance_ratio"):
        panel = next(title for title, text in joined.items() if f"autocurriculum_{metric}" in text)
        assert "autocurriculum_criterion_threshold" in joined[panel], f"{panel} draws no criterion threshold"
    everything = " ".join(joined.values())
    for needed in ("hallucination_ratio", "plateau_statistic", "plateau_bound", "learnable_group_ratio",
                   "step_duration_seconds", "controller_seconds_total", "tunix_figure"):
        assert f"autocurriculum_{needed}" in everything, needed
    assert any('split="rollout"' not in text and "autocurriculum_accuracy_ratio" in text for text in joined.values()), \
        "no panel compares eval with rollout"
    assert any("transitions_total" in a["expr"] for a in DASHBOARD["annotations"]["list"])


def exported_names() -> set[str]:
    """Every sample name the exporter produces, after a run that gives every labelled family a child."""
    registry = CollectorRegistry()
    policy = load(REPO / "policies" / "tiny.toml")
    plan = expand_plan(policy)
    exporter = Exporter(registry, policy, plan)
    exporter.replay(full_tour(policy, plan))
    exporter.checkpoint_failed()
    return {sample.name for family in registry.collect() for sample in family.samples}


def test_every_metric_a_panel_or_alert_names_exists_in_the_exporter() -> None:
    names = exported_names()
    text = " ".join(exprs() + [str(rule["expr"]) for rule in alert_rules()])
    used = set(re.findall(r"autocurriculum_[a-z_]+", text))
    assert len(used) >= 25
    assert used <= names, sorted(used - names)


def test_every_panel_expression_and_alert_rule_passes_promtool(tmp_path: Path) -> None:
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"autocurriculum:panel_{i}", "expr": expr} for i, expr in enumerate(exprs())]}]}
    panel_rules = tmp_path / "panels.yml"
    panel_rules.write_text(yaml.safe_dump(rules))
    for path in (panel_rules, GRAFANA / "alerts.yml"):
        result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


ALERT_TESTS = """
rule_files: [ALERTS]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="autocurriculum", instance="a"}'
        values: '1 1 0 0 0 0'
      - series: 'autocurriculum_steps_in_plan_step{job="autocurriculum", instance="a"}'
        values: '140 150 160 170 180 190 200 210 220'
      - series: 'autocurriculum_plan_step_budget_steps{job="autocurriculum", instance="a"}'
        values: '150x8'
      - series: 'autocurriculum_rollbacks_total{job="autocurriculum", instance="a"}'
        values: '0 0 1 1 1'
      - series: 'autocurriculum_nonfinite_rewards_total{job="autocurriculum", instance="a"}'
        values: '0 0 0 0 0'
      - series: 'autocurriculum_alert{alert="collapse", job="autocurriculum", instance="a"}'
        values: '0 1 1 1 1'
      - series: 'autocurriculum_alert{alert="no_reward_variance", job="autocurriculum", instance="a"}'
        values: '0x8'
      - series: 'autocurriculum_alert{alert="nonfinite_metrics", job="autocurriculum", instance="a"}'
        values: '0 1 1 1 0'
      - series: 'autocurriculum_alert{alert="guard_regression", job="autocurriculum", instance="a"}'
        values: '0 0 1 0'
      - series: 'autocurriculum_alert{alert="budget_exhausted", job="autocurriculum", instance="a"}'
        values: '0 1 0'
      - series: 'autocurriculum_last_step_timestamp_seconds{job="autocurriculum", instance="a"}'
        values: '0 60 120 120 120 120 120 120 120 120 120 120 120 120 120 120 120 120 120 120 120 120 120'
    alert_rule_test:
      - {eval_time: 1m, alertname: AutocurriculumDaemonDown, exp_alerts: []}
      - eval_time: 5m
        alertname: AutocurriculumDaemonDown
        exp_alerts:
          - exp_labels: {severity: page, job: autocurriculum, instance: a}
            exp_annotations: {summary: "the autocurriculum daemon is not answering scrapes (a)"}
      - {eval_time: 3m, alertname: AutocurriculumPhaseStuck, exp_alerts: []}
      - eval_time: 8m
        alertname: AutocurriculumPhaseStuck
        exp_alerts:
          - exp_labels: {severity: warn, job: autocurriculum, instance: a}
            exp_annotations: {summary: "the current plan step has used its step budget and has not switched"}
      - {eval_time: 1m, alertname: AutocurriculumRollback, exp_alerts: []}
      - eval_time: 3m
        alertname: AutocurriculumRollback
        exp_alerts:
          - exp_labels: {severity: warn, job: autocurriculum, instance: a}
            exp_annotations: {summary: "a phase switch was rolled back after a regression"}
      - {eval_time: 4m, alertname: AutocurriculumNonFiniteRewards, exp_alerts: []}
      - {eval_time: 1m, alertname: AutocurriculumCollapse, exp_alerts: []}
      - eval_time: 3m
        alertname: AutocurriculumCollapse
        exp_alerts:
          - exp_labels: {severity: page, alert: collapse, job: autocurriculum, instance: a}
            exp_annotations: {summary: "completions collapsed to empty or identical text"}
      - {eval_time: 8m, alertname: AutocurriculumNoRewardVariance, exp_alerts: []}
      - {eval_time: 2m, alertname: AutocurriculumNonFiniteMetrics, exp_alerts: []}
      - eval_time: 3m
        alertname: AutocurriculumNonFiniteMetrics
        exp_alerts:
          - exp_labels: {severity: warn, alert: nonfinite_metrics, job: autocurriculum, instance: a}
            exp_annotations: {summary: "a watched figure is NaN or infinite: the controller does not switch on it"}
      - {eval_time: 1m, alertname: AutocurriculumGuardRegression, exp_alerts: []}
      - eval_time: 2m
        alertname: AutocurriculumGuardRegression
        exp_alerts:
          - exp_labels: {severity: warn, alert: guard_regression, job: autocurriculum, instance: a}
            exp_annotations: {summary: "a guarded figure fell after a switch (the controller rolls back if it persists)"}
      - {eval_time: 3m, alertname: AutocurriculumGuardRegression, exp_alerts: []}
      - eval_time: 1m
        alertname: AutocurriculumBudgetExhausted
        exp_alerts:
          - exp_labels: {severity: info, alert: budget_exhausted, job: autocurriculum, instance: a}
            exp_annotations: {summary: "a phase used its step budget without meeting its criteria"}
      - {eval_time: 2m, alertname: AutocurriculumBudgetExhausted, exp_alerts: []}
      - {eval_time: 10m, alertname: AutocurriculumStalled, exp_alerts: []}
      - eval_time: 20m
        alertname: AutocurriculumStalled
        exp_alerts:
          - exp_labels: {severity: page, job: autocurriculum, instance: a}
            exp_annotations: {summary: "no training step has finished for 18m 0s"}
"""


def test_alert_rules_fire_on_their_cause_and_not_before(tmp_path: Path) -> None:
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(ALERT_TESTS.replace("ALERTS", str(GRAFANA / "alerts.yml")))
    result = subprocess.run([promtool(), "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning_compose_and_prometheus_config_fit_together(tmp_path: Path) -> None:
    dashboards = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "autocurriculum.yaml").read_text())
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    compose = yaml.safe_load((GRAFANA / "docker-compose.yml").read_text())
    prometheus = yaml.safe_load((GRAFANA / "prometheus.yml").read_text())
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert set(images) == {"prometheus", "grafana"}
    assert all(re.search(r":v?\d+\.\d+\.\d+$", image) for image in images.values()), images  # pinned
    grafana_mounts = dict(m.rsplit(":", 1)[0].split(":", 1) for m in compose["services"]["grafana"]["volumes"] if m.startswith("./"))
    assert grafana_mounts["./dashboards"] == dashboards["providers"][0]["options"]["path"]
    assert grafana_mounts["./provisioning"] == "/etc/grafana/provisioning"
    prometheus_mounts = dict(m.rsplit(":", 1)[0].split(":", 1) for m in compose["services"]["prometheus"]["volumes"] if m.startswith("./"))
    assert prometheus_mounts["./alerts.yml"] in prometheus["rule_files"]
    assert datasources["datasources"][0]["type"] == "prometheus"
    # the daemon binds 127.0.0.1 by default: Prometheus can only reach it on the host's network
    assert compose["services"]["prometheus"].get("network_mode") == "host"
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
    assert datasources["datasources"][0]["url"] == "http://127.0.0.1:9090"
    # promtool check config on the committed file, its rule file pointed at the repository's
    prometheus["rule_files"] = [str(GRAFANA / "alerts.yml")]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus))
    result = subprocess.run([promtool(), "check", "config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_says_what_each_panel_answers_and_lists_every_alert() -> None:
    readme = (GRAFANA / "README.md").read_text()
    assert builder().panel_table() in readme, "run: python grafana/build_dashboard.py --markdown"
    for rule in alert_rules():
        assert f"| {rule['alert']} |" in readme, rule["alert"]
