"""Annotator on tiny models: input kinds, determinism, evidence weights, joint tasks, events, bad input."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from annotate_data import CONVERSATION

from kgemo import Conversation, Utterance
from kgemo.data import as_conversation
from kgemo.annotate import AnnotationResult, Annotator
from kgemo.encoders import TruncationWarning
from kgemo.errors import DataFormatError, KgemoError


def _strip_id(d):
    return {k: v for k, v in d.items() if k != "conversation_id"}


def test_every_input_kind_gives_the_same_annotation(ket_annotator):
    ref = ket_annotator.annotate(CONVERSATION).to_dict()
    kinds = [
        Conversation("c", [Utterance(t, s) for s, t in CONVERSATION]),
        [{"speaker": s, "text": t} for s, t in CONVERSATION],
        [list(p) for p in CONVERSATION],
        {"id": "x", "utterances": [{"speaker": s, "text": t} for s, t in CONVERSATION]},
    ]
    for conv in kinds:
        assert _strip_id(ket_annotator.annotate(conv).to_dict()) == _strip_id(ref)
    assert len(ref["utterances"]) == 4
    assert [u["speaker"] for u in ref["utterances"]] == ["Anna", "Ben", "Anna", "Ben"]


def test_plain_strings_assume_one_speaker_with_a_warning(ket_annotator):
    with pytest.warns(UserWarning, match="without a speaker"):
        res = ket_annotator.annotate([t for _, t in CONVERSATION])
    assert {u.speaker for u in res} == {"speaker"}


def test_same_input_same_output(ket_model_dir, tiny_encoder, tiny_atomic):
    a = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=tiny_atomic)
    first = a.annotate(CONVERSATION).to_json()
    assert a.annotate(CONVERSATION).to_json() == first
    b = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=tiny_atomic)
    assert b.annotate(CONVERSATION).to_json() == first


def test_labels_and_probabilities(ket_annotator):
    res = ket_annotator.annotate(CONVERSATION)
    labels = list(ket_annotator.model.label_spaces["emotion"].labels)
    for u in res:
        p = u.probabilities["emotion"]
        assert list(p) == labels
        assert sum(p.values()) == pytest.approx(1.0, abs=1e-5)
        assert u.emotion == max(p, key=p.get) and u.probability() == p[u.emotion]
    assert res.tasks == ["emotion"] and res.model["model"] == "ket"


def test_concept_weights_sum_as_documented(ket_annotator):
    """w_c = Σ_t β_t α_{c,t}; over all of an utterance's concepts the weights sum to the β-mass of its tokens that
    have neighbours (1 when all do). Checked against the α, β kept on the result's graph."""
    res = ket_annotator.annotate(CONVERSATION, top_k=1000)
    data, concepts = res.graph
    link = data["concept", "linked", "token"]
    alpha, beta = link.attention, data["token"].token_weight
    src, dst = link.edge_index
    tok_utt = torch.empty(data["token"].num_nodes, dtype=torch.long)
    tok_utt[data["token", "in", "utterance"].edge_index[0]] = data["token", "in", "utterance"].edge_index[1]
    # α sums to 1 over each token's concepts; β to 1 over each utterance's tokens.
    per_token = torch.zeros(len(beta)).index_add_(0, dst, alpha)
    assert torch.allclose(per_token[dst.unique()], torch.ones(len(dst.unique())), atol=1e-5)
    for i, u in enumerate(res):
        toks = (tok_utt == i).nonzero().flatten()
        if len(toks):
            assert float(beta[toks].sum()) == pytest.approx(1.0, abs=1e-5)
        with_nb = [t for t in toks.tolist() if (dst == t).any()]
        assert sum(c.weight for c in u.concepts) == pytest.approx(float(beta[with_nb].sum()), abs=1e-4)
        # Each concept's weight by hand from the edges.
        for c in u.concepts:
            edges = [e for e in range(len(src)) if tok_utt[dst[e]] == i and concepts[data["concept"].kid[src[e]]]
                     == c.concept]
            assert c.weight == pytest.approx(sum(float(beta[dst[e]] * alpha[e]) for e in edges), abs=1e-5)
            main = max(edges, key=lambda e: float(beta[dst[e]] * alpha[e]))
            assert c.token == concepts[data["token"].kid[dst[main]]]
            assert c.attention == pytest.approx(float(alpha[main]), abs=1e-5)
            assert c.token_weight == pytest.approx(float(beta[dst[main]]), abs=1e-5)
        weights = [c.weight for c in u.concepts]
        assert weights == sorted(weights, reverse=True)
    # Utterance 2 ("my dog is happy too"): both tokens have neighbours, so its weights sum to 1.
    assert sum(c.weight for c in res[1].concepts) == pytest.approx(1.0, abs=1e-4)


def test_top_k_and_concept_fields(ket_annotator):
    res = ket_annotator.annotate(CONVERSATION, top_k=2)
    assert all(len(u.concepts) <= 2 for u in res)
    dog = res[1]
    by_name = {c.concept: c for c in ket_annotator.annotate(CONVERSATION, top_k=50)[1].concepts}
    assert set(by_name) >= {"pet", "joy", "smile"}
    pet = by_name["pet"]
    assert (pet.token, pet.relation, pet.direction, pet.source) == ("dog", "IsA", "out", "conceptnet")
    # "happy" is reached from "dog" (dog RelatedTo happy) — the statement's direction is kept.
    assert by_name["joy"].vad == pytest.approx((0.98, 0.824, 0.794), abs=1e-3) and by_name["joy"].vad_known
    assert not by_name["pet"].vad_known and by_name["pet"].vad == (0.5, 0.5, 0.5)
    assert 0 < pet.confidence <= 1
    assert dog.concepts[0].weight >= dog.concepts[1].weight
    # The token's inverse edges read as concept --relation--> token.
    sad = {c.concept: c for c in ket_annotator.annotate(CONVERSATION, top_k=50)[3].concepts}
    assert sad["fail"].direction == "in" and sad["fail"].relation == "Causes" and sad["fail"].token == "sad"
    assert (sad["fail"].head, sad["fail"].tail) == ("fail", "sad")


def test_events_come_from_the_pipeline_features_not_a_second_encoding(ket_model_dir, tiny_encoder, tiny_atomic):
    seen = []
    inner = tiny_encoder.encode

    def recording(texts, batch_size=None, show_progress=None):
        seen.extend(texts)
        return inner(texts)

    tiny_encoder.encode = recording
    ann = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=tiny_atomic,
                                    min_event_similarity=-1.0)
    assert tiny_atomic.index is not None  # heads encoded up front, so only query-time encoding is recorded below
    seen.clear()
    res = ann.annotate(CONVERSATION)
    for _, text in CONVERSATION:
        assert seen.count(text) == 1
    job = res[0].events
    assert [(e.relation, e.tail) for e in job] == [("xReact", "proud"), ("oReact", "happy for them"),
                                                    ("xIntent", "to earn money")]
    assert all(e.head == "I got the job" and e.score == pytest.approx(1.0, abs=1e-5) for e in job)
    assert all((e.source, e.provider) == ("atomic", "retrieval") for e in job)


def test_events_off_and_more_per_relation(ket_model_dir, tiny_encoder, tiny_atomic):
    off = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=None)
    assert all(u.events == [] for u in off.annotate(CONVERSATION))
    two = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=tiny_atomic,
                                    top_events=2, event_relations=("xReact",), min_event_similarity=-1.0)
    res = two.annotate(CONVERSATION)
    assert all(len(u.events) == 2 and {e.relation for e in u.events} == {"xReact"} for u in res)


def test_comet_like_generator_is_used_for_events(ket_model_dir, tiny_encoder):
    class Gen:
        def generate(self, texts, relations, k=3):
            return [{r: [f"{r}-{i}" for i in range(k)] for r in relations} for _ in texts]

    ann = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=Gen(),
                                    top_events=2, event_relations=("xReact",))
    e = ann.annotate(CONVERSATION)[0].events
    assert [(x.tail, x.score, x.source, x.provider) for x in e] == [("xReact-0", 1.0, "comet", "comet"),
                                                                   ("xReact-1", 0.5, "comet", "comet")]
    assert e[0].head == CONVERSATION[0][1]


def test_joint_model_returns_every_task(joint_model_dir, tiny_encoder, tiny_atomic):
    ann = Annotator.from_pretrained(joint_model_dir, device="cpu", encoder=tiny_encoder, events=tiny_atomic)
    assert ann.tasks == ("emotion", "sentiment")
    res = ann.annotate(CONVERSATION)
    assert res.tasks == ["emotion", "sentiment"]
    for u in res:
        assert set(u.labels) == {"emotion", "sentiment"} and u.sentiment in ("neutral", "positive", "negative")
        assert sum(u.probabilities["sentiment"].values()) == pytest.approx(1.0, abs=1e-5)
        assert u.concepts == []  # no knowledge in this model
        assert u.act is None
    assert res.labels("sentiment") == [u.sentiment for u in res]
    assert "sentiment" in res.to_table(width=120)


def test_annotate_many_streams_in_order_and_matches_annotate(ket_annotator):
    convs = [CONVERSATION, CONVERSATION[:2], {"id": "named", "utterances": [{"speaker": "A", "text": "I am sad"}]}]
    feed = iter(convs)
    many = list(ket_annotator.annotate_many(feed, batch_size=2))
    assert [r.conversation_id for r in many] == ["1", "2", "named"]
    for conv, r in zip(convs, many):
        single = ket_annotator.annotate(conv)
        for a, b in zip(r, single):
            assert a.labels == b.labels
            np.testing.assert_allclose(list(a.probabilities["emotion"].values()),
                                       list(b.probabilities["emotion"].values()), atol=1e-5)
            assert [c.concept for c in a.concepts] == [c.concept for c in b.concepts]


def test_annotate_many_is_lazy(ket_annotator):
    def endless():
        while True:
            yield CONVERSATION

    gen = ket_annotator.annotate_many(endless(), batch_size=2)
    assert len(next(gen)) == 4 and len(next(gen)) == 4


@pytest.mark.parametrize("bad, match", [
    ([], "no utterances"),
    ([("A", "hello"), ("B", "   ")], "utterance 2 is empty"),
    ([("A", "hello"), ("B", "")], "utterance 2 is empty"),
    ({"utterances": []}, "no utterances"),
    ("just a string", "expected a list of utterances"),
])
def test_bad_conversations_raise_naming_the_problem(ket_annotator, bad, match):
    with pytest.raises(DataFormatError, match=match):
        ket_annotator.annotate(bad)


def test_missing_speaker_is_allowed_with_a_warning(ket_annotator):
    with pytest.warns(UserWarning, match="1 utterance\\(s\\) without a speaker"):
        res = ket_annotator.annotate([{"speaker": "A", "text": "I am happy"}, {"text": "my dog"}])
    assert res[1].speaker == "speaker"


def test_long_utterance_warning_names_the_utterance(ket_model_dir, tiny_encoder, tiny_atomic):
    """An encoder that truncates (reports it with TruncationWarning): the annotator names the utterance."""

    class Tok:
        def __call__(self, texts, **kw):
            return {"input_ids": [t.split() for t in texts]}

    class Model:
        tokenizer, max_seq_length = Tok(), 5

    class TruncatingEncoder(type(tiny_encoder)):
        model = Model()

        def encode(self, texts, batch_size=None, show_progress=None):
            n = sum(len(t.split()) > 5 for t in texts)
            if n:
                warnings.warn(f"{n} texts truncated", TruncationWarning)
            return super().encode(texts)

    enc = TruncatingEncoder()
    ann = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=enc, events=None)
    long = "I am so happy " * 10
    with pytest.warns(TruncationWarning, match=r"utterance\(s\) 3 are longer than the sentence encoder's 5 "
                                               "tokens") as rec:
        res = ann.annotate([("A", "hi there"), ("B", "I am sad"), ("A", long)])
    assert [u.truncated for u in res] == [False, False, True]
    assert res.to_dict()["utterances"][2]["truncated"] is True
    assert not any("texts truncated" in str(w.message) for w in rec)  # replaced by the precise warning


def test_many_content_words_warn_that_knowledge_was_cut(ket_annotator):
    # The tiny KET's builder keeps 6 content words per utterance.
    text = "happy joy smile sad cry dog pet job work exam"
    with pytest.warns(TruncationWarning, match=r"utterance\(s\) 2 have more than 6 content words"):
        ket_annotator.annotate([("A", "hello"), ("B", text)])


def test_result_is_a_sequence_and_prints_a_table(ket_annotator):
    res = ket_annotator.annotate(CONVERSATION)
    assert isinstance(res, AnnotationResult) and len(res) == 4 and res[0].text == "I got the job"
    assert [u.index for u in res] == [0, 1, 2, 3]
    table = str(res)
    assert "emotion" in table and "I got the job" in table and "xReact: proud" in table


@pytest.mark.slow
def test_ten_thousand_utterances_use_a_linear_context_graph(ket_annotator):
    texts = [("A" if i % 2 else "B", f"my dog is happy {i}") for i in range(10_000)]
    with pytest.warns(UserWarning, match="10000 utterances, more than occlusion_max_utterances=512"):
        res = ket_annotator.annotate(texts, top_k=2)   # occlusion would be quadratic: attention ranking
    assert len(res) == 10_000
    data, _ = res.graph
    window = ket_annotator.pipeline.builder.settings.window
    assert data["utterance", "context", "utterance"].edge_index.size(1) <= 10_000 * (2 * window + 1)
    assert res[9_999].text == "my dog is happy 9999" and len(res[9_999].concepts) == 2


def test_model_folder_errors(tmp_path):
    with pytest.raises(KgemoError, match="no such model folder"):
        Annotator.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KgemoError, match="not a kgemo model folder"):
        Annotator.from_pretrained(tmp_path / "empty")


def test_run_folder_resolves_to_its_model(ket_model_dir, tiny_encoder, tmp_path):
    import shutil

    shutil.copytree(ket_model_dir, tmp_path / "run" / "model")
    ann = Annotator.from_pretrained(tmp_path / "run", device="cpu", encoder=tiny_encoder, events=None)
    assert ann.annotate(CONVERSATION)[0].emotion


def test_model_runs_with_its_own_thread_count_and_restores_torchs(ket_model_dir, tiny_encoder):
    ann = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=None)
    seen = []
    original = ann.model.forward_explain
    ann.model.forward_explain = lambda b: seen.append(torch.get_num_threads()) or original(b)
    torch.set_num_threads(2)
    ann.annotate(CONVERSATION)
    assert seen == [1] and torch.get_num_threads() == 2
    ann.compute_threads = None
    ann.annotate(CONVERSATION)
    assert seen == [1, 2]


def test_the_words_own_concept_is_never_listed_as_evidence(tiny_encoder, tiny_kb_dir):
    from kgemo.graphs import get_builder
    from kgemo.knowledge import ConceptNetKB
    from kgemo.models import KET, KETConfig
    from kgemo.data import label_space
    from kgemo.pipeline import InputPipeline

    kb = ConceptNetKB.load(tiny_kb_dir)
    pipe = InputPipeline(get_builder("concept", concepts_per_token=4, window=2, self_concept=True), tiny_encoder,
                         {"conceptnet": kb}, {"conceptnet": str(tiny_kb_dir)}, "tiny")
    spaces = {"emotion": label_space("meld", "emotion")}
    model = KET(pipe.fill_widths(KETConfig(hidden=16, heads=2, context_layers=1)), spaces)
    res = Annotator(model, pipe, events=None, device="cpu").annotate(CONVERSATION, top_k=50)
    listed = [(c.concept, c.token) for u in res for c in u.concepts]
    assert listed and all(concept != token for concept, token in listed)


def test_occlusion_ranks_concepts_by_what_removing_them_does(tiny_encoder, tiny_kb_dir):
    from torch_geometric.data import Batch

    from kgemo.data import label_space
    from kgemo.graphs import get_builder
    from kgemo.knowledge import ConceptNetKB
    from kgemo.models import KET, KETConfig
    from kgemo.pipeline import InputPipeline

    kb = ConceptNetKB.load(tiny_kb_dir)
    pipe = InputPipeline(get_builder("concept", concepts_per_token=4, window=2), tiny_encoder, {"conceptnet": kb},
                         {"conceptnet": str(tiny_kb_dir)}, "tiny")
    torch.manual_seed(1)
    model = KET(pipe.fill_widths(KETConfig(hidden=16, heads=2, context_layers=1)),
                {"emotion": label_space("meld", "emotion")}).eval()
    torch.nn.init.normal_(model.knowledge_out[1].weight, std=2.0)  # zero-initialised: give knowledge a say
    occl = Annotator(model, pipe, events=None, device="cpu").annotate(CONVERSATION, top_k=50)
    att = Annotator(model, pipe, events=None, device="cpu", evidence="attention").annotate(CONVERSATION, top_k=50)
    i = max(range(len(occl)), key=lambda k: len(occl[k].concepts))
    effects = [c.effect for c in occl[i].concepts]
    assert len(effects) >= 2 and effects == sorted(effects, reverse=True) and max(map(abs, effects)) > 1e-4
    assert all(c.effect is None for c in att[i].concepts)
    assert {c.concept for c in occl[i].concepts} == {c.concept for c in att[i].concepts}
    # The top effect, recomputed by hand: drop that concept's edges into utterance i's tokens and re-predict.
    g = pipe.graphs([as_conversation(CONVERSATION)], {})[0]
    link, kid = g["concept", "linked", "token"], g["concept"].kid
    tok_utt = torch.empty(g["token"].num_nodes, dtype=torch.long)
    tok_utt[g["token", "in", "utterance"].edge_index[0]] = g["token", "in", "utterance"].edge_index[1]
    top = kb.concept_id(occl[i].concepts[0].concept)
    drop = (kid[link.edge_index[0]] == top) & (tok_utt[link.edge_index[1]] == i)
    full = torch.softmax(model(pipe.transform(Batch.from_data_list([g])))["emotion"], -1)[i]
    cut = g.edge_subgraph({("concept", "linked", "token"): torch.nonzero(~drop).flatten()})
    less = torch.softmax(model(pipe.transform(Batch.from_data_list([cut])))["emotion"], -1)[i]
    y = int(full.argmax())
    assert occl[i].concepts[0].effect == pytest.approx(float(full[y] - less[y]), abs=1e-5)
    with pytest.raises(ValueError, match="evidence"):
        Annotator(model, pipe, events=None, device="cpu", evidence="gradients")


def test_a_meld_row_annotates_the_same_from_the_loader_or_from_a_json_file(ket_annotator, tmp_path):
    """The raw CSV text (cp1252 punctuation as C1 characters) given to `annotate` through a JSON file reaches the
    model as the MELD loader's text: one normaliser (kgemo.data.normalise_text) on both paths."""
    import json

    from kgemo.annotate.inputs import read_conversations
    from kgemo.data.meld import load_meld

    raw = [("Chandler", "I got the job at my company\x92s shelter\x85 "), ("Joey", "\x93Nice\x94 \x97 happy dog!")]
    (tmp_path / "meld").mkdir()
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
    rows = "".join(f'{i + 1},"{t}",{s},joy,positive,0,{i},1,1,"0","0"\n' for i, (s, t) in enumerate(raw))
    (tmp_path / "meld" / "dev_sent_emo.csv").write_text(header + rows, encoding="utf-8")
    loaded = load_meld("dev", root=tmp_path)[0]
    (tmp_path / "row.json").write_text(json.dumps({"id": "0", "utterances": [{"speaker": s, "text": t}
                                                                            for s, t in raw]}), encoding="utf-8")
    from_file = read_conversations(tmp_path / "row.json")[0]
    assert loaded.texts != [t for _, t in raw]                  # the loader did change the text...
    assert ket_annotator.annotate(from_file).to_dict() == ket_annotator.annotate(loaded).to_dict()
    assert ket_annotator.annotate([{"speaker": s, "text": t} for s, t in raw]).to_dict()["utterances"] == \
        ket_annotator.annotate(loaded).to_dict()["utterances"]
    # ...and the raw text would not have been the same input: the test encoder tells the two apart.
    enc = ket_annotator.pipeline.encoder
    assert not np.array_equal(enc.encode([raw[0][1]]), enc.encode([loaded.texts[0]]))


def test_retrieved_events_are_shown_only_at_the_similarity_threshold(ket_model_dir, tiny_encoder, tiny_atomic):
    """A model that does not read ATOMIC gets the nearest head's inferences only when the match is close enough:
    by default (MIN_EVENT_SIMILARITY: no similarity qualified on dev data) none, and nothing is retrieved."""
    import json
    from pathlib import Path

    from kgemo.annotate.annotator import MIN_EVENT_SIMILARITY

    # The constant is what scripts/atomic_threshold.py chose on dev data (docs/annotate.md).
    chosen = json.loads((Path(__file__).parents[2] / "docs" / "atomic_threshold.json").read_text())["threshold"]
    assert MIN_EVENT_SIMILARITY == chosen is None
    default = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=tiny_atomic)
    assert default.events is None and "events" not in default.info
    res = default.annotate(CONVERSATION)
    assert all(u.events == [] for u in res) and "ATOMIC event" not in res.to_table()
    every = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=tiny_atomic,
                                      min_event_similarity=-1.0).annotate(CONVERSATION)
    scores = sorted({e.score for u in every for e in u.events})
    assert scores[0] < 0.5 and scores[-1] == pytest.approx(1.0, abs=1e-5)   # exact heads (1.0) and far ones
    close = Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=tiny_atomic,
                                      min_event_similarity=0.5)
    assert close.info["min_event_similarity"] == 0.5
    kept = close.annotate(CONVERSATION)
    for u, v in zip(kept, every):
        assert u.events == [e for e in v.events if e.score >= 0.5]       # the same events, the far ones left out
    # Those shown keep the head they matched and its similarity (JSON too).
    shown = [e for u in kept.to_dict()["utterances"] for e in u["events"]]
    assert shown and all(e["head"] and e["score"] >= 0.5 for e in shown)


def test_the_table_shows_the_matched_atomic_head(ket_annotator):
    from kgemo.annotate.result import EventEvidence

    res = ket_annotator.annotate([("A", "my flight was cancelled")])
    res[0].events = [EventEvidence("PersonX misses the flight", "xReact", "upset", 0.61)]
    assert "xReact: upset (≈ PersonX misses the flight)" in res.to_table(width=200)
    res[0].events = [EventEvidence("my flight was cancelled", "xReact", "upset", 1.0, "comet", "comet")]
    assert "xReact: upset" in res.to_table(width=200) and "≈" not in res.to_table(width=200)

