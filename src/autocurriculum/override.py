"""Operator overrides as plain data: inputs to decide(), never a side channel.

`autocurriculum ctl` writes one request file per command; the daemon reads them at a step
boundary, hands them to decide() in sequence order, and acknowledges each exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from autocurriculum.json_values import as_int


class Command(StrEnum):
    ADVANCE = "advance"  # leave the current plan step now, criteria or not
    HOLD = "hold"  # stop automatic switching until resume
    RESUME = "resume"  # undo hold
    SET = "set"  # go to a named phase, one single-factor step per boundary


@dataclass(frozen=True, slots=True, order=True)
class OperatorRequest:
    seq: int  # strictly increasing per run directory; applied exactly once
    command: Command
    phase: str = ""  # target phase name for SET
    reason: str = ""
    user: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "command": self.command.value,
            "phase": self.phase,
            "reason": self.reason,
            "user": self.user,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> OperatorRequest:
        return cls(
            seq=as_int(data["seq"]),
            command=Command(str(data["command"])),
            phase=str(data.get("phase", "")),
            reason=str(data.get("reason", "")),
            user=str(data.get("user", "")),
        )
