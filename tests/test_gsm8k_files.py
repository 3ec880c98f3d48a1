"""The one resolver that finds GSM8K for tests and benchmarks: environment, beside the repo, then the hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autocurriculum.data.gsm8k_files import ENVIRONMENT_VARIABLE, Gsm8kNotFound, locate_gsm8k

ROW = json.dumps({"question": "What is 1 + 1?", "answer": "1 + 1 = 2\n#### 2"}) + "\n"


def gsm8k_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        (folder / f"{split}.jsonl").write_text(ROW)
    return folder


def never_download(target: Path) -> None:
    raise AssertionError(f"the hub route was taken although an earlier route had the files ({target})")


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    (tmp_path / "repo").mkdir()
    return tmp_path / "repo"


def test_the_environment_variable_comes_first(repository: Path, tmp_path: Path, monkeypatch) -> None:
    gsm8k_folder(tmp_path / "shared" / "data" / "gsm8k")
    named = gsm8k_folder(tmp_path / "elsewhere")
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(named))
    assert locate_gsm8k(repository, download=never_download) == named


def test_an_environment_variable_naming_an_empty_folder_is_an_error_naming_it(repository: Path, tmp_path: Path,
                                                                              monkeypatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(tmp_path / "empty"))
    with pytest.raises(Gsm8kNotFound, match=rf"{ENVIRONMENT_VARIABLE}=.*empty: no train.jsonl and test.jsonl"):
        locate_gsm8k(repository, download=never_download)


def test_the_folder_beside_the_repository_comes_next(repository: Path, tmp_path: Path) -> None:
    beside = gsm8k_folder(tmp_path / "shared" / "data" / "gsm8k")
    assert locate_gsm8k(repository, download=never_download) == beside


def test_without_either_the_hub_route_writes_the_files_once_into_the_cache(repository: Path) -> None:
    calls: list[Path] = []

    def download(target: Path) -> None:
        calls.append(target)
        gsm8k_folder(target)

    found = locate_gsm8k(repository, download=download)
    assert found == repository / ".cache" / "autocurriculum" / "gsm8k"
    assert locate_gsm8k(repository, download=never_download) == found  # the second time, from the cache
    assert calls == [found]


def test_offline_with_no_files_the_message_lists_every_route_and_where_to_put_them(repository: Path,
                                                                                   monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the real hub route, which must say it is offline
    with pytest.raises(Gsm8kNotFound) as raised:
        locate_gsm8k(repository)
    message = str(raised.value)
    assert f"{ENVIRONMENT_VARIABLE} (not set)" in message
    assert str(repository.parent / "shared" / "data" / "gsm8k") in message
    assert "openai/gsm8k" in message and "unreachable" in message
    assert f"set {ENVIRONMENT_VARIABLE}" in message
