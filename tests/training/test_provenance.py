"""Every run records what it was computed from: commit, changed files, config origin, input checksums."""
from __future__ import annotations

import json
import subprocess

import pytest
from tiny_data import tiny_prepared

from kgemo.training import ExperimentConfig, TrainConfig, fit, load_config
from kgemo.training.provenance import folder_sha256, resolved_config_sha256, source_commit


def git(tree, *args):
    subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True)


def test_source_commit_names_the_commit_and_the_changed_code_files(tmp_path):
    (tmp_path / "kgemo").mkdir()
    (tmp_path / "kgemo" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("free text\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "x", "--allow-empty")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "files")
    state = source_commit(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] == []
    (tmp_path / "kgemo" / "a.py").write_text("x = 2\n")      # code changed: dirty
    (tmp_path / "kgemo" / "new.py").write_text("")           # untracked code: dirty too
    (tmp_path / "notes.txt").write_text("edited\n")          # outside the code paths: not
    assert source_commit(tmp_path)["dirty"] == ["kgemo/a.py", "kgemo/new.py"]
    assert source_commit(tmp_path / "nowhere")["commit"] is None


def test_resolved_config_checksum_ignores_seed_and_place_but_not_values(tmp_path):
    a = load_config(_config(tmp_path, "hidden: 16"), ["seed=3", "output_dir=/x/{name}"])
    b = load_config(_config(tmp_path, "hidden: 16  # same value, a comment"))
    c = load_config(_config(tmp_path, "hidden: 32"))
    assert resolved_config_sha256(a.to_dict()) == resolved_config_sha256(b.to_dict())
    assert resolved_config_sha256(a.to_dict()) != resolved_config_sha256(c.to_dict())
    assert a.origin["overrides"] == ["seed=3", "output_dir=/x/{name}"] and len(a.origin["sha256"]) == 64


def _config(tmp_path, hidden: str):
    path = tmp_path / "probe.yaml"
    path.write_text(f"name: probe\nmodel:\n  name: no_knowledge\n  {hidden}\n")
    return path


def test_folder_checksum_sees_content_and_names(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.bin").write_bytes(b"123")
    first = folder_sha256(tmp_path / "a")
    (tmp_path / "a" / "w.bin").write_bytes(b"124")
    assert folder_sha256(tmp_path / "a") != first
    (tmp_path / "a" / "w.bin").write_bytes(b"123")
    assert folder_sha256(tmp_path / "a") == first
    (tmp_path / "a" / "w.bin").rename(tmp_path / "a" / "v.bin")
    assert folder_sha256(tmp_path / "a") != first


@pytest.mark.slow
def test_fit_writes_the_provenance_block(tiny_encoder, tmp_path):
    config = ExperimentConfig(name="t", model={"name": "no_knowledge", "hidden": 16, "heads": 2},
                              train=TrainConfig(epochs=1, batch_size=8, progress=False),
                              output_dir=str(tmp_path / "run"))
    result = fit(config, data=tiny_prepared(tiny_encoder, "conversation"))
    prov = json.loads((tmp_path / "run" / "metrics.json").read_text())["provenance"]
    assert prov == result["provenance"]
    assert prov["inputs"]["data"] == "given in memory"       # no dataset file describes in-memory conversations
    assert prov["inputs"]["encoder"]["id"] == tiny_encoder.id
    assert prov["config"] is None                            # built in Python, not loaded from a file
    assert prov["resolved_config_sha256"] == resolved_config_sha256(config.to_dict())
    assert set(prov["environment"]) >= {"python", "torch", "machine", "cpu_capability", "threads"}
    assert "commit" in prov and "dirty" in prov
