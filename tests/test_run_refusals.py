"""Every kind of bad input to `autocurriculum run`, driven through the command itself in a subprocess.

Each ends with one line on stderr that names the file, the TOML path or field and the value, with
the sysexits code of its kind (78 configuration, 66 missing input, 65 bad data, 75 a held run
directory), and never a traceback. Bad data files (65) are driven in tests/reliability/test_faults.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autocurriculum import control

from .conftest import GSM8K, REPO

TINY = REPO / "policies" / "tiny.toml"
DEFAULT = REPO / "policies" / "default.toml"
# default.toml's phase-3 data sets, read from the fixtures in their columns (no hub here)
PHASE3_FIXTURES = tuple(f"sources.{source}.path={REPO / 'tests' / 'data' / folder}" for source, folder in (
    ("mbpp", "mbpp"), ("mbpp_test", "mbpp"), ("arc", "arc"), ("arc_test", "arc"), ("dolly", "dolly")))


def run(policy: Path, run_dir: Path, *sets: str) -> tuple[int, str]:
    """`autocurriculum run` in a child process: its exit code and the last line of its stderr."""
    args = [sys.executable, "-m", "autocurriculum", "run", str(policy), "--run-dir", str(run_dir)]
    for item in sets:
        args += ["--set", item]
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert lines, f"nothing on stderr; stdout: {done.stdout[-2000:]}"
    return done.returncode, lines[-1]


def assert_one_refusal_line(last: str, *named: str) -> None:
    assert last.startswith("autocurriculum: "), last
    for text in named:
        assert text in last, f"{text!r} not in {last!r}"


def test_a_bad_policy_value_exits_78_naming_file_path_and_value(tmp_path: Path) -> None:
    code, last = run(TINY, tmp_path / "run", "training.learning_rate=-1")
    assert code == 78
    assert_one_refusal_line(last, "tiny.toml", "training.learning_rate", "-1")


def test_a_mesh_larger_than_the_devices_exits_78_not_a_traceback(tmp_path: Path) -> None:
    """Checked only when JAX is up, but configuration all the same."""
    code, last = run(TINY, tmp_path / "run", "training.mesh.fsdp=4")
    assert code == 78
    assert_one_refusal_line(last, "tiny.toml", "training.mesh", "fsdp=4")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_data_setting_only_checked_at_build_time_exits_78(tmp_path: Path) -> None:
    """A GSM8K source with neither a path nor a hub name: the policy, not the data, is wrong."""
    code, last = run(DEFAULT, tmp_path / "run", "sources.gsm8k.hub_name=", "sources.gsm8k.path=")
    assert code == 78
    assert_one_refusal_line(last, "default.toml", "sources.gsm8k.path", "hub_name")


def test_a_missing_data_folder_exits_66_naming_the_field_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    code, last = run(DEFAULT, tmp_path / "run", f"sources.gsm8k.path={missing}")
    assert code == 66
    assert_one_refusal_line(last, "sources.gsm8k.path", str(missing))


def test_missing_weights_exit_66_naming_the_field_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-gemma"
    code, last = run(DEFAULT, tmp_path / "run", f"sources.gsm8k.path={GSM8K}", f"sources.gsm8k_test.path={GSM8K}",
                     *PHASE3_FIXTURES, f"model.weights={missing}")
    assert code == 66
    assert_one_refusal_line(last, "model.weights", str(missing))


@pytest.mark.parametrize("missing", ["policy.toml", "dir/policy.toml"])
def test_a_missing_policy_file_exits_66_naming_it(tmp_path: Path, missing: str) -> None:
    code, last = run(tmp_path / missing, tmp_path / "run")
    assert code == 66
    assert_one_refusal_line(last, str(tmp_path / missing))


def test_a_run_directory_held_by_another_daemon_exits_75_on_stderr(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    held = control.acquire_pidfile(run_dir)
    try:
        code, last = run(TINY, run_dir)
    finally:
        held.release()
    assert code == 75
    assert_one_refusal_line(last, str(run_dir), "in use by daemon pid")
