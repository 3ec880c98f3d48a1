"""The policy's spec: the frozen dataclasses and enums a validated policy is made of.

This module is the leaf of the package: it imports nothing of autocurriculum, so every other
module (the readers, the plan, the controller, the data stream, the rewards, the Tunix adapter)
may import it without an import circle. It holds the reward registry too, the names of the reward
functions and their default parameters (`REWARD_PARAMETERS`): the reader needs them to validate a
policy and the rewards module needs them to score, and neither should have to import the other.
Why each default has its value is said in rewards.py, where the functions are.

Reward parameters are stored with their defaults filled in, and the order of a reward list carries
no meaning (Tunix sums the functions), so "the same reward set" means the same functions with the
same effective parameters (`same_reward_set`). `[model.lora]` absent or `lora = false` means
full-weight training (`ModelSpec.lora is None`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


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
    "qa" (generated short reasoning questions), "open" (generated open-ended prompts, ungraded),
    "jsonl" / "hf" (a user's dataset with a field map); and phase 3's data set shapes through
    `datasets` (data/task_shapes.py): "code_tests" (MBPP-style), "multiple_choice" (ARC-style),
    "instructions" (Dolly-style, ungraded).
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
    """One named reward function and its parameters.

    A built-in (names and defaults: `REWARD_PARAMETERS`) has numeric parameters; a user's reward
    names its `function` ("package.module:function", or "file.py:function" from the policy's folder)
    with Tunix's signature `fn(prompts, completions, **kwargs) -> list[float]`, and its `params`
    (any TOML scalars) are passed to it as keyword arguments.
    """

    name: str
    params: Mapping[str, float] = field(default_factory=dict)
    function: str = ""

    @property
    def is_user_function(self) -> bool:
        return bool(self.function)


REWARD_PARAMETERS: Final[Mapping[str, Mapping[str, float]]] = {
    "punish_refusal": {"penalty": -1.0},
    "strict_format_gate": {"fail": -1.0, "pass": 0.5},
    "light_length_penalty": {"per_token": -0.005, "budget": 20.0, "floor": -0.5},
    "check_answer_strict": {"correct": 1.0, "wrong": 0.0},
    "penalize_length": {"per_token_correct": -0.005, "per_token_wrong": -0.02, "budget": 20.0, "floor": -1.0},
}
RewardSet = tuple[RewardSpec, ...]
# A reward with a `budget` (the two length rewards) also takes `budget:<domain>`: that domain's length budget
# in tokens (and, times the rambling factor, its rambling threshold); other domains use `budget`.
DOMAIN_BUDGET_PREFIX: Final = "budget:"

# The keywords a user's reward function receives besides its own params: Tunix's (prompts,
# completions, mode, the dataset's columns) and the parsed output contract, one value per completion.
CONTRACT_KEYWORDS: Final = ("extracted_answer", "reasoning", "strict", "refused", "length_tokens", "correct")
RESERVED_REWARD_KEYWORDS: Final = frozenset({"prompts", "completions", "mode", "answer", "domain", "grading", "id",
                                             *CONTRACT_KEYWORDS})


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
    MANN_KENDALL_HR = "mann_kendall_hr"  # Hamed-Rao: variance corrected for autocorrelated steps
    SLOPE_TOST = "slope_tost"  # equivalence of slope x window to 0 within +/- epsilon, HAC standard error
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
    alpha: float = 0.05  # Mann-Kendall significance, 1 - confidence for the trend CI, slope_tost's error rate
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
    # the actor's optimizer: optax.adamw, its defaults unless set; the names are Tunix's (its CLI's
    # optimizer_config) where it has one. Steps count optimizer updates: one per daemon step times
    # num_iterations.
    lr_schedule: str = "constant"  # "constant" | "warmup_cosine" | "warmup_linear"; learning_rate is the peak
    warmup_steps: int = 0  # linear warmup from 0 to learning_rate (decaying schedules only)
    decay_steps: int = 0  # the schedule's whole length, warmup included (optax's meaning); 0 when constant
    end_value: float = 0.0  # the learning rate at decay_steps and after
    max_grad_norm: float = 0.0  # optax.clip_by_global_norm before the optimizer; 0 = no clipping
    weight_decay: float = 1e-4  # optax.adamw's defaults, so a policy without these trains as before
    b1: float = 0.9
    b2: float = 0.999
    # GRPO (Tunix's GRPOConfig): updates per batch (mu) and the policy ratio's clip range (epsilon)
    num_iterations: int = 1
    epsilon: float = 0.2
    top_k: int = 0  # RolloutConfig.top_k; 0 = no top-k filtering (Tunix: None)
    # Tunix's RLTrainingConfig micro-batches, in prompts (each with its generations); None = the whole batch
    rollout_micro_batch_size: int | None = None
    train_micro_batch_size: int | None = None
    compute_logps_micro_batch_size: int | None = None

    @property
    def decays(self) -> bool:
        """The learning rate follows a warmup-and-decay schedule (not a constant)."""
        return self.lr_schedule != "constant"


@dataclass(frozen=True, slots=True)
class MetricsSpec:
    window: int = 10
    bind: str = "127.0.0.1"
    port: int = 9464  # 0 disables the HTTP exporter
    report_every: int = 0  # rewrite RUN_DIR/report.html every N steps (report.py); 0 = never
    # TensorBoard event files of Tunix's metrics logger and the controller's figures; relative to the
    # run directory; "" = none
    tensorboard_dir: str = ""


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



# ---------------------------------------------------------------- the vocabulary of values a policy may use

KNOWN_TEMPLATES = ("plain", "gemma_chat", "few_shot")
LR_SCHEDULES = ("constant", "warmup_cosine", "warmup_linear")
MICRO_BATCH_SIZES = ("rollout_micro_batch_size", "train_micro_batch_size", "compute_logps_micro_batch_size")
WEIGHTS_FORMATS = ("", "orbax", "safetensors", "gguf")
WEIGHT_DTYPES = ("float32", "bfloat16")
SOURCE_KINDS = ("gsm8k", "arithmetic", "code", "qa", "open", "jsonl", "hf", "code_tests", "multiple_choice",
                "instructions")
MODEL_PRESETS = ("tiny", "gemma3_270m", "gemma3_1b_it", "gemma3_1b_pt", "gemma3_4b_it", "gemma3_12b_it", "gemma3_27b_it")


def same_reward_set(a: RewardSet, b: RewardSet) -> bool:
    """The same functions with the same parameters, in any order (Tunix sums them)."""
    return sorted((r.name, sorted(r.params.items())) for r in a) == sorted((r.name, sorted(r.params.items())) for r in b)
