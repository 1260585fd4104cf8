"""predict_batches(explain=True) goes through KGModel.forward_explain and gives the same probabilities."""
import torch
from annotate_data import CONVERSATION

from kgemo import Conversation, Utterance
from kgemo.models.predict import predict_batches


def test_explain_does_not_change_probabilities_and_uses_forward_explain(ket_annotator):
    model = ket_annotator.model
    conv = Conversation("c", [Utterance(t, s) for s, t in CONVERSATION])
    graphs = ket_annotator.pipeline.graphs([conv], {}, features=[ket_annotator.pipeline.encode([conv])[0]])
    calls = []
    original = model.forward_explain

    def counting(batch):
        calls.append(1)
        return original(batch)

    model.forward_explain = counting
    (_, with_ev, ev), = predict_batches(model, graphs, ket_annotator.transform, explain=True)
    (_, without, none), = predict_batches(model, graphs, ket_annotator.transform, explain=False)
    assert calls == [1] and none == {}
    assert torch.allclose(with_ev["emotion"], without["emotion"], atol=1e-6)
    assert set(ev) == {"concept_edge_weight", "token_weight"}


def test_default_forward_explain_is_forward_then_explain(joint_model_dir, tiny_encoder):
    from kgemo.annotate import Annotator
    from kgemo.graphs import batches

    ann = Annotator.from_pretrained(joint_model_dir, device="cpu", encoder=tiny_encoder, events=None)
    conv = Conversation("c", [Utterance(t, s) for s, t in CONVERSATION])
    graphs = ann.pipeline.graphs([conv], {}, features=ann.pipeline.encode([conv]))
    batch = next(batches(graphs, 1))
    logits, ev = ann.model.forward_explain(batch)
    assert ev == {} and set(logits) == {"emotion", "sentiment"}
    for task, value in ann.model(batch).items():
        assert torch.equal(logits[task], value)


def test_ket_forward_explain_is_one_pass_with_the_same_outputs(ket_annotator):
    from kgemo.graphs import batches

    model = ket_annotator.model
    conv = Conversation("c", [Utterance(t, s) for s, t in CONVERSATION])
    graphs = ket_annotator.pipeline.graphs([conv], {}, features=ket_annotator.pipeline.encode([conv]))
    batch = next(batches(graphs, 1, ket_annotator.transform))
    passes = []
    original = model._encode
    model._encode = lambda b: passes.append(1) or original(b)
    logits, ev = model.forward_explain(batch)
    assert passes == [1]
    assert torch.equal(logits["emotion"], model(batch)["emotion"])
    for k, v in model.explain(batch).items():
        assert torch.equal(ev[k], v)
