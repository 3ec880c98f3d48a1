"""Step time of one process against two (multi-controller JAX on CPU), and what agreeing costs per step.

Runs tests/policies/e2e.toml through the real daemon for --steps steps twice: one process on one
CPU device (fsdp=1), then two processes on one device each with a mesh spanning both (fsdp=2,
gloo collectives). Both draw the same global batch. Reports the median and 90th percentile of
`step_seconds` from metrics.jsonl (steps 3.. : the first steps include compilation) and, for the
two-process run, of `coordination_seconds` from processes/N.log: the step boundary's gather and
broadcast (agreement.py), without process 0's decide() between them. The machine's load average
(`uptime`) is printed before and after: on a shared machine it moves the figures.

    python benchmarks/multiprocess.py [--steps 20] [--out /tmp/multiprocess-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "tests" / "policies" / "e2e.toml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(run_dir: Path, steps: int, processes: int) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "autocurriculum", "run", str(POLICY), "--run-dir", str(run_dir),
            "--set", f"run.max_steps={steps}", "--set", "eval.every=0", "--set", f"training.mesh.fsdp={processes}"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    if processes == 1:
        children = [subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    else:
        port = free_port()
        children = [subprocess.Popen([*args, "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes),
                                      "--process-id", str(index)], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    for index in range(processes)]
    codes = [child.wait() for child in children]
    if any(codes):
        raise SystemExit(f"{processes} process run failed: exit codes {codes}")


def spread(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"{statistics.median(ordered):.3f} / {p90:.3f}"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default="/tmp/multiprocess-bench")
    options = parser.parse_args()
    out = Path(options.out)
    print("load before:", uptime())
    rows = []
    for count in (1, 2):
        run_dir = out / f"p{count}"
        run(run_dir, options.steps, count)
        seconds = [float(str(r["step_seconds"])) for r in lines(run_dir / "metrics.jsonl")[2:]]
        row = f"| {count} | {spread(seconds)} |"
        if count > 1:
            cost = [float(str(line["coordination_seconds"])) for index in range(count)
                    for line in lines(run_dir / "processes" / f"{index}.log")[2:]]
            row += f" {spread([c * 1000 for c in cost])} |"
        else:
            row += " - |"
        rows.append(row)
    print("load after:", uptime())
    print(f"\n{options.steps} steps of {POLICY.name}; steps 3..{options.steps}\n")
    print("| processes | step seconds, median / p90 | gather + broadcast ms per step, median / p90 |")
    print("|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
