"""Process-wide JAX settings that must be applied before the first computation.

The persistent compilation cache turns a resumed run's 10-20 s of XLA compilation into a cache read,
which matters for a daemon that is restarted after crashes and for the test suite's kill/resume runs.

The platform is JAX's own choice, never this package's: JAX reads `JAX_PLATFORMS` once, when it is
imported (and the adapter's modules import it), so a default set here would come too late to matter —
and forcing the CPU would silently waste a user's TPU or GPU. JAX takes the best platform it finds
(TPU, GPU, else CPU); set `JAX_PLATFORMS=cpu` in the environment to force the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from autocurriculum.exits import BadSetting

if TYPE_CHECKING:
    import jax


def configure_jax(cache_dir: Path | None) -> None:
    """Cache compiled programs under `cache_dir`; the platform stays JAX's choice (module docstring)."""
    import jax

    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def make_mesh(fsdp: int, tp: int) -> jax.sharding.Mesh:
    """A ('fsdp', 'tp') mesh over the first fsdp*tp devices (all of them, in a multi-process run).

    `jax.make_mesh` in jax 0.10 builds Explicit axes and Tunix's sampler then fails with a
    ShardingTypeError on the embedding gather (docs/design.md, "Facts the code relies on"); a plain
    Mesh works.
    """
    import jax
    import numpy as np

    needed = fsdp * tp
    devices = jax.devices()
    if jax.process_count() > 1 and needed != len(devices):
        # a process without a device in the mesh could not feed or hold its part of the program
        raise BadSetting(
            f"training.mesh asks for fsdp={fsdp} x tp={tp} = {needed} devices but this run's "
            f"{jax.process_count()} processes have {len(devices)} ({jax.local_device_count()} each): "
            f"with several processes the mesh must span all of their devices"
        )
    if len(devices) < needed:
        raise BadSetting(
            f"training.mesh asks for fsdp={fsdp} x tp={tp} = {needed} devices but JAX sees "
            f"{len(devices)} ({devices[0].platform}); on CPU simulate more with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={needed}"
        )
    return jax.sharding.Mesh(np.array(devices[:needed]).reshape(fsdp, tp), ("fsdp", "tp"))
