"""The policy: a TOML file parsed into frozen dataclasses, and its single-factor plan.

Parsing is pure (`parse(text, file)`), loading does the I/O (`load(path)`). Every error is a
`PolicyError` naming the file, the dotted TOML path (`phases[1].rewards[2].name`) and the bad value,
with "did you mean ...?" for a misspelt key or name, because a long RL run that dies at hour three
on a typo is the failure this tool exists to prevent. Unknown keys are errors at every level.

The curriculum's transition rules are checked here, before anything runs (the controller checks
them again at run time):
- mixture weights are positive and sum to 1 within 1e-6; they are NOT normalised, so the file says
  exactly what the stream draws;
- the first phase trains a single domain (the seed: "do NOT mix domains before phase 1
  stabilises"), so a new domain can only appear after the first phase's criteria hold;
- a phase that introduces a domain keeps the previous phase's reward set (names and parameters);
- consecutive phases differ; every phase that can advance has a criterion AND a plateau test;
- only the last phase may say `terminal = true`; when none does, the last phase is terminal.

Reward parameters are stored with their defaults filled in (`rewards.REWARD_PARAMETERS`), and the
order of a reward list carries no meaning (Tunix sums the functions), so "the same reward set" means
the same functions with the same effective parameters. `[model.lora]` absent or `lora = false`
means full-weight training.

Phases expand into plan steps that each change exactly one factor (data mixture OR reward set):
see `expand_plan`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


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
    # the data sets' seed (generated items, subsets, held-out sample, and so the cached tiny base's key);
    # None = `seed`. Fix it to compare training seeds on the same data and the same warm-started base.
    data_seed: int | None = None

    @property
    def dataset_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed


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
    weights_format: str = ""  # "orbax" | "safetensors" | "gguf"; empty: detected from the path
    weights_package: str = ""  # an installed package that ships GGUF weights (assembled into cache_dir)
    dtype: str = "float32"  # the weights' dtype in Tunix: "float32" | "bfloat16"
    tokenizer: str = ""  # local path to a sentencepiece model; empty for tiny (trained locally)
    lora: LoraSpec | None = None  # None: full-weight training
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
    prompt_template: str = "plain"  # "plain" | "gemma_chat" | "few_shot" (see data.render_prompt)
    stop_pieces: tuple[str, ...] = ()  # tokenizer pieces that also end a completion, e.g. "\n\n"
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
    collapse_patience: int = 5  # consecutive collapsed steps before restoring the last checkpoint before it; 0: never
    max_restores: int = 2  # restores in a run; a collapse after that holds and says why


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

EX_CONFIG = 78  # sysexits.h EX_CONFIG: what `validate` and `run` exit with on a bad policy
KNOWN_TEMPLATES = ("plain", "gemma_chat", "few_shot")
SOURCE_KINDS = ("gsm8k", "arithmetic", "code", "qa", "jsonl", "hf")
WEIGHTS_FORMATS = ("", "orbax", "safetensors", "gguf")
WEIGHT_DTYPES = ("float32", "bfloat16")
MODEL_PRESETS = ("tiny", "gemma3_270m", "gemma3_1b_it", "gemma3_1b_pt", "gemma3_4b_it", "gemma3_12b_it", "gemma3_27b_it")
WEIGHT_TOLERANCE = 1e-6

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


def _did_you_mean(word: object, choices: object) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)  # type: ignore[attr-defined]
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

    def missing(self, key: str, what: str = "is required") -> PolicyError:
        """A required key is absent: if a misspelt key stands where it belongs, name that one."""
        unread = [k for k in self.data if k not in self.used]
        close = difflib.get_close_matches(key, unread, n=1, cutoff=0.6)
        if close:
            return PolicyError(self.file, self.at(close[0]), self.data[close[0]], "unknown key", f"did you mean {key!r}?")
        return PolicyError(self.file, self.at(key), None, what)

    def _get(self, key: str, default: object) -> object:
        self.used.add(key)
        value = self.data.get(key, default)
        if value is None:
            raise self.missing(key)
        return value

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] = (), non_empty: bool = False) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        if non_empty and not value.strip():
            raise self.error(key, "must not be empty")
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
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be an integer")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be <= {maximum}")
        return value

    def optional_integer(self, key: str, minimum: int = 1) -> int | None:
        self.used.add(key)
        return self.integer(key, minimum=minimum) if key in self.data else None

    def number(
        self, key: str, default: float | None = None, low: float | None = None, high: float | None = None,
        open_low: bool = False, open_high: bool = False,
    ) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
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
                raise self.missing(key)
            return None
        return _Table(self.file, self.at(key), self.data[key])

    def section(self, key: str) -> _Table:
        """An optional table whose absence means "all defaults"."""
        return self.table(key) or _Table(self.file, self.at(key), {})

    def array(self, key: str, required: bool = False) -> list[object]:
        self.used.add(key)
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.missing(key, "is required (at least one entry)")
            return []
        if not isinstance(value, list):
            raise self.error(key, "must be an array")
        if required and not value:
            raise self.error(key, "needs at least one entry")
        return value

    def finish(self) -> None:
        """Unknown keys are errors: a misspelt key silently ignored is a run that does the wrong thing."""
        for key in self.data:
            if key not in self.used:
                raise PolicyError(self.file, self.at(key), self.data[key], "unknown key", _did_you_mean(key, self.used))


def _parse_run(root: _Table) -> RunSpec:
    t = root.section("run")
    d = RunSpec()
    spec = RunSpec(
        name=t.string("name", d.name, non_empty=True),
        run_dir=t.string("run_dir", d.run_dir, non_empty=True),
        seed=t.integer("seed", d.seed, minimum=0),
        max_steps=t.integer("max_steps", d.max_steps),
        checkpoint_every=t.integer("checkpoint_every", d.checkpoint_every),
        keep_checkpoints=t.integer("keep_checkpoints", d.keep_checkpoints),
        data_seed=t.optional_integer("data_seed", minimum=0),
    )
    t.finish()
    return spec


def _parse_lora(t: _Table) -> LoraSpec | None:
    t.used.add("lora")
    raw = t.data.get("lora")
    if raw is None or raw is False:
        return None
    if not isinstance(raw, dict):
        raise t.error("lora", "must be a [model.lora] table, or false for full-weight training")
    lt = _Table(t.file, t.at("lora"), raw)
    d = LoraSpec()
    spec = LoraSpec(
        rank=lt.integer("rank", d.rank),
        alpha=lt.number("alpha", d.alpha, low=0.0, open_low=True),
        target_modules=lt.string("target_modules", d.target_modules, non_empty=True),
    )
    lt.finish()
    try:
        re.compile(spec.target_modules)
    except re.error as error:
        raise lt.error("target_modules", f"is not a regular expression ({error})") from None
    return spec


def _parse_tiny(t: _Table) -> TinyModelSpec:
    d = TinyModelSpec()
    tt = t.table("tiny")
    if tt is None:
        return d
    spec = TinyModelSpec(
        layers=tt.integer("layers", d.layers),
        embed_dim=tt.integer("embed_dim", d.embed_dim),
        hidden_dim=tt.integer("hidden_dim", d.hidden_dim),
        num_heads=tt.integer("num_heads", d.num_heads),
        head_dim=tt.integer("head_dim", d.head_dim),
        num_kv_heads=tt.integer("num_kv_heads", d.num_kv_heads),
        vocab_size=tt.integer("vocab_size", d.vocab_size, minimum=16),
        embedding_scale=tt.number("embedding_scale", d.embedding_scale, low=0.0, open_low=True),
    )
    tt.finish()
    return spec


def _parse_warm_start(t: _Table) -> WarmStartSpec:
    d = WarmStartSpec()
    wt = t.table("warm_start")
    if wt is None:
        return d
    spec = WarmStartSpec(
        steps=wt.integer("steps", d.steps),
        batch_size=wt.integer("batch_size", d.batch_size),
        learning_rate=wt.number("learning_rate", d.learning_rate, low=0.0, open_low=True),
        freeform_share=wt.number("freeform_share", d.freeform_share, low=0.0, high=1.0),
        contract_share=wt.number("contract_share", d.contract_share, low=0.0, high=1.0),
        seed=wt.integer("seed", d.seed, minimum=0),
    )
    wt.finish()
    if spec.freeform_share + spec.contract_share > 1.0 + 1e-9:
        raise wt.error("contract_share", "freeform_share + contract_share must be <= 1 (the rest are refusals)")
    return spec


def _parse_model(root: _Table) -> ModelSpec:
    t = root.section("model")
    d = ModelSpec()
    spec = ModelSpec(
        family=t.string("family", d.family, choices=("gemma3",)),
        preset=t.string("preset", d.preset, choices=MODEL_PRESETS),
        weights=t.string("weights", d.weights),
        weights_format=t.string("weights_format", d.weights_format, choices=WEIGHTS_FORMATS),
        weights_package=t.string("weights_package", d.weights_package),
        dtype=t.string("dtype", d.dtype, choices=WEIGHT_DTYPES),
        tokenizer=t.string("tokenizer", d.tokenizer),
        lora=_parse_lora(t),
        tiny=_parse_tiny(t),
        warm_start=_parse_warm_start(t),
        cache_dir=t.string("cache_dir", d.cache_dir, non_empty=True),
    )
    t.finish()
    if spec.preset != "tiny" and not spec.weights.strip() and not spec.weights_package.strip():
        raise PolicyError(t.file, t.at("weights"), spec.weights, "a pretrained preset needs a local weights path "
                          "(nothing is downloaded) or model.weights_package",
                          "set it in the file or with --set model.weights=/path")
    if spec.weights.strip() and spec.weights_package.strip():
        raise PolicyError(t.file, t.at("weights_package"), spec.weights_package,
                          "give either model.weights or model.weights_package, not both")
    return spec


def _parse_training(root: _Table) -> TrainingSpec:
    t = root.section("training")
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
        stop_pieces=_parse_stop_pieces(t),
        mesh_fsdp=fsdp,
        mesh_tp=tp,
    )
    t.finish()
    return spec


def _parse_stop_pieces(t: _Table) -> tuple[str, ...]:
    pieces = t.array("stop_pieces")
    for index, piece in enumerate(pieces):
        if not isinstance(piece, str) or not piece:
            raise PolicyError(t.file, f"{t.at('stop_pieces')}[{index}]", piece, "must be a non-empty string")
    return tuple(pieces)  # type: ignore[arg-type]


def _parse_metrics(root: _Table) -> MetricsSpec:
    t = root.section("metrics")
    d = MetricsSpec()
    spec = MetricsSpec(
        window=t.integer("window", d.window),
        bind=t.string("bind", d.bind, non_empty=True),
        port=t.integer("port", d.port, minimum=0, maximum=65535),
    )
    t.finish()
    return spec


def _parse_guard(file: str, path: str, raw: object) -> GuardSpec:
    from autocurriculum.observation import RATE_METRICS, is_rate

    t = _Table(file, path, raw)
    metric = t.string("metric")
    if not is_rate(metric):
        raise t.error("metric", "a guard watches a known rate metric", _did_you_mean(metric, sorted(RATE_METRICS)))
    spec = GuardSpec(
        metric=metric,
        max_drop=t.number("max_drop", low=0.0, high=1.0, open_low=True),
        higher_is_better=t.boolean("higher_is_better", True),
    )
    t.finish()
    return spec


def _parse_judgement(root: _Table) -> JudgementSpec:
    t = root.section("judgement")
    d = JudgementSpec()
    guards = tuple(_parse_guard(root.file, f"{t.at('guards')}[{i}]", g) for i, g in enumerate(t.array("guards")))
    spec = JudgementSpec(
        grace_steps=t.integer("grace_steps", d.grace_steps, minimum=0),
        guards=guards,
        persist_windows=t.integer("persist_windows", d.persist_windows),
        judge_steps=t.integer("judge_steps", d.judge_steps),
        max_rollbacks=t.integer("max_rollbacks", d.max_rollbacks, minimum=0),
        settle_steps=t.integer("settle_steps", d.settle_steps),
        collapse_patience=t.integer("collapse_patience", d.collapse_patience, minimum=0),
        max_restores=t.integer("max_restores", d.max_restores, minimum=0),
    )
    t.finish()
    return spec


def _parse_source(t: _Table, name: str) -> SourceSpec:
    fields = t.table("fields")
    options = t.table("options")
    spec = SourceSpec(
        name=name,
        kind=t.string("kind", choices=SOURCE_KINDS),
        domain=t.string("domain", non_empty=True),
        split=t.string("split", "train", non_empty=True),
        path=t.string("path", ""),
        hub_name=t.string("hub_name", ""),
        hub_config=t.string("hub_config", ""),
        fields=dict(fields.data) if fields else {},
        options=dict(options.data) if options else {},
    )
    t.finish()
    for key, value in spec.fields.items():
        if not isinstance(value, str):
            raise PolicyError(t.file, f"{t.at('fields')}.{key}", value, "must be a column name (string)")
    for key, value in spec.options.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise PolicyError(t.file, f"{t.at('options')}.{key}", value, "must be a number or a string")
    return spec


def _parse_sources(root: _Table) -> dict[str, SourceSpec]:
    t = root.table("sources", required=True)
    assert t is not None
    sources: dict[str, SourceSpec] = {}
    for name in list(t.data):
        st = t.table(name)
        assert st is not None
        sources[name] = _parse_source(st, name)
    if not sources:
        raise PolicyError(root.file, "sources", {}, "at least one source is required")
    return sources


def _parse_eval(root: _Table, sources: Mapping[str, SourceSpec]) -> EvalSpec:
    t = root.section("eval")
    d = EvalSpec()
    names = t.array("sources")
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in sources:
            raise PolicyError(root.file, f"{t.at('sources')}[{i}]", name, "unknown source", _did_you_mean(name, sources))
    spec = EvalSpec(
        every=t.integer("every", d.every, minimum=0),
        items_per_domain=t.integer("items_per_domain", d.items_per_domain),
        sources=tuple(str(n) for n in names),
    )
    t.finish()
    return spec


def _plateau_fields(t: _Table, defaults: Mapping[str, object]) -> dict[str, object]:
    """The plateau test and its knobs, each falling back to `defaults`, range-checked alike."""
    values: dict[str, object] = {
        "test": PlateauTest(t.string("test", str(defaults["test"]), choices=tuple(x.value for x in PlateauTest))),
        "window": t.integer("window", int(defaults["window"]), minimum=_PLATEAU_MIN_WINDOW),  # type: ignore[call-overload]
        "patience": t.integer("patience", int(defaults["patience"])),  # type: ignore[call-overload]
    }
    for key, (low, high, open_low, open_high) in _PLATEAU_NUMBERS.items():
        values[key] = t.number(key, float(defaults[key]), low=low, high=high,  # type: ignore[arg-type]
                               open_low=open_low, open_high=open_high)
    return values


def _plateau_defaults(root: _Table) -> dict[str, object]:
    t = root.section("plateau")
    d = PlateauSpec(metric="", test=PlateauTest.TREND, window=10)
    builtin = {name: getattr(d, name) for name in ("test", "window", "patience", *_PLATEAU_NUMBERS)}
    defaults = _plateau_fields(t, builtin)
    t.finish()
    return defaults


def _check_metric_name(file: str, path: str, metric: str) -> None:
    from autocurriculum.observation import STEP_METRICS, is_known_metric

    if not is_known_metric(metric):
        raise PolicyError(file, path, metric, "unknown metric", _did_you_mean(metric, STEP_METRICS))


def _parse_mixture(t: _Table, sources: Mapping[str, SourceSpec]) -> Mixture:
    components = []
    for i, raw in enumerate(t.array("data", required=True)):
        ct = _Table(t.file, f"{t.at('data')}[{i}]", raw)
        source = ct.string("source")
        if source not in sources:
            raise ct.error("source", "unknown source", _did_you_mean(source, sources))
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


def _parse_rewards(t: _Table) -> RewardSet:
    # Imported here, not at the top: rewards.py imports RewardSpec from this module.
    from autocurriculum.rewards import REWARD_PARAMETERS

    rewards = []
    for i, raw in enumerate(t.array("rewards", required=True)):
        rt = _Table(t.file, f"{t.at('rewards')}[{i}]", raw)
        name = rt.string("name")
        if name not in REWARD_PARAMETERS:
            raise rt.error("name", "unknown reward function", _did_you_mean(name, REWARD_PARAMETERS))
        params = dict(REWARD_PARAMETERS[name])
        pt = rt.table("params")
        if pt is not None:
            for key in list(pt.data):
                if key not in params:
                    raise PolicyError(t.file, pt.at(key), pt.data[key], f"unknown parameter of {name}",
                                      _did_you_mean(key, REWARD_PARAMETERS[name]))
                params[key] = pt.number(key)
            pt.finish()
        rt.finish()
        rewards.append(RewardSpec(name, params))
    names = [r.name for r in rewards]
    if len(set(names)) != len(names):
        raise PolicyError(t.file, t.at("rewards"), names, "a reward function appears twice")
    return tuple(rewards)


def _parse_criteria(t: _Table) -> tuple[Criterion, ...]:
    from autocurriculum.observation import is_rate

    criteria = []
    for i, raw in enumerate(t.array("criteria")):
        ct = _Table(t.file, f"{t.at('criteria')}[{i}]", raw)
        metric = ct.string("metric")
        _check_metric_name(t.file, ct.at("metric"), metric)
        comparison = Comparison(ct.string("comparison", choices=tuple(c.value for c in Comparison)))
        threshold = ct.number("threshold", low=0.0, high=1.0) if is_rate(metric) else ct.number("threshold")
        source = Source(ct.string("source", Source.ROLLOUT.value, choices=tuple(s.value for s in Source)))
        ct.finish()
        criteria.append(Criterion(metric, comparison, threshold, source))
    return tuple(criteria)


def _parse_plateaus(t: _Table, defaults: Mapping[str, object]) -> tuple[PlateauSpec, ...]:
    plateaus = []
    for i, raw in enumerate(t.array("plateau")):
        pt = _Table(t.file, f"{t.at('plateau')}[{i}]", raw)
        metric = pt.string("metric")
        _check_metric_name(t.file, pt.at("metric"), metric)
        values = _plateau_fields(pt, defaults)
        source = Source(pt.string("source", Source.ROLLOUT.value, choices=tuple(s.value for s in Source)))
        pt.finish()
        plateaus.append(PlateauSpec(metric=metric, source=source, **values))  # type: ignore[arg-type]
    return tuple(plateaus)


def _parse_phase(file: str, index: int, raw: object, sources: Mapping[str, SourceSpec],
                 plateau_defaults: Mapping[str, object]) -> PhaseSpec:
    t = _Table(file, f"phases[{index}]", raw)
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


def same_reward_set(a: RewardSet, b: RewardSet) -> bool:
    """The same functions with the same parameters, in any order (Tunix sums them)."""
    return sorted((r.name, sorted(r.params.items())) for r in a) == sorted((r.name, sorted(r.params.items())) for r in b)


def _settle_phases(phases: tuple[PhaseSpec, ...]) -> tuple[PhaseSpec, ...]:
    """The last phase is terminal when none says so; a reordered copy of the previous reward set is that set."""
    settled = list(phases)
    if not any(p.terminal for p in settled):
        settled[-1] = dataclasses.replace(settled[-1], terminal=True)
    for i in range(1, len(settled)):
        if settled[i].rewards != settled[i - 1].rewards and same_reward_set(settled[i].rewards, settled[i - 1].rewards):
            settled[i] = dataclasses.replace(settled[i], rewards=settled[i - 1].rewards)
    return tuple(settled)


def _check_domain_metrics(file: str, phases: tuple[PhaseSpec, ...], guards: tuple[GuardSpec, ...],
                          sources: Mapping[str, SourceSpec]) -> None:
    """`domain_compliance:<d>` must name a domain that some phase's mixture actually trains."""
    from autocurriculum.observation import (
        DOMAIN_ACCURACY_PREFIX,
        DOMAIN_COMPLIANCE_PREFIX,
    )

    trained = frozenset().union(*(p.mixture.domains(sources) for p in phases))
    named: list[tuple[str, str]] = [(f"judgement.guards[{i}].metric", g.metric) for i, g in enumerate(guards)]
    for i, phase in enumerate(phases):
        named += [(f"phases[{i}].criteria[{j}].metric", c.metric) for j, c in enumerate(phase.criteria)]
        named += [(f"phases[{i}].plateau[{j}].metric", p.metric) for j, p in enumerate(phase.plateau)]
    for path, metric in named:
        for prefix in (DOMAIN_COMPLIANCE_PREFIX, DOMAIN_ACCURACY_PREFIX):
            domain = metric[len(prefix):] if metric.startswith(prefix) else None
            if domain is not None and domain not in trained:
                raise PolicyError(file, path, metric, f"no phase's mixture uses domain {domain!r} "
                                  f"(trained domains: {', '.join(sorted(trained))})", _did_you_mean(domain, trained))


def _check_rules(file: str, phases: tuple[PhaseSpec, ...], sources: Mapping[str, SourceSpec]) -> None:
    """The curriculum's transition rules, checked before anything runs (decide() checks them again)."""
    names = [p.name for p in phases]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise PolicyError(file, f"phases[{i}].name", name, f"phase names must be unique (phases[{names.index(name)}] "
                              "has the same name)")
    for i, phase in enumerate(phases):
        if phase.terminal and i != len(phases) - 1:
            raise PolicyError(file, f"phases[{i}].terminal", True, "only the last phase can be terminal")
        if i < len(phases) - 1:
            for key, entries, what in (("criteria", phase.criteria, "criterion"), ("plateau", phase.plateau, "plateau test")):
                if not entries:
                    raise PolicyError(file, f"phases[{i}].{key}", [], f"phase {phase.name!r} can advance, so it needs at "
                                      f"least one {what} (advance only on criteria AND plateau)")
    first_domains = phases[0].mixture.domains(sources)
    if len(first_domains) != 1:
        raise PolicyError(file, "phases[0].data", sorted(first_domains),
                          "the first phase trains one domain: no domain mixing before phase 1 has stabilised")
    for i in range(1, len(phases)):
        previous, phase = phases[i - 1], phases[i]
        new_domains = phase.mixture.domains(sources) - previous.mixture.domains(sources)
        same_data = previous.mixture == phase.mixture
        same_rewards = same_reward_set(previous.rewards, phase.rewards)
        if same_data and same_rewards:
            raise PolicyError(file, f"phases[{i}]", phase.name, f"changes nothing from phase {previous.name!r} "
                              "(same data mixture and same reward set)")
        if new_domains and not same_rewards:
            raise PolicyError(file, f"phases[{i}].rewards", [r.name for r in phase.rewards],
                              f"phase {phase.name!r} introduces domains {sorted(new_domains)} and also changes the reward "
                              f"set of phase {previous.name!r}: rewards must not change when domains are introduced",
                              f"keep phase {previous.name!r}'s rewards here and change them in a phase of their own")


_OVERRIDE_SEGMENT = re.compile(r"([A-Za-z0-9_-]+)((?:\[\d+\])*)")


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], file: str) -> None:
    """`--set KEY=VALUE` into the TOML table before it is read, so errors still name the TOML path.

    KEY is a dotted path, with `[i]` for an array entry (`phases[1].max_steps`). VALUE is read as a
    TOML value (numbers, booleans, quoted strings, arrays) and otherwise taken as a plain string
    (`model.weights=/models/gemma3-1b-it`).
    """
    for override in overrides:
        key, sep, raw = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PolicyError(file, "--set", override, "expected KEY=VALUE, e.g. run.max_steps=50")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        steps: list[str | int] = []
        for segment in key.split("."):
            match = _OVERRIDE_SEGMENT.fullmatch(segment)
            if match is None:
                raise PolicyError(file, "--set", override, f"cannot read key segment {segment!r}",
                                  "use dotted names with [i] for array entries, e.g. phases[1].max_steps=100")
            steps.append(match.group(1))
            steps += [int(n) for n in re.findall(r"\[(\d+)\]", match.group(2))]
        node: Any = data
        for position, step in enumerate(steps):
            last = position == len(steps) - 1
            where = _dotted(steps[:position]) or "<root>"
            if isinstance(step, int):
                if not isinstance(node, list) or step >= len(node):
                    raise PolicyError(file, "--set", override, f"{where} has no entry [{step}]")
            elif not isinstance(node, dict):
                raise PolicyError(file, "--set", override, f"{where} is not a table")
            if last:
                node[step] = value
            elif isinstance(step, str):
                node = node.setdefault(step, {})
            else:
                node = node[step]


def _dotted(steps: Sequence[str | int]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else s) for i, s in enumerate(steps))


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _syntax_error(text: str, file: str, error: tomllib.TOMLDecodeError) -> PolicyError:
    """A TOML syntax error names the line and column, and shows the line."""
    message = str(error)
    match = _TOML_POSITION.search(message)
    if match is None:  # "(at end of document)"
        return PolicyError(file, "end of document", text.splitlines()[-1] if text.splitlines() else "",
                           f"TOML syntax error: {message}")
    line, column = int(match.group(1)), int(match.group(2))
    lines = text.splitlines()
    shown = lines[line - 1] if 0 < line <= len(lines) else ""
    return PolicyError(file, f"line {line}, column {column}", shown, f"TOML syntax error: {message[:match.start()]}")


def parse_table(data: Mapping[str, Any], file: str) -> Policy:
    """Validate an already-decoded TOML table (pure). `parse` is this after tomllib."""
    root = _Table(file, "", dict(data))
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
    _check_domain_metrics(file, phases, judgement.guards, sources)
    return Policy(file=file, run=run, model=model, training=training, metrics=metrics, judgement=judgement,
                  eval=evaluation, sources=sources, phases=_settle_phases(phases))


def parse(text: str, file: str, overrides: Sequence[str] = ()) -> Policy:
    """Parse and validate a policy (pure: no I/O). `overrides` are `--set KEY=VALUE` strings."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(text, file, error) from None
    apply_overrides(data, overrides, file)
    return parse_table(data, file)


def load(path: Path | str, overrides: Sequence[str] = ()) -> Policy:
    """Read and parse a policy file; an unreadable file is a PolicyError too."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(file, "<file>", file, f"cannot read policy: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise PolicyError(file, "<file>", file, f"not UTF-8 text ({error.reason})") from None
    return parse(text, file, overrides)


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
    """Names, with the parameters that differ from rewards.py's defaults."""
    from autocurriculum.rewards import REWARD_PARAMETERS

    parts = []
    for reward in rewards:
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
