"""Source manifests: where a knowledge source comes from, its license and checksums, and how kgemo parses it.

A manifest is a small YAML file, one per source, shipped in ``kgemo/resources/kb/`` (``kb/<source>.yaml`` in a
source checkout points there)::

    name: conceptnet-ckbc
    kind: conceptnet            # which builder reads it: conceptnet | vad | atomic
    license: CC BY-SA 4.0
    files:
      - name: train100k.txt.gz
        url: https://...
        sha256: a44a27fc...       # null = not pinned (a warning is logged, the seen sha256 is recorded)
        local: kb/conceptnet_ckbc/train100k.txt.gz   # default location under the data root
        format: ckbc              # the reader in kgemo.knowledge.readers
    parse: {min_weight: 1.0, ...} # builder options, overridable from the command line

:func:`verify_file` refuses a file whose sha256 differs from the pinned one unless ``no_verify`` is set.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import ChecksumError, DataFormatError, DataNotFoundError
from ..storage import data_root, sha256_file

__all__ = ["SourceFile", "SourceManifest", "load_manifest", "list_manifests", "verify_file", "manifest_dir"]

log = logging.getLogger(__name__)


def manifest_dir() -> Path:
    """The folder holding the shipped manifests (inside the installed package)."""
    return Path(str(resources.files("kgemo") / "resources" / "kb"))


@dataclass(frozen=True)
class SourceFile:
    """One file of a source: its official URL, pinned sha256, default local path and reader format."""

    name: str
    format: str
    url: str | None = None
    sha256: str | None = None
    local: str | None = None
    optional: bool = False
    note: str | None = None

    def locate(self, source: str | Path | None = None) -> Path | None:
        """Find the file: ``source`` (a file, or a folder holding ``name``), else ``<data root>/<local>``."""
        if source is not None:
            p = Path(source).expanduser()
            if p.is_dir():
                local = Path(self.local or self.name)
                # The file itself, the data-root layout (kb/atomic2019/x.csv), or its last folder (atomic2019/x.csv).
                for cand in (p / self.name, p / local, p / local.parent.name / self.name,
                             p / local.parent.parent.name / local.parent.name / self.name):
                    if cand.is_file():
                        return cand
                return None
            return p if p.is_file() else None
        root = data_root(required=False)
        if root is not None and self.local:
            p = root / self.local
            if p.is_file():
                return p
        return None


@dataclass(frozen=True)
class SourceManifest:
    """A parsed ``kb/<source>.yaml``."""

    name: str
    kind: str
    description: str
    license: str
    files: tuple[SourceFile, ...]
    license_url: str | None = None
    homepage: str | None = None
    citation: str | None = None
    parse: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def locate(self, source: str | Path | None = None, required: bool = True) -> list[tuple[SourceFile, Path]]:
        """The files of this source that exist, as ``(SourceFile, path)``.

        ``source`` may be a single file (used as the manifest's first file whose format fits), or a folder.

        Raises:
            DataNotFoundError: when a non-optional file (or, with a single-file ``source``, the file) is missing;
                the message gives the official URL and license.
        """
        if source is not None and Path(source).expanduser().is_file():
            p = Path(source).expanduser()
            match = next((f for f in self.files if f.name == p.name), None) or self.files[0]
            return [(match, p)]
        found, missing = [], []
        for f in self.files:
            p = f.locate(source)
            if p is not None:
                found.append((f, p))
            elif not f.optional:
                missing.append(f)
        if required and (missing or not found):
            need = missing or [f for f in self.files]
            where = f"in {source}" if source is not None else "under the data root (KGEMO_DATA)"
            lines = [f"  {f.name}: {f.url or 'see ' + (self.homepage or 'the manifest')}" for f in need]
            raise DataNotFoundError(
                f"{self.name}: file(s) not found {where}. Download them ({self.license}) and pass --source "
                f"PATH:\n" + "\n".join(lines))
        return found


def list_manifests() -> list[str]:
    """Names of the shipped manifests."""
    return sorted(p.stem for p in manifest_dir().glob("*.yaml"))


def load_manifest(name_or_path: str | Path) -> SourceManifest:
    """Load a shipped manifest by name (``conceptnet-ckbc``) or any manifest YAML by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = manifest_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise DataNotFoundError(f"no knowledge-source manifest {name_or_path!r}; shipped: {list_manifests()}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataFormatError(f"not valid YAML: {exc}", path=path) from exc
    try:
        files = tuple(SourceFile(**f) for f in raw["files"])
        return SourceManifest(name=raw["name"], kind=raw["kind"], description=raw.get("description", ""),
                              license=raw["license"], files=files, license_url=raw.get("license_url"),
                              homepage=raw.get("homepage"), citation=raw.get("citation"),
                              parse=dict(raw.get("parse") or {}), path=path)
    except (KeyError, TypeError) as exc:
        raise DataFormatError(f"manifest lacks or mistypes a field: {exc}", path=path) from exc


def verify_file(path: str | Path, expected: str | None, no_verify: bool = False, sha256: str | None = None) -> str:
    """Check a source file against its pinned sha256 and return the sha256 seen.

    Args:
        path: the file.
        expected: the manifest's sha256, or ``None`` when not pinned (logs a warning, never fails).
        no_verify: accept a mismatch (the user's ``--no-verify``), with a warning.
        sha256: the file's sha256 if already computed.

    Raises:
        ChecksumError: on a mismatch without ``no_verify``.
    """
    seen = sha256 or sha256_file(path)
    if expected is None:
        log.warning("%s: no pinned sha256 in its manifest; recorded %s", path, seen[:16])
    elif seen != expected.lower():
        msg = (f"{path}: sha256 {seen[:16]}… does not match the manifest's {expected[:16]}… (a different "
               f"version or a corrupted download)")
        if not no_verify:
            raise ChecksumError(msg + "; re-download it, or pass --no-verify to use it anyway")
        log.warning("%s; used anyway (--no-verify)", msg)
    return seen
