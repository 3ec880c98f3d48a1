"""The policy: a TOML file read into frozen dataclasses, and its single-factor plan.

This module is the public face: `load(path)` reads and validates a policy file, `parse(text, file)`
does the same without I/O, and every name other modules use is re-exported from where it lives:
- spec.py: the frozen dataclasses and enums, and the reward registry (imports nothing of the package);
- plan.py: factors, plan steps, `expand_plan`, `describe_plan`;
- toml_table.py: the TOML reader (errors with path, value and did-you-mean; `--set` overrides);
- policy_sections.py: one reader per section of the run's settings, and `parse_table` over all;
- phase_sections.py: the phases (mixture, rewards, criteria, plateau tests) and the plateau defaults;
- curriculum_rules.py: the transition rules checked before anything runs.

Every error is a `PolicyError` naming the file, the dotted TOML path and the bad value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

from autocurriculum.exits import EX_CONFIG, EX_NOINPUT
from autocurriculum.phase_sections import WEIGHT_TOLERANCE
from autocurriculum.plan import ExitGate, Factor, Plan, PlanStep, describe_plan, expand_plan
from autocurriculum.policy_sections import parse_table
from autocurriculum.spec import (
    KNOWN_TEMPLATES,
    MODEL_PRESETS,
    REWARD_PARAMETERS,
    SOURCE_KINDS,
    WEIGHT_DTYPES,
    WEIGHTS_FORMATS,
    BudgetAction,
    ChangeOrder,
    Comparison,
    Criterion,
    EvalSpec,
    GuardSpec,
    JudgementSpec,
    LoraSpec,
    MetricsSpec,
    Mixture,
    MixtureComponent,
    ModelSpec,
    PhaseSpec,
    PlateauSpec,
    PlateauTest,
    Policy,
    PolicyError,
    RewardSet,
    RewardSpec,
    RunSpec,
    Source,
    SourceSpec,
    SubsetSpec,
    TinyModelSpec,
    TrainingSpec,
    WarmStartSpec,
    same_reward_set,
)
from autocurriculum.toml_table import apply_overrides, syntax_error

__all__ = [
    "KNOWN_TEMPLATES",
    "MODEL_PRESETS",
    "REWARD_PARAMETERS",
    "SOURCE_KINDS",
    "WEIGHTS_FORMATS",
    "WEIGHT_DTYPES",
    "WEIGHT_TOLERANCE",
    "BudgetAction",
    "ChangeOrder",
    "Comparison",
    "Criterion",
    "EvalSpec",
    "ExitGate",
    "Factor",
    "GuardSpec",
    "JudgementSpec",
    "LoraSpec",
    "MetricsSpec",
    "Mixture",
    "MixtureComponent",
    "ModelSpec",
    "PhaseSpec",
    "Plan",
    "PlanStep",
    "PlateauSpec",
    "PlateauTest",
    "Policy",
    "PolicyError",
    "PolicyFileMissing",
    "RewardSet",
    "RewardSpec",
    "RunSpec",
    "Source",
    "SourceSpec",
    "SubsetSpec",
    "TinyModelSpec",
    "TrainingSpec",
    "WarmStartSpec",
    "apply_overrides",
    "describe_plan",
    "expand_plan",
    "load",
    "parse",
    "parse_table",
    "policy_exit_code",
    "same_reward_set",
]

def parse(text: str, file: str, overrides: Sequence[str] = ()) -> Policy:
    """Parse and validate a policy (pure: no I/O). `overrides` are `--set KEY=VALUE` strings."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise syntax_error(text, file, error) from None
    apply_overrides(data, overrides, file)
    return parse_table(data, file)


class PolicyFileMissing(PolicyError):
    """The policy file is not there or cannot be read: a missing input (exit 66), not a bad policy (78)."""


def policy_exit_code(error: PolicyError) -> int:
    """66 for a policy file that cannot be read, 78 for a policy that cannot run (exits.py)."""
    return EX_NOINPUT if isinstance(error, PolicyFileMissing) else EX_CONFIG


def load(path: Path | str, overrides: Sequence[str] = ()) -> Policy:
    """Read and parse a policy file; an unreadable file is a PolicyFileMissing, a bad one a PolicyError."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyFileMissing(file, "<file>", file, f"cannot read policy: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise PolicyError(file, "<file>", file, f"not UTF-8 text ({error.reason})") from None
    return parse(text, file, overrides)
