"""The canary: two cheap rows of docs/results.json rebuilt from an empty cache must equal their recorded numbers to the
last bit, and no row may have inputs that changed since it was computed. A change that moves the numerics fails
here until the rows it affects are rerun (``python scripts/reproduce.py ROW``, then ``scripts/evaluate.py --all``).
``cogat_mastodon`` is recorded under AVX2 kernel pins (``scripts/reproduce.py`` applies them), so it rebuilds equal on
AVX2 and AVX-512 machines alike; ``ket_meld``'s numbers were equal on both kinds without pins.
"""
from __future__ import annotations

import json

import pytest
from script_loader import ROOT, load_script

#: Cheap rows (about a minute each on 2 cores) that cover the two kinds of model: an ERC model over ConceptNet
#: concepts, and a joint act + sentiment model.
CANARY_ROWS = ("ket_meld", "cogat_mastodon")


def other_kernels(recorded: dict) -> str | None:
    """Why this machine cannot compute what the row's seed did, or None. A seed run under kernel pins (AVX2,
    reproduce.py applies them) rebuilds on any x86-64 machine; one run without pins, only where torch's CPU kernels
    use the same instruction set."""
    import platform

    import torch

    if recorded.get("kernel_pins"):
        here = platform.machine()
        return None if here in ("x86_64", "AMD64") else f"recorded under x86 kernel pins, this machine is {here}"
    then, now = recorded.get("cpu_capability"), torch.backends.cpu.get_cpu_capability()
    return None if then in (None, now) else f"recorded with {then} CPU kernels and no pins, this machine uses {now}"


def test_other_kernels_skips_only_where_bits_cannot_agree():
    import torch

    here = torch.backends.cpu.get_cpu_capability()
    assert other_kernels({}) is None and other_kernels({"cpu_capability": here}) is None
    assert "no pins" in other_kernels({"cpu_capability": "NEON" if here != "NEON" else "AVX2"})
    pinned = other_kernels({"cpu_capability": "AVX2", "kernel_pins": {"ATEN_CPU_CAPABILITY": "avx2"}})
    import platform

    assert pinned is None if platform.machine() in ("x86_64", "AMD64") else "x86 kernel pins" in pinned


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("row", CANARY_ROWS)
def test_canary_row_rebuilds_bit_for_bit_from_a_cold_cache(row, data_root, tmp_path, capsys):
    rows = json.loads((ROOT / "docs" / "results.json").read_text())
    assert not rows[row].get("stale"), f"the canary row {row} is marked stale: rerun it"
    reproduce = load_script("scripts/reproduce.py")
    seed = rows[row]["seeds"][0]
    skip = other_kernels(reproduce.seed_environment(rows[row], seed))
    if skip:
        pytest.skip(f"{row} seed {seed}: {skip}; bit equality holds between machines of one kind")
    code = reproduce.main([row, "--seed", str(seed), "--workdir", str(tmp_path / "work"), "--cold"])
    out = capsys.readouterr().out
    assert code == 0, f"{row} seed {seed} no longer gives its recorded numbers:\n{out[-2000:]}"
    assert f"seed {seed}: equal to the row, bit for bit" in out


def test_no_row_has_inputs_that_changed_since_it_was_computed(capsys):
    # Checksums only; without the datasets here their files are reported as not checkable, not skipped silently.
    from kgemo.storage import data_root

    evaluate = load_script("scripts/evaluate.py")
    code = evaluate.check(ROOT / "docs" / "results.json", data_root(required=False))
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
