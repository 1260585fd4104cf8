import math

import pytest
import torch

from kgemo.graphs import context_edges
from kgemo.nn import ContextAttention, ContextTransformer


def dense_reference(layer: ContextAttention, h, edge_index, rel_pos, same):
    """The same attention written densely: a full score matrix masked to the edges."""
    n, H, D = h.size(0), layer.heads, layer.hidden // layer.heads
    q, k, v = layer.qkv(h).view(n, 3, H, D).unbind(1)
    scores = torch.full((H, n, n), -math.inf)
    for e in range(edge_index.size(1)):
        j, i = edge_index[:, e].tolist()
        b = layer.bias(layer.bucket(rel_pos[e:e + 1], same[e:e + 1]))[0]
        for hh in range(H):
            scores[hh, i, j] = (q[i, hh] * k[j, hh]).sum() / math.sqrt(D) + b[hh]
    att = torch.softmax(scores, -1).nan_to_num(0.0)
    out = torch.einsum("hij,jhd->ihd", att, v).reshape(n, -1)
    return layer.out(out)


@pytest.mark.parametrize("past_only", [False, True])
def test_sparse_attention_matches_dense(past_only):
    torch.manual_seed(0)
    speakers = torch.tensor([0, 1, 0, 0, 1]).numpy()
    edge_index, rel, same = context_edges(speakers, window=2, past_only=past_only)
    layer = ContextAttention(8, heads=2, max_distance=3, dropout=0.0)
    torch.nn.init.normal_(layer.bias.weight)  # non-zero bias so it is tested too
    h = torch.randn(5, 8)
    layer.eval()
    assert torch.allclose(layer(h, edge_index, rel, same), dense_reference(layer, h, edge_index, rel, same),
                          atol=1e-5)


def test_context_edges_window_and_speaker_flags():
    edge_index, rel, same = context_edges(torch.tensor([0, 1, 0]).numpy(), window=1)
    pairs = sorted(zip(edge_index[0].tolist(), edge_index[1].tolist()))
    # j → i with |i - j| ≤ 1, self loops included.
    assert pairs == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2)]
    for (j, i), r, s in zip(edge_index.t().tolist(), rel.tolist(), same.tolist()):
        assert r == i - j
        assert s == ([0, 1, 0][i] == [0, 1, 0][j])
    past, rel_p, _ = context_edges(torch.tensor([0, 1, 0]).numpy(), window=5, past_only=True)
    assert (rel_p >= 0).all() and past.size(1) == 6  # 3 self + (0→1, 0→2, 1→2)


def test_conversations_in_a_batch_do_not_attend_to_each_other():
    torch.manual_seed(0)
    model = ContextTransformer(8, layers=2, heads=2, dropout=0.0).eval()
    ei, rel, same = context_edges(torch.tensor([0, 1, 0]).numpy(), window=4)
    h1, h2 = torch.randn(3, 8), torch.randn(3, 8)
    alone = model(h1, ei, rel, same)
    # Second conversation appended with shifted edges: the first one's outputs must not change.
    both = model(torch.cat([h1, h2]), torch.cat([ei, ei + 3], 1), torch.cat([rel, rel]), torch.cat([same, same]))
    assert torch.allclose(both[:3], alone, atol=1e-6)


def test_linear_edges_for_long_conversations():
    ei, _, _ = context_edges(torch.zeros(10_000, dtype=torch.long).numpy(), window=8)
    assert ei.size(1) < 10_000 * 17  # N (2W + 1) minus the borders, not N²


@pytest.mark.parametrize("layers", [1, 3])
def test_targets_get_the_full_stacks_output_from_their_receptive_field_only(layers):
    torch.manual_seed(0)
    model = ContextTransformer(8, layers=layers, heads=2, dropout=0.0).eval()
    ei, rel, same = context_edges(torch.tensor([0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]).numpy(), window=2)
    h = torch.randn(12, 8)
    full = model(h, ei, rel, same)
    targets = torch.tensor([0, 6, 11])
    assert torch.allclose(model(h, ei, rel, same, targets=targets)[targets], full[targets], atol=1e-6)
    # Fewer messages passed: row 9, more than three windows of 2 from target 0, is not the stack's output.
    if layers == 3:
        assert not torch.allclose(model(h, ei, rel, same, targets=torch.tensor([0]))[9], full[9], atol=1e-3)
