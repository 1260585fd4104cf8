import math

import pytest
import torch

from kgemo.nn import KETConceptAttention


def tiny_inputs():
    # Concepts c0, c1 → token t0; c2 → token t1.
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])      # g_c
    value = torch.tensor([[2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])    # v_c
    ctx = torch.tensor([[1.0, 0.0], [0.0, -1.0]])                 # r_t
    edge_index = torch.tensor([[0, 1, 2], [0, 0, 1]])
    confidence = torch.tensor([1.0, 0.5, 1.0])
    affect = torch.tensor([0.2, 0.8, 0.5])
    return value, emb, ctx, edge_index, confidence, affect


def test_matches_hand_computation():
    layer = KETConceptAttention(lambda_init=0.5, learn_lambda=False, concentration=1.0)
    out, alpha = layer(*tiny_inputs(), return_attention_weights=True)
    # e0: rel = 1.0 * |cos([1,0],[1,0])| = 1 → w = .5*1 + .5*.2 = .6
    # e1: rel = 0.5 * |cos([1,0],[0,1])| = 0 → w = .5*0 + .5*.8 = .4
    a0 = 1 / (1 + math.exp(-0.2))
    assert alpha[:2].tolist() == pytest.approx([a0, 1 - a0], abs=1e-6)
    assert alpha[2].item() == pytest.approx(1.0)  # t1 has a single concept
    assert out[0].tolist() == pytest.approx([2 * a0, 4 * (1 - a0)], abs=1e-5)
    assert out[1].tolist() == pytest.approx([1.0, 1.0])


def test_attention_sums_to_one_per_token_and_empty_token_is_zero():
    layer = KETConceptAttention(learn_lambda=False)
    value, emb, _, edge_index, confidence, affect = tiny_inputs()
    ctx = torch.randn(3, 2)  # token t2 has no concept
    out, alpha = layer(value, emb, ctx, edge_index, confidence, affect, return_attention_weights=True)
    sums = torch.zeros(3).index_add_(0, edge_index[1], alpha)
    assert sums[:2].tolist() == pytest.approx([1.0, 1.0])
    assert out[2].abs().sum().item() == 0.0


def test_lambda_extremes_select_relatedness_or_affect():
    value, emb, ctx, edge_index, confidence, affect = tiny_inputs()
    only_affect = KETConceptAttention(lambda_init=0.0, learn_lambda=False, concentration=50.0)
    _, alpha = only_affect(value, emb, ctx, edge_index, confidence, affect, return_attention_weights=True)
    assert alpha[1] > 0.99  # c1 has the higher affect
    only_rel = KETConceptAttention(lambda_init=1.0, learn_lambda=False, concentration=50.0)
    _, alpha = only_rel(value, emb, ctx, edge_index, confidence, affect, return_attention_weights=True)
    assert alpha[0] > 0.99  # c0 is the related one


def test_lambda_is_learned():
    layer = KETConceptAttention(learn_lambda=True)
    out = layer(*tiny_inputs())
    out.sum().backward()
    assert layer.lambda_logit.grad is not None and layer.lambda_logit.grad.abs() > 0
    assert "lambda=0.500" in repr(layer)


def test_paper_relatedness_is_cosine_min_max_normalised_per_token():
    value, emb, ctx, edge_index, confidence, affect = tiny_inputs()
    # Three concepts on t0 with |cos| 1, 0 and 1/√2; confidences must not matter in the paper variant.
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    value = torch.eye(4, 2)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 0, 1]])
    confidence = torch.tensor([0.1, 1.0, 0.3, 1.0])
    affect = torch.tensor([0.0, 0.0, 0.0, 0.5])
    layer = KETConceptAttention(lambda_init=0.5, learn_lambda=False, relatedness="paper")
    w = layer.edge_scores(emb, ctx, edge_index, confidence, affect)
    # rel = (|cos| - min) / (max - min) over t0: 1, 0, 1/√2; t1 has one concept → rel 0, w = .5 * .5.
    assert w.tolist() == pytest.approx([0.5, 0.0, 0.5 / math.sqrt(2), 0.25], abs=1e-6)
    code = KETConceptAttention(lambda_init=0.5, learn_lambda=False, relatedness="code")
    assert code.edge_scores(emb, ctx, edge_index, confidence, affect).tolist() == pytest.approx(
        [0.05, 0.0, 0.15 / math.sqrt(2), 0.25 + 0.5 * 1.0 / math.sqrt(2)], abs=1e-6)
    with pytest.raises(ValueError, match="relatedness"):
        KETConceptAttention(relatedness="both")
