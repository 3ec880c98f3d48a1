"""Process-wide JAX settings that must be applied before the first computation.

The persistent compilation cache turns a resumed run's 10-20 s of XLA compilation into a cache read,
which matters for a daemon that is restarted after crashes and for the test suite's kill/resume runs.
"""

from __future__ import annotations

import os
from pathlib import Path


def configure_jax(cache_dir: Path | None) -> None:
    """Use the CPU unless told otherwise and cache compiled programs under `cache_dir`."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import jax

    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def make_mesh(fsdp: int, tp: int):  # -> jax.sharding.Mesh
    """A ('fsdp', 'tp') mesh over the first fsdp*tp devices.

    `jax.make_mesh` in jax 0.10 builds Explicit axes and Tunix's sampler then fails with a
    ShardingTypeError on the embedding gather (docs/design.md, "Facts the code relies on"); a plain
    Mesh works.
    """
    import jax
    import numpy as np

    needed = fsdp * tp
    devices = jax.devices()
    if len(devices) < needed:
        raise RuntimeError(
            f"training.mesh asks for fsdp={fsdp} x tp={tp} = {needed} devices but JAX sees "
            f"{len(devices)} ({devices[0].platform}); on CPU simulate more with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={needed}"
        )
    return jax.sharding.Mesh(np.array(devices[:needed]).reshape(fsdp, tp), ("fsdp", "tp"))
