"""Build grafana/dashboards/autocurriculum.json from plain Python.

Run `python grafana/build_dashboard.py` after changing a panel; tests check the committed JSON is
what this script produces, that every panel has a query and a unit, that only `${datasource}` is
used, and that every metric a panel names exists in the exporter's registry.
"""

from __future__ import annotations

import json
from pathlib import Path

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
OUT = Path(__file__).resolve().parent / "dashboards" / "autocurriculum.json"

# (title, what it answers, unit, panel type, [(expr, legend)], width, height)
PANELS = [
    ("Phase", "Which curriculum phase the run is in, over time", "none", "state-timeline",
     [('max by (autocurriculum_phase) (autocurriculum_phase) == 1', "{{autocurriculum_phase}}")], 16, 5),
    ("Plan step", "Where in the single-factor plan the run is, and how long it has been there", "none", "stat",
     [("autocurriculum_plan_step", "plan step"), ("autocurriculum_steps_in_plan_step", "steps in it"),
      ("autocurriculum_plan_step_budget_steps", "budget")], 8, 5),
    ("Output contract (rollouts)", "Is the model keeping the contract? Dashed: the phase criteria", "percentunit", "timeseries",
     [('autocurriculum_answer_extraction_ratio{split="rollout"}', "answer extraction"),
      ('autocurriculum_strict_compliance_ratio{split="rollout"}', "strict compliance"),
      ('autocurriculum_refusal_ratio{split="rollout"}', "refusal"),
      ('autocurriculum_rambling_ratio{split="rollout"}', "rambling"),
      ("autocurriculum_criterion_threshold", "criterion {{metric}} {{comparison}}")], 12, 8),
    ("Completion length", "Is output length stable? Are wrong answers verbose?", "none", "timeseries",
     [('autocurriculum_completion_length_tokens{split="rollout"}', "mean length (tokens)"),
      ('autocurriculum_wrong_answer_length_tokens{split="rollout"}', "wrong answers (tokens)")], 12, 8),
    ("Accuracy and hallucination", "Is the model right more often, and does it invent answers? (rollouts vs held-out)",
     "percentunit", "timeseries",
     [("autocurriculum_accuracy_ratio", "accuracy {{split}}"),
      ("autocurriculum_hallucination_ratio", "hallucination {{split}}")], 12, 8),
    ("Per-domain compliance", "Does the contract hold in every domain of the mixture?", "percentunit", "timeseries",
     [("autocurriculum_domain_compliance_ratio", "{{domain}} {{split}}")], 12, 8),
    ("Plateau tests", "How close is each watched metric to a plateau? (statistic below its bound = plateau)",
     "none", "timeseries",
     [("autocurriculum_plateau_statistic", "{{metric}} {{test}}"),
      ("autocurriculum_plateau_bound", "bound {{metric}}")], 12, 8),
    ("Criteria and plateau", "Which phase criteria hold and which metrics have plateaued (1 = yes)", "none", "timeseries",
     [("autocurriculum_criterion_holds", "criterion {{metric}}"),
      ("autocurriculum_plateau_reached", "plateau {{metric}}")], 12, 8),
    ("Learning signal", "Do GRPO groups still disagree? 0 means nothing left to learn", "percentunit", "timeseries",
     [('autocurriculum_learnable_group_ratio{split="rollout"}', "groups with reward variance"),
      ('autocurriculum_mean_abs_advantage{split="rollout"}', "mean |advantage|")], 12, 8),
    ("Rewards", "Mean reward of each active reward function", "none", "timeseries",
     [("autocurriculum_reward_function_mean", "{{function}}"),
      ('autocurriculum_reward_mean{split="rollout"}', "summed")], 12, 8),
    ("Transitions", "Switches and rollbacks, by reason", "none", "timeseries",
     [("increase(autocurriculum_transitions_total[5m])", "{{from_phase}} -> {{to_phase}} ({{reason}})"),
      ("increase(autocurriculum_rollbacks_total[5m])", "rollbacks")], 12, 8),
    ("Alerts", "Collapse, no reward variance, NaN rewards, hold, checkpoint failures (1 = active)", "none", "timeseries",
     [("autocurriculum_alert", "{{alert}}")], 12, 8),
    ("Step time and controller overhead", "How long a step takes, and how much of it the controller costs",
     "s", "timeseries",
     [("rate(autocurriculum_step_duration_seconds_sum[5m]) / rate(autocurriculum_step_duration_seconds_count[5m])",
       "step"), ("autocurriculum_controller_step_seconds", "controller")], 12, 8),
    ("Tunix", "Tunix's own loss and KL", "none", "timeseries",
     [('autocurriculum_tunix_figure{name=~"loss|kl"}', "{{name}}")], 12, 8),
    ("Operator requests", "ctl commands by result", "none", "timeseries",
     [("increase(autocurriculum_operator_requests_total[5m])", "{{command}} {{result}}")], 12, 8),
]


def build() -> dict[str, object]:
    panels, x, y, row_height = [], 0, 0, 0
    for index, (title, description, unit, kind, queries, width, height) in enumerate(PANELS, start=1):
        if x + width > 24:
            x, y = 0, y + row_height
            row_height = 0
        panel: dict[str, object] = {
            "id": index, "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": width, "h": height},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                        for i, (expr, legend) in enumerate(queries)],
        }
        if title.startswith("Output contract"):
            panel["fieldConfig"]["overrides"] = [{  # type: ignore[index]
                "matcher": {"id": "byRegexp", "options": "^criterion.*"},
                "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}],
            }]
        panels.append(panel)
        x += width
        row_height = max(row_height, height)
    return {
        "title": "autocurriculum", "uid": "autocurriculum", "schemaVersion": 39, "version": 1, "editable": True,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "10s", "tags": ["autocurriculum", "grpo"],
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus", "current": {}}]},
        "annotations": {"list": [{
            "name": "Phase switches", "enable": True, "iconColor": "orange", "datasource": DATASOURCE,
            "expr": "changes(autocurriculum_plan_step[1m]) > 0", "step": "15s",
            "titleFormat": "plan step changed", "textFormat": "now plan step {{value}}",
        }]},
        "panels": panels,
    }


def main() -> None:
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
