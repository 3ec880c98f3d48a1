"""Build grafana/dashboards/autocurriculum.json from plain Python dicts.

Run `python grafana/build_dashboard.py` after changing a panel (`--check` exits 1 when the committed
JSON is out of date; `--markdown` prints the panel table of grafana/README.md). Building the JSON here rather than editing it in Grafana lets the tests check
what a hand-edited file cannot: every metric a panel names exists in the exporter's registry, every
expression passes `promtool check rules` and returns data from a real Prometheus, every panel has
a query, a unit and a description, ids are unique and the only datasource is `${datasource}`.

Each panel's description says the question it answers; grafana/README.md repeats them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
OUT = Path(__file__).resolve().parent / "dashboards" / "autocurriculum.json"
CRITERION_LEGEND = "criterion {{metric}} {{comparison}}"
TOKENS = "suffix: tokens"


def new_or_increased(counter: str, window: str = "1m") -> str:
    """A counter's increase, including a labelled series that first appeared (at 1) in the window."""
    return f"increase({counter}[{window}]) > 0 or ({counter} unless {counter} offset {window})"


def threshold(metrics: str) -> tuple[str, str]:
    """The current phase's criterion threshold for these metrics (a regex), drawn as a dashed line."""
    return f'autocurriculum_criterion_threshold{{metric=~"{metrics}"}}', CRITERION_LEGEND


@dataclass(frozen=True)
class Panel:
    title: str
    answers: str  # the question the panel answers (its description)
    unit: str
    queries: list[tuple[str, str]]  # (PromQL, legend)
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    ratio: bool = False  # a share in [0, 1]
    mappings: list[dict[str, object]] = field(default_factory=list)  # value -> text/colour


PANELS = [
    Panel("Phase", "Which curriculum phase is the run in, and since when?", "none",
          [("autocurriculum_phase", "{{autocurriculum_phase}}")], kind="state-timeline", width=16, height=5,
          mappings=[{"type": "value", "options": {"0": {"text": " ", "color": "transparent"},
                                                  "1": {"text": "active", "color": "green"}}}]),
    Panel("Plan step", "Where in the single-factor plan is the run, how long has it been there, and is switching held?",
          "none", [("autocurriculum_plan_step", "plan step"), ("autocurriculum_plan_steps", "of"),
                   ("autocurriculum_training_step", "training step"),
                   ("autocurriculum_steps_in_plan_step", "steps in this plan step"),
                   ("autocurriculum_plan_step_budget_steps", "budget"),
                   ('autocurriculum_alert{alert="hold"}', "held")], kind="stat", width=8, height=5),
    Panel("Output contract (rollouts)",
          "Does the model keep the output contract? Dashed: the current phase's criteria (switch when they hold and the plateau tests pass)",
          "percentunit",
          [('autocurriculum_answer_extraction_ratio{split="rollout"}', "answer extraction"),
           ('autocurriculum_strict_compliance_ratio{split="rollout"}', "strict compliance"),
           threshold("extraction_rate|strict_compliance")], ratio=True),
    Panel("Refusal and rambling (rollouts)", "Does the model refuse or talk outside the tags? Dashed: the phase criteria",
          "percentunit",
          [('autocurriculum_refusal_ratio{split="rollout"}', "refusal"),
           ('autocurriculum_rambling_ratio{split="rollout"}', "rambling"),
           threshold("refusal_rate|rambling_rate")], ratio=True),
    Panel("Completion length", "Is output length stable (phase 1's plateau)? Are wrong answers verbose (phase 2's penalty)?",
          TOKENS,
          [('autocurriculum_completion_length_tokens{split="rollout"}', "mean length"),
           ('autocurriculum_wrong_answer_length_tokens{split="rollout"}', "wrong answers"),
           threshold("mean_length_tokens|wrong_answer_length_tokens")]),
    Panel("Accuracy and hallucination", "Is the model right more often, and does it invent answers? Dashed: the phase criteria",
          "percentunit",
          [('autocurriculum_accuracy_ratio{split="rollout"}', "accuracy"),
           ('autocurriculum_hallucination_ratio{split="rollout"}', "hallucination"),
           threshold("accuracy|hallucination_rate")], ratio=True),
    Panel("Per-domain compliance", "Does the contract hold in every domain of the mixture (phase 3)? Dashed: the phase criteria",
          "percentunit",
          [('autocurriculum_domain_compliance_ratio{split="rollout"}', "{{domain}}"),
           threshold("domain_compliance:.*")], ratio=True),
    Panel("Held-out vs rollouts", "Do the held-out figures (greedy, fixed items) agree with what training sees?",
          "percentunit",
          [("autocurriculum_accuracy_ratio", "accuracy {{split}}"),
           ("autocurriculum_strict_compliance_ratio", "strict compliance {{split}}")], ratio=True),
    Panel("Plateau tests", "How close is each watched metric to a plateau? A statistic below its bound is a plateau",
          "none",
          [("autocurriculum_plateau_statistic", "{{metric}} {{test}}"),
           ("autocurriculum_plateau_bound", "bound {{metric}} {{test}}")]),
    Panel("Criteria and plateaus", "Which phase criteria hold and which metrics have plateaued (1 = yes)?", "none",
          [("autocurriculum_criterion_holds", "criterion {{metric}}"),
           ("autocurriculum_plateau_reached", "plateau {{metric}}")], kind="state-timeline"),
    Panel("Learning signal", "Do GRPO groups still disagree? No reward variance means nothing left to learn",
          "percentunit",
          [('autocurriculum_learnable_group_ratio{split="rollout"}', "groups with reward variance"),
           ('autocurriculum_mean_abs_advantage{split="rollout"}', "mean |advantage|")]),
    Panel("Rewards", "What does each active reward function give, and the sum?", "none",
          [("autocurriculum_reward_function_mean", "{{function}}"),
           ('autocurriculum_reward_mean{split="rollout"}', "summed")]),
    Panel("Transitions and operator requests", "When did the plan step change, why, and what did the operator ask?",
          "none",
          [(new_or_increased("autocurriculum_transitions_total", "5m"), "{{from_phase}} -> {{to_phase}} ({{reason}})"),
           ("increase(autocurriculum_rollbacks_total[5m])", "rollbacks"),
           ("increase(autocurriculum_operator_requests_total[5m])", "ctl {{command}} {{result}}")]),
    Panel("Alerts", "Collapse, no reward variance, NaN rewards, hold, checkpoint failure: which holds now (1 = yes)?",
          "none", [("autocurriculum_alert", "{{alert}}"),
                   ("increase(autocurriculum_nonfinite_rewards_total[5m])", "NaN rewards in 5m")], kind="state-timeline"),
    Panel("Step time", "How long does a training step take?", "s",
          [("rate(autocurriculum_step_duration_seconds_sum[5m]) / rate(autocurriculum_step_duration_seconds_count[5m])",
            "mean"),
           ("histogram_quantile(0.9, sum by (le) (rate(autocurriculum_step_duration_seconds_bucket[5m])))", "p90")]),
    Panel("Controller overhead", "What does the controller (observations, decide, export, logs) cost per step?", "s",
          [("autocurriculum_controller_step_seconds", "last step"),
           ("rate(autocurriculum_controller_seconds_total[5m]) / rate(autocurriculum_step_duration_seconds_count[5m])",
            "mean per step")]),
    Panel("Tunix", "Tunix's own figures (loss, KL, rewards) as its metrics logger reports them", "none",
          [("autocurriculum_tunix_figure", "{{name}}")], width=24),
]

DASHED = [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
          {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}]


def panel_json(index: int, panel: Panel, x: int, y: int) -> dict[str, object]:
    defaults: dict[str, object] = {"unit": panel.unit}
    if panel.ratio:
        defaults.update(min=0, max=1)
    if panel.mappings:
        defaults["mappings"] = panel.mappings
    overrides = []
    if any(legend == CRITERION_LEGEND for _, legend in panel.queries):
        overrides.append({"matcher": {"id": "byRegexp", "options": "^criterion .*"}, "properties": DASHED})
    return {
        "id": index, "type": panel.kind, "title": panel.title, "description": panel.answers, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "none"}},
        "targets": [{"refId": chr(65 + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(panel.queries)],
    }


ANNOTATIONS = [
    {"name": "Phase switches", "enable": True, "iconColor": "orange", "datasource": DATASOURCE,
     "expr": new_or_increased("autocurriculum_transitions_total"), "step": "15s",
     "titleFormat": "{{from_phase}} -> {{to_phase}}", "textFormat": "{{reason}}", "tagKeys": "reason"},
    {"name": "Rollbacks", "enable": True, "iconColor": "red", "datasource": DATASOURCE,
     "expr": "increase(autocurriculum_rollbacks_total[1m]) > 0", "step": "15s",
     "titleFormat": "rollback", "textFormat": "a switch was rolled back after a regression"},
    {"name": "Operator requests", "enable": True, "iconColor": "blue", "datasource": DATASOURCE,
     "expr": "increase(autocurriculum_operator_requests_total[1m]) > 0", "step": "15s",
     "titleFormat": "ctl {{command}}", "textFormat": "{{result}}", "tagKeys": "command,result"},
]


def build() -> dict[str, object]:
    panels, x, y, row_height = [], 0, 0, 0
    for index, panel in enumerate(PANELS, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(panel_json(index, panel, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "title": "autocurriculum", "uid": "autocurriculum", "schemaVersion": 39, "version": 1, "editable": True,
        "description": "A GRPO run driven through behaviour -> correctness -> domains by the autocurriculum daemon",
        "time": {"from": "now-1h", "to": "now"}, "refresh": "10s", "tags": ["autocurriculum", "grpo"],
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus", "current": {}, "hide": 0}]},
        "annotations": {"list": ANNOTATIONS},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def panel_table() -> str:
    """The README's "what each panel answers" table (`--markdown`); a test keeps the two in step."""
    lines = ["| panel | answers |", "|---|---|"]
    lines += [f"| {panel.title} | {panel.answers} |" for panel in PANELS]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[1:] == ["--markdown"]:
        print(panel_table(), end="")
        return 0
    if argv[1:] == ["--check"]:
        if OUT.read_text() != render():
            print(f"{OUT} is out of date: run python grafana/build_dashboard.py", file=sys.stderr)
            return 1
        print(f"{OUT} is up to date")
        return 0
    OUT.write_text(render())
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
