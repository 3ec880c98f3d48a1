"""Metrics-log records of a synthetic run, built with the real summarize() and decide().

The exporter and dashboard tests need records with the exact shape the daemon writes (built by runlog.metrics_record)
and with every kind of event in them: switches, a hold, operator requests, held-out evaluations, a
step with a NaN reward, several domains. Completions are drawn at random with a compliance that
improves over time, rolled up by observation.summarize and judged by controller.decide, so the
criteria, plateau and decision fields are the controller's own; only the model is imaginary.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

from autocurriculum import controller, runlog
from autocurriculum.observation import CompletionRecord, StepObservation, summarize
from autocurriculum.override import Command, OperatorRequest
from autocurriculum.policy import Plan, PlanStep, Policy


def _completion(rng: random.Random, domain: str, skill: float, rewards: Sequence[str]) -> CompletionRecord:
    refused = rng.random() < max(0.0, 0.1 - skill / 10)
    contract_ok = not refused and rng.random() < skill
    extracted = contract_ok or (not refused and rng.random() < 0.5)
    correct = extracted and rng.random() < 0.3 + skill / 2
    length = rng.randint(10, 40)
    values = {}
    for name in rewards:
        if name == "strict_format_gate":
            values[name] = 0.5 if contract_ok else -1.0
        elif name == "punish_refusal":
            values[name] = -1.0 if refused else 0.0
        elif name == "check_answer_strict":
            values[name] = 1.0 if correct and contract_ok else 0.0
        else:
            values[name] = -0.01 * max(0, length - 30)
    return CompletionRecord(
        domain=domain,
        contract_ok=contract_ok,
        extracted=extracted,
        refused=refused,
        length_tokens=length,
        rambling=not contract_ok and not refused,
        correct=correct,
        hallucination=extracted and not correct and rng.random() < 0.3,
        empty=False,
        text_hash=rng.getrandbits(32),
        rewards=values,
    )


def _domains(policy: Policy, step: PlanStep) -> list[tuple[str, float]]:
    return [(policy.sources[c.source].domain, c.weight) for c in step.mixture.components]


def _observe(rng: random.Random, policy: Policy, plan_step: PlanStep, number: int, skill: float) -> StepObservation:
    group = policy.training.generations_per_prompt
    domains = _domains(policy, plan_step)
    rewards = [r.name for r in plan_step.rewards]
    records = []
    for _prompt in range(policy.training.prompts_per_step):
        domain = rng.choices([d for d, _ in domains], weights=[w for _, w in domains])[0]
        records += [_completion(rng, domain, skill, rewards) for _ in range(group)]
    return summarize(number, records, group)


def synthetic_run(
    policy: Policy,
    plan: Plan,
    steps: int,
    *,
    seed: int = 0,
    requests: Mapping[int, Sequence[OperatorRequest]] | None = None,
    eval_every: int = 10,
    nan_at: Sequence[int] = (),
    skill: Callable[[int], float] = lambda number: min(0.99, 0.5 + number / 60),
) -> list[dict[str, object]]:
    """Up to `steps` metrics-log records, fewer when the curriculum ends.

    `requests` maps a step number to the operator requests it sees; `skill(step)` is the imaginary
    model's chance of keeping the contract (its accuracy follows it).
    """
    rng = random.Random(seed)
    state = controller.initial_state(plan)
    out: list[dict[str, object]] = []
    requests = requests or {}
    for number in range(1, steps + 1):
        here = plan[state.plan_step]
        observation = _observe(rng, policy, here, number, skill(number))
        if number in nan_at:
            observation = StepObservation(observation.step, observation.completions, observation.metrics,
                                          observation.domain_counts, observation.reward_means, nonfinite=1)
        evaluation = _observe(rng, policy, here, number, skill(number)) if number % eval_every == 0 else None
        seen = list(requests.get(number, ()))
        decision = controller.decide(policy, plan, state, observation, seen, evaluation)
        state = decision.state
        after = plan[state.plan_step]
        out.append(runlog.metrics_record(
            step=number, after=after, decision=decision, observation=observation, evaluation=evaluation,
            requests=seen, time=1_764_057_600.0 + number,
            tunix={"loss": math.exp(-number / 50), "kl": 0.001 * number,
                   "rewards_mean": observation.metrics.get("reward_mean", 0.0)},
            step_seconds=0.1 + rng.random() * 0.4, controller_seconds=0.001 + rng.random() * 0.004,
            batch_ids=[f"synthetic-{number}-{i}" for i in range(policy.training.prompts_per_step)],
        ))
        if decision.action.kind is controller.ActionKind.DONE:
            break
    return out


def full_tour(policy: Policy, plan: Plan, steps: int = 400) -> list[dict[str, object]]:
    """A run with every kind of event: operator hold and resume, a rejected set, a NaN reward, a
    rollback (the imaginary model forgets the format right after the first switch), every plan step
    visited, and the terminal step reached."""
    requests = {
        3: [OperatorRequest(1, Command.HOLD, reason="look at lengths")],
        6: [OperatorRequest(2, Command.RESUME, reason="fine")],
        8: [OperatorRequest(3, Command.SET, phase="no_such_phase", reason="typo")],
    }

    def skill(number: int) -> float:
        return 0.3 if 36 <= number < 70 else min(0.99, 0.5 + number / 60)

    return synthetic_run(policy, plan, steps, requests=requests, nan_at=(15,), skill=skill)


def transition_line(record: Mapping[str, object], plan: Plan, previous_plan_step: int) -> dict[str, object] | None:
    """The transitions.jsonl line the daemon writes for a metrics-log record, or None when it decided nothing.

    The same fields as daemon.reporting.transition_record, rebuilt from the record's stored decision.
    """
    decision = record["decision"]
    assert isinstance(decision, Mapping)
    if decision["action"] == "none":
        return None
    return {
        "step": record["step"], "action": decision["action"], "factor": decision["factor"],
        "from_step": decision["from_step"], "to_step": decision["to_step"],
        "from_phase": plan[previous_plan_step].label, "to_phase": plan[int(record["plan_step"])].label,
        "reason": decision["reason"],
    }
