"""The policy's sections: each TOML table read into its frozen spec, with its ranges checked.

One function per section of the run's settings (`[run]`, `[model]`, `[training]`, `[metrics]`,
`[judgement]`, `[sources.NAME]`, `[eval]`); the phases and the `[plateau]` defaults are read in
phase_sections.py. `parse_table` reads them all, then checks the curriculum's rules
(curriculum_rules.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from autocurriculum.curriculum_rules import check_domain_metrics, check_rules, settle_phases
from autocurriculum.observation import (
    RATE_METRICS,
    is_rate,
)
from autocurriculum.phase_sections import parse_phase, plateau_defaults
from autocurriculum.spec import (
    KNOWN_TEMPLATES,
    LR_SCHEDULES,
    MICRO_BATCH_SIZES,
    MODEL_PRESETS,
    SOURCE_KINDS,
    WEIGHT_DTYPES,
    WEIGHTS_FORMATS,
    EvalSpec,
    GuardSpec,
    JudgementSpec,
    LoraSpec,
    MetricsSpec,
    ModelSpec,
    Policy,
    PolicyError,
    RunSpec,
    SourceSpec,
    TinyModelSpec,
    TrainingSpec,
    WarmStartSpec,
)
from autocurriculum.toml_table import TomlTable, did_you_mean


def _parse_run(root: TomlTable) -> RunSpec:
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


def _parse_lora(t: TomlTable) -> LoraSpec | None:
    t.used.add("lora")
    raw = t.data.get("lora")
    if raw is None or raw is False:
        return None
    if not isinstance(raw, dict):
        raise t.error("lora", "must be a [model.lora] table, or false for full-weight training")
    lt = TomlTable(t.file, t.at("lora"), raw)
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


def _parse_tiny(t: TomlTable) -> TinyModelSpec:
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


def _parse_warm_start(t: TomlTable) -> WarmStartSpec:
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


def _parse_model(root: TomlTable) -> ModelSpec:
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


def _parse_training(root: TomlTable, run: RunSpec) -> TrainingSpec:
    t = root.section("training")
    d = TrainingSpec()
    fsdp, tp = d.mesh_fsdp, d.mesh_tp
    mt = t.table("mesh")
    if mt is not None:
        fsdp, tp = mt.integer("fsdp", fsdp), mt.integer("tp", tp)
        mt.finish()
    learning_rate = t.number("learning_rate", d.learning_rate, low=0.0, open_low=True)
    prompts_per_step = t.integer("prompts_per_step", d.prompts_per_step)
    num_iterations = t.integer("num_iterations", d.num_iterations)
    lr_schedule = t.string("lr_schedule", d.lr_schedule, choices=LR_SCHEDULES)
    warmup_steps, decay_steps, end_value = _parse_schedule(t, lr_schedule, learning_rate,
                                                           updates=run.max_steps * num_iterations)
    spec = TrainingSpec(
        learning_rate=learning_rate,
        prompts_per_step=prompts_per_step,
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
        lr_schedule=lr_schedule,
        warmup_steps=warmup_steps,
        decay_steps=decay_steps,
        end_value=end_value,
        max_grad_norm=t.number("max_grad_norm", d.max_grad_norm, low=0.0),
        weight_decay=t.number("weight_decay", d.weight_decay, low=0.0),
        b1=t.number("b1", d.b1, low=0.0, high=1.0, open_high=True),
        b2=t.number("b2", d.b2, low=0.0, high=1.0, open_high=True),
        num_iterations=num_iterations,
        epsilon=t.number("epsilon", d.epsilon, low=0.0, high=1.0, open_low=True, open_high=True),
        top_k=t.integer("top_k", d.top_k, minimum=0),
        **_parse_micro_batch_sizes(t, prompts_per_step),
    )
    t.finish()
    return spec


def _parse_schedule(t: TomlTable, lr_schedule: str, learning_rate: float, updates: int) -> tuple[int, int, float]:
    """(warmup_steps, decay_steps, end_value) of the learning-rate schedule, in optimizer updates.

    decay_steps is the schedule's whole length, warmup included (optax's and Tunix's meaning); it
    defaults to the run's updates (run.max_steps x num_iterations), as Tunix's CLI defaults it to
    max_steps. A constant learning rate has none of the three: one given anyway would be ignored
    in silence, so it is an error.
    """
    if lr_schedule == "constant":
        for key in ("warmup_steps", "decay_steps", "end_value"):
            t.used.add(key)
            if key in t.data:
                raise t.error(key, "applies only to a decaying schedule",
                              'set training.lr_schedule = "warmup_cosine" or "warmup_linear", or remove it')
        return 0, 0, 0.0
    warmup_steps = t.integer("warmup_steps", 0, minimum=0)
    decay_steps = t.integer("decay_steps", updates)
    if warmup_steps >= decay_steps:
        if "decay_steps" in t.data:
            raise t.error("decay_steps", f"must be greater than training.warmup_steps ({warmup_steps}): "
                                         "it is the schedule's whole length, warmup included")
        raise t.error("warmup_steps", f"must be less than decay_steps ({decay_steps}: not set, so the run's "
                                      "optimizer updates: run.max_steps x num_iterations)")
    end_value = t.number("end_value", 0.0, low=0.0)
    if end_value > learning_rate:
        raise t.error("end_value", f"must not exceed training.learning_rate ({learning_rate:g}), the schedule's peak")
    return warmup_steps, decay_steps, end_value


def _parse_micro_batch_sizes(t: TomlTable, prompts_per_step: int) -> dict[str, int | None]:
    """Tunix's micro-batch sizes, in prompts: each must divide the batch, as Tunix checks only once training runs."""
    sizes: dict[str, int | None] = {}
    for key in MICRO_BATCH_SIZES:
        size = t.optional_integer(key)
        if size is not None and prompts_per_step % size:
            raise t.error(key, f"must divide training.prompts_per_step ({prompts_per_step})",
                          "Tunix splits each step's prompts into micro-batches of this many")
        sizes[key] = size
    return sizes


def _parse_stop_pieces(t: TomlTable) -> tuple[str, ...]:
    pieces: list[str] = []
    for index, piece in enumerate(t.array("stop_pieces")):
        if not isinstance(piece, str) or not piece:
            raise PolicyError(t.file, f"{t.at('stop_pieces')}[{index}]", piece, "must be a non-empty string")
        pieces.append(piece)
    return tuple(pieces)


def _parse_metrics(root: TomlTable) -> MetricsSpec:
    t = root.section("metrics")
    d = MetricsSpec()
    spec = MetricsSpec(
        window=t.integer("window", d.window),
        bind=t.string("bind", d.bind, non_empty=True),
        port=t.integer("port", d.port, minimum=0, maximum=65535),
        report_every=t.integer("report_every", d.report_every, minimum=0),
        tensorboard_dir=t.string("tensorboard_dir", d.tensorboard_dir),
    )
    if spec.tensorboard_dir != spec.tensorboard_dir.strip():
        raise t.error("tensorboard_dir", "a directory name must not begin or end with spaces")
    t.finish()
    return spec


def _parse_guard(file: str, path: str, raw: object) -> GuardSpec:
    t = TomlTable(file, path, raw)
    metric = t.string("metric")
    if not is_rate(metric):
        raise t.error("metric", "a guard watches a known rate metric", did_you_mean(metric, sorted(RATE_METRICS)))
    spec = GuardSpec(
        metric=metric,
        max_drop=t.number("max_drop", low=0.0, high=1.0, open_low=True),
        higher_is_better=t.boolean("higher_is_better", True),
    )
    t.finish()
    return spec


def _parse_judgement(root: TomlTable) -> JudgementSpec:
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


def _parse_source(t: TomlTable, name: str) -> SourceSpec:
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
    for key, column in spec.fields.items():
        if not isinstance(column, str):
            raise PolicyError(t.file, f"{t.at('fields')}.{key}", column, "must be a column name (string)")
    for key, option in spec.options.items():
        if isinstance(option, bool) or not isinstance(option, (int, float, str)):
            raise PolicyError(t.file, f"{t.at('options')}.{key}", option, "must be a number or a string")
    return spec


def _parse_sources(root: TomlTable) -> dict[str, SourceSpec]:
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


def _parse_eval(root: TomlTable, sources: Mapping[str, SourceSpec]) -> EvalSpec:
    t = root.section("eval")
    d = EvalSpec()
    names = t.array("sources")
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in sources:
            raise PolicyError(root.file, f"{t.at('sources')}[{i}]", name, "unknown source", did_you_mean(name, sources))
    spec = EvalSpec(
        every=t.integer("every", d.every, minimum=0),
        items_per_domain=t.integer("items_per_domain", d.items_per_domain),
        sources=tuple(str(n) for n in names),
    )
    t.finish()
    return spec


def parse_table(data: Mapping[str, Any], file: str) -> Policy:
    """Validate an already-decoded TOML table (pure). `parse` is this after tomllib."""
    root = TomlTable(file, "", dict(data))
    run = _parse_run(root)
    model = _parse_model(root)
    training = _parse_training(root, run)
    metrics = _parse_metrics(root)
    judgement = _parse_judgement(root)
    sources = _parse_sources(root)
    evaluation = _parse_eval(root, sources)
    defaults = plateau_defaults(root)
    raw_phases = root.array("phases", required=True)
    phases = tuple(parse_phase(file, i, raw, sources, defaults) for i, raw in enumerate(raw_phases))
    root.finish()
    check_rules(file, phases, sources)
    check_domain_metrics(file, phases, judgement.guards, sources)
    return Policy(file=file, run=run, model=model, training=training, metrics=metrics, judgement=judgement,
                  eval=evaluation, sources=sources, phases=settle_phases(phases))
