"""Gemma's SentencePiece tokenizer rebuilt from the vocabulary a GGUF file carries.

Why: a GGUF holds the model's whole tokenizer (pieces, scores, piece types, special ids), so the
packaged Gemma 3 needs no separate `tokenizer.model`. llama.cpp's "llama" tokenizer is SentencePiece's
vocabulary; Gemma 3's is BPE with byte fallback and split digits, an identity normalizer and no dummy
prefix. Three things the converter changed are undone so that texts round-trip exactly:
- `<unk>` is typed CONTROL in the file; SentencePiece requires its unknown piece to be UNKNOWN;
- whitespace pieces (USER_DEFINED, e.g. runs of spaces) had their ▁ written as plain spaces;
- every "special" added token (`<start_of_turn>`, `<end_of_turn>`, `<mask>`, ...) is typed CONTROL;
  SentencePiece never matches CONTROL pieces in text, so a chat prompt would be split into
  characters. They become USER_DEFINED; only pad/eos/bos stay CONTROL.
The special ids (pad, eos, bos, unk) are read from the file, never assumed. The built model is cached
under the cache directory, keyed by the file's size and modification time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, SupportsInt, cast

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as model_pb2

from autocurriculum.tunix_adapter.gguf_weights import GgufError, field_value, open_gguf

if TYPE_CHECKING:
    from gguf import GGUFReader

# protobuf builds the module's classes at import time, so a type checker sees none of them
_model_pb2: Any = model_pb2

WHITESPACE_MARK = "\u2581"  # SentencePiece's visible space
_SPECIAL_IDS = {"bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id", "pad": "padding_token_id"}
_GGUF_TYPE = {1: "NORMAL", 2: "UNKNOWN", 3: "CONTROL", 4: "USER_DEFINED", 5: "UNUSED", 6: "BYTE"}


class SerializableProto(Protocol):
    """What is done with the built sentencepiece ModelProto: it is written out as bytes."""

    def SerializeToString(self) -> bytes: ...


def special_ids(reader: GGUFReader) -> dict[str, int]:
    """pad, eos, bos, unk ids as the file states them."""
    ids: dict[str, int] = {}
    for name, key in _SPECIAL_IDS.items():
        value = field_value(reader, f"tokenizer.ggml.{key}")
        if value is None:
            raise GgufError(f"model.weights: the GGUF file has no tokenizer.ggml.{key}")
        ids[name] = int(cast(SupportsInt, value))
    return ids


def sentencepiece_proto_from_gguf(reader: GGUFReader, source: str) -> SerializableProto:
    kind = field_value(reader, "tokenizer.ggml.model")
    if kind != "llama":
        raise GgufError(
            f"model.weights: {source!r} has tokenizer.ggml.model = {kind!r}; only SentencePiece ('llama') "
            "vocabularies can be rebuilt: give model.tokenizer instead"
        )
    pieces = cast("list[str] | None", field_value(reader, "tokenizer.ggml.tokens"))
    scores = cast("list[float]", field_value(reader, "tokenizer.ggml.scores"))
    types = cast("list[int]", field_value(reader, "tokenizer.ggml.token_type"))
    if not pieces or len(pieces) != len(scores) or len(pieces) != len(types):
        raise GgufError(f"model.weights: {source!r} has no complete tokenizer.ggml.tokens/scores/token_type")
    ids = special_ids(reader)
    add_space_prefix = field_value(reader, "tokenizer.ggml.add_space_prefix")

    proto = _model_pb2.ModelProto()
    trainer = proto.trainer_spec
    trainer.model_type = _model_pb2.TrainerSpec.BPE
    trainer.vocab_size = len(pieces)
    trainer.byte_fallback = True
    trainer.split_digits = True
    trainer.allow_whitespace_only_pieces = True
    trainer.unk_id, trainer.bos_id, trainer.eos_id, trainer.pad_id = ids["unk"], ids["bos"], ids["eos"], ids["pad"]
    trainer.unk_piece, trainer.bos_piece = pieces[ids["unk"]], pieces[ids["bos"]]
    trainer.eos_piece, trainer.pad_piece = pieces[ids["eos"]], pieces[ids["pad"]]
    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = bool(add_space_prefix) if add_space_prefix is not None else True
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True

    kept_control = {ids["bos"], ids["eos"], ids["pad"]}
    piece_type = _model_pb2.ModelProto.SentencePiece.Type
    for index, (text, score, gguf_type) in enumerate(zip(pieces, scores, types)):
        name = _GGUF_TYPE.get(int(gguf_type))
        if name is None:
            raise GgufError(f"model.weights: {source!r}: token {index} ({text!r}) has unknown token_type {gguf_type}")
        if index == ids["unk"]:
            name = "UNKNOWN"
        elif name == "CONTROL" and index not in kept_control:
            name = "USER_DEFINED"
        if name == "USER_DEFINED" and int(gguf_type) == 4:
            text = text.replace(" ", WHITESPACE_MARK)
        piece = proto.pieces.add()
        piece.piece = text
        piece.type = getattr(piece_type, name)
        piece.score = float(score) if name == "NORMAL" else 0.0
    built: SerializableProto = proto
    return built


def gguf_tokenizer_path(gguf_path: Path, cache_dir: Path) -> Path:
    """Where the tokenizer rebuilt from `gguf_path` is cached (keyed by the file's identity)."""
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir / "gguf-tokenizers" / f"{gguf_path.stem}-{key}.model"


def tokenizer_from_gguf(gguf_path: Path, cache_dir: Path) -> Path:
    """Build (once) and cache the SentencePiece model for `gguf_path`; return the model file's path."""
    target = gguf_tokenizer_path(gguf_path, cache_dir)
    if target.is_file():
        return target
    proto = sentencepiece_proto_from_gguf(open_gguf(gguf_path), str(gguf_path))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".model", delete=False) as handle:
        handle.write(proto.SerializeToString())
        handle.flush()
        os.fsync(handle.fileno())
    spm.SentencePieceProcessor(model_file=handle.name)  # refuse to cache a model SentencePiece cannot load
    Path(handle.name).replace(target)
    return target
