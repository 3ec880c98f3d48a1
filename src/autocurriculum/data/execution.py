"""Running generated programs to learn what they print: isolated, limited, and cached on disk.

A code item's gold must be what Python really prints, not what the generator believes it prints, so
programs run in a separate interpreter (`-I`: no site, no user paths, no environment) under CPU,
memory and wall-clock limits. Running thousands one process each is slow, so a batch runs in one
limited interpreter, and its outputs are cached by the programs' hash and the generator version: a
run after the first reads a file instead of starting a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from autocurriculum.data.items import DataError

_BATCH_RUNNER = (
    "import sys, io, json, contextlib\n"
    "out = []\n"
    "for src in json.load(sys.stdin):\n"
    "    buf = io.StringIO()\n"
    "    with contextlib.redirect_stdout(buf):\n"
    "        exec(src, {'__builtins__': __builtins__})\n"
    "    out.append(buf.getvalue())\n"
    "json.dump(out, sys.stdout)\n"
)
_ENV = {"PATH": "/usr/bin:/bin"}


def _limiter(cpu_seconds: int, memory_bytes: int) -> Callable[[], None]:  # run in the child
    def limits() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return limits


def run_program(program: str, timeout: float = 5.0) -> str:
    """Run one program in an isolated interpreter with CPU/memory limits; return what it printed."""
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-c", program], capture_output=True, text=True, timeout=timeout,
            preexec_fn=_limiter(2, 512 << 20), env=_ENV,
        )
    except subprocess.TimeoutExpired:
        raise DataError(f"program did not finish in {timeout:g} s: {program[:80]!r}") from None
    if result.returncode != 0:
        raise DataError(f"program failed ({result.returncode}): {result.stderr.strip()[-200:]}")
    return result.stdout


def run_programs(programs: Sequence[str], timeout: float = 60.0) -> list[str]:
    """Run many programs in one isolated interpreter under the same kind of limits (much faster)."""
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-c", _BATCH_RUNNER], input=json.dumps(list(programs)), capture_output=True,
            text=True, timeout=timeout, preexec_fn=_limiter(20, 1 << 30), env=_ENV,
        )
    except subprocess.TimeoutExpired:
        raise DataError(f"{len(programs)} generated programs did not finish in {timeout:g} s") from None
    if result.returncode != 0:
        raise DataError(f"generated programs failed to run: {result.stderr.strip()[-300:]}")
    outputs: list[str] = json.loads(result.stdout)  # the runner prints one output string per program
    return outputs


def cached_outputs(programs: list[str], cache_dir: Path | None, version: int) -> list[str]:
    """Outputs of `programs`, from `cache_dir` when this exact list was run before (atomic writes)."""
    key = hashlib.sha256(json.dumps([version, programs]).encode()).hexdigest()[:16]
    path = cache_dir / f"code-outputs-{key}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            outputs = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(outputs, list) and len(outputs) == len(programs):
                return outputs
        except (OSError, json.JSONDecodeError):
            pass  # a damaged cache entry is rebuilt below
    outputs = run_programs(programs)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(outputs), encoding="utf-8")
        tmp.replace(path)
    return outputs
