"""Typed reads of values decoded from JSON: what the stored records (controller state, observations,
operator requests) are rebuilt from.

`json.loads` returns `object`s; these helpers turn one into the type a field needs, or raise a
TypeError/ValueError saying what was found, which the record's reader turns into a message naming
the file and the field. Integers and floats are accepted from numbers or numeric strings, as `int()`
and `float()` would. The module imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def as_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def as_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def as_mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {value!r}")
    return value


def as_sequence(value: object) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected an array, got {value!r}")
    return value
