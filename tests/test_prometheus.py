"""A real Prometheus scrapes a real exporter while a run is replayed; every panel query returns data.

The test starts Debian's `prometheus` on a free loopback port with its own config and storage
directory (never the system service), replays a run's metrics log through the real Exporter and
HTTP server while Prometheus scrapes it several times a second, then asks Prometheus' HTTP API for
every dashboard expression over the replay's time range, and checks that the alert rules fired
where the run gave them cause. The run is the synthetic tour of tests/synthetic_run.py: records
made by the real summarize() and decide() with every kind of event in them (switches, a rollback,
operator requests, a NaN reward, evaluations, three domains), so every panel has something to show.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from autocurriculum.exporter import Exporter, serve
from autocurriculum.policy import expand_plan, load

from .conftest import REPO
from .daemon_process import free_port
from .synthetic_run import full_tour
from .test_dashboard import DASHBOARD, GRAFANA

POLICY = load(REPO / "policies" / "tiny.toml")
PLAN = expand_plan(POLICY)
SCRAPE = 0.25  # seconds
PACE = 0.02  # seconds between replayed records


def api(base: str, path: str, **params: object) -> object:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float, float]]:
    """(base URL, replay start, replay end) of a Prometheus that scraped a replayed run."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: the README's test command installs Debian's prometheus package"
    tmp = tmp_path_factory.mktemp("prometheus")
    registry = CollectorRegistry()
    exporter = Exporter(registry, POLICY, PLAN)
    server = serve(exporter, port=0)
    target = f"127.0.0.1:{server.server_address[1]}"
    web = f"127.0.0.1:{free_port()}"
    # the committed config, pointed at this exporter and at the committed alert rules
    config = yaml.safe_load((GRAFANA / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=f"{int(SCRAPE * 1000)}ms", evaluation_interval=f"{int(SCRAPE * 1000)}ms")
    config["rule_files"] = [str(GRAFANA / "alerts.yml")]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = open(tmp / "prometheus.log", "w")
    process = subprocess.Popen(
        [binary, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address={web}"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{web}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
            try:
                if api(base, "query", query='up{job="autocurriculum"} == 1')["result"]:  # type: ignore[index]
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
            time.sleep(0.2)
        start = time.time()
        for record in full_tour(POLICY, PLAN):
            exporter.update(record)
            time.sleep(PACE)
        time.sleep(3 * SCRAPE)
        yield base, start, time.time()
    finally:
        process.terminate()
        process.wait(30)
        log.close()
        server.shutdown()
        server.server_close()


def returns_data(base: str, expr: str, start: float, end: float) -> bool:
    data = api(base, "query_range", query=expr, start=start - 1, end=end, step=SCRAPE)
    return any(series["values"] for series in data["result"])  # type: ignore[index]


def criteria_metrics() -> set[str]:
    return {criterion.metric for step in PLAN for criterion in step.criteria}


def test_every_panel_expression_returns_data(prometheus: tuple[str, float, float]) -> None:
    base, start, end = prometheus
    checked, missing = 0, []
    for panel in DASHBOARD["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            wanted = True
            pattern = re.search(r'criterion_threshold\{metric=~"([^"]+)"\}', expr)
            if pattern:  # a threshold line has data when some phase of the policy has such a criterion
                wanted = any(re.fullmatch(pattern.group(1), metric) for metric in criteria_metrics())
            if returns_data(base, expr, start, end) != wanted:
                missing.append((panel["title"], expr, "expected data" if wanted else "expected none"))
            checked += 1
    assert checked >= 30
    assert not missing, missing


def test_every_annotation_marks_the_events_of_the_run(prometheus: tuple[str, float, float]) -> None:
    base, start, end = prometheus
    for annotation in DASHBOARD["annotations"]["list"]:
        assert returns_data(base, annotation["expr"], start, end), annotation["name"]
    transitions = api(base, "query", query="autocurriculum_transitions_total", time=end)["result"]  # type: ignore[index]
    reasons = {series["metric"]["reason"] for series in transitions}
    assert "rollback_regression" in reasons and "criteria_and_plateau" in reasons


def test_the_alert_rules_fire_where_the_run_gave_cause(prometheus: tuple[str, float, float]) -> None:
    base, _start, _end = prometheus
    rules = api(base, "rules", type="alert")["groups"]  # type: ignore[index]
    state = {rule["name"]: rule["state"] for group in rules for rule in group["rules"]}
    assert set(state) == {rule["alert"] for group in yaml.safe_load((GRAFANA / "alerts.yml").read_text())["groups"]
                          for rule in group["rules"]}
    assert state["AutocurriculumRollback"] == "firing"  # the tour rolls back once
    assert state["AutocurriculumNonFiniteRewards"] == "firing"  # and has a NaN reward at step 15
    assert state["AutocurriculumDaemonDown"] == "inactive"
    assert state["AutocurriculumCollapse"] == "inactive"
