"""Fixtures for the knowledge tests: tiny source files laid out under the names the manifests expect."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "knowledge"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def kb_sources(tmp_path) -> Path:
    """A folder shaped like a data root's kb/: gzip ConceptNet dump, CKBC subset, NRC-VAD, ATOMIC 2019/2020."""
    src = tmp_path / "sources"
    src.mkdir()
    with open(FIXTURES / "conceptnet-assertions-mini.csv", "rb") as fin, \
            gzip.open(src / "conceptnet-assertions-5.7.0.csv.gz", "wb") as fout:
        fout.write(fin.read())
    with open(FIXTURES / "ckbc-mini.txt", "rb") as fin, gzip.open(src / "train100k.txt.gz", "wb") as fout:
        fout.write(fin.read())
    shutil.copy(FIXTURES / "nrc-vad-mini.txt", src / "NRC-VAD-Lexicon.txt")
    shutil.copy(FIXTURES / "atomic2019-mini.csv", src / "v4_atomic_dev.csv")
    shutil.copy(FIXTURES / "atomic2020-mini.tsv", src / "atomic2020_system_eval_test5000.tsv")
    return src


@pytest.fixture
def vad_lexicon():
    from kgemo.knowledge.vad import VadLexicon

    return VadLexicon.from_file(FIXTURES / "nrc-vad-mini.txt")
