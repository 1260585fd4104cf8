"""``scripts/gpu_check.py``: without CUDA it skips with a JSON report; its model and retrieval code runs on CPU."""
from __future__ import annotations

import json

import pytest
from script_loader import load_script


@pytest.fixture(scope="module")
def gpu_check():
    return load_script("scripts/gpu_check.py")


def test_without_cuda_it_skips_and_says_so(gpu_check, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a machine that has one
    out = tmp_path / "report.json"
    assert gpu_check.main(["--out", str(out)]) == 0
    assert "no CUDA device: skipped" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["status"] == "skipped" and "no CUDA device" in report["reason"]
    assert report["models"] == [] and report["retrieval"] is None
    assert {"torch", "cuda_available", "faiss", "faiss_gpus", "cpu_count"} <= set(report["machine"])


@pytest.mark.slow
def test_the_check_runs_every_step_on_cpu(gpu_check, tmp_path):
    out = tmp_path / "report.json"
    rc = gpu_check.main(["--device", "cpu", "--models", "no_knowledge", "ket", "cogat", "--conversations", "4",
                         "--steps", "1", "--warmup", "1", "--retrieval-n", "3000", "--queries", "40", "--single",
                         "3", "--out", str(out)])
    report = json.loads(out.read_text())
    assert rc == 0 and report["status"] == "ok" and report["device"] == "cpu"
    assert [r["model"] for r in report["models"]] == ["no_knowledge", "ket", "cogat"]
    for row in report["models"]:
        assert row["ok"] and row["cpu_utt_per_s"] > 0 and row["device_utt_per_s"] > 0 and row["parameters"] > 0
    assert report["models"][2]["tasks"] == ["sentiment", "act"]  # a joint model gets its two tasks
    rows = report["retrieval"]["rows"]
    assert rows[0]["method"].startswith("faiss flat") and rows[1]["method"] == "torch exact topk, cpu"
    assert rows[1]["recall@10"] == 1.0 and rows[1]["vectorindex_torch_agrees"]  # exact both ways
    faiss_gpu = report["retrieval"]["faiss_gpu"]
    assert faiss_gpu["available"] or "faiss" in faiss_gpu["reason"]
