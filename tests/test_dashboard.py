"""Dashboard lint, promtool on every expression and alert rule, names checked against the exporter."""

from __future__ import annotations

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

GRAFANA = REPO / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "autocurriculum.json").read_text())


def exprs() -> list[str]:
    found = [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]
    found += [a["expr"] for a in DASHBOARD["annotations"]["list"]]
    return found


def test_committed_json_is_what_the_builder_produces() -> None:
    built = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'grafana'); import build_dashboard, json;"
                            "print(json.dumps(build_dashboard.build(), indent=2))"], capture_output=True, text=True, cwd=REPO)
    assert json.loads(built.stdout) == DASHBOARD


def test_every_panel_has_a_query_a_unit_a_unique_id_and_only_the_template_datasource() -> None:
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert panel["description"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["uid"] == "${datasource}"
    text = json.dumps(DASHBOARD)
    assert "__inputs" not in text
    assert set(re.findall(r"\$\{(\w+)\}", text)) == {"datasource"}
    assert DASHBOARD["templating"]["list"][0]["type"] == "datasource"


def test_every_metric_a_panel_names_exists_in_the_exporter() -> None:
    registry = CollectorRegistry()
    policy = load(REPO / "policies" / "tiny.toml")
    Exporter(registry, policy, expand_plan(policy))
    names = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    names.update(f"{n}_total" for n in list(names))
    names.update(f"{n}_sum" for n in list(names)) 
    names.update(f"{n}_count" for n in list(names))
    used = set(re.findall(r"autocurriculum_[a-z_]+", " ".join(exprs())))
    assert used, "no metric names found"
    assert used <= names | {"autocurriculum_phase"}, used - names


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: the README's test command installs Debian's prometheus package"
    return path


def test_every_panel_expression_and_alert_rule_passes_promtool(tmp_path: Path) -> None:
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"autocurriculum:panel_{i}", "expr": expr} for i, expr in enumerate(exprs())]}]}
    panel_rules = tmp_path / "panels.yml"
    panel_rules.write_text(yaml.safe_dump(rules))
    for path in (panel_rules, GRAFANA / "alerts.yml"):
        result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_provisioning_points_grafana_at_the_dashboard_and_prometheus() -> None:
    dashboards = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "autocurriculum.yaml").read_text())
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    compose = yaml.safe_load((GRAFANA / "docker-compose.yml").read_text())
    assert dashboards["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert datasources["datasources"][0]["type"] == "prometheus"
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert all(re.search(r":v?\d+\.\d+\.\d+$", image) for image in images.values()), images
