"""Reward + observation pass against Tunix's own GSM8K reward functions, on the same completions.

Anchors (issues 3 and 15): the path the daemon really runs — the rollout's token counts recorded
(tunix_adapter/completion_lengths.py), the five reward functions through the dispatcher (one parse
per distinct completion), and Tunix's once-per-batch metric hook emitting the records as a columnar
RecordBatch — must be
  - at least 2x faster per completion than Tunix's GSM8K set (tunix/cli/reward_fn/gsm8k.py:
    match_format_exactly, match_format_approximately, check_answer, check_numbers), and
  - at least 100,000 completions/s on one core.
A third figure is printed beside them, not anchored: the same pass plus `summarize`, the per-step
roll-up the controller and exporter make of those records (once per step, whatever the batch size).

Both sides score the same 10,000 completions in the same process, in batches shaped like Tunix's
(`--batch` completions, each prompt repeated G=4 times; gold answers as a numpy array, as the
learner passes them). Times are CPU seconds of this thread (time.thread_time), so other processes
on the shared cores inflate them less than wall time would; the passes alternate for `--rounds`
rounds and each reports its best round (and the median in brackets).

The completions are built from the first 2,500 GSM8K train items, 4 per item, kinds drawn with a
fixed seed in the proportions of a whole run (`MIX`): the GSM8K worked solution (calculator
annotations included) as reasoning, a wrong answer either derived (a number of the reasoning) or
invented, verbose reasoning (3x), free text, rambling around the tags, answer-only, a completion cut
off inside the answer, refusals, evasive answers, empty ones and unicode. Their token ids come from
a sentencepiece model trained as the quickstart trains its own (the rollout's ids, in the daemon).
For reference it also runs the same completions with every reasoning written three times (nearer a
1B model's chain of thought), and the anchored corpus with the lengths counted by re-encoding every
batch (what the daemon did before it read the rollout's counts) and by the contract's approximation.

Run: `python benchmarks/rewards.py [--batch 64] [--rounds 7]` (about two minutes).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sentencepiece
from tunix.cli.reward_fn import gsm8k as tunix_gsm8k

from autocurriculum.contract import gold_from_gsm8k
from autocurriculum.data.gsm8k_files import locate_gsm8k
from autocurriculum.observation import RecordBatch, summarize
from autocurriculum.policy import RewardSpec
from autocurriculum.rewards import REWARD_PARAMETERS, RewardDispatcher
from autocurriculum.tunix_adapter.completion_lengths import CompletionLengths

REPO = Path(__file__).resolve().parents[1]
GSM8K_TRAIN = locate_gsm8k(REPO) / "train.jsonl"
COMPLETIONS = 10_000
GENERATIONS = 4
SPEEDUP_ANCHOR = 2.0
RATE_ANCHOR = 100_000.0  # completions/s on one core
TUNIX_SET = (tunix_gsm8k.match_format_exactly, tunix_gsm8k.match_format_approximately, tunix_gsm8k.check_answer,
             tunix_gsm8k.check_numbers)
ALL_REWARDS = tuple(RewardSpec(name) for name in REWARD_PARAMETERS)  # all five: more work than either phase set

# Over a whole run most completions comply: phase 1 is short, and afterwards 93-99% of completions
# are in the contract with accuracy 0.3-0.7 (docs/design.md, "Facts the code relies on"). So
# 82% strict (half of them wrong) and 18% violations of every kind.
MIX: dict[str, float] = {
    "formatted correct": 0.35,
    "formatted wrong, derived": 0.20,
    "formatted wrong, invented": 0.05,
    "verbose correct": 0.05,
    "verbose wrong": 0.10,
    "unicode": 0.05,
    "evasive answer": 0.02,
    "free text": 0.05,
    "rambling around the tags": 0.05,
    "answer only": 0.02,
    "cut off in the answer": 0.03,
    "refusal": 0.02,
    "empty": 0.01,
}
STRICT_KINDS = frozenset(list(MIX)[:7])


def completion(kind: str, reasoning: str, gold: str, rng: random.Random) -> str:
    numbers = [n for n in reasoning.replace("<", " ").replace(">", " ").replace("=", " ").split() if n.isdigit()]
    derived = rng.choice([n for n in numbers if n != gold] or [gold + "0"])
    invented = str(int(gold.replace(",", "")) + rng.randint(1, 9))
    body = f"<reasoning>{reasoning}</reasoning>\n<answer>{{}}</answer>"
    return {
        "formatted correct": lambda: body.format(gold),
        "formatted wrong, derived": lambda: body.format(derived),
        "formatted wrong, invented": lambda: body.format(invented),
        "verbose correct": lambda: f"<reasoning>{reasoning}\n{reasoning}\n{reasoning}</reasoning>\n<answer>{gold}</answer>",
        "verbose wrong": lambda: f"<reasoning>{reasoning}\n{reasoning}\n{reasoning}</reasoning>\n<answer>{invented}</answer>",
        "free text": lambda: f"{reasoning}\nThe answer is {gold}.",
        "rambling around the tags": lambda: f"Sure! Let me solve this step by step.\n{body.format(gold)}\nHope this helps!",
        "answer only": lambda: f"<answer>{gold}</answer>",
        "cut off in the answer": lambda: f"<reasoning>{reasoning}</reasoning>\n<answer>{gold[:-1] or gold}",
        "refusal": lambda: rng.choice(["I'm sorry, but I can't help with that.",
                                       "As an AI language model, I cannot solve homework problems."]),
        "evasive answer": lambda: f"<reasoning>{reasoning[:60]}</reasoning>\n<answer>I don't know</answer>",
        "empty": lambda: "",
        "unicode": lambda: f"<reasoning>{reasoning} ✓ 🍎 — «ﾃｽﾄ»</reasoning>\n<answer>{gold}</answer>",
    }[kind]()


def build_corpus(seed: int = 0, stretch: int = 1) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    kinds_order = list(MIX)
    weights = [MIX[k] for k in kinds_order]
    texts, golds, kinds = [], [], []
    with open(GSM8K_TRAIN, encoding="utf-8") as handle:
        rows = [json.loads(line) for _, line in zip(range(COMPLETIONS // GENERATIONS), handle)]
    for row in rows:
        gold = gold_from_gsm8k(row["answer"])
        reasoning = "\n".join([row["answer"].rsplit("####", 1)[0].strip()] * stretch)
        for kind in rng.choices(kinds_order, weights, k=GENERATIONS):
            texts.append(completion(kind, reasoning, gold, rng))
            golds.append(gold)
            kinds.append(kind)
    return texts, golds, kinds


Prepared = list[tuple[list[str], list[str], np.ndarray, np.ndarray, list[list[int]]]]


def batches(texts: list[str], golds: list[str], size: int, tokens: list[list[int]]) -> Prepared:
    """Tunix-shaped batches: prompts, completions, golds and domains as numpy arrays, the rollout's token ids."""
    out = []
    for start in range(0, len(texts), size):
        chunk = texts[start : start + size]
        out.append((["prompt"] * len(chunk), chunk, np.array(golds[start : start + size]),
                    np.array(["math"] * len(chunk)), tokens[start : start + size]))
    return out


def tunix_pass(prepared: Prepared) -> None:
    for prompts, completions, answer, _, _ in prepared:
        for fn in TUNIX_SET:
            fn(prompts=prompts, completions=completions, answer=answer)


def our_pass(prepared: Prepared, roll_up: bool = False, lengths: CompletionLengths | None = None,
             record: bool = True) -> None:
    """The daemon's path: the rollout's lengths recorded, the five rewards as Tunix calls them, the hook.

    `lengths` None: the contract's approximation instead of token counts; `record` False: no rollout's
    counts, so every batch is encoded; `roll_up`: summarize each step too.
    """
    step_batches: list[RecordBatch] = []  # what the daemon keeps: one step's record batches
    dispatcher = RewardDispatcher(lengths.count if lengths is not None else None,
                                  on_batch=lambda batch, seconds: step_batches.append(batch))
    fns = dispatcher.reward_fns(ALL_REWARDS)
    advantages = np.zeros(len(prepared[0][1]), dtype=np.float32)  # Tunix computes them; the hook converts them
    for step, (prompts, completions, answer, domain, tokens) in enumerate(prepared):
        if lengths is not None and record:
            lengths.record(completions, tokens)  # what the session does after each rollout
        totals = [fn(prompts=prompts, completions=completions, answer=answer, domain=domain) for fn in fns]
        dispatcher.observe_batch(prompts=prompts, completions=completions, rewards=totals,
                                 advantages=advantages[: len(completions)], answer=answer, domain=domain)
        if roll_up:
            summarize(step, RecordBatch.concat(step_batches), GENERATIONS)
        step_batches.clear()


def cpu_seconds(run: Callable[[Prepared], None], prepared: Prepared) -> float:
    started = time.thread_time()
    run(prepared)
    return time.thread_time() - started


def measure(prepared: Prepared, lengths: CompletionLengths, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """CPU seconds per round of Tunix's set, of the daemon's pass, and of that pass with the roll-up."""
    theirs, ours, rolled = [], [], []
    for _ in range(rounds):
        theirs.append(cpu_seconds(tunix_pass, prepared))
        ours.append(cpu_seconds(lambda p: our_pass(p, lengths=lengths), prepared))
        rolled.append(cpu_seconds(lambda p: our_pass(p, roll_up=True, lengths=lengths), prepared))
    return theirs, ours, rolled


def row(name: str, seconds: list[float], n: int) -> str:
    best, median = min(seconds), statistics.median(seconds)
    return f"  {name:<46} {best / n * 1e6:7.2f} us/completion [{median / n * 1e6:.2f}] {n / best:>10,.0f} completions/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="completions per reward call (a multiple of 4)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    tokenizer = quickstart_tokenizer()
    texts, golds, kinds = build_corpus()
    n = len(texts)
    print(f"{n:,} completions, batches of {args.batch}, best of {args.rounds} alternating rounds [median], "
          f"CPU time of one thread")
    print("mix: " + ", ".join(f"{k} {kinds.count(k) / n:.0%}" for k in MIX))
    print("token counts: a 2,000-piece sentencepiece model trained on GSM8K as the quickstart does; the texts are")
    print("tokenized before timing, as the rollout generated them, and the session records them per batch (timed)")
    lengths = CompletionLengths(tokenizer)
    prepared = batches(texts, golds, args.batch, tokenizer.encode(texts))
    theirs, ours, rolled = measure(prepared, lengths, args.rounds)
    print(f"GSM8K worked solutions as reasoning (mean {sum(map(len, texts)) / n:.0f} characters) — the anchored run")
    print(row("Tunix GSM8K set (4 functions)", theirs, n))
    print(row("the daemon's path: 5 rewards + records", ours, n))
    print(row("  and the per-step roll-up (summarize)", rolled, n))
    speedup, rate = min(theirs) / min(ours), n / min(ours)
    print(f"  {'speed-up over Tunix':<46} {speedup:7.2f}x   anchor >= {SPEEDUP_ANCHOR:.0f}x   "
          f"{'OK' if speedup >= SPEEDUP_ANCHOR else 'BELOW ANCHOR'}  [median {statistics.median(theirs) / statistics.median(ours):.2f}x]")
    print(f"  {'full pass rate':<46} {rate:>10,.0f}/s   anchor >= {RATE_ANCHOR:,.0f}/s   "
          f"{'OK' if rate >= RATE_ANCHOR else 'BELOW ANCHOR'}  [median {n / statistics.median(ours):,.0f}/s]")
    print(f"  {'with the roll-up: speed-up, rate':<46} {min(theirs) / min(rolled):7.2f}x   {n / min(rolled):>10,.0f}/s   "
          f"not anchored  [median {statistics.median(theirs) / statistics.median(rolled):.2f}x]")
    long_texts, long_golds, _ = build_corpus(stretch=3)
    long_prepared = batches(long_texts, long_golds, args.batch, tokenizer.encode(long_texts))
    theirs, ours, rolled = measure(long_prepared, lengths, args.rounds)
    print(f"the same, reasoning written 3 times (mean {sum(map(len, long_texts)) / n:.0f} characters, about the length "
          f"of a 1B model's chain of thought) — for reference")
    print(row("Tunix GSM8K set (4 functions)", theirs, n))
    print(row("the daemon's path: 5 rewards + records", ours, n))
    print(row("  and the per-step roll-up (summarize)", rolled, n))
    print(f"  {'speed-up over Tunix; with the roll-up':<46} {min(theirs) / min(ours):7.2f}x; {min(theirs) / min(rolled):.2f}x")
    print("for reference, the lengths counted otherwise on the anchored corpus:")
    stale = CompletionLengths(OneThread(tokenizer))  # no rollout recorded: every batch is encoded, in one call
    print(row("re-encoding each batch (one batched call)", [cpu_seconds(lambda p: our_pass(p, lengths=stale, record=False), prepared)
                                                             for _ in range(3)], n))
    print(row("the contract's approximation (no tokenizer)", [cpu_seconds(our_pass, prepared) for _ in range(3)], n))


class OneThread:
    """sentencepiece encoding on this thread only, so that thread CPU time sees all of its cost."""

    def __init__(self, tokenizer: sentencepiece.SentencePieceProcessor) -> None:
        self.tokenizer = tokenizer

    def encode(self, input: list[str]) -> list[list[int]]:  # noqa: A002  (the Encoder protocol's name)
        return self.tokenizer.encode(input, num_threads=1)


def quickstart_tokenizer() -> sentencepiece.SentencePieceProcessor:
    from autocurriculum.tunix_adapter.tokenizer import train_sentencepiece

    with open(GSM8K_TRAIN, encoding="utf-8") as handle:
        lines = [" ".join(json.loads(line).values()) for _, line in zip(range(3000), handle)]
    with tempfile.TemporaryDirectory() as folder:
        return sentencepiece.SentencePieceProcessor(model_file=str(train_sentencepiece(lines, 2000, Path(folder) / "t.model")))


if __name__ == "__main__":
    main()
