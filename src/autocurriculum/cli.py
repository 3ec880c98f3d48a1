"""Command line: run | validate | status | ctl | replay | eval.

Each handler imports what it needs lazily, so `validate`, `status` and `ctl` never import JAX or
Tunix and answer in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

EX_OK, EX_USAGE, EX_SOFTWARE, EX_CONFIG = 0, 64, 70, 78
STATUS_RUNNING, STATUS_NOT_RUNNING, STATUS_UNKNOWN = 0, 3, 4


def _policy_error_exit(error: Exception) -> int:
    print(f"autocurriculum: {error}", file=sys.stderr)
    return EX_CONFIG


def cmd_validate(args: argparse.Namespace) -> int:
    from autocurriculum.policy import PolicyError, describe_plan, expand_plan, load

    try:
        policy = load(Path(args.policy), overrides=args.set or ())
    except PolicyError as error:
        return _policy_error_exit(error)
    plan = expand_plan(policy)
    print(f"{policy.file}: {len(policy.phases)} phases, {len(plan)} single-factor plan steps")
    print(describe_plan(policy, plan))
    print("policy OK")
    return EX_OK


def cmd_run(args: argparse.Namespace) -> int:
    from autocurriculum.daemon import cmd_run as run

    return run(args)


def cmd_status(args: argparse.Namespace) -> int:
    from autocurriculum import control

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        print(f"autocurriculum: no run directory {run_dir}", file=sys.stderr)
        return STATUS_UNKNOWN
    status = control.read_status(run_dir)
    pid = control.running_pid(run_dir)
    if status is None and pid is None:
        print(f"autocurriculum: {run_dir} is not a run directory (no status.json)", file=sys.stderr)
        return STATUS_UNKNOWN
    status = dict(status or {})
    status["running"] = pid is not None
    status["pending_requests"] = [r.to_json() for r in control.ControlInbox(run_dir).pending(
        int(status.get("last_request_seq", 0)))] if run_dir.is_dir() else []
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True, default=str))
    else:
        decision = status.get("last_decision") or {}
        print(f"run dir:    {run_dir} ({'running, pid ' + str(pid) if pid else 'not running'})")
        print(f"phase:      {status.get('phase', '?')}{'/' + str(status['part']) if status.get('part') else ''}"
              f"  (plan step {int(status.get('plan_step', 0)) + 1}/{status.get('plan_steps', '?')})")
        print(f"step:       {status.get('step', '?')}{'  HELD: ' + str(status.get('hold_reason', '')) if status.get('hold') else ''}"
              f"{'  DONE' if status.get('done') else ''}")
        print(f"decision:   {decision.get('action', '?')} ({decision.get('reason', '?')})")
        for metric, c in dict(status.get("criteria", {})).items():
            print(f"criterion:  {metric} {c.get('comparison')} {c.get('threshold')}: value {c.get('value')} "
                  f"-> {'holds' if c.get('holds') else 'not yet'}")
        for metric, p in dict(status.get("plateau", {})).items():
            print(f"plateau:    {metric} ({p.get('test')}): {p.get('statistic')} vs {p.get('bound')} "
                  f"-> {'plateaued' if p.get('plateaued') else 'not yet'}")
        if status.get("alerts"):
            print(f"alerts:     {', '.join(status['alerts'])}")
        for request in status["pending_requests"]:
            print(f"pending:    #{request['seq']} {request['command']} {request['phase']} ({request['reason']})")
    return STATUS_RUNNING if pid is not None else STATUS_NOT_RUNNING


def cmd_ctl(args: argparse.Namespace) -> int:
    from autocurriculum import control
    from autocurriculum.override import Command

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        print(f"autocurriculum: no run directory {run_dir}", file=sys.stderr)
        return STATUS_UNKNOWN
    if args.command == "set" and not args.phase:
        print("autocurriculum: ctl set needs a PHASE", file=sys.stderr)
        return EX_USAGE
    pid = control.running_pid(run_dir)
    seq = control.submit(run_dir, Command(args.command), args.phase or "", args.reason)
    print(f"request #{seq} {args.command} {args.phase or ''} written to {run_dir}"
          + ("" if pid else " (no daemon running: it applies when the run resumes)"))
    if args.wait is None:
        return EX_OK
    if pid is None:
        print("autocurriculum: not running; nothing to wait for", file=sys.stderr)
        return STATUS_NOT_RUNNING
    ack = control.wait_for_ack(run_dir, seq, args.wait)
    if ack is None:
        print(f"autocurriculum: no acknowledgement of #{seq} within {args.wait:g}s", file=sys.stderr)
        return 1
    print(f"#{seq} {ack.result}: {ack.message}")
    return EX_OK if ack.result == "applied" else 2


def cmd_replay(args: argparse.Namespace) -> int:
    from autocurriculum.policy import PolicyError, load
    from autocurriculum.replay import replay_file

    try:
        policy = load(Path(args.policy))
    except PolicyError as error:
        return _policy_error_exit(error)
    return replay_file(policy, Path(args.metrics), Path(args.plot) if args.plot else None)


def cmd_eval(args: argparse.Namespace) -> int:
    from autocurriculum.evaluation import cmd_eval as run_eval

    return run_eval(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autocurriculum",
        description="Drive a Tunix GRPO run through a behaviour -> correctness -> domains curriculum.",
    )
    sub = parser.add_subparsers(dest="subcommand", required=True)

    def add(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, epilog=f"example:\n  {example}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("run", "run the daemon: train through the policy's plan", "autocurriculum run policies/tiny.toml --run-dir runs/tiny")
    p.add_argument("policy")
    p.add_argument("--run-dir", help="run directory (default: the policy's run.run_dir)")
    p.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a policy value, e.g. run.max_steps=50")
    p.set_defaults(handler=cmd_run)

    p = add("validate", "check a policy and print its single-factor plan (exit 78 on error)",
            "autocurriculum validate policies/default.toml --set model.weights=/models/gemma3-1b-it")
    p.add_argument("policy")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a policy value")
    p.set_defaults(handler=cmd_validate)

    p = add("status", "show a run's phase, step and last decision (exit 0 running, 3 not running, 4 unknown)",
            "autocurriculum status --run-dir runs/tiny --json")
    p.add_argument("--run-dir", default="runs/tiny")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)

    p = add("ctl", "steer a running daemon: advance, hold, resume, or set PHASE",
            "autocurriculum ctl set correctness --reason 'format is good enough' --run-dir runs/tiny --wait 30")
    p.add_argument("command", choices=["advance", "hold", "resume", "set"])
    p.add_argument("phase", nargs="?", default="")
    p.add_argument("--reason", required=True)
    p.add_argument("--run-dir", default="runs/tiny")
    p.add_argument("--wait", type=float, metavar="SECONDS", help="block until the daemon acknowledges")
    p.set_defaults(handler=cmd_ctl)

    p = add("replay", "rerun decide() over a recorded metrics log and print its transitions",
            "autocurriculum replay runs/tiny/metrics.jsonl --policy policies/tiny.toml --plot replay.png")
    p.add_argument("metrics")
    p.add_argument("--policy", required=True)
    p.add_argument("--plot")
    p.set_defaults(handler=cmd_replay)

    p = add("eval", "evaluate a checkpoint on held-out items and write a report",
            "autocurriculum eval --run-dir runs/tiny --out report/")
    p.add_argument("--run-dir", default="runs/tiny")
    p.add_argument("--checkpoint", type=int, help="checkpoint step (default: the newest good one)")
    p.add_argument("--split", default="test")
    p.add_argument("--out", default="report")
    p.set_defaults(handler=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
