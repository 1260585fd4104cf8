"""On-disk pieces shared by the knowledge caches: verified NPZ archives, packed texts, and resumable builds.

* :func:`save_arrays` / :func:`load_arrays` — an NPZ written atomically and byte-for-byte deterministically
  (fixed zip timestamps, sorted members), so that the same content gives the same sha256 and the bundled default
  does not churn in git; loading checks the sha256 recorded for it and never unpickles (``allow_pickle=False``).
* :func:`pack_texts` / :func:`unpack_texts` — a list of strings as one UTF-8 ``uint8`` array (no object arrays).
* :func:`resolve_kb_dir` / :func:`load_cache` — where each KB's cache folder is (the bundled default, a name
  under ``$KGEMO_HOME/kb``, or a path), and loading it with a clear error when it is missing.
* :class:`BuildDir` — the ``build.json`` next to a cache: sha256 of every input and output, per-part keys.
  A part whose key (code version + parameters + input checksums) and output checksums still match is skipped,
  which is what makes builds resumable; a corrupt or stale part is reported and rebuilt.
"""
from __future__ import annotations

import io
import logging
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import CacheError
from ..checksums import arrays_sha256, sha256_bytes, sha256_file, sha256_json
from ..storage import atomic_write, kgemo_home, read_json, write_json

__all__ = ["save_arrays", "load_arrays", "read_cache_dir", "load_cache", "default_kb_dir", "resolve_kb_dir",
           "pack_texts", "unpack_texts", "content_checksum", "BuildDir"]

log = logging.getLogger(__name__)

_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], compress: bool = True) -> str:
    """Atomically write ``arrays`` as a deterministic ``.npz``; return the file's sha256."""
    path = Path(path)
    buf = io.BytesIO()  # assembled in memory: caches are tens of MB, and a seekable zip is the plain layout
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED,
                         allowZip64=True) as zf:
        for name in sorted(arrays):
            arr = np.ascontiguousarray(arrays[name])
            if arr.dtype == object:
                raise TypeError(f"array {name!r} has dtype object; pack texts with pack_texts()")
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = zf.compression
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    data = buf.getvalue()
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return sha256_bytes(data)


def read_cache_dir(path: Path, meta_file: str, fmt: str, what: str, command: str, verify: bool = True
                   ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and verified arrays of one KB cache folder (``<meta_file>`` naming ``arrays.file``/``sha256``).

    Raises:
        CacheError: wrong format, or arrays missing / corrupt; the message says to run ``kgemo kb build <command>``.
    """
    meta = read_json(path / meta_file)
    hint = f"rebuild it with `kgemo kb build {command}`"
    if meta.get("format") != fmt:
        raise CacheError(f"{path / meta_file}: format {meta.get('format')!r}, expected {fmt!r}; {hint}")
    arrays = load_arrays(path / meta["arrays"]["file"], meta["arrays"]["sha256"] if verify else None,
                         what=what, rebuild_hint=hint)
    return meta, arrays


def default_kb_dir() -> Path:
    """The bundled default KB inside the installed package (``kb/default`` in a checkout points here)."""
    from importlib import resources

    return Path(str(resources.files("kgemo") / "resources" / "kb" / "default"))


def resolve_kb_dir(name_or_path: str | Path, sub: str, meta_file: str) -> Path:
    """Where a KB part lives, for every KB: ``"default"`` → the bundled KB's ``<sub>/``; an existing folder →
    itself; any other bare name → ``$KGEMO_HOME/kb/<name>`` (where ``kgemo kb build`` writes). A folder that holds
    a ``<sub>/`` folder but no ``<meta_file>`` of its own (as ``kgemo kb build all --out DIR`` makes) resolves to
    ``<sub>/``."""
    if str(name_or_path) == "default":
        return default_kb_dir() / sub
    p = Path(name_or_path).expanduser()
    if not p.is_dir() and isinstance(name_or_path, str) and "/" not in name_or_path and "\\" not in name_or_path:
        p = kgemo_home() / "kb" / name_or_path
    if (p / sub).is_dir() and not (p / meta_file).is_file():
        return p / sub
    return p


def load_cache(path: Path, meta_file: str, what: str, command: str, load):
    """``load(path)``, or a :class:`DataNotFoundError` saying how to build the cache when there is none.

    A corrupt cache raises :class:`CacheError` from ``load``; rebuilding it from its recorded sources is the
    caller's choice (:func:`kgemo.knowledge.sources.load_knowledge` does), so the store knows nothing of builders.
    """
    from ..errors import DataNotFoundError

    if not (path / meta_file).is_file():
        raise DataNotFoundError(f"no {what} at {path}; build one with `kgemo kb build {command} --out {path}` "
                                f"or use 'default'")
    return load(path)


def load_arrays(path: str | Path, sha256: str | None = None, what: str = "cache",
                rebuild_hint: str = "") -> dict[str, np.ndarray]:
    """Load an NPZ fully into memory, first checking its sha256 when one is given.

    Raises:
        CacheError: missing, truncated, corrupt (sha256 mismatch or bad zip) files; the message names the file
            and says how to rebuild it.
    """
    path = Path(path)
    hint = f"; {rebuild_hint}" if rebuild_hint else ""
    if not path.is_file():
        raise CacheError(f"{what} file {path} is missing{hint}")
    if sha256 is not None:
        seen = sha256_file(path)
        if seen != sha256:
            raise CacheError(f"{what} file {path} is corrupt or was changed (sha256 {seen[:12]}… ≠ recorded "
                             f"{sha256[:12]}…){hint}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CacheError(f"{what} file {path} cannot be read ({exc}){hint}") from exc


def pack_texts(texts: Iterable[str]) -> np.ndarray:
    """Strings → one ``uint8`` array (UTF-8, ``\\n``-separated); newlines inside a string become spaces."""
    return np.frombuffer("\n".join(t.replace("\n", " ") for t in texts).encode("utf-8"), dtype=np.uint8).copy()


def unpack_texts(arr: np.ndarray, n: int) -> list[str]:
    """Inverse of :func:`pack_texts`; ``n`` (the count) disambiguates an empty list from ``[""]``."""
    if n == 0:
        return []
    out = arr.tobytes().decode("utf-8").split("\n")
    if len(out) != n:
        raise CacheError(f"packed text holds {len(out)} strings, expected {n}")
    return out


#: sha256 of array names, dtypes, shapes and bytes (plus ``extra`` JSON): equal content, equal checksum.
content_checksum = arrays_sha256


class BuildDir:
    """The build state of one cache folder, kept in ``<out>/build.json``.

    Args:
        out: the cache folder.
        kind: what is built (``conceptnet``, ``atomic``, ...); a ``build.json`` of another kind is discarded.
        version: the builder's code version; part keys include it, so a format change rebuilds.
    """

    FILE = "build.json"

    def __init__(self, out: str | Path, kind: str, version: str):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.kind, self.version = kind, version
        self.path = self.out / self.FILE
        self.state: dict[str, Any] = {"kind": kind, "version": version, "inputs": {}, "parts": {}}
        if self.path.is_file():
            try:
                state = read_json(self.path)
                if state.get("kind") == kind:
                    self.state = state
                    self.state["version"] = version
                    self.state.setdefault("parts", {})
                    self.state.setdefault("inputs", {})
                else:
                    log.warning("%s describes a %r build, not %r: starting afresh", self.path,
                                state.get("kind"), kind)
            except CacheError as exc:
                log.warning("%s; starting the build afresh", exc)
        self.skipped: list[str] = []
        self.built: list[str] = []

    # -- inputs ---------------------------------------------------------------------------------------------
    def record_input(self, name: str, path: Path, sha256: str, **extra: Any) -> None:
        self.state["inputs"][name] = {"path": str(path), "sha256": sha256, "bytes": path.stat().st_size, **extra}

    # -- parts ----------------------------------------------------------------------------------------------
    def key(self, part: str, **what: Any) -> str:
        """A part's key: code version + everything that determines its output."""
        return sha256_json({"version": self.version, "part": part, **what})

    def done(self, part: str, key: str) -> bool:
        """True if ``part`` was finished with this ``key`` and its outputs still have their recorded sha256."""
        entry = self.state["parts"].get(part)
        if entry is None:
            return False
        if entry.get("key") != key:
            log.warning("%s: part %s is stale (inputs, parameters or code version changed): rebuilding",
                        self.out, part)
            return False
        for rel, sha in entry.get("outputs", {}).items():
            p = self.out / rel
            if not p.is_file():
                log.warning("%s: output %s of part %s is missing: rebuilding", self.out, rel, part)
                return False
            if sha256_file(p) != sha:
                log.warning("%s: output %s of part %s is corrupt (sha256 mismatch): rebuilding", self.out, rel,
                            part)
                return False
        self.skipped.append(part)
        log.info("%s: part %s up to date (verified), skipped", self.out, part)
        return True

    def finish(self, part: str, key: str, outputs: dict[str, str] | Iterable[str], stats: dict | None = None,
               seconds: float | None = None) -> None:
        """Record a finished part and save ``build.json`` at once (so an interruption keeps it).

        ``outputs`` maps file (relative to ``out``) → sha256, or lists files to hash.
        """
        if not isinstance(outputs, dict):
            outputs = {rel: sha256_file(self.out / rel) for rel in outputs}
        self.state["parts"][part] = {"key": key, "outputs": dict(outputs), "stats": stats or {},
                                     "seconds": None if seconds is None else round(seconds, 3),
                                     "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.built.append(part)
        self.save()

    def drop(self, prefix: str) -> None:
        """Forget parts whose name starts with ``prefix`` (their files stay until overwritten)."""
        for name in [p for p in self.state["parts"] if p.startswith(prefix)]:
            del self.state["parts"][name]

    def part(self, name: str) -> dict[str, Any]:
        return self.state["parts"][name]

    def save(self, **top: Any) -> None:
        self.state.update(top)
        write_json(self.path, self.state)
