"""Shared fixtures. Tests run offline; integration tests skip with a reason when the real data is absent."""
from __future__ import annotations

import os

import pytest
from tiny_encoder import TinyEncoder  # noqa: F401  (tests/ is on sys.path: the rootdir conftest's folder)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def kgemo_home(tmp_path_factory, monkeypatch):
    """A fresh, empty KGEMO_HOME per test, so no test reads another's (or the user's) cache."""
    home = tmp_path_factory.mktemp("kgemo_home")
    monkeypatch.setenv("KGEMO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def data_root():
    """The real datasets (KGEMO_DATA or ../shared/data); integration tests skip when they are absent."""
    from kgemo.storage import data_root as find

    root = find(required=False)
    if root is None:
        pytest.skip("real datasets absent: set KGEMO_DATA or provide ../shared/data")
    return root


@pytest.fixture
def tiny_encoder():
    return TinyEncoder()
