"""Evidence faithfulness on a hand-made case: a model that only listens to one concept."""
import math

import numpy as np
import pytest
import torch
from fake_kb import CONCEPTS, FakeKB
from torch import nn

from kgemo.annotate.faithfulness import evidence_faithfulness
from kgemo.data import Conversation, Utterance, label_space
from kgemo.graphs import get_builder
from kgemo.pipeline import InputPipeline

JOY = CONCEPTS.index("joy")


class ListensToJoy(nn.Module):
    """Class 'joy' gets logit 2 when the concept "joy" is linked to one of the utterance's tokens, else 0; the
    evidence weights say so (α 1 for joy's edges, 0.1 for the others; β uniform)."""

    def __init__(self):
        super().__init__()
        self.label_spaces = {"emotion": label_space("meld", "emotion")}

    def forward_explain(self, batch):
        link = batch["concept", "linked", "token"]
        kid = batch["concept"].kid[link.edge_index[0]]
        tok_utt = torch.empty(batch["token"].num_nodes, dtype=torch.long)
        t = batch["token", "in", "utterance"].edge_index
        tok_utt[t[0]] = t[1]
        n = batch["utterance"].num_nodes
        has_joy = torch.zeros(n).index_add_(0, tok_utt[link.edge_index[1]], (kid == JOY).float()) > 0
        logits = torch.zeros(n, 7)
        logits[:, self.label_spaces["emotion"].index("joy")] = 2.0 * has_joy
        alpha = torch.where(kid == JOY, 1.0, 0.1)
        beta = torch.ones(batch["token"].num_nodes)
        return {"emotion": logits}, {"concept_edge_weight": alpha, "token_weight": beta}

    def forward(self, batch):
        return self.forward_explain(batch)[0]


def test_removing_the_evidence_removes_the_prediction_and_random_concepts_do_less(tiny_encoder):
    pipe = InputPipeline(get_builder("concept", concepts_per_token=2, self_concept=True), tiny_encoder,
                         {"conceptnet": FakeKB()}, {"conceptnet": "fake"}, "tiny")
    # Tokens happy, dog, sad → concepts joy, smile (happy); pet, happy (dog); cry (sad): five, joy the evidence.
    conv = Conversation("c", [Utterance("happy dog sad", "A", {"emotion": "joy"})])
    s = evidence_faithfulness(ListensToJoy(), pipe, [conv], top=3, draws=50, min_concepts=4)
    sigma = 1 / (1 + math.exp(-2))
    base = math.exp(2) / (math.exp(2) + 6)                    # p(joy) with joy present: softmax over 7 classes
    assert s.utterances == 1 and s.affective_utterances == 1
    assert s.comprehensiveness == pytest.approx(base - 1 / 7)  # joy removed: all logits 0
    assert s.sufficiency == pytest.approx(0.0)                 # only the evidence kept: joy still there
    # Random 3 of 5 concepts hold joy with probability 3/5: expected drop 3/5 of the full drop.
    assert s.comprehensiveness_random == pytest.approx(0.6 * (base - 1 / 7), rel=0.25)
    assert s.sufficiency_random == pytest.approx(0.4 * (base - 1 / 7), rel=0.35)
    assert s.comprehensiveness_ratio > 1.3 and sigma > base
    # Top-3 by weight: joy (1.0) then the first two 0.1 ones in id order (happy 1.0, smile unknown 0.5):
    # mean valence − 0.5 = (0.48 + 0.5 + 0) / 3 > 0, the sign of the gold "joy".
    assert s.affective_agreement == 100.0
    assert 0 <= s.affective_agreement_random <= 100


def test_self_edges_are_never_evidence(tiny_encoder):
    pipe = InputPipeline(get_builder("concept", concepts_per_token=1, self_concept=True), tiny_encoder,
                         {"conceptnet": FakeKB()}, {"conceptnet": "fake"}, "tiny")
    conv = Conversation("c", [Utterance("happy", "A", {"emotion": "joy"})])
    # One real concept (joy) + the word itself: fewer than top=3 concepts, so nothing is scored.
    s = evidence_faithfulness(ListensToJoy(), pipe, [conv], top=3)
    assert s.utterances == 0 and s.affective_utterances == 0
    assert np.isnan(s.comprehensiveness_ratio)


def test_occlusion_finds_the_concept_the_prediction_rests_on(tiny_encoder):
    pipe = InputPipeline(get_builder("concept", concepts_per_token=2, self_concept=True), tiny_encoder,
                         {"conceptnet": FakeKB()}, {"conceptnet": "fake"}, "tiny")
    conv = Conversation("c", [Utterance("happy dog sad", "A", {"emotion": "joy"})])
    # The attention of this model also favours joy; make it favour everything else, so only occlusion can tell.
    class Misleading(ListensToJoy):
        def forward_explain(self, batch):
            logits, ev = super().forward_explain(batch)
            kid = batch["concept"].kid[batch["concept", "linked", "token"].edge_index[0]]
            return logits, {**ev, "concept_edge_weight": torch.where(kid == JOY, 0.01, 1.0)}

    base = math.exp(2) / (math.exp(2) + 6)
    by_attention = evidence_faithfulness(Misleading(), pipe, [conv], top=1, draws=20, min_concepts=2)
    by_occlusion = evidence_faithfulness(Misleading(), pipe, [conv], top=1, draws=20, min_concepts=2,
                                         rank="occlusion")
    assert by_attention.comprehensiveness == pytest.approx(0.0)            # it removed a concept that did nothing
    assert by_occlusion.comprehensiveness == pytest.approx(base - 1 / 7)   # it removed joy
    from kgemo.annotate.occlusion import occlusion_effects

    g = pipe.graphs([conv], {"emotion": label_space("meld", "emotion")})[0]
    link = g["concept", "linked", "token"]
    src = link.edge_index[0].numpy()
    effects = occlusion_effects(ListensToJoy(), g, pipe.transform, "emotion",
                                torch.softmax(ListensToJoy()(pipe.transform(g.clone()))["emotion"], -1),
                                {0: np.unique(src)}, np.zeros(len(src), np.int64), src, ~link.is_self.numpy())
    kids = g["concept"].kid.numpy()[np.unique(src)]
    assert effects[0][list(kids).index(JOY)] == pytest.approx(base - 1 / 7)
    assert np.allclose(np.delete(effects[0], list(kids).index(JOY)), 0.0)
