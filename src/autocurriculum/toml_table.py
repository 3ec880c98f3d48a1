"""Reading a policy's TOML: tables that name the dotted path of every error, and `--set` overrides.

Every error is a `PolicyError` naming the file, the dotted TOML path (`phases[1].rewards[2].name`)
and the bad value, with "did you mean ...?" for a misspelt key or name, because a long RL run that
dies at hour three on a typo is the failure this tool exists to prevent. Unknown keys are errors at
every level (`TomlTable.finish`). Overrides are applied to the decoded table before it is read, so
an overridden value's error still names its TOML path. What each section may hold is in
policy_sections.py and phase_sections.py.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from typing import Any, Final

from autocurriculum.spec import PolicyError


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


class TomlTable:
    """A TOML table being read: remembers its dotted path and which keys were consumed."""

    def __init__(self, file: str, path: str, data: object) -> None:
        if not isinstance(data, dict):
            raise PolicyError(file, path or "<root>", data, "must be a table")
        self.file, self.path, self.data = file, path, data
        self.used: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str, hint: str = "") -> PolicyError:
        return PolicyError(self.file, self.at(key), self.data.get(key), message, hint)

    def missing(self, key: str, what: str = "is required") -> PolicyError:
        """A required key is absent: if a misspelt key stands where it belongs, name that one."""
        unread = [k for k in self.data if k not in self.used]
        close = difflib.get_close_matches(key, unread, n=1, cutoff=0.6)
        if close:
            return PolicyError(self.file, self.at(close[0]), self.data[close[0]], "unknown key", f"did you mean {key!r}?")
        return PolicyError(self.file, self.at(key), None, what)

    def _get(self, key: str, default: object) -> object:
        self.used.add(key)
        value = self.data.get(key, default)
        if value is None:
            raise self.missing(key)
        return value

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] = (), non_empty: bool = False) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        if non_empty and not value.strip():
            raise self.error(key, "must not be empty")
        if choices and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}", did_you_mean(value, choices))
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def integer(self, key: str, default: int | None = None, minimum: int | None = 1, maximum: int | None = None) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be an integer")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be <= {maximum}")
        return value

    def optional_integer(self, key: str, minimum: int = 1) -> int | None:
        self.used.add(key)
        return self.integer(key, minimum=minimum) if key in self.data else None

    def number(
        self, key: str, default: float | None = None, low: float | None = None, high: float | None = None,
        open_low: bool = False, open_high: bool = False,
    ) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(key, "must be a finite number")
        value = float(value)
        if low is not None and (value < low or (open_low and value == low)):
            raise self.error(key, f"must be {'>' if open_low else '>='} {low:g}")
        if high is not None and (value > high or (open_high and value == high)):
            raise self.error(key, f"must be {'<' if open_high else '<='} {high:g}")
        return value

    def table(self, key: str, required: bool = False) -> TomlTable | None:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise self.missing(key)
            return None
        return TomlTable(self.file, self.at(key), self.data[key])

    def section(self, key: str) -> TomlTable:
        """An optional table whose absence means "all defaults"."""
        return self.table(key) or TomlTable(self.file, self.at(key), {})

    def array(self, key: str, required: bool = False) -> list[object]:
        self.used.add(key)
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.missing(key, "is required (at least one entry)")
            return []
        if not isinstance(value, list):
            raise self.error(key, "must be an array")
        if required and not value:
            raise self.error(key, "needs at least one entry")
        return value

    def finish(self) -> None:
        """Unknown keys are errors: a misspelt key silently ignored is a run that does the wrong thing."""
        for key in self.data:
            if key not in self.used:
                raise PolicyError(self.file, self.at(key), self.data[key], "unknown key", did_you_mean(key, self.used))


_OVERRIDE_SEGMENT = re.compile(r"([A-Za-z0-9_-]+)((?:\[\d+\])*)")


PATH_FIELDS: Final = frozenset({("model", "weights"), ("model", "tokenizer"), ("model", "cache_dir"),
                                 ("sources", "*", "path")})
"""Policy fields holding a file or folder. Written in the policy file, a relative one is read from
the policy file's folder (the policy travels with its data); given with --set, from the working
directory, as every other path typed in a shell is. (`run.run_dir` is the exception either way: it
is where the run writes, relative to the working directory like `--run-dir`, so runs land in ./runs.)"""


def _from_working_directory(steps: Sequence[str | int], value: object) -> object:
    """A relative path given with --set for one of the PATH_FIELDS, made absolute against the working directory."""
    names = tuple(step for step in steps if isinstance(step, str))
    pattern = (*names[:1], "*", *names[2:]) if names[:1] == ("sources",) else names
    if pattern not in PATH_FIELDS or not isinstance(value, str) or not value:
        return value
    expanded = os.path.expanduser(value)
    return expanded if os.path.isabs(expanded) else os.path.abspath(expanded)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], file: str) -> None:
    """`--set KEY=VALUE` into the TOML table before it is read, so errors still name the TOML path.

    KEY is a dotted path, with `[i]` for an array entry (`phases[1].max_steps`). VALUE is read as a
    TOML value (numbers, booleans, quoted strings, arrays) and otherwise taken as a plain string
    (`model.weights=/models/gemma3-1b-it`). A relative path for one of the PATH_FIELDS is taken
    from the working directory (a path written in the file, from the file's folder).
    """
    for override in overrides:
        key, sep, raw = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PolicyError(file, "--set", override, "expected KEY=VALUE, e.g. run.max_steps=50")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        steps: list[str | int] = []
        for segment in key.split("."):
            match = _OVERRIDE_SEGMENT.fullmatch(segment)
            if match is None:
                raise PolicyError(file, "--set", override, f"cannot read key segment {segment!r}",
                                  "use dotted names with [i] for array entries, e.g. phases[1].max_steps=100")
            steps.append(match.group(1))
            steps += [int(n) for n in re.findall(r"\[(\d+)\]", match.group(2))]
        node: Any = data
        for position, step in enumerate(steps):
            last = position == len(steps) - 1
            where = _dotted(steps[:position]) or "<root>"
            if isinstance(step, int):
                if not isinstance(node, list) or step >= len(node):
                    raise PolicyError(file, "--set", override, f"{where} has no entry [{step}]")
            elif not isinstance(node, dict):
                raise PolicyError(file, "--set", override, f"{where} is not a table")
            if last:
                node[step] = _from_working_directory(steps, value)
            elif isinstance(step, str):
                node = node.setdefault(step, {})
            else:
                node = node[step]


def _dotted(steps: Sequence[str | int]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else s) for i, s in enumerate(steps))


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def syntax_error(text: str, file: str, error: tomllib.TOMLDecodeError) -> PolicyError:
    """A TOML syntax error names the line and column, and shows the line."""
    message = str(error)
    match = _TOML_POSITION.search(message)
    if match is None:  # "(at end of document)"
        return PolicyError(file, "end of document", text.splitlines()[-1] if text.splitlines() else "",
                           f"TOML syntax error: {message}")
    line, column = int(match.group(1)), int(match.group(2))
    lines = text.splitlines()
    shown = lines[line - 1] if 0 < line <= len(lines) else ""
    return PolicyError(file, f"line {line}, column {column}", shown, f"TOML syntax error: {message[:match.start()]}")
