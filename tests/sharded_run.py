"""Run the real daemon on two simulated CPU devices with fsdp=2 and print where the model's arrays live.

Run by tests/test_multiprocess.py as `python -m tests.sharded_run POLICY RUN_DIR STEPS` with
XLA_FLAGS=--xla_force_host_platform_device_count=2 (JAX reads it when it starts, so it must be set
before this process imports JAX). Prints one JSON line: the run's result and, over the trained
actor's arrays (base and LoRA), how many are split across both devices and one example's shapes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autocurriculum.daemon import RunOptions, run_daemon
from autocurriculum.library import SourceLibrary
from autocurriculum.policy import Policy, load
from autocurriculum.rewards import CountTokens
from autocurriculum.trainer import BatchHook, RewardFn, Trainer
from autocurriculum.wiring import EventLog, OpenTrainer, grpo_backend


def main(policy_file: str, run_dir: str, steps: int) -> None:
    import jax
    from flax import nnx

    opened: list[Any] = []

    def backend(policy: Policy, base_dir: Path, cache_root: Path, library: SourceLibrary,
                log: EventLog) -> tuple[CountTokens, OpenTrainer]:
        count, open_trainer = grpo_backend(policy, base_dir, cache_root, library, log)

        def open_and_keep(fns: Sequence[RewardFn], hook: BatchHook) -> Trainer:
            opened.append(open_trainer(fns, hook))
            return opened[-1]

        return count, open_and_keep

    policy = load(Path(policy_file), overrides=["training.mesh.fsdp=2", "eval.every=0"])
    result = run_daemon(policy, Path(run_dir), RunOptions(max_steps=steps, backend=backend))
    arrays = [leaf for leaf in jax.tree.leaves(nnx.state(opened[0].trained_model)) if isinstance(leaf, jax.Array)]
    split = [a for a in arrays if len(a.sharding.device_set) == 2 and not a.sharding.is_fully_replicated]
    largest = max(split, key=lambda a: a.size)
    print(json.dumps({
        "exit_code": result.exit_code, "steps": result.steps, "devices": len(jax.devices()),
        "mesh": dict(opened[0].bundle.mesh.shape), "arrays": len(arrays), "split": len(split),
        "example": {"shape": list(largest.shape),
                    "shards": [list(s.data.shape) for s in largest.addressable_shards],
                    "devices": sorted(s.device.id for s in largest.addressable_shards)},
    }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
