"""The policy's phases: each `[[phases]]` entry read into a PhaseSpec, with its data mixture,
reward set, criteria and plateau tests, and the `[plateau]` defaults those tests fall back to.

Mixture weights are positive and sum to 1 within 1e-6; they are NOT normalised, so the file says
exactly what the stream draws. Reward parameters are stored with their defaults filled in
(`spec.REWARD_PARAMETERS`), so "the same reward set" compares effective parameters; a user's reward
function (`function = "module:fn"`) is named and checked for form here, imported by user_rewards.py. Metric names
are checked against what the observations can report (observation.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from autocurriculum.observation import STEP_METRICS, is_known_metric, is_rate
from autocurriculum.spec import (
    DOMAIN_BUDGET_PREFIX,
    RESERVED_REWARD_KEYWORDS,
    REWARD_PARAMETERS,
    BudgetAction,
    ChangeOrder,
    Comparison,
    Criterion,
    Mixture,
    MixtureComponent,
    PhaseSpec,
    PlateauSpec,
    PlateauTest,
    PolicyError,
    RewardSet,
    RewardSpec,
    Source,
    SourceSpec,
    SubsetSpec,
)
from autocurriculum.toml_table import TomlTable, did_you_mean

WEIGHT_TOLERANCE = 1e-6  # mixture weights must sum to 1 within this
USER_REWARD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")

# Numeric plateau fields: (lowest, highest, lowest excluded, highest excluded). One table for the
# [plateau] defaults and for every [[phases.plateau]] entry, so both are held to the same ranges.
_PLATEAU_NUMBERS: Mapping[str, tuple[float, float | None, bool, bool]] = {
    "min_delta": (0.0, None, False, False),
    "epsilon": (0.0, None, True, False),
    "noise_multiplier": (0.0, None, False, False),
    "alpha": (0.0, 1.0, True, True),  # a significance level is a probability in (0, 1)
    "max_cv": (0.0, None, True, False),
    "min_learnable": (0.0, 1.0, False, False),  # a share of groups
}
_PLATEAU_MIN_WINDOW = 3  # a trend or a Mann-Kendall test needs at least three points


def _plateau_fields(t: TomlTable, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The plateau test and its knobs, each falling back to `defaults`, range-checked alike.

    Both mappings are PlateauSpec's keyword arguments, each value checked by its TomlTable reader:
    hence `Any`, which lets `PlateauSpec(**values)` through the type checker.
    """
    values: dict[str, Any] = {
        "test": PlateauTest(t.string("test", str(defaults["test"]), choices=tuple(x.value for x in PlateauTest))),
        "window": t.integer("window", int(defaults["window"]), minimum=_PLATEAU_MIN_WINDOW),
        "patience": t.integer("patience", int(defaults["patience"])),
    }
    for key, (low, high, open_low, open_high) in _PLATEAU_NUMBERS.items():
        values[key] = t.number(key, float(defaults[key]), low=low, high=high,
                               open_low=open_low, open_high=open_high)
    return values


def plateau_defaults(root: TomlTable) -> dict[str, Any]:
    t = root.section("plateau")
    d = PlateauSpec(metric="", test=PlateauTest.TREND, window=10)
    builtin = {name: getattr(d, name) for name in ("test", "window", "patience", *_PLATEAU_NUMBERS)}
    defaults = _plateau_fields(t, builtin)
    t.finish()
    return defaults


def _check_metric_name(file: str, path: str, metric: str) -> None:
    if not is_known_metric(metric):
        raise PolicyError(file, path, metric, "unknown metric", did_you_mean(metric, STEP_METRICS))


def _parse_mixture(t: TomlTable, sources: Mapping[str, SourceSpec]) -> Mixture:
    components = []
    for i, raw in enumerate(t.array("data", required=True)):
        ct = TomlTable(t.file, f"{t.at('data')}[{i}]", raw)
        source = ct.string("source")
        if source not in sources:
            raise ct.error("source", "unknown source", did_you_mean(source, sources))
        weight = ct.number("weight", low=0.0, high=1.0, open_low=True)
        subset = SubsetSpec()
        st = ct.table("subset")
        if st is not None:
            subset = SubsetSpec(
                start=st.number("start", 0.0, low=0.0, high=1.0),
                end=st.number("end", 1.0, low=0.0, high=1.0),
                max_question_chars=st.optional_integer("max_question_chars"),
                max_question_tokens=st.optional_integer("max_question_tokens"),
            )
            st.finish()
            if subset.start >= subset.end:
                raise st.error("end", f"must be greater than start ({subset.start:g})")
        ct.finish()
        components.append(MixtureComponent(source=source, weight=weight, subset=subset))
    weights = [c.weight for c in components]
    total = math.fsum(weights)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise PolicyError(t.file, t.at("data"), weights,
                          f"mixture weights must sum to 1 (they sum to {total:g}; weights are not normalised)")
    names = [c.source for c in components]
    if len(set(names)) != len(names):
        raise PolicyError(t.file, t.at("data"), names, "a source appears twice in one mixture")
    return Mixture(tuple(components))


def _parse_rewards(t: TomlTable) -> RewardSet:
    rewards = []
    for i, raw in enumerate(t.array("rewards", required=True)):
        rt = TomlTable(t.file, f"{t.at('rewards')}[{i}]", raw)
        name = rt.string("name")
        if "function" in rt.data:
            rewards.append(_parse_user_reward(rt, name))
            continue
        if name not in REWARD_PARAMETERS:
            raise rt.error("name", "unknown reward function", did_you_mean(name, REWARD_PARAMETERS))
        params = dict(REWARD_PARAMETERS[name])
        pt = rt.table("params")
        if pt is not None:
            for key in list(pt.data):
                domain = key[len(DOMAIN_BUDGET_PREFIX):] if key.startswith(DOMAIN_BUDGET_PREFIX) else ""
                if domain and "budget" in params and domain.strip() == domain:
                    params[key] = pt.number(key)  # a per-domain length budget (reward_columns.budget_for)
                    continue
                if key not in params:
                    raise PolicyError(t.file, pt.at(key), pt.data[key], f"unknown parameter of {name}",
                                      did_you_mean(key, REWARD_PARAMETERS[name]))
                params[key] = pt.number(key)
            pt.finish()
        rt.finish()
        rewards.append(RewardSpec(name, params))
    names = [r.name for r in rewards]
    if len(set(names)) != len(names):
        raise PolicyError(t.file, t.at("rewards"), names, "a reward function appears twice")
    return tuple(rewards)


def _parse_user_reward(rt: TomlTable, name: str) -> RewardSpec:
    """A user's reward function: where it is, and the params it is called with (checked, not imported)."""
    if name in REWARD_PARAMETERS:
        raise rt.error("name", "is a built-in reward's name; give your function another name")
    if not USER_REWARD_NAME.fullmatch(name):
        raise rt.error("name", "must be a plain name (letters, digits, _ . -): it labels metrics and Prometheus series")
    function = rt.string("function", non_empty=True)
    where, _, attribute = function.rpartition(":")
    if not where or not attribute.isidentifier():
        raise rt.error("function", "must be 'package.module:function' or 'file.py:function'")
    params: dict[str, object] = {}
    pt = rt.table("params")
    if pt is not None:
        for key, value in pt.data.items():
            if key in RESERVED_REWARD_KEYWORDS or not key.isidentifier():
                raise PolicyError(rt.file, pt.at(key), value, "cannot be a parameter name: the reward function "
                                  f"receives {', '.join(sorted(RESERVED_REWARD_KEYWORDS))} itself")
            if not isinstance(value, (int, float, str, bool)):
                raise PolicyError(rt.file, pt.at(key), value, "must be a number, a string or a boolean")
            params[key] = value
    rt.finish()
    return RewardSpec(name, params, function)  # type: ignore[arg-type]  # a user's params need not be numbers


def _parse_criteria(t: TomlTable) -> tuple[Criterion, ...]:
    criteria = []
    for i, raw in enumerate(t.array("criteria")):
        ct = TomlTable(t.file, f"{t.at('criteria')}[{i}]", raw)
        metric = ct.string("metric")
        _check_metric_name(t.file, ct.at("metric"), metric)
        comparison = Comparison(ct.string("comparison", choices=tuple(c.value for c in Comparison)))
        threshold = ct.number("threshold", low=0.0, high=1.0) if is_rate(metric) else ct.number("threshold")
        source = Source(ct.string("source", Source.ROLLOUT.value, choices=tuple(s.value for s in Source)))
        ct.finish()
        criteria.append(Criterion(metric, comparison, threshold, source))
    return tuple(criteria)


def _parse_plateaus(t: TomlTable, defaults: Mapping[str, object]) -> tuple[PlateauSpec, ...]:
    plateaus = []
    for i, raw in enumerate(t.array("plateau")):
        pt = TomlTable(t.file, f"{t.at('plateau')}[{i}]", raw)
        metric = pt.string("metric")
        _check_metric_name(t.file, pt.at("metric"), metric)
        values = _plateau_fields(pt, defaults)
        source = Source(pt.string("source", Source.ROLLOUT.value, choices=tuple(s.value for s in Source)))
        pt.finish()
        plateaus.append(PlateauSpec(metric=metric, source=source, **values))
    return tuple(plateaus)


def parse_phase(file: str, index: int, raw: object, sources: Mapping[str, SourceSpec],
                 plateau_defaults: Mapping[str, object]) -> PhaseSpec:
    t = TomlTable(file, f"phases[{index}]", raw)
    spec = PhaseSpec(
        name=t.string("name", non_empty=True),
        mixture=_parse_mixture(t, sources),
        rewards=_parse_rewards(t),
        criteria=_parse_criteria(t),
        plateau=_parse_plateaus(t, plateau_defaults),
        max_steps=t.integer("max_steps"),
        on_budget_exhausted=BudgetAction(t.string("on_budget_exhausted", BudgetAction.HOLD.value,
                                                  choices=tuple(b.value for b in BudgetAction))),
        change_order=ChangeOrder(t.string("change_order", ChangeOrder.DATA_FIRST.value,
                                          choices=tuple(c.value for c in ChangeOrder))),
        terminal=t.boolean("terminal", False),
    )
    t.finish()
    return spec
