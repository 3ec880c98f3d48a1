"""The policy: a TOML file parsed into frozen dataclasses, and its single-factor plan.

Parsing is pure (`parse(text, path)`), loading does the I/O (`load(path)`). Every error names the
file, the dotted TOML path and the bad value, and suggests a close match for a misspelt key or
name, because a long RL run that dies at hour three on a typo is the failure this tool exists to
prevent. Phases expand into plan steps that each change exactly one factor (data mixture OR reward
set); see `expand_plan`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class PolicyError(ValueError):
    """A policy that cannot run. Carries the file, the dotted TOML path and the bad value."""

    def __init__(self, file: str, path: str, value: object, message: str, hint: str = "") -> None:
        self.file = file
        self.path = path
        self.value = value
        self.message = message
        self.hint = hint
        text = f"{file}: {path}: {message} (got {value!r})"
        if hint:
            text += f"; {hint}"
        super().__init__(text)


# ---------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where a domain's items come from. `kind` picks the loader in data.py.

    kinds: "gsm8k" (datasets library: hub name or local JSONL files), "arithmetic" (generated
    word problems, the CPU quickstart's data), "code" (generated code-output prediction),
    "qa" (generated short reasoning questions), "jsonl" / "hf" (a user's dataset with a field map).
    """

    name: str
    kind: str
    domain: str
    split: str = "train"
    path: str = ""  # local file or directory; empty means the hub (where a network exists)
    hub_name: str = ""
    hub_config: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)  # item field -> dataset column
    options: Mapping[str, object] = field(default_factory=dict)  # kind-specific (generators)


@dataclass(frozen=True, slots=True)
class SubsetSpec:
    """Which part of a source a mixture uses. All None means the whole source.

    `start`/`end` are fractions of a seeded shuffle (the curriculum document's
    iterable_slice(dataset, start_frac, end_frac)); `max_question_chars` / `max_question_tokens`
    keep only short questions.
    """

    start: float = 0.0
    end: float = 1.0
    max_question_chars: int | None = None
    max_question_tokens: int | None = None

    @property
    def is_whole(self) -> bool:
        return (
            self.start == 0.0
            and self.end == 1.0
            and self.max_question_chars is None
            and self.max_question_tokens is None
        )


@dataclass(frozen=True, slots=True)
class MixtureComponent:
    source: str  # name of a SourceSpec
    weight: float  # normalised: the components of a mixture sum to 1
    subset: SubsetSpec = SubsetSpec()


@dataclass(frozen=True, slots=True)
class Mixture:
    components: tuple[MixtureComponent, ...]

    def domains(self, sources: Mapping[str, SourceSpec]) -> frozenset[str]:
        return frozenset(sources[c.source].domain for c in self.components)


# ---------------------------------------------------------------- rewards


@dataclass(frozen=True, slots=True)
class RewardSpec:
    """One named reward function and its parameters (names and defaults live in rewards.py)."""

    name: str
    params: Mapping[str, float] = field(default_factory=dict)


RewardSet = tuple[RewardSpec, ...]


# ---------------------------------------------------------------- criteria and plateau


class Comparison(StrEnum):
    GE = ">="
    LE = "<="
    GT = ">"
    LT = "<"

    def holds(self, value: float, threshold: float) -> bool:
        if self is Comparison.GE:
            return value >= threshold
        if self is Comparison.LE:
            return value <= threshold
        if self is Comparison.GT:
            return value > threshold
        return value < threshold


class Source(StrEnum):
    """Which observations a criterion watches: training rollouts or held-out evaluation."""

    ROLLOUT = "rollout"
    EVAL = "eval"


@dataclass(frozen=True, slots=True)
class Criterion:
    """`metric comparison threshold`, judged on the window mean of the metric."""

    metric: str
    comparison: Comparison
    threshold: float
    source: Source = Source.ROLLOUT


class PlateauTest(StrEnum):
    PATIENCE = "patience"
    TREND = "trend"
    MANN_KENDALL = "mann_kendall"
    STABLE_LEVEL = "stable_level"
    LEARNING_EXHAUSTED = "learning_exhausted"


@dataclass(frozen=True, slots=True)
class PlateauSpec:
    """How one metric's plateau is judged. Defaults come from the policy's [plateau] table."""

    metric: str
    test: PlateauTest
    window: int
    patience: int = 10
    min_delta: float = 0.01
    epsilon: float = 0.02  # trend test: +/- band for slope x window, floored by binomial noise
    noise_multiplier: float = 1.0  # epsilon >= noise_multiplier * sqrt(p(1-p)/n) for rates
    alpha: float = 0.05  # Mann-Kendall significance, and 1 - confidence for the trend CI
    max_cv: float = 0.1  # stable level: coefficient of variation bound
    min_learnable: float = 0.1  # learning exhausted: share of groups with reward variance below this
    source: Source = Source.ROLLOUT


class BudgetAction(StrEnum):
    HOLD = "hold"  # stop advancing, alert, keep training in this step
    ADVANCE = "advance"  # advance anyway, recorded as step_budget_exhausted


class ChangeOrder(StrEnum):
    DATA_FIRST = "data_first"
    REWARDS_FIRST = "rewards_first"


@dataclass(frozen=True, slots=True)
class GuardSpec:
    """Post-switch judgement: a guarded metric must not regress beyond `max_drop` (noise-aware)."""

    metric: str
    max_drop: float  # allowed fall of the window mean below its pre-switch level (rates: absolute)
    higher_is_better: bool = True


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    name: str
    mixture: Mixture
    rewards: RewardSet
    criteria: tuple[Criterion, ...]
    plateau: tuple[PlateauSpec, ...]
    max_steps: int  # step budget for the phase
    on_budget_exhausted: BudgetAction = BudgetAction.HOLD
    change_order: ChangeOrder = ChangeOrder.DATA_FIRST  # for the switch INTO this phase
    terminal: bool = False


# ---------------------------------------------------------------- run, model, training, metrics


@dataclass(frozen=True, slots=True)
class RunSpec:
    name: str = "run"
    run_dir: str = "runs/default"
    seed: int = 0
    max_steps: int = 1000
    checkpoint_every: int = 50
    keep_checkpoints: int = 3


@dataclass(frozen=True, slots=True)
class LoraSpec:
    rank: int = 8
    alpha: float = 8.0
    target_modules: str = ".*q_einsum|.*kv_einsum|.*gate_proj|.*down_proj|.*up_proj|.*attn_vec_einsum"


@dataclass(frozen=True, slots=True)
class TinyModelSpec:
    """A small Gemma3 built from Tunix's own ModelConfig, for the CPU quickstart."""

    layers: int = 2
    embed_dim: int = 128
    hidden_dim: int = 512
    num_heads: int = 2
    head_dim: int = 64
    num_kv_heads: int = 1
    vocab_size: int = 512
    embedding_scale: float = 10.0  # tied embedding init x this, so LoRA can move the logits


@dataclass(frozen=True, slots=True)
class WarmStartSpec:
    """Full-weight supervised warm start that gives the tiny base behaviour worth correcting."""

    steps: int = 1200
    batch_size: int = 64
    learning_rate: float = 3e-3
    freeform_share: float = 0.6
    contract_share: float = 0.3  # the rest are refusals
    seed: int = 0


@dataclass(frozen=True, slots=True)
class ModelSpec:
    family: str = "gemma3"
    preset: str = "tiny"  # "tiny" | "gemma3_1b_it" | "gemma3_270m" ...
    weights: str = ""  # local path to an Orbax/Kaggle checkpoint or a safetensors directory
    weights_format: str = ""  # "orbax" | "safetensors"; empty: detected from the path
    tokenizer: str = ""  # local path to a sentencepiece model; empty for tiny (trained locally)
    lora: LoraSpec | None = LoraSpec()
    tiny: TinyModelSpec = TinyModelSpec()
    warm_start: WarmStartSpec = WarmStartSpec()
    cache_dir: str = ".cache/autocurriculum"


@dataclass(frozen=True, slots=True)
class TrainingSpec:
    learning_rate: float = 3e-3
    prompts_per_step: int = 4
    generations_per_prompt: int = 4
    max_prompt_tokens: int = 64
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 1.0
    beta: float = 0.04
    prompt_template: str = "plain"  # "plain" | "gemma_chat" (see data.render_prompt)
    mesh_fsdp: int = 1
    mesh_tp: int = 1


@dataclass(frozen=True, slots=True)
class MetricsSpec:
    window: int = 10
    bind: str = "127.0.0.1"
    port: int = 9464  # 0 disables the HTTP exporter


@dataclass(frozen=True, slots=True)
class JudgementSpec:
    """Post-switch judgement (canary analysis): grace, guards, persistence, retries."""

    grace_steps: int = 5  # after a switch nothing is judged for this many steps
    guards: tuple[GuardSpec, ...] = ()
    persist_windows: int = 2  # consecutive regressed windows before rolling back
    judge_steps: int = 30  # how long after the grace period a switch stays under judgement
    max_rollbacks: int = 2  # per plan step; then hold and say why
    settle_steps: int = 10  # minimum steps in an intermediate (split) step before its second half


@dataclass(frozen=True, slots=True)
class EvalSpec:
    every: int = 0  # 0 disables periodic held-out evaluation
    items_per_domain: int = 32
    sources: tuple[str, ...] = ()  # source names used as held-out sets


@dataclass(frozen=True, slots=True)
class Policy:
    file: str
    run: RunSpec
    model: ModelSpec
    training: TrainingSpec
    metrics: MetricsSpec
    judgement: JudgementSpec
    eval: EvalSpec
    sources: Mapping[str, SourceSpec]
    phases: tuple[PhaseSpec, ...]


# ---------------------------------------------------------------- the plan


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


# ---------------------------------------------------------------- parsing

import dataclasses as _dc
import difflib as _difflib
import math as _math
import tomllib as _tomllib
from pathlib import Path as _Path
from typing import Any as _Any

EX_CONFIG = 78
KNOWN_TEMPLATES = ("plain", "gemma_chat")
SOURCE_KINDS = ("gsm8k", "arithmetic", "code", "qa", "jsonl", "hf")


def _did_you_mean(word: str, choices: object) -> str:
    close = _difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)  # type: ignore[union-attr]
    return f"did you mean {close[0]!r}?" if close else ""


class _Table:
    """A TOML table being read: remembers its dotted path and which keys were consumed."""

    def __init__(self, file: str, path: str, data: object) -> None:
        if not isinstance(data, dict):
            raise PolicyError(file, path or "<root>", data, "must be a table")
        self.file, self.path, self.data = file, path, data
        self.used: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str, hint: str = "") -> PolicyError:
        return PolicyError(self.file, self.at(key), self.data.get(key), message, hint)

    def _get(self, key: str, default: object) -> object:
        self.used.add(key)
        return self.data.get(key, default)

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self._get(key, default)
        if value is None:
            raise PolicyError(self.file, self.at(key), None, "is required")
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        if choices and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}", _did_you_mean(value, choices))
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def integer(self, key: str, default: int | None = None, minimum: int | None = 1, maximum: int | None = None) -> int:
        value = self._get(key, default)
        if value is None:
            raise PolicyError(self.file, self.at(key), None, "is required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be an integer")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be <= {maximum}")
        return value

    def number(
        self, key: str, default: float | None = None, low: float | None = None, high: float | None = None,
        open_low: bool = False, open_high: bool = False,
    ) -> float:
        value = self._get(key, default)
        if value is None:
            raise PolicyError(self.file, self.at(key), None, "is required")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _math.isfinite(value):
            raise self.error(key, "must be a finite number")
        value = float(value)
        if low is not None and (value < low or (open_low and value == low)):
            raise self.error(key, f"must be {'>' if open_low else '>='} {low:g}")
        if high is not None and (value > high or (open_high and value == high)):
            raise self.error(key, f"must be {'<' if open_high else '<='} {high:g}")
        return value

    def table(self, key: str, required: bool = False) -> _Table | None:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise PolicyError(self.file, self.at(key), None, "is required")
            return None
        return _Table(self.file, self.at(key), self.data[key])

    def array(self, key: str, required: bool = False) -> list[object]:
        self.used.add(key)
        value = self.data.get(key)
        if value is None:
            if required:
                raise PolicyError(self.file, self.at(key), None, "is required (at least one entry)")
            return []
        if not isinstance(value, list):
            raise self.error(key, "must be an array")
        return value

    def finish(self) -> None:
        """Unknown keys are errors: a misspelt key silently ignored is a run that does the wrong thing."""
        for key in self.data:
            if key not in self.used:
                raise PolicyError(
                    self.file, self.at(key), self.data[key], "unknown key", _did_you_mean(key, self.used)
                )


def _parse_run(root: _Table) -> RunSpec:
    t = root.table("run") or _Table(root.file, "run", {})
    d = RunSpec()
    spec = RunSpec(
        name=t.string("name", d.name),
        run_dir=t.string("run_dir", d.run_dir),
        seed=t.integer("seed", d.seed, minimum=0),
        max_steps=t.integer("max_steps", d.max_steps),
        checkpoint_every=t.integer("checkpoint_every", d.checkpoint_every),
        keep_checkpoints=t.integer("keep_checkpoints", d.keep_checkpoints),
    )
    t.finish()
    return spec


def _parse_model(root: _Table) -> ModelSpec:
    t = root.table("model") or _Table(root.file, "model", {})
    d = ModelSpec()
    preset = t.string("preset", d.preset)
    lora: LoraSpec | None = None
    if t.data.get("lora", True) is False:
        t.used.add("lora")
    else:
        lt = t.table("lora")
        if lt is not None:
            dl = LoraSpec()
            lora = LoraSpec(
                rank=lt.integer("rank", dl.rank),
                alpha=lt.number("alpha", dl.alpha, low=0.0, open_low=True),
                target_modules=lt.string("target_modules", dl.target_modules),
            )
            lt.finish()
        else:
            lora = LoraSpec()
    tiny = d.tiny
    tt = t.table("tiny")
    if tt is not None:
        tiny = TinyModelSpec(
            layers=tt.integer("layers", tiny.layers),
            embed_dim=tt.integer("embed_dim", tiny.embed_dim),
            hidden_dim=tt.integer("hidden_dim", tiny.hidden_dim),
            num_heads=tt.integer("num_heads", tiny.num_heads),
            head_dim=tt.integer("head_dim", tiny.head_dim),
            num_kv_heads=tt.integer("num_kv_heads", tiny.num_kv_heads),
            vocab_size=tt.integer("vocab_size", tiny.vocab_size, minimum=16),
            embedding_scale=tt.number("embedding_scale", tiny.embedding_scale, low=0.0, open_low=True),
        )
        tt.finish()
    warm = d.warm_start
    wt = t.table("warm_start")
    if wt is not None:
        warm = WarmStartSpec(
            steps=wt.integer("steps", warm.steps),
            batch_size=wt.integer("batch_size", warm.batch_size),
            learning_rate=wt.number("learning_rate", warm.learning_rate, low=0.0, open_low=True),
            freeform_share=wt.number("freeform_share", warm.freeform_share, low=0.0, high=1.0),
            contract_share=wt.number("contract_share", warm.contract_share, low=0.0, high=1.0),
            seed=wt.integer("seed", warm.seed, minimum=0),
        )
        wt.finish()
        if warm.freeform_share + warm.contract_share > 1.0 + 1e-9:
            raise PolicyError(root.file, "model.warm_start.contract_share", warm.contract_share,
                              "freeform_share + contract_share must be <= 1 (the rest are refusals)")
    spec = ModelSpec(
        family=t.string("family", d.family, choices=("gemma3",)),
        preset=preset,
        weights=t.string("weights", d.weights),
        weights_format=t.string("weights_format", d.weights_format, choices=("", "orbax", "safetensors")),
        tokenizer=t.string("tokenizer", d.tokenizer),
        lora=lora,
        tiny=tiny,
        warm_start=warm,
        cache_dir=t.string("cache_dir", d.cache_dir),
    )
    t.finish()
    presets = ("tiny", "gemma3_270m", "gemma3_1b_it", "gemma3_1b_pt", "gemma3_4b_it", "gemma3_12b_it", "gemma3_27b_it")
    if spec.preset not in presets:
        raise PolicyError(root.file, "model.preset", spec.preset, f"unknown preset; one of {', '.join(presets)}",
                          _did_you_mean(spec.preset, presets))
    if spec.preset != "tiny" and not spec.weights:
        raise PolicyError(root.file, "model.weights", spec.weights,
                          "a pretrained preset needs a local weights path (nothing is downloaded)")
    return spec


def _parse_training(root: _Table) -> TrainingSpec:
    t = root.table("training") or _Table(root.file, "training", {})
    d = TrainingSpec()
    fsdp, tp = d.mesh_fsdp, d.mesh_tp
    mt = t.table("mesh")
    if mt is not None:
        fsdp, tp = mt.integer("fsdp", fsdp), mt.integer("tp", tp)
        mt.finish()
    spec = TrainingSpec(
        learning_rate=t.number("learning_rate", d.learning_rate, low=0.0, open_low=True),
        prompts_per_step=t.integer("prompts_per_step", d.prompts_per_step),
        generations_per_prompt=t.integer("generations_per_prompt", d.generations_per_prompt, minimum=2),
        max_prompt_tokens=t.integer("max_prompt_tokens", d.max_prompt_tokens),
        max_new_tokens=t.integer("max_new_tokens", d.max_new_tokens),
        temperature=t.number("temperature", d.temperature, low=0.0, open_low=True),
        top_p=t.number("top_p", d.top_p, low=0.0, high=1.0, open_low=True),
        beta=t.number("beta", d.beta, low=0.0),
        prompt_template=t.string("prompt_template", d.prompt_template, choices=KNOWN_TEMPLATES),
        mesh_fsdp=fsdp,
        mesh_tp=tp,
    )
    t.finish()
    return spec


def _parse_metrics(root: _Table) -> MetricsSpec:
    t = root.table("metrics") or _Table(root.file, "metrics", {})
    d = MetricsSpec()
    spec = MetricsSpec(
        window=t.integer("window", d.window),
        bind=t.string("bind", d.bind),
        port=t.integer("port", d.port, minimum=0, maximum=65535),
    )
    t.finish()
    return spec


def _parse_guard(file: str, path: str, raw: object) -> GuardSpec:
    from autocurriculum.observation import is_rate

    t = _Table(file, path, raw)
    metric = t.string("metric")
    if not is_rate(metric):
        raise t.error("metric", "a guard watches a known rate metric", _did_you_mean(metric, _rate_names()))
    spec = GuardSpec(
        metric=metric,
        max_drop=t.number("max_drop", low=0.0, high=1.0, open_low=True),
        higher_is_better=t.boolean("higher_is_better", True),
    )
    t.finish()
    return spec


def _rate_names() -> list[str]:
    from autocurriculum.observation import RATE_METRICS

    return sorted(RATE_METRICS)


def _parse_judgement(root: _Table) -> JudgementSpec:
    t = root.table("judgement") or _Table(root.file, "judgement", {})
    d = JudgementSpec()
    guards = tuple(_parse_guard(root.file, f"judgement.guards[{i}]", g) for i, g in enumerate(t.array("guards")))
    spec = JudgementSpec(
        grace_steps=t.integer("grace_steps", d.grace_steps, minimum=0),
        guards=guards,
        persist_windows=t.integer("persist_windows", d.persist_windows),
        judge_steps=t.integer("judge_steps", d.judge_steps),
        max_rollbacks=t.integer("max_rollbacks", d.max_rollbacks, minimum=0),
        settle_steps=t.integer("settle_steps", d.settle_steps),
    )
    t.finish()
    return spec


def _parse_sources(root: _Table) -> dict[str, SourceSpec]:
    t = root.table("sources", required=True)
    assert t is not None
    sources: dict[str, SourceSpec] = {}
    for name in list(t.data):
        st = t.table(name)
        assert st is not None
        fields = st.table("fields")
        options = st.table("options")
        spec = SourceSpec(
            name=name,
            kind=st.string("kind", choices=SOURCE_KINDS),
            domain=st.string("domain"),
            split=st.string("split", "train"),
            path=st.string("path", ""),
            hub_name=st.string("hub_name", ""),
            hub_config=st.string("hub_config", ""),
            fields=dict(fields.data) if fields else {},
            options=dict(options.data) if options else {},
        )
        st.finish()
        for key, value in spec.fields.items():
            if not isinstance(value, str):
                raise PolicyError(root.file, f"sources.{name}.fields.{key}", value, "must be a column name (string)")
        for key, value in spec.options.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise PolicyError(root.file, f"sources.{name}.options.{key}", value, "must be a number or a string")
        sources[name] = spec
    if not sources:
        raise PolicyError(root.file, "sources", {}, "at least one source is required")
    return sources


def _parse_eval(root: _Table, sources: Mapping[str, SourceSpec]) -> EvalSpec:
    t = root.table("eval") or _Table(root.file, "eval", {})
    d = EvalSpec()
    names = t.array("sources")
    for i, name in enumerate(names):
        if name not in sources:
            raise PolicyError(root.file, f"eval.sources[{i}]", name, "unknown source", _did_you_mean(name, sources))
    spec = EvalSpec(
        every=t.integer("every", d.every, minimum=0),
        items_per_domain=t.integer("items_per_domain", d.items_per_domain),
        sources=tuple(str(n) for n in names),
    )
    t.finish()
    return spec


def _plateau_defaults(root: _Table) -> dict[str, object]:
    t = root.table("plateau") or _Table(root.file, "plateau", {})
    d = PlateauSpec(metric="", test=PlateauTest.TREND, window=10)
    defaults = {
        "test": t.string("test", d.test.value, choices=tuple(x.value for x in PlateauTest)),
        "window": t.integer("window", d.window, minimum=3),
        "patience": t.integer("patience", d.patience),
        "min_delta": t.number("min_delta", d.min_delta, low=0.0),
        "epsilon": t.number("epsilon", d.epsilon, low=0.0, open_low=True),
        "noise_multiplier": t.number("noise_multiplier", d.noise_multiplier, low=0.0),
        "alpha": t.number("alpha", d.alpha, low=0.0, high=1.0, open_low=True, open_high=True),
        "max_cv": t.number("max_cv", d.max_cv, low=0.0, open_low=True),
        "min_learnable": t.number("min_learnable", d.min_learnable, low=0.0, high=1.0),
    }
    t.finish()
    return defaults


def _check_metric(file: str, path: str, metric: str, domains: frozenset[str]) -> None:
    from autocurriculum.observation import (
        DOMAIN_ACCURACY_PREFIX,
        DOMAIN_COMPLIANCE_PREFIX,
        STEP_METRICS,
        is_known_metric,
    )

    if not is_known_metric(metric):
        raise PolicyError(file, path, metric, "unknown metric", _did_you_mean(metric, STEP_METRICS))
    for prefix in (DOMAIN_COMPLIANCE_PREFIX, DOMAIN_ACCURACY_PREFIX):
        if metric.startswith(prefix) and metric[len(prefix):] not in domains:
            raise PolicyError(file, path, metric, f"no phase's mixture uses domain {metric[len(prefix):]!r}",
                              _did_you_mean(metric[len(prefix):], domains))


def _parse_phase(
    file: str, index: int, raw: object, sources: Mapping[str, SourceSpec], plateau_defaults: Mapping[str, object],
) -> PhaseSpec:
    from autocurriculum.rewards import REWARD_PARAMETERS

    path = f"phases[{index}]"
    t = _Table(file, path, raw)
    name = t.string("name")
    components = []
    for i, comp in enumerate(t.array("data", required=True)):
        ct = _Table(file, f"{path}.data[{i}]", comp)
        source = ct.string("source")
        if source not in sources:
            raise ct.error("source", "unknown source", _did_you_mean(source, sources))
        subset = SubsetSpec()
        sub = ct.table("subset")
        if sub is not None:
            subset = SubsetSpec(
                start=sub.number("start", 0.0, low=0.0, high=1.0),
                end=sub.number("end", 1.0, low=0.0, high=1.0),
                max_question_chars=sub.integer("max_question_chars", None) if "max_question_chars" in sub.data else None,
                max_question_tokens=sub.integer("max_question_tokens", None) if "max_question_tokens" in sub.data else None,
            )
            sub.finish()
            if subset.start >= subset.end:
                raise PolicyError(file, f"{path}.data[{i}].subset.end", subset.end, f"must be greater than start ({subset.start:g})")
        components.append(MixtureComponent(source=source, weight=ct.number("weight", low=0.0, open_low=True), subset=subset))
        ct.finish()
    total = _math.fsum(c.weight for c in components)
    if abs(total - 1.0) > 1e-6:
        raise PolicyError(file, f"{path}.data", [c.weight for c in components],
                          f"mixture weights must sum to 1 (they sum to {total:g})")
    seen_sources = [c.source for c in components]
    if len(set(seen_sources)) != len(seen_sources):
        raise PolicyError(file, f"{path}.data", seen_sources, "a source appears twice in one mixture")
    rewards = []
    for i, rew in enumerate(t.array("rewards", required=True)):
        rt = _Table(file, f"{path}.rewards[{i}]", rew)
        rname = rt.string("name")
        if rname not in REWARD_PARAMETERS:
            raise rt.error("name", "unknown reward function", _did_you_mean(rname, REWARD_PARAMETERS))
        pt = rt.table("params")
        params: dict[str, float] = {}
        if pt is not None:
            allowed = REWARD_PARAMETERS[rname]
            for key in list(pt.data):
                if key not in allowed:
                    raise PolicyError(file, f"{path}.rewards[{i}].params.{key}", pt.data[key],
                                      f"unknown parameter of {rname}", _did_you_mean(key, allowed))
                params[key] = pt.number(key)
            pt.finish()
        rt.finish()
        rewards.append(RewardSpec(rname, params))
    names = [r.name for r in rewards]
    if len(set(names)) != len(names):
        raise PolicyError(file, f"{path}.rewards", names, "a reward function appears twice")
    domains = frozenset(sources[c].domain for c in seen_sources)
    all_domains = frozenset(s.domain for s in sources.values())
    criteria = []
    for i, raw_c in enumerate(t.array("criteria")):
        ct = _Table(file, f"{path}.criteria[{i}]", raw_c)
        metric = ct.string("metric")
        _check_metric(file, f"{path}.criteria[{i}].metric", metric, all_domains)
        comparison = ct.string("comparison", choices=tuple(c.value for c in Comparison))
        from autocurriculum.observation import is_rate

        threshold = ct.number("threshold", low=0.0, high=1.0) if is_rate(metric) else ct.number("threshold")
        criteria.append(Criterion(metric, Comparison(comparison), threshold,
                                  Source(ct.string("source", "rollout", choices=tuple(s.value for s in Source)))))
        ct.finish()
    plateaus = []
    for i, raw_p in enumerate(t.array("plateau")):
        pt = _Table(file, f"{path}.plateau[{i}]", raw_p)
        metric = pt.string("metric")
        _check_metric(file, f"{path}.plateau[{i}].metric", metric, all_domains)
        values = dict(plateau_defaults)
        for key in list(pt.data):
            if key in ("metric", "source"):
                continue
            if key not in values:
                raise PolicyError(file, f"{path}.plateau[{i}].{key}", pt.data[key], "unknown key",
                                  _did_you_mean(key, ["metric", "source", *values]))
        values["test"] = pt.string("test", str(values["test"]), choices=tuple(x.value for x in PlateauTest))
        values["window"] = pt.integer("window", int(values["window"]), minimum=3)  # type: ignore[arg-type]
        values["patience"] = pt.integer("patience", int(values["patience"]))  # type: ignore[arg-type]
        for key, low, high in (("min_delta", 0.0, None), ("epsilon", 0.0, None), ("noise_multiplier", 0.0, None),
                               ("alpha", 0.0, 1.0), ("max_cv", 0.0, None), ("min_learnable", 0.0, 1.0)):
            values[key] = pt.number(key, float(values[key]), low=low, high=high)  # type: ignore[arg-type]
        source = Source(pt.string("source", "rollout", choices=tuple(s.value for s in Source)))
        pt.finish()
        plateaus.append(PlateauSpec(metric=metric, test=PlateauTest(values.pop("test")), source=source, **values))  # type: ignore[arg-type]
    spec = PhaseSpec(
        name=name,
        mixture=Mixture(tuple(components)),
        rewards=tuple(rewards),
        criteria=tuple(criteria),
        plateau=tuple(plateaus),
        max_steps=t.integer("max_steps"),
        on_budget_exhausted=BudgetAction(t.string("on_budget_exhausted", "hold", choices=tuple(b.value for b in BudgetAction))),
        change_order=ChangeOrder(t.string("change_order", "data_first", choices=tuple(c.value for c in ChangeOrder))),
        terminal=t.boolean("terminal", False),
    )
    t.finish()
    del domains
    return spec


def _check_rules(file: str, phases: tuple[PhaseSpec, ...], sources: Mapping[str, SourceSpec]) -> None:
    """The curriculum's transition rules, checked before anything runs (decide() checks them again)."""
    names = [p.name for p in phases]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise PolicyError(file, f"phases[{i}].name", name, "phase names must be unique")
    for i, phase in enumerate(phases):
        if phase.terminal and i != len(phases) - 1:
            raise PolicyError(file, f"phases[{i}].terminal", True, "only the last phase can be terminal")
        if i < len(phases) - 1:
            if not phase.criteria:
                raise PolicyError(file, f"phases[{i}].criteria", [], "a phase that can advance needs at least one criterion "
                                  "(advance only on criteria AND plateau)")
            if not phase.plateau:
                raise PolicyError(file, f"phases[{i}].plateau", [], "a phase that can advance needs at least one plateau test "
                                  "(advance only on criteria AND plateau)")
    first_domains = phases[0].mixture.domains(sources)
    if len(first_domains) != 1:
        raise PolicyError(file, "phases[0].data", sorted(first_domains),
                          "the first phase trains one domain: no domain mixing before phase 1 has stabilised")
    for i in range(1, len(phases)):
        previous, phase = phases[i - 1], phases[i]
        new_domains = phase.mixture.domains(sources) - previous.mixture.domains(sources)
        same_data = previous.mixture == phase.mixture
        same_rewards = previous.rewards == phase.rewards
        if same_data and same_rewards:
            raise PolicyError(file, f"phases[{i}]", phase.name, f"changes nothing from phase {previous.name!r}")
        if new_domains and not same_rewards:
            raise PolicyError(file, f"phases[{i}].rewards", [r.name for r in phase.rewards],
                              f"phase {phase.name!r} introduces domains {sorted(new_domains)} and also changes the reward set "
                              f"of phase {previous.name!r}: rewards must not change when domains are introduced")


def apply_overrides(data: dict[str, _Any], overrides: Sequence[str], file: str) -> None:
    """`--set a.b.c=VALUE`: VALUE is read as TOML (numbers, booleans, quoted strings) or taken as a string."""
    for override in overrides:
        if "=" not in override:
            raise PolicyError(file, "--set", override, "expected KEY=VALUE, e.g. run.max_steps=50")
        key, raw = override.split("=", 1)
        try:
            value = _tomllib.loads(f"v = {raw}")["v"]
        except _tomllib.TOMLDecodeError:
            value = raw
        node: _Any = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise PolicyError(file, key, override, f"{part!r} is not a table")
        node[parts[-1]] = value


def parse(text: str, file: str, overrides: Sequence[str] = ()) -> Policy:
    """Parse and validate a policy (pure: no I/O)."""
    try:
        data = _tomllib.loads(text)
    except _tomllib.TOMLDecodeError as error:
        raise PolicyError(file, "<syntax>", text.splitlines()[error.lineno - 1] if getattr(error, "lineno", 0) else "",
                          f"TOML syntax error: {error}") from None
    apply_overrides(data, overrides, file)
    root = _Table(file, "", data)
    run = _parse_run(root)
    model = _parse_model(root)
    training = _parse_training(root)
    metrics = _parse_metrics(root)
    judgement = _parse_judgement(root)
    sources = _parse_sources(root)
    evaluation = _parse_eval(root, sources)
    defaults = _plateau_defaults(root)
    raw_phases = root.array("phases", required=True)
    phases = tuple(_parse_phase(file, i, raw, sources, defaults) for i, raw in enumerate(raw_phases))
    root.finish()
    _check_rules(file, phases, sources)
    return Policy(file=file, run=run, model=model, training=training, metrics=metrics, judgement=judgement,
                  eval=evaluation, sources=sources, phases=phases)


def load(path: _Path | str, overrides: Sequence[str] = ()) -> Policy:
    """Read and parse a policy file; an unreadable file is a PolicyError too."""
    file = str(path)
    try:
        text = _Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(file, "<file>", file, f"cannot read policy: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise PolicyError(file, "<file>", file, f"not UTF-8 text ({error.reason})") from None
    return parse(text, file, overrides)


# ---------------------------------------------------------------- expansion


def _step(index: int, phase_index: int, phase: PhaseSpec, part: str, mixture: Mixture, rewards: RewardSet,
          changes: Factor, gate: ExitGate, judgement_plateau: tuple[PlateauSpec, ...]) -> PlanStep:
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
        plateau=judgement_plateau if settle else phase.plateau,
        max_steps=phase.max_steps,
        on_budget_exhausted=phase.on_budget_exhausted,
    )


def expand_plan(policy: Policy) -> Plan:
    """Phases into plan steps that each change exactly one factor.

    A transition that changes both data and rewards becomes two steps: part "a" changes the factor
    named by the later phase's change_order and must settle (guards hold, the previous phase's
    watched metrics plateau again) before part "b" changes the other one.
    """
    steps: list[PlanStep] = []
    phases = policy.phases
    for i, phase in enumerate(phases):
        gate = ExitGate.TERMINAL if i == len(phases) - 1 else ExitGate.PHASE_CRITERIA
        if i == 0:
            steps.append(_step(0, 0, phase, "", phase.mixture, phase.rewards, Factor.NONE, gate, ()))
            continue
        previous = phases[i - 1]
        data_changes = previous.mixture != phase.mixture
        rewards_change = previous.rewards != phase.rewards
        if data_changes and rewards_change:
            data_first = phase.change_order is ChangeOrder.DATA_FIRST
            first = Factor.DATA if data_first else Factor.REWARDS
            second = Factor.REWARDS if data_first else Factor.DATA
            mid_mixture = phase.mixture if data_first else previous.mixture
            mid_rewards = previous.rewards if data_first else phase.rewards
            steps.append(_step(len(steps), i, phase, "a", mid_mixture, mid_rewards, first, ExitGate.SETTLE, previous.plateau))
            steps.append(_step(len(steps), i, phase, "b", phase.mixture, phase.rewards, second, gate, ()))
        else:
            factor = Factor.DATA if data_changes else Factor.REWARDS
            steps.append(_step(len(steps), i, phase, "", phase.mixture, phase.rewards, factor, gate, ()))
    return tuple(steps)


def describe_plan(policy: Policy, plan: Plan) -> str:
    """The numbered single-factor plan `validate` prints."""
    lines = []
    for step in plan:
        what = {
            Factor.NONE: "start",
            Factor.DATA: "DATA    (rewards unchanged)",
            Factor.REWARDS: "REWARDS (data unchanged)",
        }[step.changes]
        lines.append(f"{step.index + 1}. {step.label}: {what}")
        mixture = ", ".join(
            f"{c.source} {c.weight:.0%}" + ("" if c.subset.is_whole else f" [{_subset_text(c.subset)}]")
            for c in step.mixture.components
        )
        lines.append(f"     data:    {mixture}")
        lines.append(f"     rewards: {', '.join(r.name for r in step.rewards)}")
        if step.exit_gate is ExitGate.SETTLE:
            lines.append(f"     leave when settled: >= {policy.judgement.settle_steps} steps, guards hold, plateau of "
                         + (", ".join(f"{p.metric} ({p.test.value})" for p in step.plateau) or "-"))
        else:
            head = "done when" if step.exit_gate is ExitGate.TERMINAL else "leave when"
            criteria = " AND ".join(f"{c.metric} {c.comparison.value} {c.threshold:g}"
                                    + (" [eval]" if c.source is Source.EVAL else "") for c in step.criteria) or "-"
            plateau = ", ".join(f"{p.metric} ({p.test.value})" for p in step.plateau) or "-"
            lines.append(f"     {head}: {criteria}; plateau of {plateau}")
        lines.append(f"     budget:  {step.max_steps} steps, then {step.on_budget_exhausted.value}")
    return "\n".join(lines)


def _subset_text(subset: SubsetSpec) -> str:
    parts = []
    if (subset.start, subset.end) != (0.0, 1.0):
        parts.append(f"slice {subset.start:g}-{subset.end:g}")
    if subset.max_question_chars is not None:
        parts.append(f"<= {subset.max_question_chars} chars")
    if subset.max_question_tokens is not None:
        parts.append(f"<= {subset.max_question_tokens} tokens")
    return ", ".join(parts)
