"""``scripts/test.sh`` — what its exit code means, checked with a stand-in pytest (no install, no test run).

The script is copied into a scratch repository whose ``.venv/bin/activate`` puts shims first on PATH: ``pip``
does nothing and ``python -m pytest ...`` records its arguments and exits with ``$FAKE_PYTEST_RC``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test.sh"


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "test.sh")
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "activate").write_text(f'export PATH="{bin_}:$PATH"\n')
    (bin_ / "pip").write_text("#!/bin/sh\nexit 0\n")
    (bin_ / "python").write_text('#!/bin/sh\necho "$@" > "$FAKE_PYTEST_ARGS"\nexit "$FAKE_PYTEST_RC"\n')
    for shim in ("pip", "python"):
        (bin_ / shim).chmod(0o755)
    return tmp_path


def run(repo: Path, pytest_rc: int, args: list[str], ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(FAKE_PYTEST_RC=str(pytest_rc), FAKE_PYTEST_ARGS=str(repo / "args.txt"))
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(["bash", str(repo / "scripts" / "test.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("pytest_rc, args, ci, expected", [
    (5, ["-k", "typo"], None, 0),         # a developer's filter that matches nothing
    (5, ["-k", "typo"], "false", 0),
    (5, ["-k", "typo"], "true", 5),       # never under CI
    (5, ["-k", "typo"], "1", 5),
    (5, [], None, 5),                     # the whole suite collecting nothing is broken, CI or not
    (0, [], "true", 0),
    (1, ["-k", "x"], None, 1),            # failures stay failures
    (2, [], "true", 2),                   # collection errors too
])
def test_exit_code(repo, pytest_rc, args, ci, expected):
    res = run(repo, pytest_rc, args, ci)
    assert res.returncode == expected, res.stdout + res.stderr
    assert (repo / "args.txt").read_text().split() == ["-m", "pytest", "-q", "-ra", *args]
    if pytest_rc == 5:
        assert "no tests collected" in res.stdout + res.stderr
