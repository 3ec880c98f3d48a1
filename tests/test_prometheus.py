"""A real Prometheus scrapes a real exporter fed by a recorded real run; every panel query returns data."""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from autocurriculum.exporter import Exporter, PortInUse, serve
from autocurriculum.policy import expand_plan, load

from .conftest import REPO
from .test_dashboard import exprs, promtool

RECORDED = REPO / "tests" / "data" / "quickstart-metrics.jsonl.gz"


def recorded_records() -> list[dict[str, object]]:
    with gzip.open(RECORDED, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def fed_exporter() -> tuple[CollectorRegistry, Exporter]:
    policy = load(REPO / "policies" / "tiny.toml")
    registry = CollectorRegistry()
    exporter = Exporter(registry, policy, expand_plan(policy))
    for record in recorded_records():
        exporter.update(record)
    return registry, exporter


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_exposition_passes_promtool_check_metrics() -> None:
    registry, _ = fed_exporter()
    exposition = generate_latest(registry)
    result = subprocess.run([promtool(), "check", "metrics"], input=exposition, capture_output=True)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    text = exposition.decode()
    assert 'autocurriculum_phase{autocurriculum_phase="generalisation"} 1.0' in text
    assert "autocurriculum_transitions_total{" in text


def test_golden_exposition_of_one_record() -> None:
    policy = load(REPO / "policies" / "tiny.toml")
    registry = CollectorRegistry()
    exporter = Exporter(registry, policy, expand_plan(policy))
    exporter.update({
        "step": 7, "plan_step": 1, "step_seconds": 0.3, "controller_seconds": 0.002,
        "observation": {"step": 7, "completions": 16, "metrics": {"extraction_rate": 0.75, "domain_compliance:math": 0.5},
                        "reward_means": {"strict_format_gate": 0.125}, "nonfinite": 2},
        "decision": {"action": "swap_data", "reason": "criteria_and_plateau", "from_step": 0, "to_step": 1,
                     "evidence": {"steps_in_step": 0}},
        "criteria": {"extraction_rate": {"value": 0.96, "comparison": ">=", "threshold": 0.95, "holds": True}},
        "plateau": {"extraction_rate": {"test": "trend", "statistic": 0.1, "bound": 0.2, "plateaued": True}},
        "alerts": ["no_reward_variance"], "operator_results": [{"seq": 1, "command": "hold", "result": "applied"}],
        "tunix": {"loss": 0.5},
    })
    lines = {line for line in generate_latest(registry).decode().splitlines() if not line.startswith("#")}
    for expected in [
        'autocurriculum_phase{autocurriculum_phase="correctness"} 1.0',
        "autocurriculum_plan_step 2.0",
        "autocurriculum_training_step 7.0",
        'autocurriculum_answer_extraction_ratio{split="rollout"} 0.75',
        'autocurriculum_domain_compliance_ratio{domain="math",split="rollout"} 0.5',
        'autocurriculum_reward_function_mean{function="strict_format_gate"} 0.125',
        "autocurriculum_nonfinite_rewards_total 2.0",
        'autocurriculum_transitions_total{from_phase="behaviour",reason="criteria_and_plateau",to_phase="correctness/a"} 1.0',
        'autocurriculum_criterion_holds{metric="extraction_rate"} 1.0',
        'autocurriculum_criterion_threshold{comparison=">=",metric="extraction_rate"} 0.95',
        'autocurriculum_plateau_reached{metric="extraction_rate",test="trend"} 1.0',
        'autocurriculum_alert{alert="no_reward_variance"} 1.0',
        'autocurriculum_alert{alert="collapse"} 0.0',
        'autocurriculum_operator_requests_total{command="hold",result="applied"} 1.0',
        'autocurriculum_tunix_figure{name="loss"} 0.5',
        "autocurriculum_controller_step_seconds 0.002",
    ]:
        assert expected in lines, expected


def test_the_exporter_binds_loopback_and_refuses_a_taken_port() -> None:
    registry = CollectorRegistry()
    port = free_port()
    server = serve(registry, "127.0.0.1", port)
    try:
        assert server.server_address[0] == "127.0.0.1"
        with pytest.raises(PortInUse, match=rf"metrics\.port: 127\.0\.0\.1:{port} is already in use"):
            serve(CollectorRegistry(), "127.0.0.1", port)
    finally:
        server.shutdown()


def query(base: str, expr: str) -> list[object]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_real_prometheus_scrapes_the_exporter_and_every_panel_returns_data(tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is missing: the README's test command installs Debian's prometheus package"
    registry, exporter = fed_exporter()
    records = recorded_records()
    target_port, web_port = free_port(), free_port()
    server = serve(registry, "127.0.0.1", target_port)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs: [{{job_name: autocurriculum, static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]}}]\n")
    process = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{web_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if query(base, 'up{job="autocurriculum"} == 1'):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
            time.sleep(0.5)
        # keep the run moving while Prometheus scrapes, so rate() and increase() have samples to use;
        # the operator's requests arrive in the shape the daemon logs them
        for index, record in enumerate(records[-12:]):
            results = [{"seq": index + 1, "command": "hold" if index % 2 == 0 else "resume", "result": "applied"}]
            exporter.update({**record, "step": int(record["step"]) + 1000, "operator_results": results})
            time.sleep(0.4)
        time.sleep(2)
        # the switch annotation only has data at the moment of a switch; every panel query must have data
        missing = [expr for expr in exprs() if not query(base, expr) and not expr.startswith("changes(")]
        assert not missing, missing
        assert query(base, "autocurriculum_transitions_total")
    finally:
        process.terminate()
        process.wait(30)
        server.shutdown()
