"""Evidence faithfulness on hand-made cases: models that only listen to the concept "joy" (and to the text).

The utterance "happy dog sad" (FakeKB, 2 concepts per word, self concepts on) has words happy, dog, sad and five
concepts: joy, smile (from happy), pet, happy (from dog), cry (from sad); the words' own concepts are not evidence.
"""
import math

import numpy as np
import pytest
import torch
from fake_kb import CONCEPTS, FakeKB
from torch import nn

from kgemo.annotate.faithfulness import concept_effects, evidence_faithfulness, evidence_only
from kgemo.annotate.occlusion import occlusion_effects
from kgemo.data import Conversation, Utterance, label_space
from kgemo.errors import KgemoError
from kgemo.graphs import get_builder
from kgemo.pipeline import InputPipeline

JOY = CONCEPTS.index("joy")
EMOTION = label_space("meld", "emotion")


def p(logit: float) -> float:
    """p(joy) when joy's logit is ``logit`` and the six other classes' are 0."""
    return math.exp(logit) / (math.exp(logit) + 6)


class ListensToJoy(nn.Module):
    """Class 'joy' gets logit 2 when the concept "joy" is linked to one of the utterance's tokens, else 0; the
    evidence weights say so (α 1 for joy's edges, 0.1 for the others; β uniform)."""

    def __init__(self):
        super().__init__()
        self.label_spaces = {"emotion": EMOTION}

    @staticmethod
    def utterance_of_token(batch):
        tok_utt = torch.empty(batch["token"].num_nodes, dtype=torch.long)
        t = batch["token", "in", "utterance"].edge_index
        tok_utt[t[0]] = t[1]
        return tok_utt

    def joy_logit(self, batch):
        link = batch["concept", "linked", "token"]
        kid = batch["concept"].kid[link.edge_index[0]]
        tok_utt = self.utterance_of_token(batch)
        n = batch["utterance"].num_nodes
        return 2.0 * (torch.zeros(n).index_add_(0, tok_utt[link.edge_index[1]], (kid == JOY).float()) > 0)

    def forward_explain(self, batch):
        logits = torch.zeros(batch["utterance"].num_nodes, 7)
        logits[:, EMOTION.index("joy")] = self.joy_logit(batch)
        kid = batch["concept"].kid[batch["concept", "linked", "token"].edge_index[0]]
        alpha = torch.where(kid == JOY, 1.0, 0.1)
        beta = torch.ones(batch["token"].num_nodes)
        return {"emotion": logits}, {"concept_edge_weight": alpha, "token_weight": beta}

    def forward(self, batch):
        return self.forward_explain(batch)[0]


class ListensToJoyAndText(ListensToJoy):
    """Joy's logit: 2 for the concept joy, + 1 when the utterance's sentence embedding is not zero, + 1 when one of
    its words' embeddings is not zero."""

    def joy_logit(self, batch):
        n = batch["utterance"].num_nodes
        sentence = (batch["utterance"].x.abs().sum(-1) > 0).float()
        word = batch["token"].x.abs().sum(-1) > 0
        words = (torch.zeros(n).index_add_(0, self.utterance_of_token(batch), word.float()) > 0).float()
        return super().joy_logit(batch) + sentence + words


class Misleading(ListensToJoy):
    """Listens to joy, but its attention favours every other concept: only occlusion can find joy."""

    def forward_explain(self, batch):
        logits, ev = super().forward_explain(batch)
        kid = batch["concept"].kid[batch["concept", "linked", "token"].edge_index[0]]
        return logits, {**ev, "concept_edge_weight": torch.where(kid == JOY, 0.01, 1.0)}


@pytest.fixture
def pipe(tiny_encoder):
    return InputPipeline(get_builder("concept", concepts_per_token=2, self_concept=True), tiny_encoder,
                         {"conceptnet": FakeKB()}, {"conceptnet": "fake"}, "tiny")


def conversation(*texts, emotion="joy", split=None):
    """One speaker's utterances ``texts``, all with gold ``emotion``; a MELD conversation of ``split`` if given."""
    return Conversation("c", [Utterance(t, "A", {"emotion": emotion}) for t in texts],
                        dataset="meld" if split else None, split=split)


def test_removing_the_evidence_removes_the_prediction_and_random_concepts_do_less(pipe):
    s = evidence_faithfulness(ListensToJoy(), pipe, [conversation("happy dog sad")], top=3, draws=200,
                              min_concepts=4)
    drop = p(2) - 1 / 7                                       # joy removed: all logits 0
    assert s.utterances == 1 and s.affective_utterances == 1
    assert s.concept_comprehensiveness == pytest.approx(drop)
    assert s.concept_sufficiency == pytest.approx(0.0)         # only the evidence kept: joy still there
    # Random 3 of 5 concepts hold joy with probability 3/5 (binomial, 200 draws: sd 0.035 of the share).
    assert s.concept_comprehensiveness_random == pytest.approx(0.6 * drop, abs=0.15 * drop)
    assert s.concept_sufficiency_random == pytest.approx(0.4 * drop, abs=0.15 * drop)
    assert s.concept_comprehensiveness_ratio == pytest.approx(drop / s.concept_comprehensiveness_random)
    # The model ignores the text: keeping the evidence without it changes nothing, keeping nothing removes joy.
    assert s.eraser_sufficiency == pytest.approx(0.0)
    assert s.eraser_sufficiency_empty == pytest.approx(drop)
    # Top 3 by weight: joy (1.0), then the 0.1 ties in id order: happy, smile. Mean valence − 0.5 =
    # (0.48 + 0.5 + 0) / 3 > 0, the sign of the gold "joy".
    assert s.affective_agreement == 100.0


def test_eraser_sufficiency_removes_the_utterances_text(pipe):
    s = evidence_faithfulness(ListensToJoyAndText(), pipe, [conversation("happy dog sad")], top=3, draws=5,
                              min_concepts=4)
    # Whole input: joy + sentence + words = logit 4.
    assert s.concept_comprehensiveness == pytest.approx(p(4) - p(2))   # joy unlinked, text kept
    assert s.concept_sufficiency == pytest.approx(0.0)                 # joy and text kept
    assert s.eraser_sufficiency == pytest.approx(p(4) - p(2))          # joy kept, text removed
    assert s.eraser_sufficiency_empty == pytest.approx(p(4) - 1 / 7)   # nothing kept


def test_evidence_only_keeps_the_evidence_and_blanks_the_words(pipe):
    conv = conversation("happy dog sad", "sad dog")
    g = pipe.graphs([conv], {"emotion": EMOTION})[0]
    before = {k: v.clone() for k, v in g["concept", "linked", "token"].items()}
    joy_node = int((g["concept"].kid == JOY).nonzero())
    h = evidence_only(g, 0, np.array([joy_node]), pipe.transform)

    assert torch.equal(g["concept", "linked", "token"].edge_index, before["edge_index"])  # g untouched
    assert torch.all(h["utterance"].x[0] == 0) and torch.equal(h["utterance"].x[1], g["utterance"].x[1])
    tok_utt = ListensToJoy.utterance_of_token(h)
    # Utterance 0 keeps one word, "happy" (the one that reaches joy), blank; "dog" and "sad" are gone.
    assert h["token"].kid[tok_utt == 0].tolist() == [CONCEPTS.index("happy")]
    blank = (tok_utt == 0).nonzero().flatten()
    assert torch.all(h["token"].x[blank] == 0) and torch.all(h["token"].vad[blank] == 0.5)
    assert not h["token"].vad_known[blank].any()
    link = h["concept", "linked", "token"]
    mine = tok_utt[link.edge_index[1]] == 0
    assert h["concept"].kid[link.edge_index[0, mine]].tolist() == [JOY] and not link.is_self[mine].any()
    # Utterance 1 ("sad dog"): its words, their features and its 5 edges (2 self) as they were.
    assert h["token"].kid[tok_utt == 1].tolist() == [CONCEPTS.index("sad"), CONCEPTS.index("dog")]
    assert torch.all(h["token"].x[tok_utt == 1] != 0)

    def edges(graph, i):
        e = graph["concept", "linked", "token"]
        m = ListensToJoy.utterance_of_token(graph)[e.edge_index[1]] == i
        return sorted(zip(graph["concept"].kid[e.edge_index[0, m]].tolist(),
                          graph["token"].kid[e.edge_index[1, m]].tolist(), e.is_self[m].tolist(), e.weight[m].tolist()))

    assert edges(h, 1) == edges(g, 1) and len(edges(h, 1)) == 5
    # Nothing kept: utterance 0 has no word left.
    empty = evidence_only(g, 0, np.zeros(0, np.int64), pipe.transform)
    assert int((ListensToJoy.utterance_of_token(empty) == 0).sum()) == 0


def test_affective_agreement_counts_only_the_scored_utterances(pipe):
    # "sad" has one concept (cry): fewer than min_concepts, so it is not scored — and its agreement (cry is
    # negative, the gold sadness too: 100% top and random) must not enter the means.
    conv = Conversation("c", [Utterance("happy dog sad", "A", {"emotion": "joy"}),
                              Utterance("sad", "B", {"emotion": "sadness"})])
    s = evidence_faithfulness(ListensToJoy(), pipe, [conv], top=1, draws=400, min_concepts=4)
    assert s.utterances == 1 and s.affective_utterances == 1
    assert s.affective_agreement == 100.0                       # top 1: joy, valence 0.98
    # Random 1 of 5: joy and happy are positive, smile and pet unknown (0.5: no sign), cry negative → 40%
    # (binomial sd 2.4 points); counted with "sad" it would be (40 + 100) / 2 = 70.
    assert s.affective_agreement_random == pytest.approx(40.0, abs=10.0)


def test_self_edges_are_never_evidence(pipe):
    # One real concept (joy) + the word itself: fewer than top=3 concepts, so nothing is scored.
    s = evidence_faithfulness(ListensToJoy(), pipe, [conversation("happy")], top=3)
    assert s.utterances == 0 and s.affective_utterances == 0
    assert np.isnan(s.concept_comprehensiveness_ratio)


def test_occlusion_ranks_on_another_split_than_the_scored_one(pipe):
    test = [conversation("happy dog sad")]
    model = Misleading()
    by_attention = evidence_faithfulness(model, pipe, test, top=1, draws=20, min_concepts=2)
    assert by_attention.concept_comprehensiveness == pytest.approx(0.0)   # it removed a concept that did nothing
    in_sample = evidence_faithfulness(model, pipe, test, top=1, draws=20, min_concepts=2, rank="occlusion_in_sample")
    assert in_sample.concept_comprehensiveness == pytest.approx(p(2) - 1 / 7)  # it removed joy, found on test
    assert in_sample.settings["rank"] == "occlusion_in_sample"
    # Ranked on a split where joy never occurs ("sad": cry only, no effect), joy is not found on test: the
    # ranking did not look at the scored utterance. Only cry (1 of the 5 concepts) had an estimate.
    blind = evidence_faithfulness(model, pipe, test, top=1, draws=20, min_concepts=2, rank="occlusion",
                                  rank_conversations=[conversation("sad")])
    assert blind.concept_comprehensiveness == pytest.approx(0.0)
    assert blind.rank_coverage == pytest.approx(1 / 5)
    # Ranked on a split where joy moves the prediction ("happy": joy and smile), it is.
    seen = evidence_faithfulness(model, pipe, test, top=1, draws=20, min_concepts=2, rank="occlusion",
                                 rank_conversations=[conversation("happy", emotion="sadness")])
    assert seen.concept_comprehensiveness == pytest.approx(p(2) - 1 / 7)
    assert seen.rank_coverage == pytest.approx(2 / 5)
    assert seen.settings["rank_conversations"] == 1 and seen.settings["rank_utterances"] == 1


def test_concept_effects_average_per_concept_and_predicted_label(pipe):
    # Two ranking utterances link joy, both predicted joy (gold labels are not read): its mean effect is the drop.
    effects = concept_effects(ListensToJoy(), pipe, [conversation("happy", "happy dog", emotion="anger")])
    assert effects.utterances == 2
    total, count = effects.by_label[(JOY, EMOTION.index("joy"))]
    assert count == 2 and total == pytest.approx(2 * (p(2) - 1 / 7))
    score, seen = effects.score(np.array([JOY, CONCEPTS.index("smile"), CONCEPTS.index("cry")]), EMOTION.index("joy"))
    assert score == pytest.approx([p(2) - 1 / 7, 0.0, 0.0]) and seen.tolist() == [True, True, False]
    # Another predicted label backs off to the concept's mean over all labels.
    assert effects.score(np.array([JOY]), EMOTION.index("anger"))[0] == pytest.approx([p(2) - 1 / 7])


def test_same_split_ranking_is_refused(pipe):
    test = [conversation("happy dog sad", split="test")]
    with pytest.raises(KgemoError, match="rank_conversations"):
        evidence_faithfulness(Misleading(), pipe, test, rank="occlusion")
    with pytest.raises(KgemoError, match="same split"):
        evidence_faithfulness(Misleading(), pipe, test, rank="occlusion",
                              rank_conversations=[conversation("sad", split="test")])
    with pytest.raises(KgemoError, match="same conversations"):
        evidence_faithfulness(Misleading(), pipe, [conversation("happy dog sad")], rank="occlusion",
                              rank_conversations=[conversation("happy dog sad")])
    with pytest.raises(KgemoError, match="takes no rank_conversations"):
        evidence_faithfulness(Misleading(), pipe, test, rank_conversations=[conversation("sad", split="dev")])


def test_occlusion_effects_of_the_concept_the_prediction_rests_on(pipe):
    g = pipe.graphs([conversation("happy dog sad")], {"emotion": EMOTION})[0]
    link = g["concept", "linked", "token"]
    src = link.edge_index[0].numpy()
    model = ListensToJoy()
    effects = occlusion_effects(model, g, pipe.transform, "emotion",
                                torch.softmax(model(pipe.transform(g.clone()))["emotion"], -1),
                                {0: np.unique(src)}, np.zeros(len(src), np.int64), src, ~link.is_self.numpy())
    kids = g["concept"].kid.numpy()[np.unique(src)]
    assert effects[0][list(kids).index(JOY)] == pytest.approx(p(2) - 1 / 7)
    assert np.allclose(np.delete(effects[0], list(kids).index(JOY)), 0.0)


def test_evidence_is_scored_on_the_label_and_probabilities_the_annotator_shows(pipe):
    from kgemo.annotate.calibration import Calibration

    # Offsets that favour neutral by 3: with joy linked the model says joy (logit 2) but the annotator shows
    # neutral (3 > 2), so unlinking joy *raises* the shown label's probability: a negative drop.
    neutral, joy = EMOTION.index("neutral"), EMOTION.index("joy")
    bias = [0.0] * 7
    bias[neutral] = 3.0
    cal = Calibration({"emotion": 2.0}, biases={"emotion": bias})
    shown = lambda z_joy: math.exp(3 / 2) / (math.exp(3 / 2) + math.exp(z_joy / 2) + 5)  # noqa: E731
    test = [conversation("happy dog sad")]
    raw = evidence_faithfulness(ListensToJoy(), pipe, test, top=3, draws=5, min_concepts=4)
    seen = evidence_faithfulness(ListensToJoy(), pipe, test, top=3, draws=5, min_concepts=4, calibration=cal)
    assert raw.concept_comprehensiveness == pytest.approx(p(2) - 1 / 7)
    assert seen.concept_comprehensiveness == pytest.approx(shown(2) - shown(0))
    assert seen.concept_comprehensiveness < 0
    # Held-out occlusion ranks by effects on the shown label too: joy's effect on "neutral", none on "joy".
    effects = concept_effects(ListensToJoy(), pipe, [conversation("happy", emotion="anger")], calibration=cal)
    assert (JOY, joy) not in effects.by_label
    total, count = effects.by_label[(JOY, neutral)]
    assert count == 1 and total == pytest.approx(shown(2) - shown(0))
