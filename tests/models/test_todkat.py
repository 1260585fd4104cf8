"""TODKAT: the selector is one valid distribution per utterance and relation over retrieved and generated tails,
its winner is inspectable, the topic layer and fusion behave (past-only topics too), a smoke train, save/load."""
import csv

import pytest
import torch
from commonsense_data import (SPACES, chance_ceiling, event_pipeline, event_prepared, labels_and_predictions,
                              tiny_comet_bart)
from tiny_data import tiny_conversations

from kgemo.atomic_relations import TODKAT_RELATIONS
from kgemo.graphs import batches
from kgemo.metrics import weighted_f1
from kgemo.models import TODKAT, TodkatConfig, load_model, save_model
from kgemo.models.predict import predict
from kgemo.models.todkat import winners
from kgemo.nn import KnowledgeSelector, TopicLayer
from kgemo.training import ExperimentConfig, TrainConfig, fit

SMALL = {"hidden": 32, "heads": 2, "context_layers": 1, "topics": 4, "attention_dim": 8, "dropout": 0.0}
RELATIONS = list(TODKAT_RELATIONS)


def model(data, **options):
    torch.manual_seed(0)
    dims = {k: v for k, v in data.pipeline.model_dims().items() if k in TodkatConfig.__dataclass_fields__}
    return TODKAT(TodkatConfig(**{**SMALL, **options}, **dims), data.label_spaces).eval()


def first_batch(data, n=4):
    return next(batches(data.graphs["train"], n, data.pipeline.transform))


@pytest.fixture
def data(tiny_encoder):
    return event_prepared(tiny_encoder, sizes=(12, 4, 4), window=2, relations=RELATIONS)


@pytest.fixture
def both_sources(tiny_encoder, tmp_path):
    """Retrieved ATOMIC tails and tiny-COMET generations in one graph."""
    from kgemo.knowledge.comet import CometGenerator

    comet = CometGenerator(tiny_comet_bart(tmp_path / "comet"), device="cpu", max_new_tokens=3)
    return event_prepared(tiny_encoder, sizes=(4, 1, 1), comet=comet, window=2, relations=RELATIONS,
                          generated=True)


def test_selector_is_a_valid_distribution_over_both_sources(both_sources):
    batch = first_batch(both_sources)
    ev = model(both_sources).explain(batch)
    n = batch["utterance"].num_nodes
    for rel in RELATIONS:
        e, g = batch["event", rel, "utterance"], batch["generated", rel, "utterance"]
        a_e, a_g = ev[f"event_weight/{rel}"], ev[f"generated_weight/{rel}"]
        assert a_e.shape == (e.edge_index.size(1),) and a_g.shape == (g.edge_index.size(1),)
        assert g.edge_index.size(1) > 0 and (a_e >= 0).all() and (a_g >= 0).all()
        total = torch.zeros(n).index_add_(0, e.edge_index[1], a_e).index_add_(0, g.edge_index[1], a_g)
        assert torch.allclose(total, torch.ones(n), atol=1e-5)
        # The winner: its source and edge carry the utterance's largest weight.
        src, edge = ev[f"selected_source/{rel}"], ev[f"selected_edge/{rel}"]
        assert set(src.tolist()) <= {0, 1}
        for i in range(n):
            weight = (a_e if src[i] == 0 else a_g)[edge[i]]
            dst = (e if src[i] == 0 else g).edge_index[1, edge[i]]
            assert dst == i
            mine = torch.cat([a_e[e.edge_index[1] == i], a_g[g.edge_index[1] == i]])
            assert weight == mine.max()
    assert torch.allclose(ev["fusion_weight"].sum(-1), torch.ones(n), atol=1e-5)
    assert ev["fusion_weight"].shape == (n, len(RELATIONS) + 2)
    assert torch.allclose(ev["topic_mixture"].sum(-1), torch.ones(n), atol=1e-5)


def test_selector_sources_priors_and_empty_utterances():
    sel = KnowledgeSelector(4, 3, 5, attention_dim=6, sources=2)
    q = torch.randn(3, 4)
    x_a, x_b = torch.randn(4, 3), torch.randn(2, 3)
    ei_a = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])                    # utterance 2 has no candidate
    ei_b = torch.tensor([[0, 1], [0, 1]])
    out, (a, b), has = sel(q, [(x_a, ei_a, torch.tensor([0.9, 0.1, 0.5, 0.5])), (x_b, ei_b, None)])
    assert out.shape == (3, 5) and has.tolist() == [True, True, False]
    assert torch.equal(out[2], torch.zeros(5))
    assert torch.allclose(a[:2].sum() + b[0], torch.tensor(1.0)) and torch.allclose(a[2:].sum() + b[1],
                                                                                    torch.tensor(1.0))
    # The prior's weight starts at 1: the more similar head wins among otherwise equal keys.
    same = torch.zeros(2, 3)
    _, (a2,), _ = KnowledgeSelector(4, 3, 5, sources=1)(q[:1], [(same, torch.tensor([[0, 1], [0, 0]]),
                                                                torch.tensor([0.9, 0.1]))])
    assert a2[0] > a2[1]
    # An absent source is allowed; a wrong number of sources is not.
    out, (a3, b3), _ = sel(q, [None, (x_b, ei_b, None)])
    assert a3.numel() == 0 and torch.allclose(b3, torch.ones(2))
    with pytest.raises(ValueError, match="2 source"):
        sel(q, [None])
    assert "sources=2" in repr(sel)


def test_winners_by_hand():
    a = torch.tensor([0.2, 0.8, 1.0])          # source 0: two edges into utterance 0, one into utterance 1
    b = torch.tensor([0.0, 0.5, 0.5])          # source 1: utterance 1 (tie with nothing), utterance 2 twice
    src, edge = winners([a, b], [torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2])], 4)
    assert src.tolist() == [0, 0, 1, -1] and edge.tolist() == [1, 2, 1, -1]
    src, edge = winners([torch.zeros(0), torch.zeros(0)], [torch.zeros(0, dtype=torch.long)] * 2, 2)
    assert src.tolist() == edge.tolist() == [-1, -1]


def test_topic_layer_mixture():
    layer = TopicLayer(6, topics=3, out_dim=4)
    t, theta = layer(torch.randn(5, 6))
    assert t.shape == (5, 4) and torch.allclose(theta.sum(-1), torch.ones(5))
    assert torch.allclose(t, theta @ layer.topic_vectors)
    with pytest.raises(ValueError, match="at least 2"):
        TopicLayer(6, topics=1)


def test_past_only_topic_nodes_are_running_means(tiny_encoder):
    from kgemo.graphs import get_builder

    conv = tiny_conversations(1, 3)[0]
    feats = tiny_encoder.encode(conv.texts)
    n = len(conv)
    for past_only in (False, True):
        pipe = event_pipeline(tiny_encoder, window=2, relations=RELATIONS, past_only=past_only)
        g = get_builder("event", window=2, relations=RELATIONS, past_only=past_only).build(
            conv, feats, SPACES, pipe.knowledge)
        about = g["topic", "about", "utterance"].edge_index
        if past_only:   # node i: the mean of turns 0..i, for utterance i only
            expected = torch.stack([torch.from_numpy(feats[:i + 1]).double().mean(0) for i in range(n)]).float()
            assert about.tolist() == [list(range(n))] * 2
        else:           # one node, the conversation's mean, for every utterance (as before past-only topics)
            expected = torch.from_numpy(feats.mean(0, keepdims=True))
            assert about.tolist() == [[0] * n, list(range(n))]
        assert torch.allclose(g["topic"].x, expected, atol=1e-6)


@pytest.mark.parametrize("past_only", [True, False])
def test_a_later_turn_changes_no_earlier_prediction_under_past_only(tiny_encoder, past_only):
    """Change the last utterance of a conversation (its text: its features, retrieved tails and the topic input)
    and compare every earlier utterance's topic and logits. past_only: exactly equal; bidirectional: the change
    reaches them (the test's perturbation does reach earlier turns when nothing stops it)."""
    from kgemo.data import Conversation, Utterance

    convs = [c for c in tiny_conversations(8, 0) if len(c) >= 4][:2]
    last = convs[0].utterances[-1]
    swapped = Utterance("I could cry" if last.text != "I could cry" else "what a joy", last.speaker, last.labels)
    convs_b = [Conversation(convs[0].id, [*convs[0].utterances[:-1], swapped], dataset="tiny", split="train"),
               convs[1]]
    pipe = event_pipeline(tiny_encoder, window=2, relations=RELATIONS, past_only=past_only)
    dims = {k: v for k, v in pipe.model_dims().items() if k in TodkatConfig.__dataclass_fields__}
    torch.manual_seed(0)
    m = TODKAT(TodkatConfig(**SMALL, **dims), SPACES).eval()
    torch.nn.init.normal_(m.fusion_out[1].weight)   # zero-initialised: the topic and knowledge would not show yet

    def run(conversations):
        batch = next(batches(pipe.graphs(conversations, SPACES), 2, pipe.transform))
        logits, ev = m.forward_explain(batch)
        return logits["emotion"], ev["topic_mixture"]

    (logits_a, topic_a), (logits_b, topic_b) = run(convs), run(convs_b)
    earlier = torch.ones(len(logits_a), dtype=torch.bool)
    earlier[len(convs[0]) - 1] = False                  # every utterance but the changed one
    assert not torch.equal(logits_a[~earlier], logits_b[~earlier])
    if past_only:
        assert torch.equal(topic_a[earlier], topic_b[earlier]) and torch.equal(logits_a[earlier], logits_b[earlier])
    else:
        first = slice(0, len(convs[0]) - 1)
        assert not torch.allclose(topic_a[first], topic_b[first])
        assert not torch.allclose(logits_a[first], logits_b[first])


def test_without_knowledge_and_topic_it_is_the_no_knowledge_model(data):
    batch = first_batch(data)
    bare = model(data, use_knowledge=False, use_topic=False)
    ev = bare.explain(batch)
    assert set(ev) == {"fusion_weight"}
    before = bare(batch)["emotion"]
    batch["event"].x = torch.randn_like(batch["event"].x)
    assert torch.equal(before, bare(batch)["emotion"])
    # The fusion output starts at zero: an untrained TODKAT equals its no-knowledge ablation's computation.
    from kgemo.models import NoKnowledge, NoKnowledgeConfig

    torch.manual_seed(0)
    nk = NoKnowledge(NoKnowledgeConfig(**{k: SMALL[k] for k in ("hidden", "heads", "context_layers", "dropout")},
                                       input_dim=16), data.label_spaces).eval()
    nk.load_state_dict({k: v for k, v in bare.state_dict().items() if k in nk.state_dict()})
    assert torch.allclose(nk(batch)["emotion"], bare(batch)["emotion"], atol=1e-6)


@pytest.mark.slow
def test_smoke_train_learns_the_fixture_and_reports_its_predictions(tiny_encoder, tmp_path):
    """Six epochs on a larger tiny fixture (24 / 8 / 8 conversations; each line has one emotion, so it can be
    learned): the train loss falls, the reported dev and test scores are the metric of the saved model's
    predictions, and the test score beats every one of 500 random labelings (commonsense_data.chance_ceiling: 59.0
    on this split; the run scores 100)."""
    data = event_prepared(tiny_encoder, sizes=(24, 8, 8), window=2, relations=RELATIONS)
    config = ExperimentConfig(name="todkat", model={"name": "todkat", **SMALL},
                              graph={"window": 2, "relations": RELATIONS}, knowledge={"atomic": "default"},
                              train=TrainConfig(epochs=6, batch_size=4, lr=1e-2, warmup_epochs=0, patience=10,
                                                progress=False),
                              output_dir=str(tmp_path / "run"))
    result = fit(config, data=data)
    with open(tmp_path / "run" / "logs" / "version_0" / "metrics.csv") as fh:
        losses = [float(r["train_loss"]) for r in csv.DictReader(fh) if r.get("train_loss")]
    assert len(losses) == 6 and losses[-1] < losses[0]
    loaded, spec = load_model(tmp_path / "run" / "model")
    assert spec["builder"]["params"]["relations"] == RELATIONS and loaded.relations == tuple(RELATIONS)
    for split in ("dev", "test"):
        y, pred = labels_and_predictions(loaded, data, split)
        assert result[split]["emotion"] == pytest.approx(weighted_f1(y, pred), abs=1e-9)
    assert result["complete"] and result["test"]["emotion"] > chance_ceiling(data)


def test_save_load_gives_identical_predictions(data, tmp_path):
    m = model(data)
    before = predict(m, data.graphs["test"], data.pipeline.transform)
    save_model(m, tmp_path / "m", data.pipeline.spec())
    loaded, _ = load_model(tmp_path / "m")
    assert torch.equal(before["emotion"], predict(loaded, data.graphs["test"], data.pipeline.transform)["emotion"])


def test_annotator_shows_the_events_the_model_weighed(both_sources):
    from kgemo.annotate import Annotator

    m = model(both_sources)
    ann = Annotator(m, both_sources.pipeline, device="cpu", top_events=4, event_relations=["xReact", "oReact"])
    conv = both_sources.conversations["train"][0]
    res = ann.annotate(conv)
    assert {e.provider for u in res.utterances for e in u.events} == {"retrieval", "comet"}
    assert res.to_json()
    graph = both_sources.pipeline.graphs([conv], {})[0]
    batch = both_sources.pipeline.transform(next(batches([graph], 1)))
    ev = m.explain(batch)
    table = both_sources.pipeline.knowledge["atomic"].table
    comet = both_sources.pipeline.knowledge["comet"]
    for i, u in enumerate(res.utterances):
        assert [e.relation for e in u.events] == ["xReact"] * 4 + ["oReact"] * 4
        for rel in ("xReact", "oReact"):
            mine = [e for e in u.events if e.relation == rel]
            # The model's own weights, largest first, from both sources.
            e, g = batch["event", rel, "utterance"], batch["generated", rel, "utterance"]
            weights = torch.cat([ev[f"event_weight/{rel}"][e.edge_index[1] == i],
                                 ev[f"generated_weight/{rel}"][g.edge_index[1] == i]])
            top = weights.sort(descending=True).values[:4].tolist()
            assert [x.score for x in mine] == pytest.approx(top, abs=1e-6)
            assert all(type(x.score) is float for x in mine)
            for x in mine:
                if x.provider == "retrieval":
                    assert x.tail in table.tails and x.head in table.heads and x.source == "atomic"
                else:
                    assert x.source == "comet" and x.head == u.text
                    assert x.tail in comet.generate([u.text], [rel], k=3, num_beams=5)[0][rel]


def test_late_fusion_reads_the_context_first(data):
    batch = first_batch(data)
    late = model(data, fusion="late")
    ev = late.explain(batch)
    assert ev["fusion_weight"].shape == (batch["utterance"].num_nodes, len(RELATIONS) + 2)
    # Untrained, the zero-initialised fusion leaves the context model's output: the no-knowledge computation again.
    early = model(data)
    assert torch.allclose(late(batch)["emotion"], early(batch)["emotion"], atol=1e-6)
    from kgemo.errors import KgemoError

    with pytest.raises(KgemoError, match="fusion must be"):
        TodkatConfig(fusion="middle")


def test_knowledge_dropout_acts_on_the_selected_knowledge_in_training_only(data):
    batch = first_batch(data)
    m = model(data, knowledge_dropout=1.0)
    # The fusion's output layer starts at zero, which would hide the knowledge: give it weights first.
    torch.nn.init.normal_(m.fusion_out[1].weight)
    m.train()
    m(batch)["emotion"].sum().backward()
    for rel in RELATIONS:  # every k^r dropped: nothing reaches the selectors' value projections
        assert m.select[rel].value.weight.grad is None or not m.select[rel].value.weight.grad.any()
    m.zero_grad()
    m.eval()
    m(batch)["emotion"].sum().backward()
    assert any(m.select[rel].value.weight.grad.abs().sum() > 0 for rel in RELATIONS)
    from kgemo.errors import KgemoError

    with pytest.raises(KgemoError, match="knowledge_dropout must be"):
        TodkatConfig(knowledge_dropout=1.5)
