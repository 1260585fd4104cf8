import torch

from kgemo.nn import RelationGRU


def gru_by_hand(cell: torch.nn.GRUCell, x, h):
    """torch's GRUCell equations written out (r, z, n gates)."""
    W_ir, W_iz, W_in = cell.weight_ih.chunk(3)
    W_hr, W_hz, W_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


def test_typed_updates_match_hand_computation():
    torch.manual_seed(0)
    layer = RelationGRU(3, 4, ["xReact", "oReact"])
    x = torch.randn(3, 3)          # relation nodes
    h = torch.randn(2, 4)          # two utterance states
    # xReact: 0→0 and 1→0 (mean of two messages); oReact: 2→1. Node 0 gets no oReact, node 1 no xReact.
    edge_index = torch.tensor([[0, 1, 2], [0, 0, 1]])
    edge_type = torch.tensor([0, 0, 1])
    out = layer(x, h, edge_index, edge_type)
    expect0 = gru_by_hand(layer.cells[0], (x[0] + x[1]) / 2, h[0])
    expect1 = gru_by_hand(layer.cells[1], x[2], h[1])
    assert torch.allclose(out[0], expect0, atol=1e-6)
    assert torch.allclose(out[1], expect1, atol=1e-6)


def test_relations_apply_in_order_and_untouched_nodes_keep_state():
    torch.manual_seed(0)
    layer = RelationGRU(2, 2, ["a", "b"])
    x, h = torch.randn(2, 2), torch.randn(3, 2)
    edge_index = torch.tensor([[0, 1], [0, 0]])
    out = layer(x, h, edge_index, torch.tensor([0, 1]))
    first = gru_by_hand(layer.cells[0], x[0], h[0])
    assert torch.allclose(out[0], gru_by_hand(layer.cells[1], x[1], first), atol=1e-6)
    assert torch.equal(out[1:], h[1:])
    assert "relations=['a', 'b']" in repr(layer)
