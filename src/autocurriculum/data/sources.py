"""Loading one policy source into items: generated, or a dataset read through `datasets`.

Every kind ends in the same list of `Item`s, so subsets, the stream and the rewards never care where
items came from. Datasets go through the `datasets` library (the hub where a network exists, local
JSONL files where it does not) because that is what users already have their data in; the local
files are checked line by line first, because `datasets` reports a bad line without naming it.
Generated sources keep a held-out tail apart from training, so evaluation never sees trained items.
"""

from __future__ import annotations

import json
import os
import random
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from autocurriculum.contract import ANSWER_SEPARATOR, gold_from_gsm8k
from autocurriculum.data.execution import cached_outputs
from autocurriculum.data.generators import (
    CODE_GENERATOR_VERSION,
    CODE_QUESTION,
    arithmetic_problem,
    code_program,
    qa_question,
)
from autocurriculum.data.items import NONE, DataError, DataNotFound, DataSettingError, Item, render_prompt
from autocurriculum.data.task_shapes import DATASET_SHAPES, SHAPE_FIELDS, SHAPE_OPTIONAL, open_prompt, shape_items
from autocurriculum.policy import SourceSpec

GENERATED_KINDS = ("arithmetic", "code", "qa", "open")
DATASET_KINDS = ("gsm8k", "jsonl", "hf", *DATASET_SHAPES)
UNGRADED_KINDS = ("open", "instructions")  # every item of these kinds has no gold
# item field -> dataset column, per kind; the policy's `fields` overrides these
DEFAULT_FIELDS: Mapping[str, Mapping[str, str]] = {
    "gsm8k": {"question": "question", "answer": "answer"},
    "jsonl": {"question": "question", "answer": "answer"},
    "hf": {"question": "question", "answer": "answer"},
    "code": {"program": "program", "answer": "output"},
}
OPTIONAL_FIELDS = ("solution",)
HUB_PROBE_SECONDS = 3.0


def load_source(spec: SourceSpec, *, seed: int, base_dir: Path, template: str = "plain",
                cache_dir: Path | None = None) -> list[Item]:
    """All items of `spec` (its split); `base_dir` resolves a relative path (the policy's directory)."""
    if spec.kind == "code" and spec.path:
        items = _from_dataset(spec, base_dir, template)
    elif spec.kind in GENERATED_KINDS:
        items = _generated(spec, seed, template, cache_dir)
    elif spec.kind in DATASET_SHAPES:
        items = _from_shape(spec, base_dir, template)
    elif spec.kind in DATASET_KINDS:
        items = _from_dataset(spec, base_dir, template)
    else:
        raise DataSettingError(f"sources.{spec.name}.kind: unknown kind {spec.kind!r} "
                        f"({', '.join(GENERATED_KINDS + DATASET_KINDS)})")
    if not items:
        raise DataError(f"sources.{spec.name}: the source is empty")
    return items


def split_heldout(items: Sequence[Item], count: int) -> tuple[list[Item], list[Item]]:
    """(train, held-out): the last `count` items are held out.

    Generated items are drawn independently from one seeded RNG, so the tail is a random sample, and
    it does not depend on the split asked for: train and test of one seed never share an item.
    """
    if not 0 < count < len(items):
        raise DataError(f"cannot hold out {count} of {len(items)} items and keep some for training")
    return list(items[:-count]), list(items[-count:])


# ---------------------------------------------------------------- generated


def _option(spec: SourceSpec, key: str, default: int) -> int:
    value = spec.options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataSettingError(f"sources.{spec.name}.options.{key}: must be a positive integer (got {value!r})")
    return value


def heldout_count(total: int) -> int:
    """Generated sources hold out 10% of their items, at least 64, as their 'test' split."""
    return max(64, total // 10)


def _generated(spec: SourceSpec, seed: int, template: str, cache_dir: Path | None) -> list[Item]:
    count = _option(spec, "count", 2000)
    if count <= heldout_count(count):
        raise DataSettingError(f"sources.{spec.name}.options.count: {count} items leave none for training after "
                        f"holding out {heldout_count(count)} (use more than {heldout_count(count)})")
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
    elif spec.kind == "open":
        for index in range(count):
            question, reference = open_prompt(rnd)
            items.append(Item(f"open-{seed}-{index}", spec.domain, question, render_prompt(question, template), "",
                              reference, NONE))
    elif spec.kind == "code":
        programs = [code_program(rnd) for _ in range(count)]
        outputs = cached_outputs(programs, cache_dir, CODE_GENERATOR_VERSION)
        for index, (program, output) in enumerate(zip(programs, outputs)):
            question = CODE_QUESTION.format(program=program)
            items.append(Item(f"code-{seed}-{index}", spec.domain, question, render_prompt(question, template),
                              output.rstrip("\n"), ""))
    train, test = split_heldout(items, heldout_count(count))
    if spec.split == "train":
        return train
    if spec.split == "test":
        return test
    raise DataSettingError(f"sources.{spec.name}.split: {spec.split!r} is neither 'train' nor 'test'")


# ---------------------------------------------------------------- datasets


def _local_file(spec: SourceSpec, base_dir: Path) -> Path:
    path = Path(os.path.expanduser(spec.path))
    path = path if path.is_absolute() else base_dir / path
    file = path / f"{spec.split}.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise DataNotFound(f"sources.{spec.name}.path: no file {str(file)!r}")
    return file


def _check_jsonl(path: Path, source: str) -> None:
    """Name the file and line of the first bad JSON line (datasets' own error does not)."""
    rows = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(f"{path}:{number}: not a JSON line ({error.msg})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{number}: a JSON line must be an object, not {type(row).__name__}")
                rows += 1
    except (OSError, UnicodeDecodeError) as error:
        raise DataNotFound(f"{path}: cannot read ({error})") from None
    if rows == 0:
        raise DataError(f"{path}: no items (sources.{source} is empty)")


def hub_reachable() -> bool:
    """A quick connection probe, so a machine without a network fails in seconds instead of hanging."""
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=HUB_PROBE_SECONDS).close()
    except OSError:
        return False
    return True


def _read_with_datasets(spec: SourceSpec, base_dir: Path) -> tuple[Any, str]:
    """(datasets.Dataset, where it came from: a file path or a hub name) for the error messages."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    if spec.path:
        file = _local_file(spec, base_dir)
        _check_jsonl(file, spec.name)
        return datasets.load_dataset("json", data_files=str(file), split="train"), str(file)
    if not spec.hub_name:
        raise DataSettingError(f"sources.{spec.name}.path: empty, and no hub_name either; point path at local "
                        f"{spec.split}.jsonl files")
    if not hub_reachable():
        raise DataNotFound(f"sources.{spec.name}.path: empty and the hub is unreachable (offline); point path at "
                        f"local {spec.split}.jsonl files")
    try:
        table = datasets.load_dataset(spec.hub_name, spec.hub_config or None, split=spec.split)
    except Exception as error:  # datasets raises many kinds (ConnectionError, FileNotFoundError, ...)
        raise DataNotFound(f"sources.{spec.name}: could not load {spec.hub_name!r} from the hub "
                        f"({type(error).__name__}); with no network set sources.{spec.name}.path to local "
                        f"{spec.split}.jsonl files") from None
    return table, spec.hub_name


def _text(value: object) -> str:
    if isinstance(value, list):  # several accepted answers
        return ANSWER_SEPARATOR.join(map(str, value))
    return str(value)


def _from_dataset(spec: SourceSpec, base_dir: Path, template: str) -> list[Item]:
    table, origin = _read_with_datasets(spec, base_dir)
    fields = {**DEFAULT_FIELDS[spec.kind], **spec.fields}
    required = [f for f in fields if f not in OPTIONAL_FIELDS]
    for field_name in required:
        if fields[field_name] not in table.column_names:
            raise DataError(f"sources.{spec.name}.fields.{field_name}: column {fields[field_name]!r} not in "
                            f"{origin} (columns: {', '.join(table.column_names)})")
    # whole columns through Arrow at once: converting row by row costs more than reading the file
    arrow = table.with_format("arrow")
    columns = {f: arrow[fields[f]].to_pylist() for f in required}
    solution_column = fields.get("solution", "solution")
    solutions = arrow[solution_column].to_pylist() if solution_column in table.column_names else None
    items = []
    for index in range(len(table)):
        values = {}
        for field_name in required:
            value = columns[field_name][index]
            if value is None or _text(value).strip() == "":
                raise DataError(f"{origin}: item {index}: field {field_name!r} (column {fields[field_name]!r}) "
                                f"is missing or empty")
            values[field_name] = value
        solution = _text(solutions[index] or "") if solutions is not None else ""
        if spec.kind == "gsm8k":
            question = str(values["question"])
            try:
                answer = gold_from_gsm8k(str(values["answer"]))
            except ValueError as error:
                raise DataError(f"{origin}: item {index}: {error}") from None
            solution = str(values["answer"]).rsplit("####", 1)[0].strip()
        elif spec.kind == "code":
            question = CODE_QUESTION.format(program=str(values["program"]).rstrip("\n"))
            answer = _text(values["answer"]).rstrip("\n")
        else:
            question, answer = str(values["question"]), _text(values["answer"])
        if not answer.strip():
            raise DataError(f"{origin}: item {index}: the gold answer is empty")
        items.append(Item(f"{spec.name}-{index}", spec.domain, question, render_prompt(question, template), answer,
                          solution))
    return items


def _from_shape(spec: SourceSpec, base_dir: Path, template: str) -> list[Item]:
    """A phase-3 data set shape (data/task_shapes.py) through `datasets`, its columns named by the field map."""
    known = SHAPE_FIELDS[spec.kind]
    for key in spec.fields:
        if key not in known:
            raise DataSettingError(f"sources.{spec.name}.fields.{key}: not a field of kind {spec.kind!r} "
                                   f"({', '.join(known)})")
    fields = {**known, **spec.fields}
    table, origin = _read_with_datasets(spec, base_dir)
    for field_name, column in fields.items():
        if field_name not in SHAPE_OPTIONAL[spec.kind] and column not in table.column_names:
            raise DataError(f"sources.{spec.name}.fields.{field_name}: column {column!r} not in {origin} "
                            f"(columns: {', '.join(table.column_names)})")
    arrow = table.with_format("arrow")
    columns = {f: arrow[c].to_pylist() for f, c in fields.items() if c in table.column_names}
    rows = [{f: values[index] for f, values in columns.items()} for index in range(len(table))]
    return shape_items(spec.kind, spec.name, spec.domain, rows, origin, template)
