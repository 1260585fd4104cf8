"""Sharded knowledge builds: 3 shards, run as separate builds and merged, equal the one-process build byte for byte."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kgemo.cli import main
from kgemo.errors import KgemoError
from kgemo.knowledge import build as B
from kgemo.knowledge.shards import Parts, check_shards, generation_rows, shard_bounds

from .test_comet import tiny_bart  # noqa: F401  (the module-scoped tiny COMET-BART checkpoint fixture)


def tree(folder) -> dict[str, bytes]:
    """Every file under ``folder`` but the build log (timings), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "build.json"}


@pytest.mark.parametrize("n, shards, align", [(10, 3, 2), (5, 3, 1), (7, 1, 4), (2, 4, 1), (0, 3, 2), (9, 2, 4)])
def test_shard_bounds_cover_the_inputs_in_order_on_block_boundaries(n, shards, align):
    bounds = shard_bounds(n, shards, align)
    assert len(bounds) == shards and bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, in order
    assert all(start % align == 0 and start <= stop for start, stop in bounds)
    sizes = [-(-(stop - start) // align) for start, stop in bounds]  # blocks per shard differ by at most one
    assert max(sizes) - min(sizes) <= 1


def test_shard_arguments_are_checked():
    check_shards(3, 2)
    with pytest.raises(KgemoError, match="--shard-id must be in 0..2"):
        check_shards(3, 3)
    with pytest.raises(KgemoError, match="at least 1"):
        check_shards(0)


def test_a_part_is_finished_only_when_its_key_and_checksum_verify(tmp_path, caplog):
    parts = Parts(tmp_path, "x", 2, key="k1")
    assert parts.missing() == [0, 1]
    parts.save_array(0, np.arange(3.0), start=0, stop=3)
    assert parts.missing() == [1] and parts.finished(0)["stop"] == 3
    assert Parts(tmp_path, "x", 2, key="k2").missing() == [0, 1]  # other inputs: stale
    parts.path(0).write_bytes(parts.path(0).read_bytes()[:-8])
    assert parts.missing() == [0, 1] and "corrupt" in caplog.text
    parts.remove()
    assert not tmp_path.exists()


def test_atomic_three_shards_merge_byte_identical_to_one_process(kb_sources, tmp_path, tiny_encoder):
    one = tmp_path / "one"
    B.build_atomic(one, source=kb_sources, no_verify=True, encoder=tiny_encoder, shard_size=1)
    sharded = tmp_path / "sharded"
    # Three independent builds (as three cluster jobs would run them), finishing out of order; the last one merges.
    reports = [B.build_atomic(sharded, source=kb_sources, no_verify=True, encoder=tiny_encoder, shard_size=1,
                              shards=3, shard_id=i) for i in (2, 0, 1)]
    assert reports[0]["missing"] == [0, 1] and reports[1]["missing"] == [1]
    assert "missing" not in reports[2] and reports[2]["stats"]["heads"] == 5
    assert reports[2]["stats"]["index"]["index"].startswith("VectorIndex(flat, n=5")
    a, b = tree(one), tree(sharded)
    assert sorted(a) == sorted(b)  # same files, no parts left behind
    assert any(name.endswith("embeddings.npy") for name in a) and any(name.endswith(".faiss") for name in a)
    for name in a:
        assert a[name] == b[name], name
    # Both build logs record the same finished parts; a re-run of either builds nothing.
    parts = lambda d: {k: v["outputs"] for k, v in json.loads((d / "build.json").read_text())["parts"].items()}  # noqa
    assert parts(one) == parts(sharded)
    assert B.build_atomic(sharded, source=kb_sources, no_verify=True, encoder=tiny_encoder, shard_size=1,
                          shards=3, shard_id=0)["built"] == []


def test_atomic_explicit_merge_names_missing_shards(kb_sources, tmp_path, tiny_encoder):
    out = tmp_path / "kb"
    kw = dict(source=kb_sources, no_verify=True, encoder=tiny_encoder, shard_size=2, shards=3)
    B.build_atomic(out, shard_id=0, merge=False, **kw)
    with pytest.raises(KgemoError, match=r"shard\(s\) \[1, 2\] of 3 are not finished"):
        B.build_atomic(out, merge=True, **kw)
    B.build_atomic(out, shard_id=2, merge=False, **kw)
    B.build_atomic(out, shard_id=1, merge=False, **kw)  # never merges, even as the last one
    assert not list(out.rglob("embeddings.npy"))
    encoded = tiny_encoder.encoded
    rep = B.build_atomic(out, merge=True, **kw)
    assert tiny_encoder.encoded == encoded  # the merge encodes nothing
    one = tmp_path / "one"
    B.build_atomic(one, source=kb_sources, no_verify=True, encoder=tiny_encoder, shard_size=2)
    assert tree(one) == tree(out) and rep["stats"]["heads"] == 5


@pytest.mark.slow
def test_atomic_local_workers_merge_byte_identical(kb_sources, tmp_path, tiny_encoder):
    one, two = tmp_path / "one", tmp_path / "workers"
    B.build_atomic(one, source=kb_sources, no_verify=True, encoder=tiny_encoder, shard_size=1)
    rep = B.build_atomic(two, source=kb_sources, no_verify=True, encoder=tiny_encoder, shard_size=1, workers=2)
    assert tree(one) == tree(two) and rep["stats"]["heads"] == 5


TEXTS = ["i lost my keys", "we won the game", "happy to find them", "sad", "we celebrate", "i lost my keys",
         "PersonX won", "my game", "find my keys", "we lost", "happy happy"]


def test_comet_three_shards_merge_into_the_same_cache_rows(tiny_bart, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("KGEMO_HOME", str(tmp_path / "one"))
    kw = dict(model=tiny_bart, relations=["xReact", "oEffect"], k=2, num_beams=2, batch_size=2)
    one = B.build_comet(TEXTS, **kw)
    assert one["texts"] == 10
    rows_one = generation_rows(tmp_path / "one" / "knowledge" / "comet" / "cache.sqlite")
    assert len(rows_one) == 2 * 10 * 2  # generations + states, per text and relation

    monkeypatch.setenv("KGEMO_HOME", str(tmp_path / "sharded"))
    reports = [B.build_comet(TEXTS[::-1], shards=3, shard_id=i, **kw) for i in (1, 2, 0)]  # any input order
    assert [r["missing"] for r in reports] == [[0, 2], [0], []]
    assert reports[-1]["merged"] == {"generations": 20, "states": 20}
    cache = tmp_path / "sharded" / "knowledge" / "comet" / "cache.sqlite"
    assert generation_rows(cache) == rows_one  # tails as stored JSON, states as float32 bytes
    assert not list((tmp_path / "sharded" / "knowledge" / "comet" / "shards").rglob("*.sqlite"))  # parts gone


def test_comet_shards_of_the_retrieval_stand_in_merge_too(tiny_encoder, tmp_path, monkeypatch):
    kw = dict(model=None, relations=["xReact", "oReact"], k=2, batch_size=3, encoder=tiny_encoder)
    monkeypatch.setenv("KGEMO_HOME", str(tmp_path / "one"))
    B.build_comet(TEXTS, **kw)
    monkeypatch.setenv("KGEMO_HOME", str(tmp_path / "sharded"))
    for i in range(3):
        B.build_comet(TEXTS, shards=3, shard_id=i, merge=False, **kw)
    rep = B.build_comet(TEXTS, shards=3, merge=True, **kw)
    assert rep["missing"] == [] and rep["merged"]["generations"] == 20
    assert generation_rows(tmp_path / "sharded" / "knowledge" / "comet" / "cache.sqlite") == \
        generation_rows(tmp_path / "one" / "knowledge" / "comet" / "cache.sqlite")


@pytest.mark.parametrize("argv, message", [
    (["conceptnet", "--shards", "2"], "kb build conceptnet is not sharded"),
    (["atomic", "--shard-id", "0"], "--shard-id and --merge need --shards N"),
    (["atomic", "--shards", "2", "--shard-id", "2"], "--shard-id must be in 0..1 for --shards 2"),
    (["atomic", "--shards", "2", "--merge", "--workers", "2"], "--merge only merges"),
])
def test_cli_refuses_inconsistent_shard_options(argv, message, capsys):
    assert main(["kb", "build", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_shards_then_merge(kb_sources, tmp_path, capsys):
    out = tmp_path / "kb"
    base = ["kb", "build", "atomic", "--source", str(kb_sources), "--no-verify", "--out", str(out), "--shards", "2"]
    assert main([*base, "--shard-id", "1"]) == 0
    assert "shard 1 of 2 done; not merged yet: shard(s) [0]" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*base, "--shard-id", "x"])
    assert main([*base, "--shard-id", "0", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["stats"]["heads"] == 5 and "missing" not in rep
