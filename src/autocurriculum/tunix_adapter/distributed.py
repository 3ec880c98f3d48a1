"""The JAX side of coordination: join a multi-controller run, and the collectives the daemon agrees with.

Facts measured on this project's CI machine (JAX 0.10.2, CPU, two processes on one host):
- on CPU, cross-process collectives need `jax_cpu_collectives_implementation = "gloo"`, set before
  the backend starts; then `jax.distributed.initialize(addr, num_processes, process_id)` gives every
  process all devices (its own local ones first), and a Mesh over all of them runs jitted code across
  the processes — Tunix 0.1.7's GRPO learner included (each process feeds the SAME global batch:
  Tunix hands host arrays to jit, which takes a host value as the global one);
- `multihost_utils.process_allgather` and `broadcast_one_to_all` move small arrays between processes;
- when a process dies (kill -9), the coordination service notices its missing heartbeats after
  `heartbeat_timeout_seconds` and terminates the others ("Terminating process because the JAX
  distributed service detected fatal errors"), wherever they wait; measured: about 9.5 s after the
  death with a 10 s heartbeat timeout.
A collective at the step boundary is also guarded by a watchdog: a peer that does not arrive within
the peer timeout stops this process with one line naming the collective, so no process waits forever.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import jax
import numpy as np
from jax.experimental import multihost_utils

from autocurriculum.coordination import ProcessGroup
from autocurriculum.exits import EX_UNAVAILABLE, BadSetting

EXIT_PEER_LOST = EX_UNAVAILABLE


def join(group: ProcessGroup) -> JaxCoordinator:
    """Join the run: gloo collectives on CPU, then `jax.distributed.initialize`. Call before any JAX computation."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    timeouts = {"initialization_timeout": max(60, int(group.peer_timeout)),
                "heartbeat_timeout_seconds": max(2, int(group.peer_timeout))}
    if group.auto:  # JAX's cluster detection (TPU pod slice, SLURM, ...) names the coordinator and the ids
        try:
            jax.distributed.initialize(**timeouts)  # type: ignore[arg-type]
        except (ValueError, RuntimeError) as error:
            raise BadSetting(f"--distributed: JAX found no multi-process run to join "
                             f"({' '.join(str(error).split())[:200]}); give --coordinator, --num-processes "
                             f"and --process-id") from None
    else:
        jax.distributed.initialize(coordinator_address=group.coordinator, num_processes=group.num_processes,
                                   process_id=group.process_id, **timeouts)  # type: ignore[arg-type]
    return JaxCoordinator(group.peer_timeout)


def _die(what: str, timeout: float) -> None:
    print(f"autocurriculum: process {jax.process_index()} of {jax.process_count()}: no peer reached {what} "
          f"within {timeout:g}s (a process died or hangs); stopping", file=sys.stderr, flush=True)
    os._exit(EXIT_PEER_LOST)


class JaxCoordinator:
    """`coordination.Coordinator` over JAX's multi-controller runtime (bytes as uint8 arrays)."""

    def __init__(self, peer_timeout: float, on_timeout: Callable[[str, float], None] = _die) -> None:
        self.peer_timeout = peer_timeout
        self._on_timeout = on_timeout

    @property
    def process_index(self) -> int:
        return int(jax.process_index())

    @property
    def process_count(self) -> int:
        return int(jax.process_count())

    @contextmanager
    def _watchdog(self, what: str) -> Iterator[None]:
        timer = threading.Timer(self.peer_timeout, self._on_timeout, args=(what, self.peer_timeout))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def all_gather(self, payload: bytes, what: str) -> list[bytes]:
        with self._watchdog(what):
            sizes = np.asarray(multihost_utils.process_allgather(np.array([len(payload)], np.int64))).reshape(-1)
            width = int(sizes.max())
            padded = np.zeros(width, np.uint8)
            padded[: len(payload)] = np.frombuffer(payload, np.uint8)
            gathered = np.asarray(multihost_utils.process_allgather(padded)).reshape(len(sizes), width)
        return [gathered[i, : int(sizes[i])].tobytes() for i in range(len(sizes))]

    def from_primary(self, payload: bytes, what: str) -> bytes:
        with self._watchdog(what):
            size = int(np.asarray(multihost_utils.broadcast_one_to_all(np.array([len(payload)], np.int64)))[0])
            mine = np.zeros(size, np.uint8)
            if self.process_index == 0:
                mine[:] = np.frombuffer(payload, np.uint8)
            out = np.asarray(multihost_utils.broadcast_one_to_all(mine))
        return out.astype(np.uint8).tobytes()

    def barrier(self, what: str) -> None:
        with self._watchdog(what):
            multihost_utils.sync_global_devices(what)
