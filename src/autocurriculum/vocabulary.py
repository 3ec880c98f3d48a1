"""The controller's vocabulary: what a decision can do, why, and which alerts it raises.

These words leave the process: they are written into metrics.jsonl and transitions.jsonl, exported
as Prometheus label values, matched by the Grafana alert rules and read back by `replay`. One
definition here keeps the controller, the exporter and the logs from drifting apart. The module
imports nothing of the package.
"""

from __future__ import annotations

from enum import StrEnum

# Alerts a decision's evidence may carry (`evidence["alerts"]`), and the daemon's own.
ALERT_COLLAPSE = "collapse"
ALERT_NO_VARIANCE = "no_reward_variance"
ALERT_NONFINITE_REWARDS = "nonfinite_rewards"
ALERT_NONFINITE_METRICS = "nonfinite_metrics"
ALERT_HOLD = "hold"
ALERT_BUDGET = "budget_exhausted"
ALERT_REGRESSION = "guard_regression"
ALERT_CHECKPOINT_FAILED = "checkpoint_failed"  # raised by the daemon, not by decide()

# Every alert, each exported as `autocurriculum_alert{alert=...}` (starting at 0): an alert Prometheus
# cannot see is an alert nobody is paged for (tests/test_exporter.py checks that none is left out).
EXPORTED_ALERTS = (ALERT_COLLAPSE, ALERT_NO_VARIANCE, ALERT_NONFINITE_REWARDS, ALERT_NONFINITE_METRICS, ALERT_HOLD,
                   ALERT_BUDGET, ALERT_REGRESSION, ALERT_CHECKPOINT_FAILED)

# What became of an operator request (`OperatorResult.result`).
REQUEST_APPLIED = "applied"
REQUEST_REJECTED = "rejected"
REQUEST_RESULTS = (REQUEST_APPLIED, REQUEST_REJECTED)


class ActionKind(StrEnum):
    NONE = "none"
    SWAP_DATA = "swap_data"
    SWAP_REWARDS = "swap_rewards"
    ROLLBACK = "rollback"
    RESTORE = "restore_checkpoint"  # weights and optimizer from before a collapse; the plan step stays
    HOLD = "hold"
    RESUME = "resume"
    DONE = "done"


class Reason(StrEnum):
    NOTHING = "nothing_to_do"
    GRACE = "grace_period"
    WAITING = "criteria_or_plateau_not_met"
    REGRESSION_PENDING = "guard_regression_under_judgement"
    CRITERIA_AND_PLATEAU = "criteria_and_plateau"
    SETTLED = "settled"
    OPERATOR_ADVANCE = "operator_advance"
    OPERATOR_SET = "operator_set"
    OPERATOR_HOLD = "operator_hold"
    OPERATOR_RESUME = "operator_resume"
    ROLLBACK_REGRESSION = "rollback_regression"
    ROLLBACK_LIMIT_HOLD = "rollback_limit_hold"
    COLLAPSE_RESTORE = "collapse_restore"
    COLLAPSE_LIMIT_HOLD = "collapse_restore_limit_hold"
    BUDGET_EXHAUSTED = "step_budget_exhausted"
    BUDGET_HOLD = "step_budget_exhausted_hold"
    PHASE1_NOT_DONE = "phase1_criteria_never_held"
    HELD = "held"
    BLOCKED = "blocked_by_alert"
    DONE = "run_done"


AUTOMATIC_ADVANCES = frozenset({Reason.CRITERIA_AND_PLATEAU, Reason.SETTLED, Reason.BUDGET_EXHAUSTED})


# Action kinds that move no plan step, as the strings a metrics-log line carries.
QUIET_ACTIONS = frozenset(kind.value for kind in (ActionKind.NONE, ActionKind.HOLD, ActionKind.RESUME, ActionKind.DONE))
