"""Where kgemo keeps things, and how it writes them: atomically, with checksums.

* ``kgemo_home()`` — caches (features, knowledge, graphs); ``$KGEMO_HOME`` or ``~/.cache/kgemo``.
* ``data_root()`` — datasets; ``$KGEMO_DATA``, else ``../shared/data`` beside the project when present.
* ``atomic_write()`` — write to a temporary file in the same folder, fsync, then ``os.replace`` it, so that a
  killed process never leaves half a file under the final name; ``replace_dir()`` the same for a folder.
* ``sha256_file()`` / ``sha256_bytes()`` / ``sha256_json()`` — the checksums that key every cache, re-exported
  from :mod:`kgemo.checksums`.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from .checksums import sha256_bytes, sha256_file, sha256_json, short_hash
from .errors import CacheError, DataNotFoundError

__all__ = [
    "kgemo_home", "data_root", "project_root", "atomic_write", "replace_dir", "write_json", "read_json",
    "sha256_file", "sha256_bytes", "sha256_json", "short_hash",
]

_DATA_HELP = (
    "Set KGEMO_DATA to a folder holding the datasets (meld/, emorynlp/, dailydialog/, mastodon/, kb/), "
    "or download them with `kgemo data download NAME` (see README, section Data)."
)


def project_root() -> Path:
    """The folder holding the ``kgemo`` package (the repository root for a source checkout)."""
    return Path(__file__).resolve().parent.parent


def kgemo_home() -> Path:
    """Cache root: ``$KGEMO_HOME`` if set, else ``~/.cache/kgemo``. Created on first use."""
    home = Path(os.environ.get("KGEMO_HOME") or Path.home() / ".cache" / "kgemo").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def data_root(required: bool = True) -> Path | None:
    """Dataset root: ``$KGEMO_DATA``, else ``../shared/data`` next to the project (or the working directory).

    Raises:
        DataNotFoundError: if ``required`` and no root exists; the message says how to get the data.
    """
    env = os.environ.get("KGEMO_DATA")
    if env:
        root = Path(env).expanduser()
        if root.is_dir():
            return root
        if required:
            raise DataNotFoundError(f"KGEMO_DATA={env} is not a directory. {_DATA_HELP}")
        return None
    for candidate in (project_root().parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    if required:
        raise DataNotFoundError(f"No dataset root found. {_DATA_HELP}")
    return None


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    On an exception the temporary file is removed and ``path`` keeps its old content (if any).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; cannot write a file there")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes the file private (0600); give it the mode an ordinary write would (0666 minus the umask), so
    # caches and model folders stay readable by whoever may read the folder.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def replace_dir(new: str | Path, path: str | Path) -> None:
    """Put the folder ``new`` at ``path`` (replacing a folder there) by renames on one filesystem: a reader sees the
    old folder or the new one, never a half-written one."""
    new, path = Path(new), Path(path)
    if not path.exists():
        os.replace(new, path)
        return
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(path, old)
    os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as pretty JSON."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")


def read_json(path: str | Path) -> Any:
    """Read JSON, turning a parse error into a :class:`CacheError` that names the file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CacheError(f"{path}: not valid JSON ({exc}); delete it or rebuild") from exc


