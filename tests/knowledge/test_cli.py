import json

import pytest

from kgemo.cli import main


def test_kb_build_refuses_checksum_mismatch_with_one_line(kb_sources, tmp_path, capsys):
    rc = main(["kb", "build", "conceptnet", "--source", str(kb_sources / "train100k.txt.gz"), "--vad",
               str(kb_sources), "--out", str(tmp_path / "cn")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("kgemo: error: ") and "--no-verify" in err and "Traceback" not in err


def test_kb_build_info_neighbours_and_rdf(kb_sources, tmp_path, capsys, fixtures):
    out = tmp_path / "cn"
    assert main(["kb", "build", "conceptnet", "--source", str(kb_sources / "train100k.txt.gz"), "--vad",
                 str(kb_sources), "--out", str(out), "--no-verify", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["stats"]["edges_kept"] == 6 and rep["bad_rows"]  # 8 read; NotDesires and weight 0.5 dropped
    assert main(["kb", "info", str(out)]) == 0
    assert '"concepts"' in capsys.readouterr().out
    assert main(["kb", "neighbours", "my dogs", "--kb", str(out), "-k", "2"]) == 0
    assert "dogs → dog" in capsys.readouterr().out
    ttl = tmp_path / "slice.ttl"
    assert main(["kb", "export-rdf", "--kb", str(out), "--text", "puppies", "--out", str(ttl)]) == 0
    assert "cn:puppy" in ttl.read_text()
    assert main(["kb", "import-rdf", str(fixtures / "user_kb.ttl"), "--out", str(tmp_path / "user"),
                 "--no-vad"]) == 0
    assert main(["kb", "neighbours", "umbrella", "--kb", str(tmp_path / "user")]) == 0
    assert "usedFor→rain" in capsys.readouterr().out


def test_build_script_is_the_same_entry_point(kb_sources, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "build_kb.py"
    res = subprocess.run([sys.executable, str(script), "atomic", "--source", str(kb_sources), "--no-verify",
                          "--encoder", "none", "--out", str(tmp_path / "at")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "v4_atomic_dev.csv:6: bad JSON list in column xReact" in res.stderr
    assert (tmp_path / "at" / "atomic.npz").is_file()


@pytest.mark.parametrize("argv", [["kb", "info", "--sources"], ["kb", "info", "default"]])
def test_info_default_and_sources(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert ("CC BY-SA 4.0" in out) if "--sources" in argv else ("[conceptnet]" in out and "[atomic]" in out)
