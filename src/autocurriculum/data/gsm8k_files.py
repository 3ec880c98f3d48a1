"""Find GSM8K as two local JSONL files (train.jsonl, test.jsonl) for the tests, benchmarks and examples.

The test suite and the benchmarks read real GSM8K. They must pass on a developer's machine as well as on
an offline CI host, so the files are looked for in one order, by one function:

1. the folder named by the environment variable ``AUTOCURRICULUM_GSM8K_DIR``;
2. ``shared/data/gsm8k`` beside the repository (the offline hosts this project is built on keep it there);
3. the Hugging Face hub (``openai/gsm8k``, config ``main``) through ``datasets``, written once as JSONL
   under the repository's ``.cache/autocurriculum/gsm8k`` so later runs read files like the other routes.

If none of them gives the files, ``Gsm8kNotFound`` says where to put them. The policies' own sources do
not use this: a policy names its data explicitly (a path or a hub name).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

ENVIRONMENT_VARIABLE = "AUTOCURRICULUM_GSM8K_DIR"
HUB_NAME, HUB_CONFIG = "openai/gsm8k", "main"
SPLITS = ("train", "test")


class Gsm8kNotFound(RuntimeError):
    """No route gave GSM8K's files; the message lists what was tried and where to put them."""


def _has_both_splits(folder: Path) -> bool:
    return all((folder / f"{split}.jsonl").is_file() for split in SPLITS)


def _download_from_hub(target: Path) -> None:
    """Write the hub's GSM8K as train.jsonl / test.jsonl under `target` (atomically, file by file)."""
    import datasets

    from autocurriculum.data.sources import hub_reachable

    if not hub_reachable():
        raise OSError("the hub is unreachable (offline, or HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)")
    datasets.disable_progress_bars()
    target.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        table = datasets.load_dataset(HUB_NAME, HUB_CONFIG, split=split)
        partial = target / f".{split}.jsonl.partial"
        with open(partial, "w", encoding="utf-8") as handle:
            for row in table:
                handle.write(json.dumps({"question": row["question"], "answer": row["answer"]}) + "\n")
        partial.replace(target / f"{split}.jsonl")


def locate_gsm8k(repository: Path, download: Callable[[Path], None] = _download_from_hub) -> Path:
    """The folder holding GSM8K's train.jsonl and test.jsonl, found by the routes in the module docstring."""
    tried: list[str] = []
    named = os.environ.get(ENVIRONMENT_VARIABLE)
    if named:
        folder = Path(named).expanduser()
        if _has_both_splits(folder):
            return folder
        raise Gsm8kNotFound(f"{ENVIRONMENT_VARIABLE}={named}: no train.jsonl and test.jsonl in {folder}")
    tried.append(f"{ENVIRONMENT_VARIABLE} (not set)")
    beside = repository.resolve().parent / "shared" / "data" / "gsm8k"
    if _has_both_splits(beside):
        return beside
    tried.append(f"{beside} (no train.jsonl and test.jsonl)")
    cached = repository / ".cache" / "autocurriculum" / "gsm8k"
    if _has_both_splits(cached):
        return cached
    try:
        download(cached)
    except Exception as error:  # datasets raises many kinds (ConnectionError, FileNotFoundError, HfHubHTTPError)
        tried.append(f"the hub's {HUB_NAME} through datasets ({type(error).__name__}: {error})")
    else:
        if _has_both_splits(cached):
            return cached
        tried.append(f"the hub's {HUB_NAME} (downloaded, but {cached} lacks a split)")
    raise Gsm8kNotFound(
        "GSM8K not found. Tried: " + "; ".join(tried) + ". Put GSM8K's train.jsonl and test.jsonl (one JSON "
        f"object a line with 'question' and 'answer') in a folder and set {ENVIRONMENT_VARIABLE} to it, or "
        f"place them at {beside}, or run where the Hugging Face hub is reachable."
    )
