"""Record real GRPO curves for benchmarks/plateau.py: run the CPU quickstart, keep a small extract.

Why: simulated series only say how a plateau test behaves on the noise we thought of. The per-step
rates of real runs carry the noise GRPO actually makes (its step-to-step correlation included), so
the plateau benchmark replays them too. The repository keeps only the extract this script writes
(a few KB of per-step rates), never the runs themselves.

Runs (each `autocurriculum run policies/tiny.toml` in a temporary directory, base cached):
  quickstart          the policy as shipped: the controller's own switches
  behaviour_long      phase 1 held for the whole run (its plateau window set longer than the run),
                      so extraction and strict compliance show their full rise and their plateau
  correctness_long    phases 1 and 2 as shipped but phase 2 held: accuracy's whole curve

Run: python benchmarks/plateau_curves.py [--out benchmarks/plateau_curves.json] [--steps 160] [--runs NAME ...]
     [--keep DIR] [--extract-from DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autocurriculum.runlog import read_lines

REPO = Path(__file__).resolve().parents[1]
METRICS = ("extraction_rate", "strict_compliance", "accuracy")  # what benchmarks/plateau.py reads


def runs(steps: int) -> dict[str, list[str]]:
    hold = "9999"  # a plateau window longer than any run: the phase never plateaus, so it is held
    return {
        "quickstart": [],
        "behaviour_long": [f"run.max_steps={steps}", f"phases[0].plateau[0].window={hold}"],
        "correctness_long": [f"run.max_steps={steps}", f"phases[1].plateau[0].window={hold}"],
    }


def extract(metrics_log: Path) -> dict[str, object]:
    """Per step: the phase, the completions judged, and each metric's rollout value (None when absent)."""
    steps, phases, completions = [], [], []
    series: dict[str, list[float | None]] = {m: [] for m in METRICS}
    for record in read_lines(metrics_log):  # a torn last line (a run stopped mid-write) is skipped
        observation = record["observation"]
        steps.append(record["step"])
        phases.append(f"{record['phase']}{('/' + record['part']) if record.get('part') else ''}")
        completions.append(observation["completions"])
        for metric in METRICS:
            value = observation["metrics"].get(metric)
            series[metric].append(None if value is None else round(float(value), 4))
    return {"step": steps, "phase": phases, "completions": completions, "metrics": series}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "plateau_curves.json")
    parser.add_argument("--steps", type=int, default=160)
    parser.add_argument("--keep", type=Path, help="keep the run directories under this directory")
    parser.add_argument("--extract-from", type=Path,
                        help="do not train: extract from the run directories a --keep run left under this directory")
    parser.add_argument("--runs", nargs="+", choices=list(runs(0)), help="only these runs (default: all)")
    args = parser.parse_args(argv)
    recorded: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        for name, overrides in runs(args.steps).items():
            if args.runs and name not in args.runs:
                continue
            run_dir = root / name
            if args.extract_from:
                recorded[name] = {"overrides": overrides, **extract(args.extract_from / name / "metrics.jsonl")}
                continue
            command = [sys.executable, "-m", "autocurriculum", "run", str(REPO / "policies" / "tiny.toml"),
                       "--run-dir", str(run_dir)]
            for override in ["metrics.port=0", *overrides]:  # any free port: other runs may hold the default
                command += ["--set", override]
            started = time.perf_counter()
            done = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True)
            if done.returncode != 0:
                sys.stderr.write(done.stderr[-3000:])
                print(f"{name}: the run failed (exit {done.returncode})", file=sys.stderr)
                return 1
            recorded[name] = {"overrides": overrides, **extract(run_dir / "metrics.jsonl")}
            print(f"{name}: {len(recorded[name]['step'])} steps in {time.perf_counter() - started:.0f} s")  # type: ignore[index]
    document = {"source": "python benchmarks/plateau_curves.py (policies/tiny.toml, seed 0)", "runs": recorded}
    args.out.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
