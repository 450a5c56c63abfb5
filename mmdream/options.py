"""One declaration per option: its default, help, bounds and choices live in a params dataclass's field.

>>> @dataclass(frozen=True)
... class Params(Options):
...     steps: int = option(10, "ascent steps per octave", ge=1, le=10_000)
>>> Params(steps=0).validate()
ParameterError: steps=0 is invalid: it must be an integer from 1 to 10000

From the declarations come :func:`validate` (each field's type, bounds and choices, then the few checks that
relate two options, :meth:`Options.cross_checks`), the CLI's options with their help, default and range
(:func:`help_text`), and the job spec's sections (:mod:`mmdream.jobspec.schema`), validated by the same
:func:`validate`. The field metadata keys are ``help``, ``choices``, ``aliases`` (extra CLI flags), the bounds
``ge``, ``gt``, ``le``, ``lt``, ``off`` (a value allowed outside the bounds that turns the option off, e.g. 0 for
"no tiling") and ``unit`` (shown in messages). An option whose default is None also accepts None.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self, TypeVar

from mmdream.errors import ParameterError

__all__ = ["Options", "option", "option_of", "seed_option", "SEED_LIMIT", "validate", "check_value",
           "declaration", "requirement", "help_text"]

SEED_LIMIT = 2**62  # seeds are below this, so that derived seeds (seed + k) stay valid 64-bit seeds
_BOUNDS = ("ge", "gt", "le", "lt")
_KINDS = (bool, int, float, str)
_NOUNS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}

T = TypeVar("T")


def option(default: Any, help: str, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None, choices: Sequence[Any] | None = None, off: Any = None, unit: str = "",
           aliases: Sequence[str] = (), metavar: str = "", const: Any = None) -> Any:
    """A dataclass field declaring an option: ``default``, ``help`` (CLI help, job-spec description), bounds
    (``ge`` >=, ``gt`` >, ``le`` <=, ``lt`` <), ``choices``, ``off`` (a value allowed beside the bounds),
    ``unit`` (for messages), extra CLI flags ``aliases``, the CLI's ``metavar`` and ``const`` (the value of the
    option given without one)."""
    metadata: dict[str, Any] = {"help": help}
    for key, value in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt), ("off", off)):
        if value is not None:
            metadata[key] = value
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if unit:
        metadata["unit"] = unit
    if aliases:
        metadata["aliases"] = tuple(aliases)
    if metavar:
        metadata["metavar"] = metavar
    if const is not None:
        metadata["const"] = const
    return dataclasses.field(default=default, metadata=metadata)


def option_of(cls: type, name: str, *, help: str | None = None) -> Any:
    """A new field with the declaration of ``cls``'s option ``name`` (default, help, bounds, choices, unit; not
    its CLI aliases), for an option that several params share; ``help``: its own help text."""
    source = _fields(cls)[name]
    metadata = {k: v for k, v in source.metadata.items() if k != "aliases"}
    return dataclasses.field(default=source.default, metadata=metadata if help is None else {**metadata, "help": help})


def seed_option(help: str, *, lt: int = SEED_LIMIT) -> Any:
    """A random seed: an integer from 0, below ``lt``, default 0."""
    return option(0, help, ge=0, lt=lt)


class Options:
    """Base of the params dataclasses: :meth:`validate` checks every field against its declaration, then
    :meth:`cross_checks`."""

    def validate(self) -> Self:
        """Raise ParameterError naming the first bad option (what it must be); return self."""
        return validate(self)

    def cross_checks(self) -> Iterable[tuple[bool, str, str]]:
        """The checks that relate options to each other, as ``(ok, name, what it must be)``; run once every field
        fits its declaration."""
        return ()


def validate(params: T, *, names: Mapping[str, str] | None = None) -> T:
    """Check each field of the dataclass ``params`` against its declaration (type, bounds, choices), then its
    :meth:`Options.cross_checks`; raise ParameterError for the first failure, naming the option (``names``:
    shown names by field name, e.g. a job spec's keys), its value and what it must be. Return ``params``."""
    names = names or {}
    for f in dataclasses.fields(params):  # type: ignore[arg-type]
        value = getattr(params, f.name)
        if not _fits(f, _kinds(type(params))[f.name], value):
            _fail(names.get(f.name, f.name), value, requirement(type(params), f.name))
    if isinstance(params, Options):
        for ok, name, want in params.cross_checks():
            if not ok:
                _fail(names.get(name, name), getattr(params, name), want)
    return params


def check_value(cls: type, name: str, value: Any, *, shown: str | None = None) -> None:
    """Raise ParameterError unless ``value`` fits the declaration of ``cls``'s option ``name`` (for a value
    outside its dataclass); ``shown``: the name the message gives it."""
    if not _fits(_fields(cls)[name], _kinds(cls)[name], value):
        _fail(shown or name, value, requirement(cls, name))


def declaration(cls: type, name: str) -> dataclasses.Field:  # type: ignore[type-arg]
    """The field declaring ``cls``'s option ``name`` (its ``metadata`` holds help, bounds, choices)."""
    return _fields(cls)[name]


def requirement(cls: type, name: str) -> str:
    """What a value of ``cls``'s option ``name`` must be, in words: ``an integer from 1 to 10000``."""
    md = _fields(cls)[name].metadata
    if "choices" in md:
        return "one of " + ", ".join(str(c) for c in md["choices"])
    kind = _kinds(cls)[name]
    noun = _NOUNS.get(kind, "") if kind is not None else ""
    if "ge" in md and "le" in md:
        span = f"from {_number(md['ge'])} to {_number(md['le'])}"
    else:
        low = f"at least {_number(md['ge'])}" if "ge" in md else f"above {_number(md['gt'])}" if "gt" in md else ""
        high = f"at most {_number(md['le'])}" if "le" in md else f"below {_number(md['lt'])}" if "lt" in md else ""
        span = " and ".join(p for p in (low, high) if p)
    text = " ".join(p for p in (noun, span, md.get("unit", "")) if p)
    return f"{_number(md['off'])} (off) or {text}" if "off" in md else text


def help_text(cls: type, name: str) -> str:
    """The CLI help of ``cls``'s option ``name``: its help, default and (numbers) range."""
    f = _fields(cls)[name]
    if isinstance(f.default, bool):
        return f"{f.metadata['help']} (default: {'on' if f.default else 'off'})"
    bounded = any(key in f.metadata for key in _BOUNDS) and "choices" not in f.metadata
    return f"{f.metadata['help']} (default: {f.default}{'; ' + requirement(cls, name) if bounded else ''})"


def _fail(name: str, value: Any, want: str) -> typing.NoReturn:
    raise ParameterError(f"{name}={value!r} is invalid: it must be {want}")


def _fits(f: dataclasses.Field, kind: type | None, value: Any) -> bool:  # type: ignore[type-arg]
    md = f.metadata
    if value is None:
        return f.default is None
    if kind is not None and not _is_kind(value, kind):
        return False
    if "off" in md and value == md["off"]:
        return True
    if "choices" in md:
        return value in md["choices"]
    return (("ge" not in md or value >= md["ge"]) and ("gt" not in md or value > md["gt"])
            and ("le" not in md or value <= md["le"]) and ("lt" not in md or value < md["lt"]))


def _is_kind(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real)
    return isinstance(value, kind)


def _number(value: Any) -> str:
    """A bound as people write it: 10000, 0.5, 2^62."""
    if isinstance(value, int) and value >= 2**20 and value & (value - 1) == 0:
        return f"2^{value.bit_length() - 1}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


@functools.cache
def _fields(cls: type) -> dict[str, dataclasses.Field]:  # type: ignore[type-arg]
    return {f.name: f for f in dataclasses.fields(cls)}


@functools.cache
def _kinds(cls: type) -> dict[str, type | None]:
    """The plain type of each field (``int | None``: int), None where it is none of bool, int, float, str."""
    kinds: dict[str, type | None] = {}
    for name, hint in typing.get_type_hints(cls).items():
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            hint = next((a for a in typing.get_args(hint) if a is not type(None)), None)
        kinds[name] = hint if hint in _KINDS else None
    return kinds
