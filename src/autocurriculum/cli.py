"""Command line: run | validate | status | ctl | replay | eval | report.

The CLI only routes: each subcommand's work lives in the module that owns it, imported lazily
inside the handler, so `validate` never imports JAX or Tunix and answers in a fraction of a second.
A bad policy exits 78 (EX_CONFIG) with one line naming the file, the dotted TOML path and the bad
value, like `nginx -t`; a policy file that is not there exits 66 (EX_NOINPUT). Every exit code is in
`autocurriculum.exits`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from autocurriculum.exits import EX_OK

SUBCOMMANDS = ("run", "validate", "status", "ctl", "replay", "eval", "report")

Handler = Callable[[argparse.Namespace], int]


def _delegate(module: str, name: str) -> Handler:
    """A handler that calls `module.name(args)`, imported only when the subcommand runs."""

    def handler(args: argparse.Namespace) -> int:
        function: Handler = getattr(importlib.import_module(module), name)
        return int(function(args))

    return handler


def cmd_validate(args: argparse.Namespace) -> int:
    from autocurriculum.policy import describe_plan, expand_plan, load
    from autocurriculum.training_knobs import describe_training
    from autocurriculum.user_rewards import resolve_user_rewards
    from autocurriculum.wiring import policy_dir

    policy = load(Path(args.policy), overrides=args.set or ())
    resolve_user_rewards(policy, policy_dir(policy))  # imports and calls a user's reward functions once
    plan = expand_plan(policy)
    print(f"{policy.file}: {len(policy.phases)} phases, {len(plan)} single-factor plan steps")
    print(describe_plan(policy, plan))
    print(describe_training(policy.training))
    print("policy OK")
    return EX_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from autocurriculum.policy import load

    replay = importlib.import_module("autocurriculum.replay")
    policy = load(Path(args.policy), overrides=args.set or ())
    return int(replay.replay_file(policy, Path(args.metrics), Path(args.plot) if args.plot else None))


def _add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override a policy value before it is checked, e.g. run.max_steps=50 or "
                             "phases[1].max_steps=200 (VALUE is read as TOML, else taken as a string); repeatable")


def _add_control_arguments(parser: argparse.ArgumentParser, function: str) -> None:
    """status and ctl take their arguments from control_cli, which owns them."""
    getattr(importlib.import_module("autocurriculum.control_cli"), function)(parser)


def build_parser(subcommand: str | None = None) -> argparse.ArgumentParser:
    """The whole command line. `subcommand` names the one about to run: only its delegated arguments are imported."""
    parser = argparse.ArgumentParser(
        prog="autocurriculum",
        description="Drive a Tunix GRPO run through a behaviour -> correctness -> domains curriculum, "
                    "changing the data mixture OR the reward set at each switch, never both.",
        epilog="example:\n  autocurriculum validate policies/default.toml\n  autocurriculum run policies/tiny.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="subcommand", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")

    def add(name: str, help_text: str, examples: Sequence[str], handler: Handler) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog="example:\n" + "\n".join(f"  {e}" for e in examples),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p

    p = add("run", "run the daemon: train through the policy's single-factor plan",
            ["autocurriculum run policies/tiny.toml --run-dir runs/tiny",
             "autocurriculum run policies/default.toml --set model.weights=/models/gemma3-1b-it --resume"],
            _delegate("autocurriculum.daemon", "cmd_run"))
    p.add_argument("policy", help="policy TOML file")
    p.add_argument("--run-dir", help="run directory (default: the policy's run.run_dir)")
    p.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint")
    _add_set_argument(p)
    group = p.add_argument_group("several processes (multi-controller JAX; default: one process, nothing to set)")
    group.add_argument("--coordinator", metavar="HOST:PORT",
                       help="process 0's address for jax.distributed (default: $JAX_COORDINATOR_ADDRESS)")
    group.add_argument("--num-processes", type=int, help="processes in the run (default: $JAX_NUM_PROCESSES)")
    group.add_argument("--process-id", type=int, help="this process's index, 0 first (default: $JAX_PROCESS_ID)")
    group.add_argument("--distributed", action="store_true",
                       help="join the run JAX's cluster detection finds (TPU pod slice, SLURM): "
                            "jax.distributed.initialize() without arguments")
    group.add_argument("--peer-timeout", type=float, default=60.0, metavar="SECONDS",
                       help="stop when a peer process is silent this long (default: 60)")

    p = add("validate", "check a policy and print its single-factor plan "
                        "(exit 0 and 'policy OK'; 78 on any error, 66 if the file is missing)",
            ["autocurriculum validate policies/default.toml",
             "autocurriculum validate policies/default.toml --set model.weights=/models/gemma3-1b-it"],
            cmd_validate)
    p.add_argument("policy", help="policy TOML file")
    _add_set_argument(p)

    p = add("status", "show a run's phase, plan step, step and last decision (exit 0 running, 3 not running, 4 unknown)",
            ["autocurriculum status --run-dir runs/tiny", "autocurriculum status --run-dir runs/tiny --json"],
            _delegate("autocurriculum.control_cli", "cmd_status"))
    if subcommand == "status":
        _add_control_arguments(p, "add_status_arguments")

    p = add("ctl", "steer a running daemon: advance, hold, resume, or set PHASE (applied once, at a step boundary)",
            ["autocurriculum ctl hold --reason 'look at the samples' --run-dir runs/tiny",
             "autocurriculum ctl set correctness --reason 'format is good enough' --run-dir runs/tiny --wait 30"],
            _delegate("autocurriculum.control_cli", "cmd_ctl"))
    if subcommand == "ctl":
        _add_control_arguments(p, "add_ctl_arguments")

    p = add("replay", "rerun decide() over a recorded metrics log and print its transitions",
            ["autocurriculum replay runs/tiny/metrics.jsonl --policy policies/tiny.toml",
             "autocurriculum replay runs/tiny/metrics.jsonl --policy policies/tiny.toml --plot replay.png"],
            cmd_replay)
    p.add_argument("metrics", help="the run's per-step metrics log (metrics.jsonl)")
    p.add_argument("--policy", required=True, help="the policy the run used")
    p.add_argument("--plot", help="draw the watched metrics with phase bands and switches to this PNG")
    _add_set_argument(p)

    p = add("eval", "evaluate a checkpoint on held-out items and write a report",
            ["autocurriculum eval --run-dir runs/tiny --out report/",
             "autocurriculum eval --run-dir runs/tiny --checkpoint 200 --split test"],
            _delegate("autocurriculum.evaluation", "cmd_eval"))
    p.add_argument("--run-dir", help="run directory (default: $AUTOCURRICULUM_RUN_DIR, else the one run under ./runs)")
    p.add_argument("--checkpoint", type=int, help="checkpoint step (default: the newest good one)")
    p.add_argument("--split", default="test", help="held-out split (default: test)")
    p.add_argument("--out", default="report", help="report directory (default: report)")

    p = add("report", "write one self-contained HTML page of a finished or running run (charts, transitions, completions)",
            ["autocurriculum report --run-dir runs/tiny", "autocurriculum report --run-dir runs/tiny --out tiny.html"],
            _delegate("autocurriculum.report", "cmd_report"))
    p.add_argument("--run-dir", default="runs/tiny", help="run directory (default: runs/tiny)")
    p.add_argument("--out", help="HTML file to write (default: RUN_DIR/report.html)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from autocurriculum.policy import PolicyError, policy_exit_code  # pure and light: no JAX, no Tunix

    arguments = list(sys.argv[1:] if argv is None else argv)
    subcommand = next((a for a in arguments if not a.startswith("-")), None)
    parser = build_parser(subcommand)
    args = parser.parse_args(arguments)
    try:
        return int(args.handler(args))
    except PolicyError as error:
        print(f"autocurriculum: {error}", file=sys.stderr)
        return policy_exit_code(error)


if __name__ == "__main__":
    raise SystemExit(main())
