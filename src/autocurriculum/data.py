"""Data: sources of items, subsets, and the seeded, resumable mixture stream.

An item is `{id, domain, question, prompt, answer, solution}`; the prompt already carries the output
contract's instruction. Sources:
- "gsm8k": through the `datasets` library, from the hub (`openai/gsm8k`, config `main`) or from local
  JSONL files (`datasets.load_dataset("json", data_files=...)`); gold = text after `####`;
- "arithmetic": generated one- (or two-) step add/subtract word problems, the quickstart's data;
- "code": generated short Python programs; the gold is the program's printed output, obtained by
  actually running it in an isolated subprocess with CPU, memory and time limits (cached on disk);
- "qa": generated short reasoning questions with exact answers (dates, units, logic, comparisons);
- "jsonl" / "hf": a user's dataset through `datasets`, with a field map (item field -> column).

The mixture stream draws each item's source by weight with its own seeded RNG, walks each source in
a seeded shuffled order (no repeat within an epoch, a new shuffle when a source runs dry), and its
whole position is a small JSON state, so a resumed run continues at exactly the same item. grain's
IterDataset.mix was not used: its mixing state is tied to a fixed pipeline, while the curriculum
replaces the mixture at arbitrary step boundaries and must save the position across those swaps.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autocurriculum.contract import ANSWER_SEPARATOR, gold_from_gsm8k
from autocurriculum.policy import Mixture, MixtureComponent, SourceSpec, SubsetSpec

CONTRACT_INSTRUCTION = "Reply as <reasoning>...</reasoning><answer>...</answer>."
GEMMA_TURN = "<start_of_turn>user\n{instruction}\n\n{question}<end_of_turn>\n<start_of_turn>model\n"


class DataError(ValueError):
    """Bad data or data settings; the message names the file, line, field or policy setting."""


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    domain: str
    question: str
    prompt: str
    answer: str
    solution: str = ""  # a worked solution when the source has one (used by the warm start)


def render_prompt(question: str, template: str) -> str:
    if template == "plain":
        return f"{CONTRACT_INSTRUCTION}\nQuestion: {question}\nAnswer:"
    if template == "gemma_chat":
        return GEMMA_TURN.format(instruction=CONTRACT_INSTRUCTION, question=question)
    raise DataError(f"training.prompt_template: unknown template {template!r} (plain, gemma_chat)")


# ---------------------------------------------------------------- generators

NAMES = ("Tom", "Ann", "Sam", "Lia", "Max", "Eva", "Ben", "Zoe", "Leo", "Mia", "Raj", "Kim")
THINGS = ("apple", "pen", "book", "coin", "card", "ball", "shell", "stamp", "cookie", "marble", "sticker", "flower")
ADD = (
    "{n} has {a} {i}s and buys {b} more. How many {i}s does {n} have?",
    "{n} had {a} {i}s and found {b} more. How many {i}s does {n} have now?",
    "There are {a} {i}s in a box. {n} puts in {b} more. How many {i}s are in the box?",
    "{n} got {a} {i}s on Monday and {b} {i}s on Tuesday. How many {i}s did {n} get in total?",
)
SUB = (
    "{n} has {a} {i}s and gives {b} to {m}. How many {i}s does {n} have left?",
    "{n} had {a} {i}s and lost {b}. How many {i}s does {n} have now?",
    "There are {a} {i}s in a box. {n} takes out {b}. How many {i}s are left in the box?",
    "{n} had {a} {i}s and sold {b} of them. How many {i}s are left?",
)


def arithmetic_problem(rnd: random.Random, steps: int, max_number: int) -> tuple[str, str, str]:
    """(question, answer, solution) of a generated add/subtract word problem."""
    n, m = rnd.sample(NAMES, 2)
    thing = rnd.choice(THINGS)
    a = rnd.randint(0, max_number)
    if rnd.random() < 0.5:
        b = rnd.randint(0, max_number)
        question, value, solution = rnd.choice(ADD).format(n=n, m=m, a=a, b=b, i=thing), a + b, f"{a} + {b} = {a + b}"
    else:
        b = rnd.randint(0, a)
        question, value, solution = rnd.choice(SUB).format(n=n, m=m, a=a, b=b, i=thing), a - b, f"{a} - {b} = {a - b}"
    if steps >= 2:
        c = rnd.randint(0, max_number)
        if rnd.random() < 0.5 or c > value:
            question += f" Then {n} gets {c} more. How many now?"
            solution += f", {value} + {c} = {value + c}"
            value += c
        else:
            question += f" Then {n} gives away {c}. How many now?"
            solution += f", {value} - {c} = {value - c}"
            value -= c
    return question, str(value), solution


CODE_GENERATOR_VERSION = 1


def code_program(rnd: random.Random) -> str:
    """A short deterministic Python program whose printed output is the answer."""
    kind = rnd.randrange(5)
    a, b, n = rnd.randint(1, 9), rnd.randint(1, 9), rnd.randint(2, 5)
    word = rnd.choice(("cat", "tree", "moon", "code", "rain", "star"))
    if kind == 0:
        return f"x = {a}\nfor i in range({n}):\n    x = x + {b}\nprint(x)"
    if kind == 1:
        return f"s = '{word}'\nprint(s[::-1] + str(len(s) * {a}))"
    if kind == 2:
        return f"xs = [{a}, {b}, {n}]\nxs.sort()\nprint(xs[-1] - xs[0])"
    if kind == 3:
        return f"total = 0\nfor i in range(1, {n + 2}):\n    total += i * {a}\nprint(total)"
    return f"w = '{word}'\nprint(w.upper()[:{n}] if {a} > {b} else w * 2)"


def run_program(program: str, timeout: float = 5.0) -> str:
    """Run a program in an isolated interpreter with CPU/memory limits; return what it printed."""

    def limits() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (2, 2))
        resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))

    result = subprocess.run(
        [sys.executable, "-I", "-c", program], capture_output=True, text=True, timeout=timeout,
        preexec_fn=limits, env={"PATH": "/usr/bin:/bin"},
    )
    if result.returncode != 0:
        raise DataError(f"generated program failed ({result.returncode}): {result.stderr.strip()[-200:]}")
    return result.stdout


def run_programs(programs: Sequence[str]) -> list[str]:
    """Run many programs in one isolated interpreter, each under the same limits (much faster)."""
    runner = (
        "import sys, io, json, contextlib\n"
        "out = []\n"
        "for src in json.load(sys.stdin):\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        exec(src, {'__builtins__': __builtins__})\n"
        "    out.append(buf.getvalue())\n"
        "json.dump(out, sys.stdout)\n"
    )

    def limits() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    result = subprocess.run(
        [sys.executable, "-I", "-c", runner], input=json.dumps(list(programs)), capture_output=True, text=True,
        timeout=60, preexec_fn=limits, env={"PATH": "/usr/bin:/bin"},
    )
    if result.returncode != 0:
        raise DataError(f"generated programs failed to run: {result.stderr.strip()[-300:]}")
    return json.loads(result.stdout)


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def qa_question(rnd: random.Random) -> tuple[str, str, str]:
    """(question, accepted answers joined by ANSWER_SEPARATOR, solution)."""
    kind = rnd.randrange(5)
    if kind == 0:
        d, k = rnd.randrange(7), rnd.randint(1, 12)
        return (f"Today is {DAYS[d]}. What day of the week is it in {k} days?", DAYS[(d + k) % 7],
                f"{k} days after {DAYS[d]} is {DAYS[(d + k) % 7]}")
    if kind == 1:
        meters = rnd.randint(1, 9)
        return (f"How many centimeters are in {meters} meters?", str(100 * meters), f"{meters} x 100 = {100 * meters}")
    if kind == 2:
        a, b = rnd.sample(NAMES, 2)
        x, y = rnd.sample(range(3, 15), 2)
        older = a if x > y else b
        return (f"{a} is {x} years old and {b} is {y} years old. Who is older?", older, f"{max(x, y)} > {min(x, y)}")
    if kind == 3:
        m, k = rnd.randrange(12), rnd.randint(1, 11)
        return (f"What month comes {k} months after {MONTHS[m]}?", MONTHS[(m + k) % 12],
                f"{k} months after {MONTHS[m]} is {MONTHS[(m + k) % 12]}")
    hours = rnd.randint(1, 5)
    return (f"How many minutes are in {hours} hours?", str(60 * hours), f"{hours} x 60 = {60 * hours}")


# ---------------------------------------------------------------- loading


def _option(spec: SourceSpec, key: str, default: int) -> int:
    value = spec.options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"sources.{spec.name}.options.{key}: must be a positive integer (got {value!r})")
    return value


def _split_generated(items: list[Item], spec: SourceSpec) -> list[Item]:
    """Generated sources hold out their last 10% (at least 64 items) as the 'test' split, never trained on."""
    held = max(64, len(items) // 10)
    if spec.split == "test":
        return items[-held:]
    if spec.split == "train":
        return items[:-held]
    raise DataError(f"sources.{spec.name}.split: {spec.split!r} is neither 'train' nor 'test'")


def _generated(spec: SourceSpec, seed: int, template: str, cache_dir: Path | None) -> list[Item]:
    count = _option(spec, "count", 2000)
    # the generator seed does not depend on the split, so train and test are disjoint parts of one list
    rnd = random.Random(f"{spec.kind}:{seed}:{count}")
    items: list[Item] = []
    if spec.kind == "arithmetic":
        steps, top = _option(spec, "steps", 1), _option(spec, "max_number", 20)
        for index in range(count):
            question, answer, solution = arithmetic_problem(rnd, steps, top)
            items.append(Item(f"{spec.kind}-{seed}-{index}", spec.domain, question, render_prompt(question, template),
                              answer, solution))
    elif spec.kind == "qa":
        for index in range(count):
            question, answer, solution = qa_question(rnd)
            items.append(Item(f"qa-{seed}-{index}", spec.domain, question, render_prompt(question, template), answer,
                              solution))
    elif spec.kind == "code":
        programs = [code_program(rnd) for _ in range(count)]
        outputs = _cached_outputs(programs, cache_dir)
        for index, (program, output) in enumerate(zip(programs, outputs)):
            question = f"What does this Python program print?\n{program}"
            items.append(Item(f"code-{seed}-{index}", spec.domain, question, render_prompt(question, template),
                              output.rstrip("\n"), ""))
    return _split_generated(items, spec)


def _cached_outputs(programs: list[str], cache_dir: Path | None) -> list[str]:
    key = hashlib.sha256(json.dumps([CODE_GENERATOR_VERSION, programs]).encode()).hexdigest()[:16]
    path = cache_dir / f"code-outputs-{key}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    outputs = run_programs(programs)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(outputs), encoding="utf-8")
        tmp.replace(path)
    return outputs


def _read_with_datasets(spec: SourceSpec, base_dir: Path):  # -> datasets.Dataset
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    if spec.path:
        path = Path(os.path.expanduser(spec.path))
        path = path if path.is_absolute() else base_dir / path
        files = path / f"{spec.split}.jsonl" if path.is_dir() else path
        if not files.is_file():
            raise DataError(f"sources.{spec.name}.path: no file {str(files)!r}")
        _check_jsonl(files)
        return datasets.load_dataset("json", data_files=str(files), split="train")
    if not spec.hub_name:
        raise DataError(f"sources.{spec.name}: set path (local files) or hub_name (needs a network)")
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise DataError(f"sources.{spec.name}.path: empty and the hub is offline; point path at local "
                        f"{spec.split}.jsonl files")
    try:
        return datasets.load_dataset(spec.hub_name, spec.hub_config or None, split=spec.split)
    except Exception as error:  # datasets raises many kinds (ConnectionError, FileNotFoundError, ...)
        raise DataError(f"sources.{spec.name}: could not load {spec.hub_name!r} from the hub ({type(error).__name__}); "
                        f"with no network set sources.{spec.name}.path to local {spec.split}.jsonl files") from None


def _check_jsonl(path: Path) -> None:
    """Name the file and line of the first bad JSON line (datasets' own error does not)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(f"{path}:{number}: not a JSON line ({error.msg})") from None


def _from_dataset(spec: SourceSpec, base_dir: Path, template: str) -> list[Item]:
    table = _read_with_datasets(spec, base_dir)
    if spec.kind == "gsm8k":
        fields = {"question": "question", "answer": "answer", **spec.fields}
    else:
        fields = {"question": "question", "answer": "answer", **spec.fields}
    for field_name, column in fields.items():
        if column not in table.column_names:
            raise DataError(f"sources.{spec.name}.fields.{field_name}: column {column!r} not in the dataset "
                            f"(columns: {', '.join(table.column_names)})")
    items = []
    for index, row in enumerate(table):
        question = str(row[fields["question"]])
        raw_answer = row[fields["answer"]]
        if spec.kind == "gsm8k":
            try:
                answer = gold_from_gsm8k(str(raw_answer))
            except ValueError as error:
                raise DataError(f"sources.{spec.name}: item {index}: {error}") from None
            solution = str(raw_answer).rsplit("####", 1)[0].strip()
        else:
            answer = ANSWER_SEPARATOR.join(map(str, raw_answer)) if isinstance(raw_answer, list) else str(raw_answer)
            solution = str(row.get(fields.get("solution", "solution"), "") or "")
        if not question.strip() or not answer.strip():
            raise DataError(f"sources.{spec.name}: item {index} has an empty question or answer")
        items.append(Item(f"{spec.name}-{index}", spec.domain, question, render_prompt(question, template), answer,
                          solution))
    return items


def load_source(spec: SourceSpec, *, seed: int, base_dir: Path, template: str = "plain",
                cache_dir: Path | None = None) -> list[Item]:
    if spec.kind in ("arithmetic", "code", "qa"):
        items = _generated(spec, seed, template, cache_dir)
    else:
        items = _from_dataset(spec, base_dir, template)
    if not items:
        raise DataError(f"sources.{spec.name}: the source is empty")
    return items


def apply_subset(items: Sequence[Item], subset: SubsetSpec, seed: int, source: str,
                 count_tokens: Callable[[str], int] | None = None) -> list[Item]:
    """iterable_slice(dataset, start, end) on a seeded shuffle, then the length filters."""
    order = list(range(len(items)))
    random.Random(f"subset:{source}:{seed}").shuffle(order)
    chosen = [items[i] for i in order[int(subset.start * len(items)) : int(subset.end * len(items))]]
    if subset.max_question_chars is not None:
        chosen = [i for i in chosen if len(i.question) <= subset.max_question_chars]
    if subset.max_question_tokens is not None:
        counter = count_tokens or (lambda text: len(text.split()))
        chosen = [i for i in chosen if counter(i.question) <= subset.max_question_tokens]
    if not chosen:
        raise DataError(f"subset of source {source!r} is empty ({subset})")
    return chosen


def pool_key(component: MixtureComponent) -> str:
    s = component.subset
    return f"{component.source}|{s.start:g}-{s.end:g}|{s.max_question_chars}|{s.max_question_tokens}"


# ---------------------------------------------------------------- the stream


class MixtureStream:
    """Seeded weighted draws over pools; the whole position is `state()`."""

    def __init__(self, pools: Mapping[str, Sequence[Item]], mixture: Mixture, seed: int,
                 on_epoch: Callable[[str, int], None] | None = None) -> None:
        self.pools = pools
        self.seed = seed
        self.on_epoch = on_epoch
        self._cursors: dict[str, list[int]] = {}  # pool -> [epoch, position]
        self._draws = 0
        self._rng = np.random.default_rng(seed)
        self._orders: dict[tuple[str, int], np.ndarray] = {}  # a cache; derived from seed and epoch
        self.set_mixture(mixture)

    def set_mixture(self, mixture: Mixture) -> None:
        for component in mixture.components:
            if pool_key(component) not in self.pools:
                raise DataError(f"no loaded pool for mixture component {pool_key(component)!r}")
        self.mixture = mixture
        self._keys = [pool_key(c) for c in mixture.components]
        self._weights = np.array([c.weight for c in mixture.components], dtype=np.float64)
        self._weights /= self._weights.sum()

    def _order(self, key: str, epoch: int) -> np.ndarray:
        digest = int(hashlib.sha256(f"{key}:{self.seed}:{epoch}".encode()).hexdigest()[:16], 16)
        return np.random.default_rng(digest).permutation(len(self.pools[key]))

    def _next_of(self, key: str) -> Item:
        epoch, position = self._cursors.setdefault(key, [0, 0])
        if position >= len(self.pools[key]):
            epoch, position = epoch + 1, 0
            if self.on_epoch is not None:
                self.on_epoch(key, epoch)
        order = self._orders.get((key, epoch))
        if order is None:
            order = self._order(key, epoch)
            self._orders = {(key, epoch): order, **{k: v for k, v in self._orders.items() if k[0] != key}}
        self._cursors[key] = [epoch, position + 1]
        return self.pools[key][int(order[position])]

    def next_batch(self, n: int) -> list[Item]:
        picks = self._rng.choice(len(self._keys), size=n, p=self._weights) if len(self._keys) > 1 else [0] * n
        self._draws += n
        return [self._next_of(self._keys[int(p)]) for p in picks]

    def state(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "draws": self._draws,
            "cursors": {k: list(v) for k, v in self._cursors.items()},
            "rng": self._rng.bit_generator.state,
        }

    def restore(self, state: Mapping[str, object]) -> None:
        if int(state["seed"]) != self.seed:  # type: ignore[arg-type]
            raise DataError(f"stream state was saved with seed {state['seed']}, this run uses {self.seed}")
        self._draws = int(state["draws"])  # type: ignore[arg-type]
        self._cursors = {str(k): [int(v[0]), int(v[1])] for k, v in dict(state["cursors"]).items()}  # type: ignore[arg-type]
        self._rng.bit_generator.state = state["rng"]


def to_tunix_batch(items: Sequence[Item]) -> dict[str, np.ndarray]:
    """The batch shape Tunix wants: numpy arrays (not lists) of the prompt and the extra columns."""
    return {
        "prompts": np.array([i.prompt for i in items]),
        "answer": np.array([i.answer for i in items]),
        "domain": np.array([i.domain for i in items]),
        "id": np.array([i.id for i in items]),
    }
