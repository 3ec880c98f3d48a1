"""The report of a real run, opened in a real browser.

A real daemon runs real Tunix GRPO on the tiny model (tests/policies/e2e.toml, the quickstart's
shape with a short warm start, shortened to 40 steps, held-out evaluation every 20) through its
first automatic switches; `autocurriculum report` writes the page; Debian's headless Chromium opens
it (tests/headless_chromium.py). The page must load with no console error, ask for nothing but
itself, show every line of the run's transitions.jsonl and the completions the daemon sampled, and
give a screenshot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import daemon_process as dp
from .headless_chromium import visit

pytestmark = pytest.mark.slow
STEPS = 40

PAGE_SCRIPT = """({
  rows: [...document.querySelectorAll('tr.transition')].map(r => ({step: Number(r.dataset.step), text: r.innerText})),
  charts: document.querySelectorAll('svg').length,
  hover_titles: [...document.querySelectorAll('svg g[id^="transition-"] > title')].map(t => t.textContent),
  completions: [...document.querySelectorAll('#completions ~ table pre')].map(p => p.textContent),
  phases_with_completions: [...document.querySelectorAll('#completions ~ h3')].map(h => h.textContent),
  text: document.body.innerText,
})"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("report-browser") / "run"
    process = dp.start(run_dir, f"run.max_steps={STEPS}", "eval.every=20", "metrics.report_every=15")
    assert dp.finish(process) == 0, dp.log_of(run_dir)
    return run_dir


def test_the_report_of_a_real_run_opens_in_chromium_with_every_transition(real_run: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "autocurriculum", "report", "--run-dir", str(real_run),
                           "--out", str(page)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    transitions = dp.lines(real_run / "transitions.jsonl")
    assert any(t["reason"] == "criteria_and_plateau" for t in transitions), transitions  # a switch by itself

    seen = visit(page.as_uri(), PAGE_SCRIPT)
    # AUTOCURRICULUM_REPORT_SCREENSHOT=docs/report-screenshot.png keeps it (the README's picture)
    screenshot = Path(os.environ.get("AUTOCURRICULUM_REPORT_SCREENSHOT") or tmp_path / "report.png")
    screenshot.write_bytes(seen.screenshot_png)
    print(f"screenshot: {screenshot}")

    assert seen.console_errors == []
    assert seen.requested_urls == [page.as_uri()]  # self-contained: no script, stylesheet, font or image fetched
    shown = seen.evaluated
    assert [row["step"] for row in shown["rows"]] == [t["step"] for t in transitions]
    for row, transition in zip(shown["rows"], transitions):
        for field in ("action", "reason", "from_phase", "to_phase"):
            assert str(transition[field]) in row["text"], (field, row, transition)
    assert len(shown["hover_titles"]) == len(transitions)
    for title, transition in zip(shown["hover_titles"], transitions):
        assert title.startswith(f"step {transition['step']}: {transition['action']}") and transition["reason"] in title
    assert shown["charts"] == 6
    # the held-out evaluations of steps 20 and 40 are in the page's table
    evaluations = dp.lines(real_run / "eval.jsonl")
    assert [e["step"] for e in evaluations] == [20, 40]
    # the completions the daemon sampled, with the phase they were written in
    sampled = json.loads((real_run / "completions.json").read_text())["phases"]
    assert set(shown["phases_with_completions"]) == set(sampled) and sampled
    for rows in sampled.values():
        assert 0 < len(rows) <= 6
        for row in rows:
            assert {"prompt", "completion", "answer", "contract_ok", "correct", "rewards"} <= set(row)
            assert row["completion"] in shown["completions"]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000


def test_the_daemon_rewrites_the_report_every_n_steps_and_at_the_end(real_run: Path) -> None:
    """metrics.report_every = 15: written at steps 15 and 30 in a thread, and once more when the run ends."""
    page = (real_run / "report.html").read_text(encoding="utf-8")
    last = dp.lines(real_run / "metrics.jsonl")[-1]
    assert f"<tr><th>step</th><td>{last['step']} (report written" in page
    for transition in dp.lines(real_run / "transitions.jsonl"):
        assert f'data-step="{transition["step"]}"' in page
    assert "report_failed" not in dp.log_of(real_run)
