"""One device and precision choice for every run."""
import pytest

from kgemo import devices


@pytest.mark.parametrize("cuda, accelerator, setting, expected", [
    (False, "auto", "auto", "32-true"),
    (False, "gpu", "auto", "32-true"),
    (True, "auto", "auto", "bf16-mixed"),
    (True, "cuda", "auto", "bf16-mixed"),
    (True, "cpu", "auto", "32-true"),           # half precision on the CPU is slower and less exact
    (True, "auto", "16-mixed", "16-mixed"),     # as given
    (False, "cpu", "bf16-mixed", "bf16-mixed"),
])
def test_lightning_precision(monkeypatch, cuda, accelerator, setting, expected):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert devices.lightning_precision(setting, accelerator) == expected
    assert devices.uses_cuda(accelerator) == (cuda and accelerator != "cpu")
