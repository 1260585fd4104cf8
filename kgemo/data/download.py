"""Fetch the datasets from the public copies kgemo is tested on, verify them, and put them where loaders look.

Every file of :data:`MANIFEST` is a raw.githubusercontent.com URL pinned to a commit, with the sha256 and size of
the copy kgemo's integration tests ran on. :func:`download_dataset`

* streams each file with a tqdm progress bar into a temporary file beside the target, hashing as it writes;
* renames it into place only when the sha256 matches (otherwise :class:`~kgemo.errors.ChecksumError`, and the
  partial file is removed), so an interrupted run never leaves a half file under the final name;
* skips files already present with the right checksum, so re-running after an interruption resumes;
* can copy from a local folder or ``file://`` URL instead (``source=``), with the same verification, or from an
  ``http(s)://`` mirror that holds the files in kgemo's layout.

IEMOCAP is licensed per user and is never downloaded; ``download_dataset("iemocap", source=FOLDER)`` copies and
checks a local copy in the dialogue-understanding TSV layout.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm.auto import tqdm

from ..errors import ChecksumError, DataNotFoundError, KgemoError
from ..storage import atomic_write, kgemo_home, sha256_file

__all__ = ["RemoteFile", "MANIFEST", "download_dataset", "default_download_dir"]

logger = logging.getLogger("kgemo.data")

_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset.

    Args:
        path: where it goes, relative to the data root (``meld/train_sent_emo.csv``).
        url: where it is downloaded from.
        sha256: hex sha256 of the expected content.
        size: bytes (for the progress bar and a quick check).
        upstream: its path inside the source repository, also tried when copying from a local checkout.
    """

    path: str
    url: str
    sha256: str
    size: int
    upstream: str = ""


def _github(repo: str, commit: str, upstream: str, path: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(path, f"https://raw.githubusercontent.com/{repo}/{commit}/{upstream}", sha256, size, upstream)


# The copies in the project's shared data folder came from these repositories and commits (see its SOURCES.md);
# the checksums are of those copies. MELD's upstream is declare-lab/MELD (data/MELD/*_sent_emo.csv) and
# EmoryNLP's is emorynlp/emotion-detection; the pinned copies below are the CSV exports ERC papers train on.
_TODKAT = ("something678/TodKat", "351f2ade9f39786d6b0880ace9ac99d3fc2ebb7c")
_CONVLAB = ("ConvLab/ConvLab-3", "2a168fc9843e54a468ddec71e001b7559c36aff4")
_DD_ORIGINAL = ("VinayakG2002/Coordination", "9ed2884e97ad8ee47d5e303695d979aa44efca36")
_COGAT = ("RaleLee/Co-GAT", "39e20e4380d573194e61aec904014e0b3bba8973")

#: Dataset name → the files :func:`download_dataset` fetches.
MANIFEST: dict[str, tuple[RemoteFile, ...]] = {
    "meld": (
        _github(*_TODKAT, "datasets/train_sent_emo.csv", "meld/train_sent_emo.csv",
                "a94b26fadad7dea24372bbef36e6ff33cf0c9611bed5a7c9e2cff91fd5a6206e", 1105440),
        _github(*_TODKAT, "datasets/dev_sent_emo.csv", "meld/dev_sent_emo.csv",
                "7e306369c2d1625b063132310aa30bc6979fcf0f51c783e903edfcaa1c98b15c", 120071),
        _github(*_TODKAT, "datasets/test_sent_emo.csv", "meld/test_sent_emo.csv",
                "2d3fdb6586bdcdf172a7197fae9244116b1103efd951db2317e6a67c7042d28e", 290841),
    ),
    "emorynlp": (
        _github(*_TODKAT, "datasets/emory_train.csv", "emorynlp/emory_train.csv",
                "462c66c333783adb801836d12d1424f48489bef4fb8ddfec7fbb2f08ce8211d5", 771777),
        _github(*_TODKAT, "datasets/emory_val.csv", "emorynlp/emory_val.csv",
                "20edc9d5917fe705b17b849f7f288e495d4132a60353a6247c3800445bdf8734", 93130),
        _github(*_TODKAT, "datasets/emory_test.csv", "emorynlp/emory_test.csv",
                "caa0af67848bf3938c517969974bc156d2c20743067ceedd4fb17bda9b95c5a6", 90440),
    ),
    "dailydialog": (
        _github(*_CONVLAB, "data/unified_datasets/dailydialog/data.zip", "dailydialog/convlab/data.zip",
                "b1f38f3bf5431f9384107011a943f1a3446027721292e3a248a894b7766fa9d3", 3738236),
        # The original layout for dev and test (the loader can cross-check the two); its train text is not
        # fetched: the pinned copy of it could not be verified, and the ConvLab zip holds train in full.
        _github(*_DD_ORIGINAL, "ijcnlp_dailydialog/validation/dialogues_validation.txt",
                "dailydialog/original/dialogues_validation.txt",
                "2ad64701fe3a4449e7a6ee7cdc6c2a71c80f77b8a34f708ac0532395f499081c", 558030),
        _github(*_DD_ORIGINAL, "ijcnlp_dailydialog/validation/dialogues_act_validation.txt",
                "dailydialog/original/dialogues_act_validation.txt",
                "fbeee7a1b2927c9cb33d6fdc384bb3ea55abf040928d2de4dcea57ab4a669682", 17138),
        _github(*_DD_ORIGINAL, "ijcnlp_dailydialog/validation/dialogues_emotion_validation.txt",
                "dailydialog/original/dialogues_emotion_validation.txt",
                "3d4094299a995e998bbc3492ce1755c9abc1e7f56500c840e83b12dd16580596", 17138),
        _github(*_DD_ORIGINAL, "ijcnlp_dailydialog/test/dialogues_test.txt",
                "dailydialog/original/dialogues_test.txt",
                "3c323651cdfb09f7b529f850eddf96a638fc6cc9b43330b77956ab248484a1a8", 544208),
        _github(*_DD_ORIGINAL, "ijcnlp_dailydialog/test/dialogues_act_test.txt",
                "dailydialog/original/dialogues_act_test.txt",
                "566649e92babfa528a77757b161deeee91e9c91fe0db71760063747e132d3f4c", 16480),
        _github(*_DD_ORIGINAL, "ijcnlp_dailydialog/test/dialogues_emotion_test.txt",
                "dailydialog/original/dialogues_emotion_test.txt",
                "482b7235f91a1441055a09241b2d2709bb1702f4a08d7316c27fa807cba7d3c9", 16480),
    ),
    "mastodon": tuple(
        _github(*_COGAT, f"dataset/mastodon/{name}", f"mastodon/{name}", sha, size)
        for name, sha, size in (
            ("train.json", "f6826df1395059a481ebcd8a40dd72bd4b60f40bfca0b936f477f21af658e59c", 125579),
            ("train_adj.txt", "73d9f8e305796e244f90ad60a4debf6a71842eca12fadec668e4e2a79659d296", 6395),
            ("dev.json", "5f9563925d5c3f07323d9c074cf2af8867dd6e5ff34307fa1841d15a5dfc04d1", 13799),
            ("dev_adj.txt", "6ca01dfc77e2a33f0b4fd7fda7cba0bc8cbd2ca9bc217bcb6a86b49672e97142", 719),
            ("test.json", "8d66506c1294d749ba60d7e5b0193dad35f82eeb87ed7c692d6013724a64ac32", 143361),
            ("test_adj.txt", "d9aa14a0fff7217e751386c75584d5b91239f0620cc883abe607cdbae89c9d1b", 7728),
        )
    ),
}

_IEMOCAP_HELP = (
    "IEMOCAP cannot be downloaded: it is licensed to each user. Request it at https://sail.usc.edu/iemocap/, "
    "produce the dialogue-understanding TSV files (iemocap_{train,valid,test}_{utterances,emotion,speakers}.tsv, "
    "see github.com/declare-lab/dialogue-understanding), then run `kgemo data download iemocap --from FOLDER` "
    "(or set KGEMO_DATA to a folder holding iemocap/)."
)


def default_download_dir() -> Path:
    """``$KGEMO_DATA`` if set, else ``$KGEMO_HOME/data`` (which the loaders search when nothing else exists)."""
    env = os.environ.get("KGEMO_DATA")
    return Path(env).expanduser() if env else kgemo_home() / "data"


def download_dataset(name: str, dest: str | Path | None = None, source: str | Path | None = None, *,
                     force: bool = False, progress: bool | None = None) -> list[Path]:
    """Download (or copy) a dataset's files into ``dest`` and verify their sha256.

    Args:
        name: a dataset of :data:`MANIFEST` (``meld``, ``emorynlp``, ``dailydialog``, ``mastodon``), or
            ``iemocap`` with ``source``.
        dest: data root to write into (files go to ``dest/<name>/...``); default :func:`default_download_dir`.
        source: ``None`` for the official URLs; a local folder, file or ``file://`` URL holding the files (in
            kgemo's layout, flat, or in the source repository's layout); or an ``http(s)://`` mirror base URL
            holding them in kgemo's layout.
        force: download again even when a verified copy exists.
        progress: show progress bars; default only on a terminal.

    Returns:
        The paths of the dataset's files under ``dest``.

    Raises:
        ChecksumError: a file does not match its checksum (nothing is left under its name).
        DataNotFoundError: a file could not be fetched, or IEMOCAP without ``source``.

    Example:
        >>> download_dataset("mastodon")                       # doctest: +SKIP
        [PosixPath('~/.cache/kgemo/data/mastodon/train.json'), ...]
    """
    name = name.lower()
    dest = Path(dest).expanduser() if dest is not None else default_download_dir()
    if name == "iemocap":
        if source is None:
            raise DataNotFoundError(_IEMOCAP_HELP)
        return _import_iemocap(_local_path(source), dest)
    if name not in MANIFEST:
        raise ValueError(f"no download for {name!r}; downloadable: {sorted(MANIFEST)} (and iemocap from a local "
                         "copy)")
    out = []
    for remote in MANIFEST[name]:
        target = dest / remote.path
        out.append(target)
        if target.is_file() and not force:
            if sha256_file(target) == remote.sha256:
                logger.info("%s: present, checksum verified", target)
                continue
            logger.warning("%s exists but its sha256 differs from the manifest; fetching it again", target)
        origin = _origin(remote, source)
        logger.info("%s <- %s", target, origin)
        _fetch(origin, target, remote, progress)
    return out


def _local_path(source: str | Path) -> Path:
    text = str(source)
    if text.startswith("file:"):
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(text).path))
    return Path(text).expanduser()


def _origin(remote: RemoteFile, source: str | Path | None) -> str | Path:
    """Where to read ``remote`` from: its URL, a mirror URL, or a file inside a local folder."""
    if source is None:
        return remote.url
    text = str(source)
    if text.startswith(("http://", "https://")):
        return text.rstrip("/") + "/" + remote.path
    base = _local_path(source)
    if base.is_file():
        if base.name == Path(remote.path).name:
            return base
        raise DataNotFoundError(f"{base} is not {remote.path}; give the folder that holds the dataset's files")
    parts = Path(remote.path).parts
    # kgemo's layout (meld/x.csv), the same below the dataset folder (x.csv or original/x.txt), flat, upstream.
    candidates = [base.joinpath(*parts[i:]) for i in range(len(parts))]
    if remote.upstream:
        candidates.append(base / remote.upstream)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataNotFoundError(f"{remote.path} not found under {base} (looked for "
                            f"{', '.join(str(c) for c in dict.fromkeys(candidates))})")


def _open(origin: str | Path) -> tuple[IO[bytes], int | None]:
    if isinstance(origin, Path):
        return open(origin, "rb"), origin.stat().st_size
    try:
        response = urllib.request.urlopen(origin, timeout=60)  # noqa: S310 (http/https/file URLs by design)
    except urllib.error.HTTPError as exc:
        raise DataNotFoundError(f"could not download {origin}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataNotFoundError(f"could not download {origin}: {reason}. Without internet access, fetch the "
                                "files elsewhere and use `kgemo data download NAME --from FOLDER`") from None
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None


def _fetch(origin: str | Path, target: Path, remote: RemoteFile, progress: bool | None) -> None:
    """Stream ``origin`` into ``target`` atomically, checking size and sha256 before the final rename."""
    stream, length = _open(origin)
    digest, written = hashlib.sha256(), 0
    bar = tqdm(total=length or remote.size, unit="B", unit_scale=True, unit_divisor=1024, desc=remote.path,
               leave=False, disable=None if progress is None else not progress)
    try:
        with stream, bar, atomic_write(target, "wb") as fh:
            while True:
                try:
                    block = stream.read(_CHUNK)
                except OSError as exc:
                    raise DataNotFoundError(f"download of {origin} interrupted: {exc}") from None
                if not block:
                    break
                fh.write(block)
                digest.update(block)
                written += len(block)
                bar.update(len(block))
            if digest.hexdigest() != remote.sha256:
                # Raising inside atomic_write removes the temporary file and leaves `target` as it was.
                raise ChecksumError(f"{origin}: sha256 {digest.hexdigest()} ({written} bytes) does not match the "
                                    f"expected {remote.sha256} ({remote.size} bytes) for {remote.path}; the file "
                                    "was not saved")
    except KgemoError:
        raise
    except OSError as exc:
        raise DataNotFoundError(f"could not write {target}: {exc}") from None
    # atomic_write's temporary file is private (0600); a downloaded dataset is ordinary readable data.
    os.chmod(target, 0o644)


def _import_iemocap(folder: Path, dest: Path) -> list[Path]:
    """Copy a local IEMOCAP copy (dialogue-understanding TSVs) into ``dest/iemocap`` and check that it loads."""
    from .iemocap import KINDS, _SPLIT_NAMES, load_iemocap

    if not folder.is_dir():
        raise DataNotFoundError(f"{folder} is not a folder. {_IEMOCAP_HELP}")
    search = [folder / "iemocap", folder]
    found: dict[str, Path] = {}
    missing = []
    for split, names in _SPLIT_NAMES.items():
        for kind in KINDS:
            hit = next((d / f"iemocap_{n}_{kind}.tsv" for n in names for d in search
                        if (d / f"iemocap_{n}_{kind}.tsv").is_file()), None)
            if hit is None:
                missing.append(f"iemocap_{names[0]}_{kind}.tsv")
            else:
                found[hit.name] = hit
    if missing:
        raise DataNotFoundError(f"{folder} lacks {', '.join(missing)}. {_IEMOCAP_HELP}")
    # No public checksums exist for IEMOCAP: check that the copy loads before anything is written.
    for split in _SPLIT_NAMES:
        load_iemocap(split, root=folder)
    out = []
    for filename, src in found.items():
        target = dest / "iemocap" / filename
        if src.resolve() != target.resolve():
            with open(src, "rb") as fin, atomic_write(target, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            os.chmod(target, 0o644)
        out.append(target)
    logger.info("IEMOCAP copied to %s (format checked; no public checksums exist)", dest / "iemocap")
    return out
