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


# ---------------------------------------------------------------- grading code by its tests

# The runner reads [[program, tests], ...] and prints one verdict per case. Each case runs in a forked
# child: its own empty working directory (removed after), stdin/stdout/stderr on /dev/null, CPU, memory
# and file-size limits, and an audit hook (PEP 578) installed before the program runs that ends the
# child at the first forbidden action (writing or creating a file, deleting or renaming one, starting
# a process, opening a socket, loading C code, changing limits, reading frames or the garbage
# collector's objects). A case passes only when the child writes the runner's random token after the
# tests ran: a program that exits early with status 0 (`sys.exit(0)`, `os._exit(0)`) fails.
_TESTS_RUNNER = r"""
import json, os, resource, secrets, select, shutil, sys, tempfile, time
cases, cpu_seconds, wall_seconds, memory_bytes = json.load(sys.stdin)
READ_ONLY_EVENTS = {"os.listdir", "os.scandir"}  # the import system lists directories
DENIED_PREFIXES = ("os.", "subprocess.", "socket.", "ctypes.", "shutil.", "resource.", "gc.", "sys._getframe",
                   "sys._current_frames", "object.__getattr__", "object.__setattr__", "object.__delattr__",
                   "pty.", "fcntl.", "mmap.", "signal.", "urllib.", "http.", "ftplib.", "smtplib.", "webbrowser.",
                   "_posixsubprocess.", "sqlite3.", "import.pth")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
verdicts = []
for program, tests in cases:
    workdir = tempfile.mkdtemp(prefix="autocurriculum-sandbox-")
    token = secrets.token_bytes(16)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.chdir(workdir)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            write, exit_now = os.write, os._exit

            def guard(event, args, exit_now=exit_now, _flags=WRITE_FLAGS):
                if event == "open":
                    mode, flags = args[1], args[2]
                    if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                            isinstance(flags, int) and flags & _flags):
                        exit_now(3)
                elif event.startswith(DENIED_PREFIXES) and event not in READ_ONLY_EVENTS:
                    exit_now(3)

            sys.addaudithook(guard)
            scope = {"__name__": "__main__", "__builtins__": __builtins__}
            exec(compile(program, "<solution>", "exec"), scope)
            exec(compile(tests, "<tests>", "exec"), scope)
            write(write_end, token)
            exit_now(0)
        except BaseException:
            os._exit(1)
    os.close(write_end)
    deadline, said = time.monotonic() + wall_seconds, b""
    while True:  # the pipe reads the token, or its end when the child exits (or the deadline)
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read_end], [], [], left)[0]:
            os.kill(pid, 9)
            break
        chunk = os.read(read_end, 64)
        if not chunk:
            break
        said += chunk
    os.waitpid(pid, 0)
    os.close(read_end)
    shutil.rmtree(workdir, ignore_errors=True)
    verdicts.append(said == token)
json.dump(verdicts, sys.stdout)
"""
TEST_CPU_SECONDS = 1  # per case: MBPP's asserts take milliseconds; a loop is cut at one second
TEST_WALL_SECONDS = 2.0  # per case, for a program that sleeps or blocks instead of computing
TEST_MEMORY_BYTES = 512 << 20


def run_tests(cases: Sequence[tuple[str, str]], *, cpu_seconds: int = TEST_CPU_SECONDS,
              wall_seconds: float = TEST_WALL_SECONDS) -> list[bool]:
    """For each (program, tests): did the tests pass when run after the program, inside the sandbox?

    One isolated interpreter (`-I -B`: no site, no user paths, no environment, no bytecode written)
    serves the whole batch and forks one limited child per case (see `_TESTS_RUNNER`), so a batch costs
    one interpreter start plus a fork per case, and at worst `wall_seconds` per case. An interpreter
    that fails as a whole (it should not) fails every case: a grader that breaks never says "correct".
    What it keeps in: files, processes, network, loops and memory of ordinary code, as the tests show;
    it is a Python-level guard with OS limits, not a boundary against code written to break out of it.
    """
    if not cases:
        return []
    payload = json.dumps([[list(map(str, case)) for case in cases], cpu_seconds, wall_seconds, TEST_MEMORY_BYTES])
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-B", "-c", _TESTS_RUNNER], input=payload, capture_output=True, text=True,
            timeout=len(cases) * (wall_seconds + 0.5) + 10, env=_ENV, cwd="/",
        )
        verdicts = json.loads(result.stdout) if result.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError):
        verdicts = None
    if not isinstance(verdicts, list) or len(verdicts) != len(cases):
        return [False] * len(cases)
    return [verdict is True for verdict in verdicts]
