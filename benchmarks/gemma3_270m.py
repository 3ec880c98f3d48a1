"""A measured run of the real Gemma 3 270M (GGUF, base model) on GSM8K through the daemon.

It runs `autocurriculum run policies/gemma3-270m.toml` as a child process (or, with --summarize,
only reads a run directory, finished or still going) and prints, per 10 steps: extraction and strict
compliance of the rollouts, the mean reward, the completion length, and the seconds per step split
into rollout / reference log-probs / actor update (timed by the session around Tunix's own calls;
Tunix prepares the next batch while the actor updates, so the parts can overlap and need not add
up to the step). It also prints the peak RSS of the daemon (sampled from /proc every few seconds
while it runs, and the kernel's own high-water mark, VmHWM) and every switch the controller made.

    python benchmarks/gemma3_270m.py --run-dir /work/gemma-run --max-steps 45
    python benchmarks/gemma3_270m.py --summarize /work/gemma-run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLICY = REPO / "policies" / "gemma3-270m.toml"
MEMORY_LOG = "benchmark-memory.jsonl"  # one line per sample: time, VmRSS, VmHWM of the daemon (bytes)
RUN_RECORD = "benchmark-run.json"  # the command, start and end, exit code, load
PARTS = ("rollout", "reference", "update")
BLOCK = 10


def _status_bytes(pid: int) -> dict[str, int]:
    figures: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return figures


def run(run_dir: Path, max_steps: int, extra: list[str]) -> int:
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "autocurriculum", "run", str(POLICY), "--run-dir", str(run_dir),
               "--set", f"run.max_steps={max_steps}", *[arg for pair in extra for arg in ("--set", pair)]]
    record = {"command": command, "started": time.time(), "load_at_start": os.getloadavg()}
    (run_dir / RUN_RECORD).write_text(json.dumps(record, indent=1))
    with open(run_dir / "daemon-output.log", "ab") as output:
        child = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
        with open(run_dir / MEMORY_LOG, "a") as memory:
            while child.poll() is None:
                sample = _status_bytes(child.pid)
                if sample:
                    memory.write(json.dumps({"time": time.time(), **sample, "load": os.getloadavg()[0]}) + "\n")
                    memory.flush()
                time.sleep(5)
    record.update(ended=time.time(), exit_code=child.returncode, load_at_end=os.getloadavg())
    (run_dir / RUN_RECORD).write_text(json.dumps(record, indent=1))
    summarize(run_dir)
    return child.returncode


def _lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line being written while we read
    return records


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summarize(run_dir: Path) -> dict:
    records = _lines(run_dir / "metrics.jsonl")
    records = list({r["step"]: r for r in records}.values())  # a resumed run rewrites nothing twice
    records.sort(key=lambda r: r["step"])
    print(f"run {run_dir}: {len(records)} steps logged")
    header = ("steps", "extraction", "strict", "reward", "tokens", "s/step", *[f"{p} s" for p in PARTS], "phase")
    print(" | ".join(header))
    blocks = []
    previous_totals = {part: 0.0 for part in PARTS}
    for start in range(0, len(records), BLOCK):
        block = records[start : start + BLOCK]

        def metric(name: str, block: list[dict] = block) -> float | None:
            return _mean([r["observation"]["metrics"].get(name) for r in block])

        totals = {part: block[-1]["tunix"].get(f"seconds_total_{part}") for part in PARTS}
        per_step = {
            part: None if totals[part] is None else (totals[part] - previous_totals[part]) / len(block) for part in PARTS
        }
        previous_totals = {part: totals[part] or 0.0 for part in PARTS}
        row = {
            "steps": f"{block[0]['step']}-{block[-1]['step']}",
            "extraction": metric("extraction_rate"),
            "strict": metric("strict_compliance"),
            "reward": metric("reward_mean"),
            "tokens": metric("mean_length_tokens"),
            "step_seconds": _mean([r["step_seconds"] for r in block]),
            **{f"{part}_seconds": per_step[part] for part in PARTS},
            "phase": "/".join(sorted({r["phase"] + (f"/{r['part']}" if r["part"] else "") for r in block})),
        }
        blocks.append(row)
        print(" | ".join([row["steps"], _fmt(row["extraction"]), _fmt(row["strict"]), _fmt(row["reward"]),
                          _fmt(row["tokens"], 1), _fmt(row["step_seconds"], 1),
                          *[_fmt(row[f"{p}_seconds"], 1) for p in PARTS], row["phase"]]))
    if len(records) > 1:  # step 1 includes XLA compilation; later steps are the steady state
        first, last = records[0], records[-1]
        steady = {
            part: (last["tunix"].get(f"seconds_total_{part}", 0.0) - first["tunix"].get(f"seconds_total_{part}", 0.0))
            / (len(records) - 1)
            for part in PARTS
        }
        print(f"steps 2-{last['step']} (after compilation): "
              f"{_mean([r['step_seconds'] for r in records[1:]]):.1f} s/step; "
              + ", ".join(f"{part} {seconds:.1f} s" for part, seconds in steady.items()))
    memory = _lines(run_dir / MEMORY_LOG)
    peak_rss = max((m.get("VmHWM", m.get("VmRSS", 0)) for m in memory), default=None)
    loads = [m["load"] for m in memory if "load" in m]
    transitions = _lines(run_dir / "transitions.jsonl")
    run_record = json.loads((run_dir / RUN_RECORD).read_text()) if (run_dir / RUN_RECORD).is_file() else {}
    print(f"peak RSS (VmHWM of the daemon): {'-' if peak_rss is None else f'{peak_rss / 2**30:.2f} GiB'}")
    if loads:
        print(f"1-minute load while it ran: mean {sum(loads) / len(loads):.1f}, min {min(loads):.1f}, max {max(loads):.1f}")
    if run_record.get("ended"):
        print(f"wall time {run_record['ended'] - run_record['started']:.0f} s, exit code {run_record['exit_code']}")
    elif run_record:
        print(f"still running (or killed): started {time.time() - run_record['started']:.0f} s ago")
    if transitions:
        for t in transitions:
            print(f"switch at step {t['step']}: {t['action']} {t['from_phase']} -> {t['to_phase']} ({t['reason']})")
    else:
        print("the controller made no switch")
    if records:
        last = records[-1]
        criteria = ", ".join(
            f"{name} {_fmt(c.get('value'))} {c.get('comparison')} {c.get('threshold')}: {'holds' if c.get('holds') else 'not yet'}"
            for name, c in (last.get("criteria") or {}).items()
        )
        print(f"criteria at step {last['step']}: {criteria or '-'}")
    return {"blocks": blocks, "peak_rss_bytes": peak_rss, "transitions": transitions}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("/tmp/gemma3-270m-run"))
    parser.add_argument("--max-steps", type=int, default=45)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="policy override")
    parser.add_argument("--summarize", type=Path, metavar="RUN_DIR", help="only summarize this run directory")
    args = parser.parse_args()
    if args.summarize is not None:
        summarize(args.summarize)
        return 0
    return run(args.run_dir, args.max_steps, args.set)


if __name__ == "__main__":
    raise SystemExit(main())
