"""Every exit code the command line returns, in one table, and the kinds of bad input that carry them.

Why one table: a script (systemd's `RestartPreventExitStatus=`, a notebook cell, CI) acts on these
numbers, so each must mean one thing everywhere. Failures use the BSD sysexits.h codes (64-78).
`status` and `ctl` answer with small codes (the LSB init-script convention for status), and
`replay` says 1 when a recorded run disagrees with what decide() decides now.
"""

from __future__ import annotations

from typing import ClassVar, Final

EX_OK: Final = 0

# `ctl`, `status` and `replay` answers (LSB init-script convention for status)
EX_TIMEOUT: Final = 1  # ctl --wait: no acknowledgement in time
EX_MISMATCH: Final = 1  # replay: the recorded run disagrees with decide()
EX_REJECTED: Final = 2  # ctl --wait: the daemon rejected the request
EX_NOT_RUNNING: Final = 3  # status / ctl --wait: no daemon holds the run directory
EX_UNKNOWN: Final = 4  # status / ctl / eval: not a run directory

# sysexits.h
EX_USAGE: Final = 64  # the command was used wrongly (ctl set without a PHASE)
EX_DATAERR: Final = 65  # a data file (training data, a metrics log) is malformed
EX_NOINPUT: Final = 66  # an input does not exist or cannot be read (a metrics log, a checkpoint)
EX_UNAVAILABLE: Final = 69  # a peer process of a multi-process run died or disagrees
EX_SOFTWARE: Final = 70  # an internal error: a step boundary failed, a subcommand's module is missing
EX_IOERR: Final = 74  # the final checkpoint could not be written (a full disk)
EX_TEMPFAIL: Final = 75  # the run directory is held by another daemon: try again later
EX_CONFIG: Final = 78  # a bad policy or setting (also a metrics port in use)


class RefusedInput(Exception):
    """Input a run cannot use; its message is one line naming the file, the TOML path or field, and the value.

    Why kinds: a setting only checkable once the run is built (the mesh against the devices JAX sees,
    a stop piece against the tokenizer) is still configuration and exits 78 like a bad policy; a file
    that is not there exits 66; a file that is there but malformed exits 65. An operator's script can
    then tell "fix the policy" from "mount the data" from "repair the data" by the code alone.
    """

    exit_code: ClassVar[int] = EX_DATAERR


class BadSetting(RefusedInput, ValueError):
    """A policy value that fails only when the run is built (exits 78, as a bad policy does)."""

    exit_code: ClassVar[int] = EX_CONFIG


class MissingInput(RefusedInput, FileNotFoundError):
    """A file or package the policy names is not there (exits 66)."""

    exit_code: ClassVar[int] = EX_NOINPUT


def refusal_exit_code(error: BaseException) -> int:
    """The exit code of a refused input: its kind's, else 66 for a missing file and 65 for bad data."""
    if isinstance(error, RefusedInput):
        return error.exit_code
    if isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError):
        return EX_NOINPUT
    return EX_DATAERR
