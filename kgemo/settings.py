"""Typed settings: dataclasses filled from YAML / JSON, unknown keys refused by name, old names mapped.

Every section of an experiment config (the model, its graph builder, each knowledge source, training) is one of
these, so a typo fails when the config loads, with the key and the file named, not deep inside the first batch:

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Pool(Settings):
    ...     size: int = 2        # a comment on every default
    >>> Pool.from_dict({"sise": 3}, source="exp.yaml", section="pool")
    Traceback (most recent call last):
    kgemo.errors.KgemoError: exp.yaml: unknown pool option 'sise'; known: ['size']

A class can rename a field and keep reading files written with the old name (``RENAMED = {"k": "size"}``): saved
models and configs from before the rename load unchanged, with a one-time deprecation warning.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar, Mapping, TypeVar

from .errors import KgemoError

__all__ = ["Settings"]

S = TypeVar("S", bound="Settings")


class Settings:
    """Mixin for settings dataclasses: :meth:`from_dict` (strict, with renamed keys) and :meth:`to_dict`."""

    #: old key → new field name, for files written before a rename.
    RENAMED: ClassVar[dict[str, str]] = {}

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[S], d: Mapping[str, Any] | None, source: str = "config", section: str | None = None,
                  warn_renamed: bool = True) -> S:
        """Build from a mapping; unknown keys raise a :class:`KgemoError` naming them and ``source``.

        Args:
            d: the section's keys (``None`` = all defaults).
            source: where the keys came from (a file name), for error messages.
            section: the section's name in that file (``model``, ``graph``...), for error messages.
            warn_renamed: warn when an old key name is used (off for saved models, which cannot be edited).
        """
        what = f"{section} option" if section else f"{cls.__name__} option"
        if d is None:
            d = {}
        if not isinstance(d, Mapping):
            raise KgemoError(f"{source}: {section or cls.__name__} must be a mapping of options, got "
                             f"{type(d).__name__} {d!r:.60}")
        names = cls.field_names()
        types = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
                 for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        out: dict[str, Any] = {}
        for key, value in d.items():
            new = cls.RENAMED.get(key, key)
            if new != key:
                if warn_renamed:
                    warnings.warn(f"{source}: {what} {key!r} is now called {new!r}; please rename it",
                                  DeprecationWarning, stacklevel=2)
                if new in d:
                    raise KgemoError(f"{source}: {what}s {key!r} and {new!r} are the same option; keep {new!r}")
            if new not in names:
                raise KgemoError(f"{source}: unknown {what} {key!r}; known: {sorted(names)}")
            out[new] = _number(value, types.get(new, ""), f"{source}: {section + '.' if section else ''}{new}")
        try:
            return cls(**out)  # type: ignore[call-arg]
        except (TypeError, ValueError, KgemoError) as exc:  # __post_init__ checks say which value is wrong
            raise KgemoError(f"{source}: bad {section or cls.__name__} options: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def _number(value: Any, annotation: str, where: str) -> Any:
    """``value`` for a field annotated ``float`` or ``int`` (alone or ``| None``): a number as given, or a string
    that spells one — YAML reads ``5e-4`` (no dot) as the string ``'5e-4'`` — as that number; anything else for such
    a field is refused here, naming the option, instead of failing inside the optimiser. Other fields: unchanged."""
    kinds = {t.strip() for t in annotation.split("|")}
    if not kinds or not kinds <= {"float", "int", "None"} or not kinds - {"None"}:
        return value
    if value is None and "None" in kinds:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and ("float" in kinds or isinstance(value, int)):
        return value
    if isinstance(value, str):
        try:
            return float(value) if "float" in kinds else int(value)
        except ValueError:
            pass
    expected = " or ".join(sorted(kinds - {"None"})) + (" (or null)" if "None" in kinds else "")
    raise KgemoError(f"{where}={value!r}: expected a number ({expected})")
