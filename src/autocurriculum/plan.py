"""The plan: a policy's phases expanded into steps that each change exactly one factor.

A plan step changes the data mixture OR the reward set on entry, never both (docs/design.md, "Why
single-factor steps"): a phase change that differs in both is split into two steps with a settle
check between them. `expand_plan` builds the plan (pure), `describe_plan` is what `validate` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from autocurriculum.spec import (
    REWARD_PARAMETERS,
    BudgetAction,
    ChangeOrder,
    Criterion,
    Mixture,
    PhaseSpec,
    PlateauSpec,
    Policy,
    RewardSet,
    Source,
    SubsetSpec,
    same_reward_set,
)


class Factor(StrEnum):
    """What a plan step changes on entry. Never both: that is the rule this type encodes."""

    NONE = "none"  # the first step: nothing changes, training starts here
    DATA = "data"
    REWARDS = "rewards"


class ExitGate(StrEnum):
    """What must hold before the controller leaves a plan step automatically."""

    PHASE_CRITERIA = "phase_criteria"  # the phase's criteria AND its plateau tests
    SETTLE = "settle"  # half of a split switch: guards hold and the watched metrics plateau
    TERMINAL = "terminal"  # the last step: criteria mark the run done, nothing follows


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One single-factor step of the expanded plan (what `validate` prints, numbered from 1)."""

    index: int  # 0-based position in the plan
    phase_index: int  # 0-based index into Policy.phases
    phase: str
    part: str  # "" for a whole phase; "a" / "b" for the halves of a split switch
    mixture: Mixture
    rewards: RewardSet
    changes: Factor
    exit_gate: ExitGate
    criteria: tuple[Criterion, ...]  # must hold (with the plateau tests) to leave this step
    plateau: tuple[PlateauSpec, ...]
    max_steps: int
    on_budget_exhausted: BudgetAction

    @property
    def label(self) -> str:
        return f"{self.phase}{'/' + self.part if self.part else ''}"


Plan = tuple[PlanStep, ...]


# ---------------------------------------------------------------- expansion


def _step(index: int, phase_index: int, phase: PhaseSpec, part: str, mixture: Mixture, rewards: RewardSet,
          changes: Factor, gate: ExitGate, settle_plateau: tuple[PlateauSpec, ...] = ()) -> PlanStep:
    settle = gate is ExitGate.SETTLE
    return PlanStep(
        index=index,
        phase_index=phase_index,
        phase=phase.name,
        part=part,
        mixture=mixture,
        rewards=rewards,
        changes=changes,
        exit_gate=gate,
        criteria=() if settle else phase.criteria,
        plateau=settle_plateau if settle else phase.plateau,
        max_steps=phase.max_steps,
        on_budget_exhausted=phase.on_budget_exhausted,
    )


def expand_plan(policy: Policy) -> Plan:
    """Phases into plan steps that each change exactly one factor.

    The first phase is step 0 (changes nothing: training starts there). A transition that changes
    only the data or only the rewards is one step. A transition that changes both becomes two:
    part "a" changes the factor named by the later phase's change_order and must settle (at least
    judgement.settle_steps, guards hold, the previous phase's watched metrics plateau again) before
    part "b" changes the other factor and carries the phase's own criteria and plateau tests. The
    step before each transition leaves on its phase's criteria AND plateau; the last is terminal.
    """
    steps: list[PlanStep] = []
    phases = policy.phases
    for i, phase in enumerate(phases):
        gate = ExitGate.TERMINAL if i == len(phases) - 1 else ExitGate.PHASE_CRITERIA
        if i == 0:
            steps.append(_step(0, 0, phase, "", phase.mixture, phase.rewards, Factor.NONE, gate))
            continue
        previous = phases[i - 1]
        data_changes = previous.mixture != phase.mixture
        rewards_change = not same_reward_set(previous.rewards, phase.rewards)
        if data_changes and rewards_change:
            data_first = phase.change_order is ChangeOrder.DATA_FIRST
            first, second = (Factor.DATA, Factor.REWARDS) if data_first else (Factor.REWARDS, Factor.DATA)
            middle_mixture = phase.mixture if data_first else previous.mixture
            middle_rewards = previous.rewards if data_first else phase.rewards
            steps.append(_step(len(steps), i, phase, "a", middle_mixture, middle_rewards, first, ExitGate.SETTLE,
                               previous.plateau))
            steps.append(_step(len(steps), i, phase, "b", phase.mixture, phase.rewards, second, gate))
        else:
            factor = Factor.DATA if data_changes else Factor.REWARDS
            # an unchanged reward set stays the very same tuple, so "unchanged" is plain equality downstream
            rewards = previous.rewards if factor is Factor.DATA else phase.rewards
            steps.append(_step(len(steps), i, phase, "", phase.mixture, rewards, factor, gate))
    return tuple(steps)


# ---------------------------------------------------------------- what `validate` prints


def describe_plan(policy: Policy, plan: Plan) -> str:
    """The numbered single-factor plan `validate` prints: what changes, what runs, what must hold to leave."""
    lines = []
    for step in plan:
        what = {
            Factor.NONE: "start",
            Factor.DATA: "changes the DATA mixture (reward set unchanged)",
            Factor.REWARDS: "changes the REWARD set (data mixture unchanged)",
        }[step.changes]
        if step.part:
            phase = policy.phases[step.phase_index]
            half = "first" if step.part == "a" else "second"
            what += f"; {half} half of a split switch ({phase.change_order.value})"
        lines.append(f"{step.index + 1}. {step.label}: {what}")
        lines.append(f"     data:    {_mixture_text(step.mixture)}")
        lines.append(f"     rewards: {_rewards_text(step.rewards)}")
        plateau = " and ".join(f"{p.metric} ({p.test.value}{', eval' if p.source is Source.EVAL else ''})"
                               for p in step.plateau) or "-"
        if step.exit_gate is ExitGate.SETTLE:
            guards = ", ".join(g.metric for g in policy.judgement.guards) or "none set"
            lines.append(f"     leave when settled: >= {policy.judgement.settle_steps} steps, guards hold ({guards}), "
                         f"plateau of {plateau}")
        else:
            head = "done when" if step.exit_gate is ExitGate.TERMINAL else "leave when"
            conditions = [f"{c.metric} {c.comparison.value} {c.threshold:g}" + (" [eval]" if c.source is Source.EVAL else "")
                          for c in step.criteria]
            if step.plateau:
                conditions.append(f"plateau of {plateau}")
            lines.append(f"     {head}: {' AND '.join(conditions) or 'never (runs until its budget)'}")
        lines.append(f"     budget:  {step.max_steps} steps, then {step.on_budget_exhausted.value}")
    return "\n".join(lines)


def _mixture_text(mixture: Mixture) -> str:
    return ", ".join(f"{c.source} {c.weight * 100:.3g}%" + ("" if c.subset.is_whole else f" [{_subset_text(c.subset)}]")
                     for c in mixture.components)


def _rewards_text(rewards: RewardSet) -> str:
    """Names, with the parameters that differ from the defaults (`spec.REWARD_PARAMETERS`)."""
    parts = []
    for reward in rewards:
        if reward.is_user_function:
            given = "".join(f", {k}={v!r}" for k, v in reward.params.items())
            parts.append(f"{reward.name}({reward.function}{given})")
            continue
        defaults = REWARD_PARAMETERS.get(reward.name, {})
        changed = {k: v for k, v in reward.params.items() if defaults.get(k) != v}
        parts.append(reward.name + (f"({', '.join(f'{k}={v:g}' for k, v in changed.items())})" if changed else ""))
    return ", ".join(parts)


def _subset_text(subset: SubsetSpec) -> str:
    parts = []
    if (subset.start, subset.end) != (0.0, 1.0):
        parts.append(f"slice {subset.start:g}-{subset.end:g}")
    if subset.max_question_chars is not None:
        parts.append(f"<= {subset.max_question_chars} chars")
    if subset.max_question_tokens is not None:
        parts.append(f"<= {subset.max_question_tokens} tokens")
    return ", ".join(parts)
