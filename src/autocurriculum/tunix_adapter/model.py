"""Build the base model and tokenizer a policy names, and cache the tiny quickstart's warm start.

Two kinds of base:
- a pretrained Gemma3 (e.g. gemma3_1b_it) from a local path, loaded with Tunix's own loaders: an
  Orbax/Kaggle checkpoint directory (`params.create_model_from_checkpoint`) or a Hugging Face
  safetensors directory (`params_safetensors.create_model_from_safe_tensors`);
- the tiny quickstart model, built from Tunix's own `ModelConfig` with `dataclasses.replace`, a
  sentencepiece tokenizer trained locally, and a supervised warm start. Both are cached under
  model.cache_dir keyed by a hash of their recipe, so later runs and tests reuse them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sentencepiece as spm
from flax import nnx
from tunix.models.gemma3 import model as gemma3_model

from autocurriculum.exits import BadSetting, MissingInput
from autocurriculum.policy import MODEL_PRESETS, WEIGHTS_FORMATS, ModelSpec, Policy
from autocurriculum.tunix_adapter.completion_lengths import CompletionLengths
from autocurriculum.tunix_adapter.environment import make_mesh
from autocurriculum.tunix_adapter.gguf_tokenizer import tokenizer_from_gguf
from autocurriculum.tunix_adapter.gguf_weights import (
    assemble_packaged_gguf,
    load_gguf_model,
)
from autocurriculum.tunix_adapter.tokenizer import (
    load_sentencepiece,
    train_sentencepiece,
)
from autocurriculum.tunix_adapter.warm_start import Example, warm_start

RECIPE_VERSION = 3  # bump when the warm-start code changes what it produces
GEMMA_PRESETS = tuple(preset for preset in MODEL_PRESETS if preset != "tiny")  # one list: the policy's
GEMMA_END_OF_TURN = "<end_of_turn>"
WEIGHT_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}  # model.dtype -> Tunix's param_dtype


@dataclass
class ModelBundle:
    """What the GRPO session needs: tokenizer, base model (also the reference), config and mesh."""

    tokenizer: spm.SentencePieceProcessor
    base: gemma3_model.Gemma3
    config: gemma3_model.ModelConfig
    mesh: jax.sharding.Mesh
    eos_ids: tuple[int, ...]
    recipe_key: str
    lengths: CompletionLengths = dataclasses.field(init=False)  # the reward pass's token counts

    def __post_init__(self) -> None:
        self.lengths = CompletionLengths(self.tokenizer)


def _expand(path: str, base_dir: Path) -> Path:
    candidate = Path(os.path.expanduser(path))
    return candidate if candidate.is_absolute() else (base_dir / candidate)


def tiny_config(model: ModelSpec, vocab_size: int) -> gemma3_model.ModelConfig:
    tiny = model.tiny
    return dataclasses.replace(
        gemma3_model.ModelConfig.gemma3_270m(),
        num_layers=tiny.layers,
        num_embed=vocab_size,
        embed_dim=tiny.embed_dim,
        hidden_dim=tiny.hidden_dim,
        num_heads=tiny.num_heads,
        head_dim=tiny.head_dim,
        num_kv_heads=tiny.num_kv_heads,
        sliding_window_size=128,
        param_dtype=jnp.float32,
    )


def tiny_recipe_key(policy: Policy, corpus_recipe: object) -> str:
    recipe = {
        "version": RECIPE_VERSION,
        "tiny": dataclasses.asdict(policy.model.tiny),
        "warm_start": dataclasses.asdict(policy.model.warm_start),
        "corpus": corpus_recipe,
        "max_prompt_tokens": policy.training.max_prompt_tokens,
        "max_new_tokens": policy.training.max_new_tokens,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_params(model: nnx.Module, path: Path) -> None:
    """Write the model's parameters as one .npz, atomically (write a temp file, then rename)."""
    flat = {
        "/".join(str(part) for part in key): np.asarray(value)
        for key, value in nnx.to_flat_state(nnx.state(model, nnx.Param))
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as handle:
        # Any: numpy's stub lets a ** mapping's values reach savez's `allow_pickle: bool` as well
        arrays: dict[str, Any] = {key.replace("/", "__"): value for key, value in flat.items()}
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    Path(handle.name).replace(path)


def load_params(model: nnx.Module, path: Path) -> None:
    state = nnx.state(model, nnx.Param)
    flat = dict(nnx.to_flat_state(state))
    with np.load(path) as archive:
        for key in flat:
            name = "__".join(str(part) for part in key)
            flat[key].value = jnp.asarray(archive[name])
    nnx.update(model, nnx.from_flat_state(flat))


def build_model_bundle(
    policy: Policy,
    base_dir: Path,
    corpus: Callable[[], Sequence[str]],
    corpus_recipe: object,
    warm_examples: Callable[[int], Iterator[Sequence[Example]]],
    log: Callable[..., None],
) -> ModelBundle:
    """Build (or load from cache) the tokenizer and base model the policy names."""
    spec = policy.model
    mesh = make_mesh(policy.training.mesh_fsdp, policy.training.mesh_tp)
    if spec.preset == "tiny":
        bundle = _tiny_bundle(policy, base_dir, mesh, corpus, corpus_recipe, warm_examples, log)
    else:
        bundle = _pretrained_bundle(spec, base_dir, mesh)
    return with_stop_pieces(bundle, policy.training.stop_pieces)


def with_stop_pieces(bundle: ModelBundle, pieces: Sequence[str]) -> ModelBundle:
    """Add the ids of `training.stop_pieces` to the ids that end a completion.

    Why: a base model given worked examples ends its answer the way the examples do (a blank line
    before the next question), not with EOS; stopping on that piece keeps the completion to the answer.
    """
    stop_ids = list(bundle.eos_ids)
    for index, piece in enumerate(pieces):
        piece_id = bundle.tokenizer.piece_to_id(piece)
        if piece_id == bundle.tokenizer.unk_id() or bundle.tokenizer.id_to_piece(piece_id) != piece:
            raise BadSetting(f"training.stop_pieces[{index}]: {piece!r} is not a piece of the model's tokenizer")
        if piece_id not in stop_ids:
            stop_ids.append(piece_id)
    return dataclasses.replace(bundle, eos_ids=tuple(stop_ids))


def _tiny_bundle(
    policy: Policy,
    base_dir: Path,
    mesh: jax.sharding.Mesh,
    corpus: Callable[[], Sequence[str]],
    corpus_recipe: object,
    warm_examples: Callable[[int], Iterator[Sequence[Example]]],
    log: Callable[..., None],
) -> ModelBundle:
    spec = policy.model
    key = tiny_recipe_key(policy, corpus_recipe)
    cache = _expand(spec.cache_dir, base_dir) / f"tiny-{key}"
    tokenizer_path = cache / "tokenizer.model"
    params_path = cache / "base.npz"
    if not tokenizer_path.is_file():
        log("tokenizer_training", path=str(tokenizer_path), vocab_size=spec.tiny.vocab_size)
        train_sentencepiece(corpus(), spec.tiny.vocab_size, tokenizer_path)
    tokenizer = load_sentencepiece(tokenizer_path, "model.tokenizer")
    config = tiny_config(spec, tokenizer.get_piece_size())
    with mesh:
        base = gemma3_model.Gemma3(config, rngs=nnx.Rngs(spec.warm_start.seed))
        if params_path.is_file():
            load_params(base, params_path)
            log("warm_start_cached", path=str(params_path))
        else:
            # Gemma3 ties input and output embeddings at std 0.01, which caps every logit near
            # 128 x 0.01: scale it so training (and later LoRA) can move the output distribution.
            embedding = base.embedder.input_embedding
            embedding.value = embedding.value * spec.tiny.embedding_scale
            log("warm_start_started", steps=spec.warm_start.steps, path=str(params_path))
            loss = warm_start(
                base,
                tokenizer,
                warm_examples(spec.warm_start.seed),
                spec.warm_start,
                max_sequence_length=policy.training.max_prompt_tokens + policy.training.max_new_tokens,
                progress=lambda step, loss, seconds: log(
                    "warm_start_progress", step=step, loss=round(loss, 4), seconds=round(seconds, 1)
                ),
            )
            save_params(base, params_path)
            log("warm_start_finished", loss=round(loss, 4), path=str(params_path))
    return ModelBundle(tokenizer, base, config, mesh, (tokenizer.eos_id(),), key)


def _pretrained_bundle(spec: ModelSpec, base_dir: Path, mesh: jax.sharding.Mesh) -> ModelBundle:
    """A pretrained Gemma3: Orbax, safetensors or GGUF weights, and its SentencePiece tokenizer.

    The tokenizer is the user's `model.tokenizer` when given; a GGUF file also carries its own
    vocabulary, rebuilt (and cached) when `model.tokenizer` is empty. The stop ids come from the
    tokenizer (which took them from the file), never from constants.
    """
    if spec.preset not in GEMMA_PRESETS:
        raise BadSetting(f"model.preset: unknown Gemma3 preset {spec.preset!r}; one of {', '.join(GEMMA_PRESETS)}")
    config = dataclasses.replace(getattr(gemma3_model.ModelConfig, spec.preset)(), param_dtype=WEIGHT_DTYPES[spec.dtype])
    cache_dir = _expand(spec.cache_dir, base_dir)
    if spec.weights_package:
        weights = assemble_packaged_gguf(spec.weights_package, cache_dir)
    elif spec.weights:
        weights = _expand(spec.weights, base_dir)
    else:
        raise BadSetting("model.weights: empty; set it to a local Orbax, safetensors or GGUF path")
    kind = resolve_weights_format(weights, spec.weights_format)
    if spec.tokenizer:
        tokenizer_path = _expand(spec.tokenizer, base_dir)
    elif kind == "gguf":
        tokenizer_path = tokenizer_from_gguf(weights, cache_dir)
    else:
        raise BadSetting(f"model.tokenizer: empty; {kind} weights carry no tokenizer: give its tokenizer.model")
    tokenizer = load_sentencepiece(tokenizer_path, "model.tokenizer")
    if kind == "gguf":
        with mesh:
            base = load_gguf_model(weights, config)
    else:
        base = load_pretrained(config, weights, kind, mesh)
    _check_shapes(base, config, weights)
    if tokenizer.get_piece_size() > config.num_embed:
        raise ValueError(
            f"model.tokenizer: {str(tokenizer_path)!r} has {tokenizer.get_piece_size()} pieces, more than the "
            f"model's {config.num_embed} embeddings"
        )
    eos = [tokenizer.eos_id()]
    end_of_turn = tokenizer.piece_to_id(GEMMA_END_OF_TURN)
    if end_of_turn != tokenizer.unk_id():
        eos.append(end_of_turn)
    return ModelBundle(tokenizer, base, config, mesh, tuple(eos), f"{spec.preset}:{weights}:{spec.dtype}")


def resolve_weights_format(weights: Path, weights_format: str) -> str:
    """The weights' format: the one the policy names, checked against what the path holds."""
    if weights_format not in WEIGHTS_FORMATS:
        raise BadSetting(
            f"model.weights_format: {weights_format!r} is not one of {', '.join(f for f in WEIGHTS_FORMATS if f)} "
            f"(model.weights = {str(weights)!r})"
        )
    if not weights.exists():
        raise MissingInput(f"model.weights: {str(weights)!r} does not exist (weights cannot be downloaded here)")
    kind = detect_weights_format(weights)
    if weights_format and weights_format != kind:
        raise BadSetting(
            f"model.weights_format: {weights_format!r}, but model.weights {str(weights)!r} holds a {kind} "
            f"checkpoint; set model.weights_format = {kind!r} or leave it empty to detect it"
        )
    return kind


def load_pretrained(
    config: gemma3_model.ModelConfig, weights: Path, weights_format: str, mesh: jax.sharding.Mesh
) -> gemma3_model.Gemma3:
    """Load Orbax or safetensors Gemma3 weights with Tunix's own loaders; errors name `model.weights`.

    Tunix's Orbax loader accepts arrays of any shape (weights of another model size load silently
    and fail later, far from the cause), and both loaders fail with messages that name neither the
    policy field nor the file: check the format and every shape here.
    """
    from tunix.models.gemma3 import params as gemma3_params
    from tunix.models.gemma3 import params_safetensors

    kind = resolve_weights_format(weights, weights_format)
    if kind == "gguf":
        with mesh:
            model = load_gguf_model(weights, config)
        _check_shapes(model, config, weights)
        return model
    loader = (
        params_safetensors.create_model_from_safe_tensors
        if kind == "safetensors"
        else gemma3_params.create_model_from_checkpoint
    )
    try:
        with mesh:
            model = loader(str(weights), config, mesh, dtype=config.param_dtype)
    except Exception as error:  # Tunix/Orbax raise assorted bare errors (shape, pytree structure, I/O)
        detail = " ".join(line.strip() for line in str(error).splitlines()[:3]) or type(error).__name__
        raise ValueError(
            f"model.weights: {str(weights)!r} could not be loaded as {kind} weights for this model.preset: {detail}"
        ) from error
    _check_shapes(model, config, weights)
    return model


def _check_shapes(model: gemma3_model.Gemma3, config: gemma3_model.ModelConfig, weights: Path) -> None:
    """Every parameter has the shape `config` gives it (Tunix's Orbax loader does not check)."""
    expected = nnx.eval_shape(lambda: gemma3_model.Gemma3(config, rngs=nnx.Rngs(0)))
    wanted = {path: variable.get_value().shape for path, variable in nnx.to_flat_state(nnx.state(expected, nnx.Param))}
    found = {path: variable.get_value() for path, variable in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    for path, shape in wanted.items():
        got = getattr(found.get(path), "shape", None)
        if got != shape:
            raise ValueError(
                f"model.weights: {str(weights)!r} does not fit this model.preset: {'/'.join(map(str, path))} has "
                f"shape {got}, the config needs {shape} (weights of another Gemma3 size?)"
            )


def detect_weights_format(path: Path) -> str:
    """gguf for a .gguf file, safetensors for a directory of *.safetensors, orbax for Orbax metadata."""
    if path.is_file() and path.suffix == ".gguf":
        return "gguf"
    if path.is_dir() and any(path.glob("*.safetensors")):
        return "safetensors"
    if path.is_dir() and (
        (path / "_METADATA").exists() or (path / "_CHECKPOINT_METADATA").exists() or (path / "checkpoint").exists()
    ):
        return "orbax"
    raise ValueError(
        f"model.weights: {str(path)!r} is neither a .gguf file nor a directory of *.safetensors files or an "
        "Orbax checkpoint (_METADATA); set model.weights_format or point at the right path"
    )
