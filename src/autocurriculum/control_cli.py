"""`autocurriculum ctl` and `autocurriculum status`: the operator's two commands.

They only touch files in the run directory (control.py), so they answer in a fraction of a second
and never import JAX. Exit codes follow the LSB init-script convention for status (0 running,
3 not running, 4 unknown) and say what happened for ctl, so a script can act on them:

    ctl:    0 written (applied, with --wait)   1 no acknowledgement in time   2 rejected
            3 not running (with --wait)        4 no such run directory        64 usage
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from autocurriculum import control
from autocurriculum.exits import EX_NOT_RUNNING, EX_OK, EX_REJECTED, EX_TIMEOUT, EX_UNKNOWN, EX_USAGE
from autocurriculum.override import Command

DEFAULT_RUN_DIR = "runs/tiny"

CTL_EXAMPLE = """examples:
  autocurriculum ctl hold --reason 'investigating the length spike' --run-dir runs/tiny
  autocurriculum ctl set correctness --reason 'format is good enough' --run-dir runs/tiny --wait 30

The request is written to RUN_DIR/control/requests/ and the daemon is woken with SIGUSR1; it applies
the request at the next step boundary and acknowledges it. Without --wait the command returns at
once (a request for a stopped run applies when the run resumes).
exit: 0 written/applied, 1 timed out, 2 rejected, 3 not running (--wait), 4 no run directory, 64 usage"""

STATUS_EXAMPLE = """examples:
  autocurriculum status --run-dir runs/tiny
  autocurriculum status --run-dir runs/tiny --json | jq .phase

exit: 0 running, 3 not running, 4 unknown run directory (the LSB convention)"""


def _describe(parser: argparse.ArgumentParser, example: str) -> None:
    parser.epilog = example
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def add_ctl_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _describe(parser, CTL_EXAMPLE)
    parser.add_argument("command", choices=[c.value for c in Command],
                        help="advance: leave the current plan step now; hold/resume automatic switching; set PHASE: go there")
    parser.add_argument("phase", nargs="?", default="", metavar="PHASE", help="target phase (set only)")
    parser.add_argument("--reason", required=True, metavar="TEXT", help="why; recorded in the logs and the metrics log")
    parser.add_argument("--run-dir", default=DEFAULT_RUN_DIR, metavar="DIR", help=f"run directory (default {DEFAULT_RUN_DIR})")
    parser.add_argument("--wait", type=float, metavar="SECONDS",
                        help="block until the daemon acknowledges; non-zero exit when rejected or timed out")
    parser.set_defaults(handler=cmd_ctl)
    return parser


def add_status_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _describe(parser, STATUS_EXAMPLE)
    parser.add_argument("--run-dir", default=DEFAULT_RUN_DIR, metavar="DIR", help=f"run directory (default {DEFAULT_RUN_DIR})")
    parser.add_argument("--json", action="store_true", help="print the status as one JSON object")
    parser.set_defaults(handler=cmd_status)
    return parser


def _error(message: str) -> None:
    print(f"autocurriculum: {message}", file=sys.stderr)


def cmd_ctl(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    command = Command(args.command)
    if command is Command.SET and not args.phase:
        _error("ctl set needs a PHASE, e.g. `autocurriculum ctl set correctness --reason ...`")
        return EX_USAGE
    if command is not Command.SET and args.phase:
        _error(f"ctl {command.value} takes no PHASE (got {args.phase!r})")
        return EX_USAGE
    if not run_dir.is_dir() or (control.read_status(run_dir) is None and not (run_dir / control.PIDFILE).exists()):
        _error(f"{run_dir} is not a run directory (no status.json, no daemon.pid)")
        return EX_UNKNOWN
    pid = control.running_pid(run_dir)
    if args.wait is not None and pid is None:
        _error(f"not running: no daemon holds {run_dir}; nothing written (without --wait the request waits for a resume)")
        return EX_NOT_RUNNING
    try:
        seq = control.submit(run_dir, command, args.phase, args.reason)
    except control.ControlError as error:
        _error(str(error))
        return EX_UNKNOWN
    target = f" {args.phase}" if args.phase else ""
    print(f"request #{seq} {command.value}{target} written to {run_dir}"
          + ("" if pid else " (no daemon running: it applies when the run resumes)"))
    if args.wait is None:
        return EX_OK
    ack = control.wait_for_ack(run_dir, seq, args.wait)
    if ack is None:
        if control.running_pid(run_dir) is None:
            _error(f"the daemon stopped before acknowledging #{seq}")
            return EX_NOT_RUNNING
        _error(f"no acknowledgement of #{seq} within {args.wait:g}s")
        return EX_TIMEOUT
    print(f"#{seq} {ack.result}: {ack.message}")
    return EX_OK if ack.result == control.APPLIED else EX_REJECTED


def gather_status(run_dir: Path) -> tuple[int, dict[str, Any]]:
    """(exit code, status dict with `running`, `pid` and `pending_requests` added). Reads only."""
    if not run_dir.is_dir():
        return EX_UNKNOWN, {"run_dir": str(run_dir), "error": "no such directory"}
    status = control.read_status(run_dir)
    pid = control.running_pid(run_dir)
    if status is None and pid is None:
        problem = "not a run directory (no status.json, no daemon holding daemon.pid)"
        return EX_UNKNOWN, {"run_dir": str(run_dir), "error": problem}
    result: dict[str, Any] = dict(status or {})
    result["run_dir"] = str(run_dir)
    result["running"] = pid is not None
    result["pid"] = pid
    last_seq = int(result.get("last_request_seq", 0) or 0)
    result["pending_requests"] = [r.to_json() for r in control.peek_pending(run_dir, last_seq)]
    return (EX_OK if pid is not None else EX_NOT_RUNNING), result


def cmd_status(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    code, status = gather_status(run_dir)
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True, default=str))
    elif code == EX_UNKNOWN:
        _error(f"{run_dir}: {status['error']}")
    else:
        print(format_status(status))
    return code


def _plain(value: object) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def format_status(status: dict[str, Any]) -> str:
    """The human view of `gather_status`'s dict, one fact per line."""
    lines = []
    state = f"running, pid {status['pid']}" if status["running"] else "not running"
    lines.append(f"run dir:    {status['run_dir']} ({state})")
    if "step" not in status:
        lines.append("            no step finished yet")
    else:
        part = f"/{status['part']}" if status.get("part") else ""
        lines.append(f"phase:      {status.get('phase', '?')}{part}  "
                     f"(plan step {int(status.get('plan_step', 0)) + 1}/{status.get('plan_steps', '?')})")
        flags = "  HELD: " + str(status.get("hold_reason") or "") if status.get("hold") else ""
        flags += "  DONE" if status.get("done") else ""
        updated = status.get("updated")
        age = f"  (updated {time.time() - float(updated):.0f}s ago)" if isinstance(updated, (int, float)) else ""
        lines.append(f"step:       {status['step']}{flags}{age}")
        decision = status.get("last_decision") or {}
        lines.append(f"decision:   {decision.get('action', '?')} ({decision.get('reason', '?')})")
        evidence = {k: v for k, v in dict(decision.get("evidence") or {}).items()
                    if k not in ("criteria", "plateau", "guards")}
        if evidence:
            lines.append("evidence:   " + ", ".join(f"{k}={_plain(v)}" for k, v in sorted(evidence.items())))
        for metric, c in dict(status.get("criteria") or {}).items():
            verdict = "holds" if c.get("holds") else "not yet"
            lines.append(f"criterion:  {metric} {c.get('comparison')} {_plain(c.get('threshold'))}: "
                         f"window {_plain(c.get('value'))} -> {verdict}")
        for metric, p in dict(status.get("plateau") or {}).items():
            verdict = "plateaued" if p.get("plateaued") else "not yet" if p.get("ready", True) else "not enough values"
            lines.append(f"plateau:    {metric} ({p.get('test')}): {_plain(p.get('statistic'))} vs "
                         f"{_plain(p.get('bound'))} -> {verdict}")
        if status.get("alerts"):
            lines.append(f"alerts:     {', '.join(map(str, status['alerts']))}")
    for request in status.get("pending_requests", []):
        target = f" {request['phase']}" if request.get("phase") else ""
        lines.append(f"pending:    #{request['seq']} {request['command']}{target} ({request.get('reason', '')})")
    return "\n".join(lines)
