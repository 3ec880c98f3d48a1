"""The quickstart tokenizer decodes everything the warm start teaches, tags as single tokens."""

from __future__ import annotations

from pathlib import Path

from autocurriculum.behaviour_mix import REFUSAL, tokenizer_corpus
from autocurriculum.data import load_source
from autocurriculum.policy import SourceSpec
from autocurriculum.tunix_adapter.tokenizer import CONTRACT_SYMBOLS, load_sentencepiece, train_sentencepiece

from .conftest import REPO


def test_every_target_round_trips_and_tags_are_single_tokens(tmp_path: Path) -> None:
    items = load_source(SourceSpec("a", "arithmetic", "math", options={"count": 600}), seed=0, base_dir=REPO)
    path = train_sentencepiece(tokenizer_corpus(items, seed=0), 512, tmp_path / "tok.model")
    sp = load_sentencepiece(path, "model.tokenizer")
    for text in (REFUSAL, items[0].prompt, "<reasoning>7 + 5 = 12</reasoning><answer>12</answer>"):
        assert sp.decode(sp.encode(text)) == text
    for symbol in CONTRACT_SYMBOLS:
        assert len(sp.encode(symbol)) in (1, 2)  # the symbol itself, maybe after a word-boundary piece
        assert sp.piece_to_id(symbol) != sp.unk_id()
    assert sp.get_piece_size() <= 512
