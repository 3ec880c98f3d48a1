"""The run report and `autocurriculum.plot`, on a synthetic run with every kind of event.

The run is tests/synthetic_run.py's tour (real summarize() and decide(), an imaginary model): a
hold, a resume, a rejected operator `set`, a rollback, every plan step and the end. The real-run,
real-browser check is tests/test_report_browser.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import autocurriculum
from autocurriculum import completion_samples, report, runlog
from autocurriculum.observation import CompletionRecord, RecordBatch
from autocurriculum.policy import expand_plan, load

from .conftest import REPO
from .synthetic_run import full_tour, transition_line


@pytest.fixture(scope="module")
def tour_dir(tmp_path_factory) -> Path:
    """A run directory written the way the daemon writes it (runlog.append_line, same transition fields)."""
    policy = load(REPO / "policies" / "tiny.toml")
    plan = expand_plan(policy)
    run_dir = tmp_path_factory.mktemp("report") / "tour"
    run_dir.mkdir()
    previous = 0
    for record in full_tour(policy, plan):
        runlog.append_line(run_dir / runlog.METRICS_LOG, record)
        transition = transition_line(record, plan, previous)
        if transition is not None:
            runlog.append_line(run_dir / runlog.TRANSITIONS_LOG, transition)
        previous = record["plan_step"]
    return run_dir


def test_every_transition_and_operator_request_is_in_the_page_with_its_reason_and_evidence(tour_dir: Path) -> None:
    transitions = list(runlog.read_lines(tour_dir / runlog.TRANSITIONS_LOG))
    kinds = {t["action"] for t in transitions}
    assert {"hold", "resume", "rollback", "swap_data", "swap_rewards", "done"} <= kinds  # the tour has them all
    page = report.render_html(report.load_run(tour_dir))
    rows = re.findall(r'<tr class="transition" id="transition-row-\d+" data-step="(\d+)">(.*?)</tr>', page, re.S)
    assert len(rows) == len(transitions)
    for (step, row), transition in zip(rows, transitions):
        assert int(step) == transition["step"]
        for value in (transition["action"], transition["reason"], transition["from_phase"], transition["to_phase"]):
            assert str(value) in row.replace("&rarr;", "")
        assert "<details><summary>evidence</summary>" in row
    # each timeline marker carries the transition's reason as an SVG <title> (shown on hover)
    titles = re.findall(r'<g id="transition-(\d+)"><title>(.*?)</title>', page, re.S)
    assert [int(i) for i, _ in titles] == list(range(len(transitions)))
    for (_, title), transition in zip(titles, transitions):
        assert f"step {transition['step']}: {transition['action']}" in title and transition["reason"] in title
    assert "no_such_phase" in page and "rejected" in page  # the rejected operator `set`
    assert "look at lengths" in page  # the reason the operator gave for the hold


def test_the_page_is_self_contained(tour_dir: Path) -> None:
    page = report.render_html(report.load_run(tour_dir))
    assert "<script" not in page.lower()
    assert not re.search(r'(?:src|href)\s*=\s*["\'](?!#)', page)  # nothing to fetch, not even a stylesheet
    assert page.count("<svg") == 6


def test_plot_returns_the_report_figures(tour_dir: Path) -> None:
    from matplotlib.figure import Figure

    figures = autocurriculum.plot(tour_dir)
    assert list(figures) == ["timeline", "watched", "rewards", "learnability", "heldout", "step_time"]
    assert all(isinstance(f, Figure) for f in figures.values())
    # the watched metrics: one row per metric named by a criterion or a plateau test anywhere in the run
    watched = {json.dumps(k) for line in runlog.read_lines(tour_dir / runlog.METRICS_LOG)
               for k in [*(line.get("criteria") or {}), *(line.get("plateau") or {})]}
    *per_metric, plateau = figures["watched"].axes
    assert {json.loads(k).split(" ")[0] for k in watched} == {a.get_title() for a in per_metric}
    plateau_keys = {json.loads(k) for line in runlog.read_lines(tour_dir / runlog.METRICS_LOG)
                    for k in map(json.dumps, line.get("plateau") or {})}
    assert {text.get_text().rsplit(" (", 1)[0] for text in plateau.get_legend().get_texts()} == plateau_keys
    held_out = figures["heldout"].axes[0]
    assert held_out.get_lines()  # the tour evaluates every 10 steps


def test_the_cli_writes_the_report_and_names_a_missing_run_directory(tour_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    done = subprocess.run([sys.executable, "-m", "autocurriculum", "report", "--run-dir", str(tour_dir),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    missing = tmp_path / "nothing-here"
    missing.mkdir()
    done = subprocess.run([sys.executable, "-m", "autocurriculum", "report", "--run-dir", str(missing)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 66
    assert done.stdout.strip() == f"autocurriculum report: {missing / 'metrics.jsonl'}: missing (not a run directory, " \
                                  "or the run has not finished a step yet)"
    assert "Traceback" not in done.stderr


def _records(n: int, text_marker: str) -> RecordBatch:
    record = CompletionRecord("math", True, True, False, 7, False, True, False, False, 0,
                              {"strict_format_gate": 0.5})
    return RecordBatch.concat([RecordBatch([record.domain], [True], [True], [False], [7], [False], [True], [False],
                                           [False], [hash(text_marker)], {"strict_format_gate": [0.5]})] * n)


def test_completion_samples_stay_bounded_and_keep_the_parsed_fields(tmp_path: Path) -> None:
    samples = completion_samples.CompletionSamples()
    for step in range(1, 1001):
        phase = "behaviour" if step <= 500 else "correctness"
        texts = [f"<reasoning>{'x' * 2000}</reasoning><answer>{step}</answer>"] * 4
        samples.take(step, phase, "", ["What is 2+2?"] * 4, texts, _records(4, texts[0]))
    samples.save(tmp_path)
    kept = completion_samples.read(tmp_path)
    assert set(kept) == {"behaviour", "correctness"}
    assert all(len(rows) == completion_samples.PER_PHASE for rows in kept.values())
    newest = kept["correctness"][-1]
    assert newest["step"] == 1000 and newest["answer"] == "1000"
    assert len(newest["completion"]) <= completion_samples.MAX_TEXT_CHARS + len(" [...]")
    assert newest["contract_ok"] is True and newest["rewards"] == {"strict_format_gate": 0.5}
    assert (tmp_path / completion_samples.COMPLETIONS_FILE).stat().st_size < 20_000
    samples.restore(tmp_path, up_to_step=499)  # a resume from step 499 drops what came after
    assert [r["step"] for r in samples.phases["behaviour"]] == [498, 498, 499, 499]  # the file held 495-500
    assert "correctness" not in samples.phases or not samples.phases["correctness"]


def test_the_daemon_samples_completions_per_phase_and_refreshes_the_report(tmp_path: Path) -> None:
    """The real daemon on the scripted trainer (tests/fake_trainer.py): completions.json holds each
    phase's last sampled completions with their parsed fields, and metrics.report_every = 5 leaves a
    report.html that shows the run's end and every transition."""
    from autocurriculum.daemon import RunOptions, run_daemon

    from .fake_trainer import ScriptedBackend, good

    run_dir = tmp_path / "run"
    policy = load(REPO / "tests" / "policies" / "fast.toml", overrides=["metrics.report_every=5"])
    result = run_daemon(policy, run_dir, RunOptions(backend=ScriptedBackend(script=good)))
    assert result.exit_code == 0 and result.done
    sampled = completion_samples.read(run_dir)
    assert list(sampled) == ["behaviour", "correctness", "generalisation"]
    for phase, rows in sampled.items():
        assert len(rows) == completion_samples.PER_PHASE
        assert all(row["phase"] == phase and row["prompt"] and row["completion"] for row in rows)
        assert all(row["contract_ok"] and row["answer"] is not None for row in rows)  # the `good` script complies
    assert sampled["generalisation"][-1]["step"] == result.steps
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert f"<tr><th>step</th><td>{result.steps} (report written" in page
    assert "curriculum complete" in page
    for transition in result.transitions:
        assert f'data-step="{transition["step"]}"' in page


def test_a_nan_reward_is_sampled_as_text_and_the_file_stays_json(tmp_path: Path) -> None:
    """A NaN reward (the reliability suite injects one for 100 steps) must not break completions.json."""
    samples = completion_samples.CompletionSamples()
    batch = RecordBatch(["math"], [True], [True], [False], [7], [False], [True], [False], [False], [0],
                        {"light_length_penalty": [float("nan")], "strict_format_gate": [0.5]})
    samples.take(1, "behaviour", "", ["q"], ["<reasoning>r</reasoning><answer>1</answer>"], batch)
    samples.save(tmp_path)
    row = completion_samples.read(tmp_path)["behaviour"][0]
    assert row["rewards"] == {"light_length_penalty": "nan", "strict_format_gate": 0.5}
