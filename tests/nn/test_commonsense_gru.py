"""CommonsenseGRU's context attention: the three scores of the official code, by hand (the recurrence itself is
tested with the model, tests/models/test_cosmic.py)."""
import pytest
import torch

from kgemo.atomic_relations import COSMIC_RELATIONS
from kgemo.nn import CommonsenseGRU


def cell(attention, **kw):
    torch.manual_seed(0)
    return CommonsenseGRU(6, 5, state_size=4, emotion_size=3, attention=attention, **kw).eval()


def by_hand(past, score):
    """c_t = sum_j softmax(score)_j g_j, one conversation row at a time."""
    out = []
    for g, a in zip(past, score):
        w = torch.exp(a - a.max())
        out.append((w / w.sum()) @ g)
    return torch.stack(out)


def test_attention_scores_by_hand():
    past, u = torch.randn(2, 3, 4), torch.randn(2, 6)                       # [n, t, D], [n, H]
    general = cell("general")
    W = general.context_attention.weight                                    # [D, H]
    assert general.context_attention.bias is None
    assert torch.allclose(general.attend(past, u), by_hand(past, torch.einsum("ntd,nd->nt", past, u @ W.T)), atol=1e-6)

    general2 = cell("general2")
    W, b = general2.context_attention.weight, general2.context_attention.bias
    expected = by_hand(past, torch.tanh(torch.einsum("ntd,nd->nt", past, u @ W.T + b)))
    assert torch.allclose(general2.attend(past, u), expected, atol=1e-6)

    simple = cell("simple")
    w = simple.context_attention.weight                                     # [1, D]
    assert w.shape == (1, 4) and simple.context_attention.bias is None
    assert torch.allclose(simple.attend(past, u), by_hand(past, (past @ w.T)[..., 0]), atol=1e-6)
    # "simple" does not read the utterance: one learned salience per context state.
    assert torch.equal(simple.attend(past, u), simple.attend(past, torch.randn(2, 6)))
    assert not torch.allclose(general.attend(past, u), general.attend(past, torch.randn(2, 6)))


def test_attention_kind_changes_the_recurrence_and_is_checked():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(1, 4, 6, generator=g)
    know = {r: torch.randn(1, 4, 5, generator=g) for r in COSMIC_RELATIONS}
    args = (u, know, torch.tensor([[0, 1, 0, 1]]), torch.ones(1, 4, dtype=torch.bool), torch.tensor([2]))
    with torch.no_grad():
        out = {kind: cell(kind)(*args) for kind in ("general", "general2", "simple")}
    # Turn 0 attends to nothing (c_0 = 0); from turn 1 on the kinds differ.
    for kind in ("general2", "simple"):
        assert not torch.allclose(out[kind][0, 1:], out["general"][0, 1:])
    assert "attention='simple'" in repr(cell("simple"))
    with pytest.raises(ValueError, match="attention must be one of"):
        CommonsenseGRU(6, 5, attention="dot")
