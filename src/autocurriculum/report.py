"""A run seen without Grafana: one self-contained HTML file, and the same figures for a notebook.

Kaggle and Colab notebooks have no Prometheus and no Grafana; what a person there needs is one page
that says which phase the run is in, why it switched, how the watched metrics move against their
criteria and plateau bounds, and what the model writes now. Everything comes from the files the
daemon writes into its run directory (runlog.py: metrics.jsonl, transitions.jsonl, eval.jsonl;
status.json; completions.json) and nothing else, so the report works on a finished run, a running
one (the files are appended line by line and replaced atomically) or a copy of either.

Charts are drawn by matplotlib and embedded as inline SVG (text kept as text, so a browser can find
a transition's reason in the page); no script, no network, no CDN. The timeline's markers carry the
reason and evidence of each transition as an SVG <title>, which a browser shows on hover; the table
beside it holds the same, in full.

This module writes the page (its tables and layout); report_run.py reads the run directory and
report_charts.py draws the charts, whose `figures(run_dir)` (and `autocurriculum.plot`) returns the
matplotlib Figures the page embeds.
"""

from __future__ import annotations

import argparse
import html
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autocurriculum.exits import EX_IOERR, EX_NOINPUT, EX_OK
from autocurriculum.report_charts import ACTION_COLOURS, build_figures, heldout_rows, svg_of
from autocurriculum.report_run import ReportError, Run, load_run

# ---------------------------------------------------------------- HTML

def render_html(run: Run) -> str:
    """The whole report as one HTML string: inline SVG charts and tables, no script, no external resource."""
    charts = build_figures(run)
    svgs = {name: svg_of(figure) for name, figure in charts.items()}
    last = run.last
    status = run.status or {}
    state = ("curriculum complete" if status.get("done") else
             f"running (pid {run.running_pid})" if run.running_pid else "not running")
    alerts = ", ".join(last.get("alerts") or []) or "none"
    title = f"autocurriculum run report: {run.run_dir.name}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<table class=facts>",
        _fact("run directory", str(run.run_dir.resolve())),
        _fact("policy", str(run.info.get("policy") or status.get("policy") or "")),
        _fact("overrides", " ".join(run.info.get("overrides") or []) or "none"),
        _fact("state", state),
        _fact("step", f"{last['step']} (report written {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())})"),
        _fact("phase", f"{last.get('phase')}{'/' + last['part'] if last.get('part') else ''} "
                       f"(plan step {int(last.get('plan_step', 0)) + 1})"),
        _fact("hold", f"{status.get('hold_reason') or 'yes'}" if last.get("hold") else "no"),
        _fact("alerts", alerts),
        _fact("last decision", _decision_text(last.get("decision") or {})),
        "</table>",
        "<h2 id=timeline>Phase timeline</h2>",
        f"<div class=chart>{svgs['timeline']}</div>",
        _transitions_table(run),
        _operator_table(run),
        "<h2 id=watched>Watched metrics: criteria and plateau</h2>",
        _current_table(last),
        f"<div class=chart>{svgs['watched']}</div>",
        "<h2 id=rewards>Rewards per function</h2>", f"<div class=chart>{svgs['rewards']}</div>",
        "<h2 id=learnability>Learnability</h2>", f"<div class=chart>{svgs['learnability']}</div>",
        "<h2 id=heldout>Held-out evaluation</h2>", f"<div class=chart>{svgs['heldout']}</div>",
        _heldout_table(run),
        "<h2 id=steptime>Step time</h2>", f"<div class=chart>{svgs['step_time']}</div>",
        "<h2 id=completions>Recent completions per phase</h2>",
        _samples_html(run),
        "</body></html>",
    ]
    return "\n".join(parts)


def live_view_html(status: Mapping[str, Any], transitions: list[dict[str, Any]]) -> str:
    """What a notebook shows while a run goes on (notebook.py), from status.json and transitions.jsonl.

    Phase and plan step, the watched metrics against their criteria and plateau bounds, the last
    decision with its evidence, the last transition with its reason: a few tables, no chart, so it
    can be redrawn every few steps for nothing.
    """
    part = f"/{status['part']}" if status.get("part") else ""
    state = "curriculum complete" if status.get("done") else "held: " + str(status.get("hold_reason")) \
        if status.get("hold") else "training"
    last = transitions[-1] if transitions else None
    switch = ("none yet" if last is None else
              f"step {last['step']}: {last['action']} {last.get('from_phase')} &rarr; {last.get('to_phase')} "
              f"({html.escape(str(last['reason']))})")
    decision = status.get("last_decision") or {}
    return (
        '<div class="autocurriculum-view"><b>autocurriculum</b>: step '
        f"{status.get('step')}, phase {html.escape(str(status.get('phase')))}{html.escape(part)} "
        f"(plan step {int(status.get('plan_step', 0)) + 1}/{status.get('plan_steps', '?')}), {html.escape(state)}; "
        f"alerts: {html.escape(', '.join(status.get('alerts') or []) or 'none')}<br>"
        f"last decision: {html.escape(_decision_text(decision))}; last transition: {switch}"
        f"{_current_table(status)}{_evidence_html(decision.get('evidence', {}))}</div>"
    )


def _fact(name: str, value: str) -> str:
    return f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"


def _decision_text(decision: Mapping[str, Any]) -> str:
    return f"{decision.get('action', '?')} ({decision.get('reason', '?')})"


def _evidence_html(evidence: object) -> str:
    text = json.dumps(evidence, indent=1, sort_keys=True, default=str)
    return f"<details><summary>evidence</summary><pre>{html.escape(text)}</pre></details>"


def _transitions_table(run: Run) -> str:
    if not run.transitions:
        return "<p>No transition yet.</p>"
    decisions = {line["step"]: line.get("decision") or {} for line in run.steps}
    rows = [
        f'<tr class="transition" id="transition-row-{index}" data-step="{t["step"]}">'
        f"<td>{t['step']}</td><td class=action style=\"color:{ACTION_COLOURS.get(t['action'], '#444')}\">"
        f"{html.escape(str(t['action']))}</td><td>{html.escape(str(t.get('factor', '')))}</td>"
        f"<td>{html.escape(str(t.get('from_phase')))} &rarr; {html.escape(str(t.get('to_phase')))}</td>"
        f"<td class=reason>{html.escape(str(t['reason']))}</td>"
        f"<td>{_evidence_html(decisions.get(t['step'], {}).get('evidence', {}))}</td></tr>"
        for index, t in enumerate(run.transitions)
    ]
    return ("<table class=grid id=transitions><tr><th>step</th><th>action</th><th>factor</th><th>from &rarr; to</th>"
            "<th>reason</th><th>evidence</th></tr>" + "".join(rows) + "</table>")


def _operator_table(run: Run) -> str:
    rows = []
    for line in run.steps:
        requests = {r.get("seq"): r for r in line.get("requests") or []}
        for result in line.get("operator_results") or []:
            request = requests.get(result.get("seq"), {})
            rows.append(
                f"<tr><td>{line['step']}</td><td>{result.get('seq')}</td><td>{html.escape(str(result.get('command')))}"
                f"{' ' + html.escape(str(request.get('phase'))) if request.get('phase') else ''}</td>"
                f"<td>{html.escape(str(request.get('reason', '')))}</td><td>{html.escape(str(result.get('result')))}</td>"
                f"<td>{html.escape(str(result.get('message', '')))}</td></tr>")
    if not rows:
        return "<p>No operator request in this run.</p>"
    return ("<h3>Operator requests</h3><table class=grid id=operator><tr><th>step</th><th>seq</th><th>command</th>"
            "<th>reason given</th><th>result</th><th>message</th></tr>" + "".join(rows) + "</table>")


def _current_table(last: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><td>criterion</td><td>{html.escape(k)}</td><td>{_num(c.get('value'))} {html.escape(str(c.get('comparison')))} "
        f"{_num(c.get('threshold'))} ({html.escape(str(c.get('source', 'rollout')))})</td>"
        f"<td>{'holds' if c.get('holds') else 'not yet'}</td></tr>"
        for k, c in (last.get("criteria") or {}).items()
    ] + [
        f"<tr><td>plateau</td><td>{html.escape(k)}</td><td>{html.escape(str(p.get('test')))}: statistic "
        f"{_num(p.get('statistic'))}, bound {_num(p.get('bound'))}{'' if p.get('ready') else ' (window filling)'}</td>"
        f"<td>{'plateaued' if p.get('plateaued') else 'moving'}</td></tr>"
        for k, p in (last.get("plateau") or {}).items()
    ]
    return (f"<p>At step {last['step']} (plan step {int(last.get('plan_step', 0)) + 1}):</p><table class=grid>"
            "<tr><th>test</th><th>metric</th><th>value</th><th>verdict</th></tr>" + "".join(rows) + "</table>")


def _heldout_table(run: Run) -> str:
    rows = heldout_rows(run)
    if not rows:
        return ""
    names = sorted({n for _, _, m in rows for n in m})
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(f"<tr><td>{s}</td><td>{d}</td>" + "".join(f"<td>{_num(m.get(n))}</td>" for n in names) + "</tr>"
                   for s, d, m in rows)
    return (f"<details><summary>figures</summary><table class=grid><tr><th>step</th><th>decoding</th>{head}</tr>"
            f"{body}</table></details>")


def _samples_html(run: Run) -> str:
    if not run.samples:
        return "<p>No completions recorded (a run from before the daemon sampled them, or no step yet).</p>"
    out = []
    for phase, rows in run.samples.items():
        out.append(f"<h3>{html.escape(phase)}</h3><table class=grid><tr><th>step</th><th>domain</th><th>prompt</th>"
                   "<th>completion</th><th>parsed</th><th>rewards</th></tr>")
        for row in reversed(rows):
            parsed = (f"answer: {row.get('answer')!r}<br>contract {'ok' if row.get('contract_ok') else 'broken'}, "
                      f"extracted {_yes(row.get('extracted'))}, refused {_yes(row.get('refused'))}, "
                      f"correct {_yes(row.get('correct'))}, rambling {_yes(row.get('rambling'))}, "
                      f"{row.get('length_tokens')} tokens")
            rewards = "<br>".join(f"{html.escape(k)} {_num(v)}" for k, v in (row.get("rewards") or {}).items())
            out.append(f"<tr><td>{row.get('step')}</td><td>{html.escape(str(row.get('domain')))}</td>"
                       f"<td><pre>{html.escape(str(row.get('prompt')))}</pre></td>"
                       f"<td><pre>{html.escape(str(row.get('completion')))}</pre></td>"
                       f"<td>{html.escape(parsed).replace('&lt;br&gt;', '<br>')}</td><td>{rewards}</td></tr>")
        out.append("</table>")
    return "".join(out)


def _yes(value: object) -> str:
    return "n/a" if value is None else "yes" if value else "no"


def _num(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return html.escape(str(value))
    return f"{value:.4g}"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}h3{font-size:1em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
table.grid td,table.grid th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}
table.facts th{text-align:left;padding-right:1em;color:#555}
pre{white-space:pre-wrap;margin:0;max-width:380px;font-size:.95em}
details pre{max-width:none;max-height:300px;overflow:auto;background:#f7f7f7}
.chart svg{max-width:100%;height:auto}
"""


# ---------------------------------------------------------------- writing and the CLI


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the report of `run_dir` (default RUN_DIR/report.html) atomically; return its path."""
    run = load_run(run_dir)
    target = out if out is not None else run_dir / "report.html"
    page = render_html(run)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(target)
    except OSError as error:
        raise ReportError(f"{target}: cannot write the report: {error.strerror or error}") from None
    return target


def cmd_report(args: argparse.Namespace) -> int:
    """`autocurriculum report --run-dir DIR [--out FILE.html]`."""
    started = time.perf_counter()
    try:
        path = write_report(Path(args.run_dir), Path(args.out) if args.out else None)
    except ReportError as error:
        print(f"autocurriculum report: {error}", flush=True)
        return EX_NOINPUT if "cannot write" not in str(error) else EX_IOERR
    size = path.stat().st_size
    print(f"autocurriculum report: wrote {path} ({size / 1024:.0f} kB in {time.perf_counter() - started:.2f} s)",
          flush=True)
    return EX_OK
