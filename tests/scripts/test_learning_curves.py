"""scripts/learning_curves.py: the command of each point, names, shares, and how rows become curves."""
from __future__ import annotations

import pytest
from script_loader import ROOT, load_script

curves = load_script("scripts/learning_curves.py")


def test_commands_name_the_point_and_load_as_configs():
    from kgemo.training import load_config

    cmd = curves.command("meld", "other_domain", 0.05, 2)
    assert cmd[2:6] == ["kgemo.cli", "train", "configs/no_knowledge_meld.yaml", "name=curve_meld_other_domain_p005"]
    assert "data.train_share=0.05" in cmd and cmd[-2:] == ["--seeds", "2"]
    config = load_config(ROOT / cmd[4], cmd[5:-2])
    assert config.data.train_share == 0.05 and config.tags["curve"] == "other_domain"
    assert config.train.init_from == "runs/no_knowledge_dailydialog/seed{seed}"   # the source model of each seed
    assert config.train.label_map == {"emotion": {"joy": "happiness"}}
    count = curves.command("emorynlp", "default", 50, 0)
    assert "data.train_conversations=50" in count and "name=curve_emorynlp_default_n50" in count
    assert load_config(ROOT / count[4], count[5:-2]).data.train_conversations == 50
    related = load_config(ROOT / "configs/no_knowledge_dailydialog.yaml",
                          curves.command("dailydialog", "with_act", 0.1, 0)[5:-2])
    assert related.data.tasks == ["emotion", "act"] and related.data.share_tasks == ["emotion"]


def test_the_full_share_of_a_scratch_variant_is_its_configs_own_row():
    assert curves.command("meld", "ket", 1.0, 0) is None
    assert "data.train_share" not in " ".join(curves.command("meld", "other_domain", 1.0, 0))
    assert [curves.parse_share(x) for x in ("0.05", "50", "1", "1.0")] == [0.05, 50, 1.0, 1.0]
    assert [curves.share_label(x) for x in (0.01, 0.1, 1.0, 50)] == ["p001", "p010", "p100", "n50"]


def row(test, share=None, curve=None, datasets=("meld",)):
    tags = {} if curve is None else {"curve": curve, "share": share}
    return {"datasets": list(datasets), "test": {"emotion": test}, "tags": tags, "metrics": {"emotion": "weighted_f1"}}


def test_curves_group_rows_by_variant_and_share():
    summary = {"curve_meld_ket_p005": row([50.0, 51.0], 0.05, "ket"),
               "curve_meld_ket_p010": row([52.0], 0.1, "ket"),
               "ket_meld": row([58.0, 57.0]),                                         # the 100% point
               "curve_emorynlp_ket_n50": row([29.0], 50, "ket", ("emorynlp",)),
               "no_knowledge_meld": row([57.5])}                                      # no curve: not drawn
    found = curves.curves(summary, "meld")
    assert set(found) == {"ket"} and sorted(found["ket"]) == [0.05, 0.1, 1.0]
    assert found["ket"][1.0] is summary["ket_meld"]
    assert list(curves.curves(summary, "emorynlp")["ket"]) == [50]
    assert curves.as_share(50, "emorynlp") == pytest.approx(50 / 659)
