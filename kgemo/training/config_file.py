"""Reading a config file: the YAML, ``key.sub=value`` overrides, and errors that name the file.

One loader for every kind of run, so a config for :func:`~kgemo.training.fit` (:class:`ExperimentConfig`) and one
for :func:`~kgemo.training.finetune.finetune` (:class:`FinetuneConfig`) are read, overridden and refused alike::

    config = load_config_file(ExperimentConfig, "configs/ket_meld.yaml", ["train.lr=5e-4", "seed=1"])
    config.origin   # {"file": "configs/ket_meld.yaml", "sha256": "...", "overrides": ["train.lr=5e-4", "seed=1"]}

A config may start from another with ``extends: <file>`` (relative to its own folder): the other file is read
first (its own ``extends`` too), then this one's keys are laid over it — a mapping key by key, anything else
(a list, a number, a string) replaced whole. The base's ``name`` is never inherited: a config is named by its own
``name`` or its file. Provenance compares the resolved config, so moving shared keys into a base changes no run.

A config class only needs ``from_dict(raw, source=...)``, which checks its sections (typed
:class:`~kgemo.settings.Settings`) and names ``source`` in every error, and an ``origin`` attribute.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

from ..errors import KgemoError
from .provenance import config_origin

__all__ = ["load_config_file", "read_config_file", "apply_overrides", "refuse_unknown_keys"]

C = TypeVar("C")


def read_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML mapping in ``path`` with its ``extends:`` chain resolved (module docstring); every way a file can be
    wrong is a one-line :class:`KgemoError` naming it."""
    path = Path(path)
    raw = _read_yaml(path)
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base.strip():
        raise KgemoError(f"{path}: extends must name one config file (relative to {path.parent}), got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in _seen or base_path == path.resolve():
        chain = " -> ".join(str(p) for p in (*_seen, path.resolve(), base_path))
        raise KgemoError(f"{path}: extends makes a cycle ({chain})")
    if not base_path.is_file():
        raise KgemoError(f"{path}: extends {base!r}, but {base_path} is not a file")
    inherited = read_config_file(base_path, (*_seen, path.resolve()))
    inherited.pop("name", None)
    return _merge(inherited, raw)


def _merge(base: dict, over: Mapping) -> dict:
    """``over`` laid over ``base``: mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) \
            else value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise KgemoError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise KgemoError(f"{path}: is a folder, not a YAML config file") from None
    except UnicodeDecodeError as exc:
        raise KgemoError(f"{path}: not UTF-8 text (byte {exc.start}); a config is a YAML file") from None
    except yaml.YAMLError as exc:
        raise KgemoError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise KgemoError(f"{path}: a config must be a mapping")
    return raw


def _set(d: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise KgemoError(f"override {dotted!r}: {k!r} is not a section")
    d[keys[-1]] = value


def apply_overrides(raw: dict, overrides: Sequence[str] | None) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a raw config dict."""
    for item in overrides or []:
        if "=" not in item:
            raise KgemoError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        _set(raw, key.strip(), yaml.safe_load(value))
    return raw


def refuse_unknown_keys(config_class: type, raw: Mapping[str, Any], source: str) -> None:
    """A top-level key that is not a field of the (dataclass) ``config_class`` is refused, naming ``source``."""
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise KgemoError(f"{source}: unknown top-level key(s) {unknown}; known: {sorted(known)}")


def load_config_file(config_class: type[C], path: str | Path, overrides: Sequence[str] | None = None) -> C:
    """Read ``path`` as a ``config_class``, with ``key.sub=value`` overrides; errors name the file and the option.

    A config without ``name`` is named after its file (``configs/ket_meld.yaml`` → ``ket_meld``). The file, its
    sha256 and the overrides are kept as ``config.origin``, the run's provenance (not an option: ``to_dict`` leaves
    it out).
    """
    path = Path(path)
    overrides = list(overrides or [])
    raw = read_config_file(path)
    raw.setdefault("name", path.stem)
    config = config_class.from_dict(apply_overrides(raw, overrides), source=str(path))  # type: ignore[attr-defined]
    config.origin = config_origin(path, overrides)  # type: ignore[attr-defined]
    return config
