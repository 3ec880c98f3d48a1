"""Data: the items a run trains and evaluates on, and the seeded, resumable mixture stream.

Each curriculum phase trains on a mixture of sources (a slice of GSM8K, all of it, then GSM8K with
code and QA), the controller swaps the mixture at a step boundary, and a resumed run must continue
at exactly the same item. The parts, one concept per module:
- items: `Item`, the prompt templates carrying the output contract, `DataError`;
- generators: seeded arithmetic, code-program and QA question generators (no network, no files);
- execution: running generated programs in a limited subprocess, with an on-disk cache;
- sources: `load_source` for every policy source kind, and the generated sources' held-out split;
- subsets: seeded fractions and length filters, and the pool naming a (source, subset);
- stream: `MixtureStream` and `to_tunix_batch`.
Pure apart from reading files and running generated programs: no tunix, jax or prometheus here.
"""

from __future__ import annotations

from autocurriculum.data.execution import cached_outputs, run_program, run_programs
from autocurriculum.data.generators import CODE_GENERATOR_VERSION, arithmetic_problem, code_program, qa_question
from autocurriculum.data.items import CONTRACT_INSTRUCTION, DataError, Item, render_prompt
from autocurriculum.data.sources import heldout_count, load_source, split_heldout
from autocurriculum.data.stream import MixtureStream, mixture_from_json, mixture_to_json, to_tunix_batch
from autocurriculum.data.subsets import apply_subset, pool_key

__all__ = [
    "CODE_GENERATOR_VERSION",
    "CONTRACT_INSTRUCTION",
    "DataError",
    "Item",
    "MixtureStream",
    "apply_subset",
    "arithmetic_problem",
    "cached_outputs",
    "code_program",
    "heldout_count",
    "load_source",
    "mixture_from_json",
    "mixture_to_json",
    "pool_key",
    "qa_question",
    "render_prompt",
    "run_program",
    "run_programs",
    "split_heldout",
    "to_tunix_batch",
]
