"""The batch-time cross-domain graph (centre nodes and their edges) and the attention over it."""
import torch

from kgemo.adapt import CentreAttention, CentreAttentionLayer, ClassCentres, centre_graph


def centres():
    c = ClassCentres(dim=2, num_classes=2)
    c.centres[0] = torch.tensor([[0.0, 0.0], [10.0, 0.0]])     # source centres: global ids 0, 1
    c.centres[1] = torch.tensor([[0.0, 3.0], [6.0, 0.0]])      # target centres: global ids 2, 3
    return c


def test_edges_link_the_nearest_centres_of_each_domain():
    h = torch.tensor([[1.0, 0.0], [9.0, 0.0], [4.0, 1.0]])
    domain = torch.tensor([0, 0, 1])
    g = centre_graph(h, domain, centres(), own=1, cross=1)
    assert g["centre"].x.shape == (4, 2) and g["centre"].domain.tolist() == [0, 0, 1, 1]
    assert g["centre"].cls.tolist() == [0, 1, 0, 1]
    own, cross = g["centre", "own_domain", "utterance"], g["centre", "cross_domain", "utterance"]
    # u0 (source): own → source (0, 0) = id 0 (distance 1); cross → target (0, 3) = id 2 (√10 < 5)
    # u1 (source): own → source (10, 0) = id 1 (1); cross → target (6, 0) = id 3 (3)
    # u2 (target): own → target (6, 0) = id 3 (√5 < √20); cross → source (0, 0) = id 0 (√17 < √37)
    assert own.edge_index.tolist() == [[0, 1, 3], [0, 1, 2]]
    assert cross.edge_index.tolist() == [[2, 3, 0], [0, 1, 2]]
    assert torch.allclose(own.distance, torch.tensor([1.0, 1.0, 5 ** 0.5]))
    assert torch.allclose(cross.distance, torch.tensor([10 ** 0.5, 3.0, 17 ** 0.5]))


def test_several_and_no_centres():
    h, domain = torch.tensor([[1.0, 0.0]]), torch.tensor([1])
    g = centre_graph(h, domain, centres(), own=2, cross=0)
    # u0 (target): its two target centres, nearest first: (0, 3) at √10 = id 2, then (6, 0) at 5 = id 3
    assert g["centre", "own_domain", "utterance"].edge_index.tolist() == [[2, 3], [0, 0]]
    assert g["centre", "cross_domain", "utterance"].edge_index.shape == (2, 0)


def test_attention_without_centres_is_attention_to_self_only():
    torch.manual_seed(0)
    att = CentreAttention(4, heads=2, dropout=0.0)
    h = torch.randn(3, 4)
    out = att(h, torch.zeros(0, 4), torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    # one incoming edge (the self-loop): weight 1, the message is W_v h + e_self
    k, v = att.kv(h).view(-1, 2, 2, 2).unbind(1)
    rv = att.rel.weight[0].view(2, 2, 2)[1]
    assert torch.allclose(out, att.out((v + rv).reshape(3, 4)), atol=1e-6)
    assert repr(att) == "CentreAttention(4, heads=2)"


def test_attention_block_shapes_and_gradient_reaches_utterances_not_centres():
    torch.manual_seed(0)
    c = centres()
    layer = CentreAttentionLayer(2, heads=1, dropout=0.0)
    h = torch.randn(3, 2, requires_grad=True)
    g = centre_graph(h, torch.tensor([0, 1, 1]), c, 1, 1)
    ei = torch.cat([g["centre", "own_domain", "utterance"].edge_index, g["centre", "cross_domain", "utterance"].edge_index], 1)
    rel = torch.tensor([1, 1, 1, 2, 2, 2])
    out = layer(h, g["centre"].x, ei, rel)
    assert out.shape == (3, 2)
    out.sum().backward()
    assert h.grad is not None and not c.centres.requires_grad
