from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from kgemo.data import download as dl
from kgemo.data import download_dataset, load_dataset
from kgemo.errors import ChecksumError, DataFormatError, DataNotFoundError

from .conftest import FIXTURES

_JSON = b'[[{"utterance": "hello world", "sentiment": "+", "act": "I"}]]\n'
_ADJ = b"1 1-1\n"


@pytest.fixture
def served(tmp_path):
    """A folder of upstream-like files: the tiny Mastodon split files, in a layout unlike kgemo's."""
    src = tmp_path / "upstream" / "dataset" / "mastodon"
    src.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (src / f"{split}.json").write_bytes(_JSON)
        (src / f"{split}_adj.txt").write_bytes(_ADJ)
    return tmp_path / "upstream"


def _manifest(base_url: str, corrupt: str | None = None) -> tuple[dl.RemoteFile, ...]:
    files = []
    for split in ("train", "dev", "test"):
        for name, data in ((f"{split}.json", _JSON), (f"{split}_adj.txt", _ADJ)):
            sha = hashlib.sha256(data).hexdigest() if name != corrupt else "0" * 64
            files.append(dl.RemoteFile(f"mastodon/{name}", f"{base_url}/dataset/mastodon/{name}", sha, len(data),
                                       f"dataset/mastodon/{name}"))
    return tuple(files)


@pytest.fixture
def http_base(served):
    """An http.server on 127.0.0.1 serving ``served`` from a thread; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # keep test output clean; remember what was asked
        _QuietHandler.requests.append(self.path)


def test_download_over_http_verifies_and_loads(http_base, tmp_path, monkeypatch):
    monkeypatch.setitem(dl.MANIFEST, "mastodon", _manifest(http_base))
    dest = tmp_path / "data"
    paths = download_dataset("mastodon", dest=dest, progress=False)
    assert [p.relative_to(dest).as_posix() for p in paths][:2] == ["mastodon/train.json", "mastodon/train_adj.txt"]
    assert all(p.read_bytes() in (_JSON, _ADJ) for p in paths)
    assert load_dataset("mastodon", "test", root=dest)[0].texts == ["hello world"]
    assert not list(dest.rglob("*.tmp"))
    # Re-running skips verified files: nothing is requested again.
    _QuietHandler.requests.clear()
    download_dataset("mastodon", dest=dest, progress=False)
    assert _QuietHandler.requests == []


def test_checksum_mismatch_keeps_nothing(http_base, tmp_path, monkeypatch):
    monkeypatch.setitem(dl.MANIFEST, "mastodon", _manifest(http_base, corrupt="dev.json"))
    dest = tmp_path / "data"
    with pytest.raises(ChecksumError, match="dev.json: sha256 .* does not match"):
        download_dataset("mastodon", dest=dest, progress=False)
    assert sorted(p.name for p in (dest / "mastodon").iterdir()) == ["train.json", "train_adj.txt"]


def test_http_errors_are_clear(http_base, tmp_path, monkeypatch):
    manifest = _manifest(http_base)
    broken = (dl.RemoteFile("mastodon/train.json", f"{http_base}/missing.json", manifest[0].sha256, 1),)
    monkeypatch.setitem(dl.MANIFEST, "mastodon", broken)
    with pytest.raises(DataNotFoundError, match=r"could not download .*missing.json: HTTP 404"):
        download_dataset("mastodon", dest=tmp_path / "data", progress=False)


def test_file_url_and_resume(served, tmp_path, monkeypatch):
    monkeypatch.setitem(dl.MANIFEST, "mastodon", _manifest(served.as_uri()))
    dest = tmp_path / "data"
    # An interrupted earlier run left one good file and one damaged one.
    (dest / "mastodon").mkdir(parents=True)
    (dest / "mastodon" / "train.json").write_bytes(_JSON)
    (dest / "mastodon" / "dev.json").write_bytes(b"half a fil")
    (served / "dataset" / "mastodon" / "train.json").unlink()  # so it must not be fetched again
    paths = download_dataset("mastodon", dest=dest, progress=False)
    assert (dest / "mastodon" / "dev.json").read_bytes() == _JSON
    assert len(paths) == 6 and all(p.is_file() for p in paths)


@pytest.mark.parametrize("layout", ["upstream", "kgemo", "flat"])
def test_local_source_folder(served, tmp_path, monkeypatch, layout):
    if layout == "upstream":
        source = served  # dataset/mastodon/... as in the repository
    else:
        source = tmp_path / f"copy_{layout}"
        folder = source / "mastodon" if layout == "kgemo" else source
        folder.mkdir(parents=True)
        for f in (served / "dataset" / "mastodon").iterdir():
            (folder / f.name).write_bytes(f.read_bytes())
    monkeypatch.setitem(dl.MANIFEST, "mastodon", _manifest("https://example.invalid"))  # URL must not be used
    dest = tmp_path / "data"
    paths = download_dataset("mastodon", dest=dest, source=source.as_uri() if layout == "flat" else source)
    assert len(paths) == 6 and load_dataset("mastodon", "dev", root=dest)[0].texts == ["hello world"]


def test_local_source_is_verified_too(served, tmp_path, monkeypatch):
    monkeypatch.setitem(dl.MANIFEST, "mastodon", _manifest("https://example.invalid"))
    (served / "dataset" / "mastodon" / "test_adj.txt").write_bytes(b"2 1-1 2-2\n")
    with pytest.raises(ChecksumError, match="test_adj.txt"):
        download_dataset("mastodon", dest=tmp_path / "data", source=served)
    assert not (tmp_path / "data" / "mastodon" / "test_adj.txt").exists()


def test_local_source_missing_file(tmp_path, monkeypatch):
    monkeypatch.setitem(dl.MANIFEST, "mastodon", _manifest("https://example.invalid"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match=r"mastodon/train.json not found under .*empty"):
        download_dataset("mastodon", dest=tmp_path / "data", source=tmp_path / "empty")


def test_default_destination(kgemo_home, monkeypatch, tmp_path):
    monkeypatch.delenv("KGEMO_DATA", raising=False)
    assert dl.default_download_dir() == Path(kgemo_home) / "data"
    monkeypatch.setenv("KGEMO_DATA", str(tmp_path / "mine"))
    assert dl.default_download_dir() == tmp_path / "mine"


def test_iemocap_needs_a_local_copy(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"licensed to each user.*--from FOLDER"):
        download_dataset("iemocap", dest=tmp_path)
    paths = download_dataset("iemocap", dest=tmp_path / "data", source=FIXTURES / "iemocap")
    assert len(paths) == 9
    assert [c.id for c in load_dataset("iemocap", "train", root=tmp_path / "data")][0] == "Ses01F_impro01"


def test_iemocap_copy_is_checked_before_writing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for f in (FIXTURES / "iemocap").glob("*.tsv"):
        (src / f.name).write_bytes(f.read_bytes())
    (src / "iemocap_test_emotion.tsv").write_text("Ses05F_impro03\t0\nSes05M_script02_1\t1\t1\n")
    with pytest.raises(DataFormatError, match="iemocap_test_emotion.tsv:1"):
        download_dataset("iemocap", dest=tmp_path / "data", source=src)
    assert not (tmp_path / "data").exists()
    (src / "iemocap_test_emotion.tsv").unlink()
    with pytest.raises(DataNotFoundError, match="lacks iemocap_test_emotion.tsv"):
        download_dataset("iemocap", dest=tmp_path / "data", source=src)


@pytest.mark.integration
def test_manifest_matches_the_shared_copies(data_root):
    """The checksums and sizes in the manifest are those of the files the integration tests use."""
    from kgemo.storage import sha256_file

    checked = 0
    for files in dl.MANIFEST.values():
        for remote in files:
            local = data_root / remote.path
            if local.is_file():
                assert local.stat().st_size == remote.size, remote.path
                assert sha256_file(local) == remote.sha256, remote.path
                checked += 1
            assert remote.url.startswith("https://raw.githubusercontent.com/") and len(remote.sha256) == 64
            assert remote.url.endswith("/" + remote.upstream)
    assert checked == sum(len(f) for f in dl.MANIFEST.values())
