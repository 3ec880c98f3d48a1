"""The run report's charts: matplotlib Figures drawn from a run's files, and their inline SVG.

Why matplotlib and SVG: the report must be one self-contained file (no script, no network, no CDN)
and a browser must find a transition's reason in the page, so text stays text (`svg.fonttype =
none`). The timeline's markers carry each transition's reason and evidence as an SVG <title>, which
a browser shows on hover. `figures(run_dir)` (and `autocurriculum.plot`) returns the same Figures
for a notebook cell.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from autocurriculum.report_run import Run, load_run

LEARNABILITY = ("learnable_group_ratio", "mean_abs_advantage")
HELDOUT_PREFERRED = ("strict_compliance", "extraction_rate", "accuracy", "refusal_rate")
ACTION_COLOURS = {
    "swap_data": "#1f77b4", "swap_rewards": "#9467bd", "rollback": "#d62728", "restore_checkpoint": "#ff7f0e",
    "hold": "#7f7f7f", "resume": "#2ca02c", "done": "#000000",
}
PHASE_COLOURS = ("#e8f0fb", "#fdf0e2", "#eaf6ea", "#f6e8f3", "#f3f3e3", "#e6f5f7")


# ---------------------------------------------------------------- figures


def figures(run_dir: Path | str) -> dict[str, Figure]:
    """The report's charts as matplotlib Figures, by name: for a notebook cell (`autocurriculum.plot`)."""
    return build_figures(load_run(Path(run_dir)))


def build_figures(run: Run) -> dict[str, Figure]:
    """timeline, watched (criteria and plateau), rewards, learnability, heldout, step_time."""
    return {
        "timeline": _timeline(run),
        "watched": _watched(run),
        "rewards": _rewards(run),
        "learnability": _learnability(run),
        "heldout": _heldout(run),
        "step_time": _step_time(run),
    }


def _figure(width: float, height: float, rows: int = 1) -> Figure:
    """A Figure outside pyplot: no global figure registry, nothing left open in a notebook's kernel.

    Fixed margins rather than a layout engine: constrained layout measured every tick label of
    every axes again on each draw and took most of the report's time (cProfile on a 149-step run).
    """
    figure = Figure(figsize=(width, height))
    margin = 0.45 / height  # inches of room for the title and the step axis, whatever the height
    figure.subplots_adjust(left=0.1, right=0.98, top=1 - margin, bottom=margin * 1.1,
                           hspace=0.5, wspace=0.15)
    return figure


def _segments(run: Run) -> list[tuple[int, int, int]]:
    """(first step, last step, plan step) of each stretch of the run spent in one plan step."""
    out: list[tuple[int, int, int]] = []
    previous_plan = 0
    for line in run.steps:
        # a step's completions were made under the plan step in force before its decision
        plan_step = previous_plan
        if out and out[-1][2] == plan_step:
            out[-1] = (out[-1][0], line["step"], plan_step)
        else:
            out.append((line["step"], line["step"], plan_step))
        previous_plan = int(line.get("plan_step", plan_step))
    return out


def _labels(run: Run) -> dict[int, str]:
    """Each plan step's label (phase/part) as the logs spell it."""
    labels: dict[int, str] = {}
    for transition in run.transitions:
        labels.setdefault(int(transition.get("from_step", 0)), str(transition.get("from_phase")))
        labels.setdefault(int(transition.get("to_step", 0)), str(transition.get("to_phase")))
    for line in run.steps:
        part = line.get("part") or ""
        labels.setdefault(int(line.get("plan_step", 0)), f"{line['phase']}/{part}" if part else str(line["phase"]))
    return labels


def _shade_phases(axes: Axes, run: Run) -> None:
    """Phase bands and transition lines on a per-step axes, so every chart reads against the timeline.

    One collection each (broken_barh, vlines), not one artist per band: a chart per metric times a
    band per plan step was most of the drawing time of a long run.
    """
    segments = _segments(run)
    axes.xaxis.set_major_locator(MaxNLocator(6, integer=True))  # fewer tick objects: they dominate drawing
    axes.yaxis.set_major_locator(MaxNLocator(4))
    axes.set_xlim(0.5, run.last["step"] + 0.5)
    axes.broken_barh([(first - 0.5, last - first + 1) for first, last, _ in segments], (0, 1),
                     transform=axes.get_xaxis_transform(), zorder=0, lw=0,
                     facecolors=[PHASE_COLOURS[p % len(PHASE_COLOURS)] for _, _, p in segments])
    if run.transitions:
        axes.vlines([t["step"] + 0.5 for t in run.transitions], 0, 1, transform=axes.get_xaxis_transform(),
                    colors=[ACTION_COLOURS.get(t["action"], "#444") for t in run.transitions], lw=0.8,
                    linestyles=":", zorder=1)


Getter = Callable[[dict[str, Any]], object]


def _series(run: Run, getter: Getter, gaps: bool = False) -> tuple[list[int], list[float]]:
    """(steps, values) where `getter(line)` gave a finite number; with `gaps`, NaN elsewhere, so a
    line breaks where its quantity did not apply (a criterion of another phase) instead of bridging."""
    steps, values = [], []
    for line in run.steps:
        value = getter(line)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            steps.append(line["step"])
            values.append(float(value))
        elif gaps:
            steps.append(line["step"])
            values.append(math.nan)
    return steps, values


def _metric(line: Mapping[str, Any], name: str) -> object:
    return (line.get("observation") or {}).get("metrics", {}).get(name)


def _metric_of(name: str) -> Getter:
    return lambda line: _metric(line, name)


def _reward_mean_of(name: str) -> Getter:
    return lambda line: (line.get("observation") or {}).get("reward_means", {}).get(name)


def _entry(section: str, key: str, field_name: str) -> Getter:
    """A field of one criterion or plateau test in a metrics line (section "criteria" or "plateau")."""
    return lambda line: ((line.get(section) or {}).get(key) or {}).get(field_name)


def _flag(section: str, key: str, field_name: str) -> Getter:
    """1.0 on the steps where that field is true (a criterion holds, a test says plateaued), else nothing."""
    return lambda line: 1.0 if ((line.get(section) or {}).get(key) or {}).get(field_name) else None


def _timeline(run: Run) -> Figure:
    segments = _segments(run)
    plan_steps = sorted({s[2] for s in segments} | {int(t.get("to_step", 0)) for t in run.transitions})
    labels = _labels(run)
    figure = _figure(10, 1.2 + 0.45 * len(plan_steps))
    axes = figure.add_subplot()
    for first, last, plan_step in segments:
        axes.barh(plan_step, last - first + 1, left=first - 0.5, height=0.6,
                  color=PHASE_COLOURS[plan_step % len(PHASE_COLOURS)], edgecolor="#555", lw=0.6)
    evidence = {line["step"]: line.get("decision", {}) for line in run.steps}
    titles: dict[str, str] = {}  # marker gid -> hover text, turned into SVG <title>s by _svg
    figure.hover_titles = titles  # type: ignore[attr-defined]  # read back by _svg
    for index, transition in enumerate(run.transitions):
        colour = ACTION_COLOURS.get(transition["action"], "#444")
        y = int(transition.get("to_step", 0))
        (marker,) = axes.plot([transition["step"] + 0.5], [y], marker="v", ms=9, color=colour, ls="none")
        gid = f"transition-{index}"
        marker.set_gid(gid)
        axes.annotate(f"{transition['action']} ({transition['reason']})", (transition["step"] + 0.5, y),
                      xytext=(4, 7), textcoords="offset points", fontsize=7, color=colour)
        titles[gid] = _transition_text(transition, evidence.get(transition["step"], {}))
    for line in run.steps:
        for index, result in enumerate(line.get("operator_results") or []):
            (marker,) = axes.plot([line["step"]], [-0.6], marker="^", ms=7, color="#444", ls="none")
            gid = f"operator-{line['step']}-{index}"
            marker.set_gid(gid)
            titles[gid] = (f"step {line['step']}: operator {result.get('command')} "
                                         f"(request {result.get('seq')}): {result.get('result')} - {result.get('message')}")
    axes.set_yticks(plan_steps, [f"{p + 1} {labels[p]}" for p in plan_steps], fontsize=8)
    axes.set_ylim(-1.1, max(plan_steps) + 0.9)
    axes.invert_yaxis()
    axes.set_xlabel("step")
    axes.set_title("phase timeline: plan steps, transitions (hover a marker for its evidence), operator requests (^)",
                   fontsize=9, y=1.0)
    axes.set_xlim(0.5, run.last["step"] + 0.5 + max(2, run.last["step"] * 0.15))
    return figure


def _watched_names(run: Run) -> tuple[list[str], list[str]]:
    criteria: dict[str, None] = {}
    plateau: dict[str, None] = {}
    for line in run.steps:
        criteria.update(dict.fromkeys(line.get("criteria") or {}))
        plateau.update(dict.fromkeys(line.get("plateau") or {}))
    return list(criteria), list(plateau)


def _base_metric(key: str) -> str:
    return key.split(" ", 1)[0]


def _watched(run: Run) -> Figure:
    """One chart per watched metric (value, window mean, threshold), then one for every plateau test.

    The plateau tests share one chart as statistic / bound, so tests with different units read on
    one scale (the test's own verdict is marked); the raw statistic and bound are in the page's
    table. Fewer axes: each costs tens of milliseconds to draw, and the report has a time budget.
    """
    criteria_keys, plateau_keys = _watched_names(run)
    names = list(dict.fromkeys([_base_metric(k) for k in criteria_keys + plateau_keys]))
    rows = (len(names) + 1) // 2
    figure = _figure(10, 0.7 + 1.6 * (rows + 1), rows=rows + 1)
    if not names:
        figure.text(0.5, 0.5, "no criteria or plateau tests recorded", ha="center")
        return figure
    grid = figure.add_gridspec(rows + 1, 2)
    first = None
    for index, name in enumerate(names):
        axes = figure.add_subplot(grid[index // 2, index % 2], sharex=first)
        first = first or axes
        _shade_phases(axes, run)
        steps, values = _series(run, _metric_of(name))
        axes.plot(steps, values, lw=0.6, color="#999", label="per step")
        for key in (k for k in criteria_keys if _base_metric(k) == name):
            mean_steps, means = _series(run, _entry("criteria", key, "value"), gaps=True)
            axes.plot(mean_steps, means, lw=1.4, color="#1f77b4", label="window mean")
            t_steps, thresholds = _series(run, _entry("criteria", key, "threshold"))
            axes.plot(t_steps, thresholds, ls="none", marker="_", ms=4, color="#d62728", label="threshold")
            held = _series(run, _flag("criteria", key, "holds"))[0]
            if held:
                axes.plot(held, [max(values + thresholds, default=1.0)] * len(held), ls="none", marker="|", ms=4,
                          color="#2ca02c", label="criterion holds")
        axes.set_title(name, fontsize=8, y=1.0, pad=2)
        if index == 0:
            axes.legend(fontsize=6, loc="upper left")
        if index < len(names) - 2:
            axes.tick_params(labelbottom=False)
    plateau = figure.add_subplot(grid[rows, :], sharex=first)
    _shade_phases(plateau, run)
    for index, key in enumerate(plateau_keys):
        def ratio(line: Mapping[str, Any], k: str = key) -> float | None:
            entry = (line.get("plateau") or {}).get(k) or {}
            statistic, bound = entry.get("statistic"), entry.get("bound")
            ok = isinstance(statistic, (int, float)) and isinstance(bound, (int, float)) and bound > 0
            return statistic / bound if ok else None  # type: ignore[operator]

        colour = f"C{index % 10}"
        steps, values = _series(run, ratio, gaps=True)
        test = next((line["plateau"][key].get("test") for line in run.steps if key in (line.get("plateau") or {})), "")
        plateau.plot(steps, values, lw=1.1, color=colour, label=f"{key} ({test})")
        flat = _series(run, _flag("plateau", key, "plateaued"))[0]
        if flat:
            plateau.plot(flat, [-0.08 * (index + 1)] * len(flat), ls="none", marker="|", ms=4, color=colour)
    plateau.axhline(1.0, color="#d62728", lw=0.8, ls="--")
    plateau.set_title("plateau tests: statistic / bound (ticks below zero: the test's verdict was 'plateaued')",
                      fontsize=8, y=1.0, pad=2)
    plateau.set_xlabel("step")
    if plateau_keys:
        plateau.legend(fontsize=6, loc="upper right", ncols=2)
    return figure


def _rewards(run: Run) -> Figure:
    figure = _figure(10, 2.6)
    axes = figure.add_subplot()
    _shade_phases(axes, run)
    names: dict[str, None] = {}
    for line in run.steps:
        names.update(dict.fromkeys((line.get("observation") or {}).get("reward_means", {})))
    for name in names:
        steps, values = _series(run, _reward_mean_of(name), gaps=True)  # a reward outside the active set has no line there
        axes.plot(steps, values, lw=1.0, label=name)
    steps, values = _series(run, lambda line: _metric(line, "reward_mean"))
    axes.plot(steps, values, lw=1.6, color="black", label="summed (reward_mean)")
    axes.set_title("rewards per function (mean over the step's completions)", fontsize=9, y=1.0)
    axes.set_xlabel("step")
    axes.legend(fontsize=6, loc="upper left", ncols=2)
    return figure


def _learnability(run: Run) -> Figure:
    figure = _figure(10, 2.4)
    axes = figure.add_subplot()
    _shade_phases(axes, run)
    for name in LEARNABILITY:
        steps, values = _series(run, _metric_of(name))
        axes.plot(steps, values, lw=1.0, label=name)
    axes.set_title("learnability: share of GRPO groups with reward variance, mean |advantage| (0 = nothing to learn)",
                   fontsize=9, y=1.0)
    axes.set_xlabel("step")
    axes.legend(fontsize=6, loc="upper left")
    return figure


def heldout_rows(run: Run) -> list[tuple[int, str, Mapping[str, float]]]:
    rows = [(int(e["step"]), decoding, (e.get(decoding) or {}).get("metrics", {}))
            for e in run.evaluations for decoding in ("greedy", "sampled") if e.get(decoding)]
    if not rows:  # an older run: the evaluation rides on the next step's metrics line
        rows = [(int(line["step"]), "greedy", line["eval"].get("metrics", {})) for line in run.steps if line.get("eval")]
    return rows


def _heldout(run: Run) -> Figure:
    figure = _figure(10, 2.6)
    axes = figure.add_subplot()
    _shade_phases(axes, run)
    rows = heldout_rows(run)
    if not rows:
        axes.text(0.5, 0.5, "no held-out evaluation in this run ([eval] every = 0, or none due yet)",
                  ha="center", va="center", transform=axes.transAxes, fontsize=9, color="#777")
    names = [n for n in HELDOUT_PREFERRED if any(n in metrics for _, _, metrics in rows)]
    names += sorted({n for _, _, metrics in rows for n in metrics if n.startswith("domain_compliance:")})
    for index, name in enumerate(names):
        colour = f"C{index % 10}"
        for decoding, style in (("greedy", "-"), ("sampled", "--")):
            points = [(s, m[name]) for s, d, m in rows if d == decoding and isinstance(m.get(name), (int, float))]
            if points:
                axes.plot(*zip(*points), ls=style, marker="o", ms=3, color=colour,
                          label=f"{name} ({decoding})")
    axes.set_title("held-out evaluation (greedy solid, sampled dashed)", fontsize=9, y=1.0)
    axes.set_xlabel("step")
    axes.set_xlim(0.5, run.last["step"] + 0.5)
    if names:
        axes.legend(fontsize=6, loc="upper left", ncols=2)
    return figure


def _step_time(run: Run) -> Figure:
    """Wall seconds per step; the controller's own time is a millisecond, so it is given as a share."""
    figure = _figure(10, 2.4)
    axes = figure.add_subplot()
    _shade_phases(axes, run)
    steps, values = _series(run, lambda line: line.get("step_seconds"))
    axes.plot(steps, values, lw=1.0, label="step (s)")
    controller = _series(run, lambda line: line.get("controller_seconds"))[1]
    share = ""
    if controller and values:
        share = (f"; controller {1000 * sum(controller) / len(controller):.2f} ms a step on average, "
                 f"{sum(controller) / sum(values):.2%} of the wall time")
    axes.set_ylim(bottom=0)
    axes.set_title(f"wall time per step (evaluation and checkpoint steps stand out){share}", fontsize=9, y=1.0)
    axes.set_xlabel("step")
    axes.set_ylabel("seconds", fontsize=8)
    return figure


def _transition_text(transition: Mapping[str, Any], decision: Mapping[str, Any]) -> str:
    evidence = json.dumps(decision.get("evidence", {}), sort_keys=True, default=str)
    return (f"step {transition['step']}: {transition['action']} {transition.get('from_phase')} -> "
            f"{transition.get('to_phase')} ({transition['reason']}); evidence: {evidence[:1500]}")


def svg_of(figure: Figure) -> str:
    """The figure as inline SVG, text kept as text; markers with a gid get their hover <title>."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "autocurriculum"}):
        figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype: the SVG sits inside HTML

    titles: Mapping[str, str] = getattr(figure, "hover_titles", {})

    def titled(match: re.Match[str]) -> str:
        text = titles.get(match.group(1))
        return match.group(0) if text is None else f"{match.group(0)}<title>{html.escape(text)}</title>"

    return re.sub(r'<g id="((?:transition|operator)-[^"]+)">', titled, svg)
