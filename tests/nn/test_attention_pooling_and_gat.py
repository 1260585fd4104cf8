import pytest
import torch

from kgemo.nn import AttentionPooling, KnowledgeGAT


def test_attention_pooling_weights_and_empty_group():
    torch.manual_seed(0)
    pool = AttentionPooling(4)
    x = torch.randn(5, 4)
    index = torch.tensor([0, 0, 0, 2, 2])  # group 1 is empty
    z, beta = pool(x, index, num_groups=3)
    assert z.shape == (3, 4)
    assert torch.zeros(3).index_add_(0, index, beta).tolist() == pytest.approx([1.0, 0.0, 1.0], abs=1e-6)
    assert torch.allclose(z[0], (beta[:3, None] * x[:3]).sum(0), atol=1e-6)
    assert z[1].abs().sum() == 0


def test_attention_pooling_uniform_when_scores_equal():
    pool = AttentionPooling(2)
    x = torch.ones(4, 2)
    z, beta = pool(x, torch.zeros(4, dtype=torch.long), 1)
    assert beta.tolist() == pytest.approx([0.25] * 4)
    assert z[0].tolist() == pytest.approx([1.0, 1.0])


def test_knowledge_gat_shapes_attention_and_self_edge():
    torch.manual_seed(0)
    gat = KnowledgeGAT(6, 8, num_relations=3, heads=2, dropout=0.0).eval()
    x_c, x_t = torch.randn(3, 6), torch.randn(2, 6)
    edge_index = torch.tensor([[0, 1, 2], [0, 0, 0]])  # token 1 has no concepts
    out, att = gat(x_c, x_t, edge_index, torch.ones(3), torch.zeros(3), torch.tensor([0, 1, 2]),
                   return_attention_weights=True)
    assert out.shape == (2, 8) and att.shape == (3,)
    # Token 0 shares its attention between 3 concepts and itself, so concept weights sum to < 1.
    assert 0 < att.sum().item() < 1
    # Token 1 only attends to itself: changing the concepts must not change it.
    out2 = gat(x_c * 5, x_t, edge_index, torch.ones(3), torch.zeros(3), torch.tensor([0, 1, 2]))
    assert torch.allclose(out[1], out2[1], atol=1e-6)
    assert not torch.allclose(out[0], out2[0])
