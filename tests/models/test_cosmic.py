"""COSMIC: the per-turn recurrence (speaker vs listeners, context direction), tail weights, a smoke train,
save/load, and knowledge prepared once (no retrieval or generation on a second run)."""
import csv

import pytest
import torch
from commonsense_data import (SPACES, chance_ceiling, event_prepared, labels_and_predictions, retriever,
                              tiny_comet_bart)
from tiny_data import tiny_conversations

from kgemo.atomic_relations import COSMIC_RELATIONS
from kgemo.graphs import batches
from kgemo.metrics import weighted_f1
from kgemo.models import COSMIC, CosmicConfig, load_model, save_model
from kgemo.models.cosmic import reverse_turns
from kgemo.models.predict import predict
from kgemo.nn import CommonsenseGRU
from kgemo.training import ExperimentConfig, TrainConfig, fit

SMALL = {"hidden": 32, "state_size": 8, "emotion_size": 8, "knowledge_size": 8, "attention_dim": 8, "dropout": 0.0}


def model(data, **options):
    torch.manual_seed(0)
    return COSMIC(CosmicConfig(**{**SMALL, **options}, **data.pipeline.model_dims()), data.label_spaces).eval()


# -- the recurrence: who takes which relation --------------------------------------------------------------------
def cell_inputs(seed=0):
    """One hand-made 3-speaker conversation (Ann, Bob, Cy, Ann) batched with a 2-speaker one of 2 turns."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(2, 4, 6, generator=g)
    know = {r: torch.randn(2, 4, 5, generator=g) for r in COSMIC_RELATIONS}
    speaker = torch.tensor([[0, 1, 2, 0], [0, 1, 0, 0]])
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    return u, know, speaker, mask, torch.tensor([3, 2])


def states_after(cell, u, know, speaker, mask, parties):
    with torch.no_grad():
        return cell(u, know, speaker, mask, parties, return_states=True)


@pytest.fixture
def cell():
    torch.manual_seed(0)
    return CommonsenseGRU(6, 5, state_size=4, emotion_size=3).eval()


def changed(a, b):
    return not torch.allclose(a, b)


def test_speaker_takes_x_relations_listeners_take_o_relations(cell):
    u, know, speaker, mask, parties = cell_inputs()
    _, base = states_after(cell, u, know, speaker, mask, parties)
    t, bob, ann, cy = 1, 1, 0, 2            # turn 1: Bob speaks, Ann and Cy listen

    def perturbed(rel):
        k = {r: v.clone() for r, v in know.items()}
        k[rel][0, t] += 3.0
        return states_after(cell, u, k, speaker, mask, parties)[1]

    # oEffect of Bob's turn moves the listeners' internal states, not the speaker's.
    s = perturbed("oEffect")
    assert changed(s["internal"][0, t, ann], base["internal"][0, t, ann])
    assert changed(s["internal"][0, t, cy], base["internal"][0, t, cy])
    assert torch.allclose(s["internal"][0, t, bob], base["internal"][0, t, bob])
    # oReact: the listeners' external states only.
    s = perturbed("oReact")
    assert changed(s["external"][0, t, ann], base["external"][0, t, ann])
    assert torch.allclose(s["external"][0, t, bob], base["external"][0, t, bob])
    # xReact / xEffect: the speaker's external / internal state (listeners follow through the speaker's new state).
    assert changed(perturbed("xReact")["external"][0, t, bob], base["external"][0, t, bob])
    assert changed(perturbed("xEffect")["internal"][0, t, bob], base["internal"][0, t, bob])
    # xIntent: only the speaker's intent; listeners keep theirs.
    s = perturbed("xIntent")
    assert changed(s["intent"][0, t, bob], base["intent"][0, t, bob])
    assert torch.equal(s["intent"][0, t, [ann, cy]], base["intent"][0, t, [ann, cy]])
    # Nothing of turn 1 reaches turn 0.
    for key in base:
        assert torch.equal(s[key][0, 0], base[key][0, 0])


def test_roles_follow_the_turns_and_padding_keeps_states(cell):
    u, know, speaker, mask, parties = cell_inputs()
    _, s = states_after(cell, u, know, speaker, mask, parties)
    # Intent states change only for the turn's speaker: Ann at 0, Bob at 1, Cy at 2, Ann at 3.
    intent = s["intent"][0]                                            # [T, P, D]
    prev = torch.cat([torch.zeros_like(intent[:1]), intent[:-1]])
    moved = (intent - prev).abs().sum(-1) > 0                          # [T, P]
    assert moved.tolist() == [[True, False, False], [False, True, False], [False, False, True], [True, False, False]]
    # Cy listens before she ever speaks: her internal state moves at turns 0 and 1.
    assert (s["internal"][0, 0, 2].abs().sum() > 0) and changed(s["internal"][0, 1, 2], s["internal"][0, 0, 2])
    # The 2-speaker conversation: its third party slot never exists, its padded turns change nothing.
    assert torch.equal(s["internal"][1, :, 2], torch.zeros(4, 4))
    for key in s:
        assert torch.equal(s[key][1, 2], s[key][1, 1]) and torch.equal(s[key][1, 3], s[key][1, 1])
    # Without listener states, listeners keep what they had.
    torch.manual_seed(0)
    quiet = CommonsenseGRU(6, 5, state_size=4, emotion_size=3, listener_state=False).eval()
    _, q = states_after(quiet, u, know, speaker, mask, parties)
    assert torch.equal(q["internal"][0, 1, 0], q["internal"][0, 0, 0])            # Ann listens at turn 1
    assert torch.equal(q["internal"][0, 1, 2], torch.zeros(4))                     # Cy has not spoken yet


def test_a_batch_gives_each_conversation_what_it_gets_alone(cell):
    u, know, speaker, mask, parties = cell_inputs()
    together = states_after(cell, u, know, speaker, mask, parties)[0]
    for k, length in enumerate((4, 2)):
        alone = states_after(cell, u[k:k + 1, :length], {r: v[k:k + 1, :length] for r, v in know.items()},
                             speaker[k:k + 1, :length], mask[k:k + 1, :length], parties[k:k + 1])[0]
        assert torch.allclose(together[k, :length], alone[0], atol=1e-6)
    assert torch.equal(together[1, 2:], torch.zeros(2, 3))            # padded turns give zeros
    # Shorter conversation first: the same outputs, in the input order.
    swap = [1, 0]
    swapped = states_after(cell, u[swap], {r: v[swap] for r, v in know.items()}, speaker[swap], mask[swap],
                           parties[swap])[0]
    assert torch.allclose(swapped, together[swap], atol=1e-6)


def test_reverse_turns_reverses_real_turns_only():
    mask = torch.tensor([[True, True, True], [True, True, False]])
    x = torch.tensor([[1, 2, 3], [4, 5, 0]])
    assert reverse_turns(x, mask).tolist() == [[3, 2, 1], [5, 4, 0]]
    assert torch.equal(reverse_turns(reverse_turns(x, mask), mask), x)


# -- the model -----------------------------------------------------------------------------------------------
@pytest.fixture
def data(tiny_encoder):
    return event_prepared(tiny_encoder, sizes=(12, 4, 4), window=2)


def first_batch(data, split="train", n=4):
    return next(batches(data.graphs[split], n, data.pipeline.transform))


def test_context_direction_bidirectional_as_the_paper_or_causal(data):
    batch = first_batch(data)
    last = batch["utterance"].ptr[1] - 1                                # last turn of the first conversation
    for bidirectional, future_matters in ((True, True), (False, False)):
        m = model(data, bidirectional=bidirectional)
        before = m(batch)["emotion"][0]
        batch["utterance"].x[last] += 1.0
        after = m(batch)["emotion"][0]
        batch["utterance"].x[last] -= 1.0
        assert changed(before, after) == future_matters


def test_context_attention_option(data, tmp_path):
    from pathlib import Path

    from kgemo.errors import KgemoError
    from kgemo.training import load_config

    assert CosmicConfig().attention == "general"        # what every config without the option has run
    with pytest.raises(KgemoError, match="attention must be one of"):
        CosmicConfig(attention="dot")
    batch = first_batch(data)
    simple = model(data, attention="simple")
    assert [r.attention for r in simple.rnn] == ["simple", "simple"]
    assert changed(simple(batch)["emotion"], model(data)(batch)["emotion"])
    save_model(simple, tmp_path / "m", data.pipeline.spec())
    loaded, _ = load_model(tmp_path / "m")
    assert loaded.config.attention == "simple" and torch.equal(loaded(batch)["emotion"], simple(batch)["emotion"])
    # The dev-selection config is cosmic_meld.yaml with the option (and its name and tag) set.
    configs = Path(__file__).resolve().parents[2] / "configs"
    overridden = load_config(configs / "cosmic_meld.yaml", ["model.attention=simple", "tags.attention=simple",
                                                            "name=cosmic_meld_attention_simple"])
    assert load_config(configs / "cosmic_meld_attention_simple.yaml").to_dict() == overridden.to_dict()


def test_tail_weights_are_distributions_and_knowledge_can_be_switched_off(data):
    batch = first_batch(data)
    m = model(data)
    ev = m.explain(batch)
    n = batch["utterance"].num_nodes
    for rel in COSMIC_RELATIONS:
        e = batch["event", rel, "utterance"]
        alpha = ev[f"event_weight/{rel}"]
        assert alpha.shape == (e.edge_index.size(1),) and (alpha >= 0).all()
        per_utt = torch.zeros(n).index_add_(0, e.edge_index[1], alpha)
        assert torch.allclose(per_utt, torch.ones(n), atol=1e-5)       # every tiny utterance has tails
        assert ev[f"generated_weight/{rel}"].numel() == 0
    # use_knowledge=False: the event features do not matter (and there is no evidence).
    off = model(data, use_knowledge=False)
    before = off(batch)["emotion"]
    batch["event"].x = torch.randn_like(batch["event"].x)
    assert torch.equal(before, off(batch)["emotion"]) and off.explain(batch) == {}
    assert changed(m(first_batch(data))["emotion"], m(batch)["emotion"])


@pytest.mark.slow
def test_smoke_train_learns_the_fixture_and_reports_its_predictions(tiny_encoder, tmp_path):
    """Six epochs on a larger tiny fixture (24 / 8 / 8 conversations; each line has one emotion, so it can be
    learned): the train loss falls, the reported dev and test scores are the metric of the saved model's
    predictions, and the test score beats every one of 500 random labelings (commonsense_data.chance_ceiling: 59.0
    on this split; the run scores 100)."""
    data = event_prepared(tiny_encoder, sizes=(24, 8, 8), window=2)
    config = ExperimentConfig(name="cosmic", model={"name": "cosmic", **SMALL},
                              graph={"window": 2}, knowledge={"atomic": "default"},
                              train=TrainConfig(epochs=6, batch_size=4, lr=1e-2, warmup_epochs=0, patience=10,
                                                progress=False),
                              output_dir=str(tmp_path / "run"))
    result = fit(config, data=data)
    with open(tmp_path / "run" / "logs" / "version_0" / "metrics.csv") as fh:
        losses = [float(r["train_loss"]) for r in csv.DictReader(fh) if r.get("train_loss")]
    assert len(losses) == 6 and losses[-1] < losses[0]
    loaded, spec = load_model(tmp_path / "run" / "model")
    assert spec["builder"]["name"] == "event" and loaded.config.comet_dim == 0
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


def test_comet_states_and_generated_tails_enter_the_relation_features(tmp_path, tiny_encoder):
    from kgemo.knowledge.comet import CometGenerator

    comet = CometGenerator(tiny_comet_bart(tmp_path / "comet"), device="cpu", max_new_tokens=3)
    data = event_prepared(tiny_encoder, sizes=(3, 1, 1), comet=comet, window=2, generated=True, states=True)
    dims = data.pipeline.model_dims()
    assert dims["comet_dim"] == 16
    m = model(data)
    assert m.state_in is not None
    batch = first_batch(data, n=3)
    ev = m.explain(batch)
    n = batch["utterance"].num_nodes
    for rel in COSMIC_RELATIONS:
        e, g = batch["event", rel, "utterance"], batch["generated", rel, "utterance"]
        per_utt = torch.zeros(n).index_add_(0, e.edge_index[1], ev[f"event_weight/{rel}"]).index_add_(
            0, g.edge_index[1], ev[f"generated_weight/{rel}"])
        assert torch.allclose(per_utt, torch.ones(n), atol=1e-5)     # one distribution over both sources
    before = m(batch)["emotion"]
    batch["utterance"].relation_state = batch["utterance"].relation_state + 1.0
    assert changed(before, m(batch)["emotion"])


# -- knowledge prepared once ---------------------------------------------------------------------------------
def test_knowledge_is_prepared_once(tiny_encoder, tmp_path, monkeypatch):
    """`kgemo kb build comet --dataset NAME --model PATH` fills the generation cache; the first training run then
    generates nothing (it retrieves, and caches its graphs); the second run neither retrieves nor generates."""
    import kgemo.data
    from kgemo.cli import main
    from kgemo.knowledge import AtomicRetriever
    from kgemo.knowledge.comet import CometGenerator
    from kgemo.pipeline import InputPipeline
    from kgemo.training import prepare_data

    convs = {"train": tiny_conversations(6, 0), "dev": tiny_conversations(2, 1), "test": tiny_conversations(2, 2)}
    files = {}
    for split in convs:
        files[split] = tmp_path / f"{split}.txt"
        files[split].write_text(split)
    monkeypatch.setattr(kgemo.data, "load_dataset", lambda name, split, root=None, strict=True: convs[split])
    monkeypatch.setattr(kgemo.data, "dataset_files", lambda name, split, root=None: [files[split]])
    ckpt = tiny_comet_bart(tmp_path / "comet")
    atomic = str(retriever(tiny_encoder).table.save(tmp_path / "atomic"))
    calls = {"generate": 0, "states": 0, "search": 0}
    real = {"generate": CometGenerator._generate, "states": CometGenerator._states,
            "search": AtomicRetriever.search_vectors}

    def counting(name):
        def call(*args, **kwargs):
            calls[name] += 1
            return real[name](*args, **kwargs)
        return call

    monkeypatch.setattr(CometGenerator, "_generate", counting("generate"))
    monkeypatch.setattr(CometGenerator, "_states", counting("states"))
    monkeypatch.setattr(AtomicRetriever, "search_vectors", counting("search"))

    # The preparation step: every utterance of the dataset's splits, COMET tails and states into the cache.
    assert main(["kb", "build", "comet", "--dataset", "meld", "--model", str(ckpt), "-k", "2"]) == 0
    assert calls["generate"] > 0 and calls["states"] > 0 and calls["search"] == 0
    prepared = dict(calls)

    config = ExperimentConfig(name="once", data={"datasets": ["meld"], "tasks": ["emotion"]},
                              model={"name": "cosmic", **SMALL}, knowledge={"atomic": atomic, "comet": str(ckpt)},
                              graph={"window": 2, "tails_per_relation": 2, "generated": True, "states": True},
                              train=TrainConfig(epochs=1, batch_size=4, progress=False),
                              output_dir=str(tmp_path / "run{seed}"))

    def run(seed):
        pipe = InputPipeline.from_spec(config.pipeline_spec(), encoder=tiny_encoder)
        data = prepare_data(config, pipeline=pipe)
        config.seed = seed
        return fit(config, data=data)

    run(0)
    # The first run: ATOMIC retrieval while building the graphs, but COMET only answered from its cache.
    assert calls["generate"] == prepared["generate"] and calls["states"] == prepared["states"]
    assert calls["search"] > 0
    searched = calls["search"]
    result = run(1)
    # The second run: graphs from the graph cache — no retrieval, no generation.
    assert calls["search"] == searched and calls["generate"] == prepared["generate"]
    assert calls["states"] == prepared["states"]
    assert result["complete"] and result["knowledge"]["comet"]["path"] == str(ckpt)


def test_annotator_events_are_the_models_weights(data):
    from kgemo.annotate import Annotator

    m = model(data)
    res = Annotator(m, data.pipeline, device="cpu").annotate(data.conversations["test"][0])
    graph = data.pipeline.graphs([data.conversations["test"][0]], {})[0]
    batch = data.pipeline.transform(next(batches([graph], 1)))
    ev = m.explain(batch)
    table = data.pipeline.knowledge["atomic"].table
    for i, u in enumerate(res.utterances):
        # The annotator's default relations, one event each: the tail the model weighed most, with its head.
        assert [e.relation for e in u.events] == ["xReact", "oReact", "xIntent"]
        for x in u.events:
            e = batch["event", x.relation, "utterance"]
            w = ev[f"event_weight/{x.relation}"]
            best = int(torch.nonzero(e.edge_index[1] == i).squeeze(-1)[w[e.edge_index[1] == i].argmax()])
            assert x.score == pytest.approx(float(w[best]), abs=1e-6) and x.provider == "retrieval"
            assert x.tail == table.tails[batch["event"].tid[e.edge_index[0, best]]]
            assert x.head == table.heads[e.head[best]]


def test_knowledge_dropout_drops_the_relation_features_in_training_only(data):
    batch = first_batch(data)
    m = model(data, knowledge_dropout=1.0)
    assert m.knowledge_dropout.p == 1.0 and model(data).knowledge_dropout.p == SMALL["dropout"]  # None: dropout
    m.train()
    m(batch)["emotion"].sum().backward()
    # Every relation feature dropped: nothing reaches the tails' projection or the selectors.
    assert m.tails_in.weight.grad is None or not m.tails_in.weight.grad.any()
    m.zero_grad()
    m.eval()
    m(batch)["emotion"].sum().backward()
    assert m.tails_in.weight.grad.abs().sum() > 0
    from kgemo.errors import KgemoError

    with pytest.raises(KgemoError, match="knowledge_dropout must be"):
        CosmicConfig(knowledge_dropout=-0.1)
