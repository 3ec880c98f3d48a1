"""How the processes of one run agree: the coordination protocol, and the single-process default.

Why a protocol of its own: a run on N hosts is N copies of the daemon (multi-controller JAX), and
every decision that changes what a process feeds next — a phase switch, a hold, a stop — must be
the same on all of them at the same step, or their data streams and reward sets drift apart and the
run is silently wrong (or deadlocks in a collective). The daemon talks to the other processes only
through `Coordinator`: gather one payload from every process, take process 0's payload everywhere,
and wait at a barrier. One process is the default (`SingleProcess`, nothing to set); the JAX
implementation lives at the edge (tunix_adapter/distributed.py), so this module imports no JAX.

Also here, pure: where a multi-process run's settings come from (JAX's own environment variables or
the command line's flags) and which policy fields two processes disagree on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from autocurriculum.exits import BadSetting

ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"
DEFAULT_PEER_TIMEOUT = 60.0  # seconds a process waits for a peer at a collective before it stops


class PeerLost(RuntimeError):
    """A peer process did not reach a collective in time, or the processes disagree: the run cannot go on."""


class Coordinator(Protocol):
    """The processes of one run; process 0 is the primary (the one with side effects)."""

    @property
    def process_index(self) -> int: ...

    @property
    def process_count(self) -> int: ...

    def all_gather(self, payload: bytes, what: str) -> list[bytes]:
        """Every process's `payload`, in process order, on every process (`what` names it in errors)."""
        ...

    def from_primary(self, payload: bytes, what: str) -> bytes:
        """Process 0's `payload` on every process (the others' payloads are ignored)."""
        ...

    def barrier(self, what: str) -> None:
        """Return when every process has reached the barrier named `what`."""
        ...


class SingleProcess:
    """The default: one process, which is the primary; every collective is the identity."""

    process_index = 0
    process_count = 1

    def all_gather(self, payload: bytes, what: str) -> list[bytes]:
        return [payload]

    def from_primary(self, payload: bytes, what: str) -> bytes:
        return payload

    def barrier(self, what: str) -> None:
        return None


def is_primary(coordinator: Coordinator) -> bool:
    return coordinator.process_index == 0


@dataclass(frozen=True)
class ProcessGroup:
    """Where to join a multi-process run: the coordinator's host:port, the number of processes, this one's id."""

    coordinator: str
    num_processes: int
    process_id: int
    peer_timeout: float = DEFAULT_PEER_TIMEOUT
    auto: bool = False  # let jax.distributed.initialize() find the run itself (TPU pod slice, SLURM)


def process_group(coordinator: str | None, num_processes: int | None, process_id: int | None,
                  environ: Mapping[str, str] = os.environ,
                  peer_timeout: float = DEFAULT_PEER_TIMEOUT, auto: bool = False) -> ProcessGroup | None:
    """The multi-process run asked for by the flags, else by JAX's environment variables; None for one process.

    A flag wins over its variable. Asking for part of it (a coordinator without a process id, say) or
    for impossible numbers is a BadSetting naming the flag or variable and the value. `auto`
    (`--distributed`) leaves finding the run to JAX's own cluster detection.
    """
    if auto:
        if peer_timeout <= 0:
            raise BadSetting(f"--peer-timeout: {peer_timeout} is not a number of seconds")
        return ProcessGroup("", 0, 0, peer_timeout, auto=True)
    address = coordinator or environ.get(ENV_COORDINATOR) or None
    count = num_processes if num_processes is not None else _env_int(environ, ENV_NUM_PROCESSES)
    index = process_id if process_id is not None else _env_int(environ, ENV_PROCESS_ID)
    if address is None and count is None and index is None:
        return None
    if count == 1 and index in (None, 0):
        return None
    missing = [name for name, value in (("--coordinator / " + ENV_COORDINATOR, address),
                                        ("--num-processes / " + ENV_NUM_PROCESSES, count),
                                        ("--process-id / " + ENV_PROCESS_ID, index)) if value is None]
    if missing:
        raise BadSetting(f"a multi-process run needs {', '.join(missing)} as well")
    assert address is not None and count is not None and index is not None
    if count < 1:
        raise BadSetting(f"--num-processes / {ENV_NUM_PROCESSES}: {count} is not a number of processes")
    if not 0 <= index < count:
        raise BadSetting(f"--process-id / {ENV_PROCESS_ID}: {index} is not in 0..{count - 1}")
    if ":" not in address:
        raise BadSetting(f"--coordinator / {ENV_COORDINATOR}: {address!r} is not HOST:PORT")
    if peer_timeout <= 0:
        raise BadSetting(f"--peer-timeout: {peer_timeout} is not a number of seconds")
    return ProcessGroup(address, count, index, peer_timeout)


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BadSetting(f"{name}: {value!r} is not a whole number") from None


def policy_differences(policies: Sequence[Mapping[str, object]], limit: int = 3) -> list[str]:
    """Where each process's policy (flattened to TOML paths) differs from process 0's, as sentences."""
    reference = _flatten(policies[0])
    found: list[str] = []
    for index, other in enumerate(policies[1:], start=1):
        theirs = _flatten(other)
        for key in sorted(set(reference) | set(theirs)):
            if reference.get(key) != theirs.get(key):
                found.append(f"{key} is {reference.get(key, '(unset)')} on process 0 but "
                             f"{theirs.get(key, '(unset)')} on process {index}")
                if len(found) >= limit:
                    return found
    return found


def _flatten(value: object, prefix: str = "") -> dict[str, str]:
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.dumps(value, sort_keys=True, default=str)}
