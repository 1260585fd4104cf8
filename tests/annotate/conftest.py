"""Tiny models for annotator tests: a real ConceptNetKB folder, KET / joint NoKnowledge models on the tiny
hash encoder, and a small ATOMIC retriever (see annotate_data.py)."""
from __future__ import annotations

import pytest
import torch
from annotate_data import ATOMIC, EDGES, save_tiny, vad_lexicon

from kgemo.data import label_space
from kgemo.graphs import get_builder
from kgemo.pipeline import InputPipeline
from kgemo.knowledge import AtomicRetriever, AtomicTable, ConceptNetKB
from kgemo.models import KET, KETConfig, NoKnowledge, NoKnowledgeConfig


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny graphs gain nothing from intra-op threads, and on a shared 2-core machine OpenMP waits make each
    scatter take tens of milliseconds; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_kb_dir(tmp_path_factory):
    kb = ConceptNetKB.from_edges(EDGES, vad=vad_lexicon())
    return kb.save(tmp_path_factory.mktemp("tiny_kb"))


@pytest.fixture
def tiny_atomic(tiny_encoder):
    return AtomicRetriever(AtomicTable.from_tuples(ATOMIC), encoder=tiny_encoder)


@pytest.fixture
def ket_model_dir(tmp_path, tiny_encoder, tiny_kb_dir):
    """A randomly initialised tiny KET (emotion) saved as a model folder whose spec names the tiny KB."""
    kb = ConceptNetKB.load(tiny_kb_dir)
    pipe = InputPipeline(get_builder("concept", concepts_per_token=4, max_tokens=6, window=2), tiny_encoder,
                         {"conceptnet": kb}, {"conceptnet": str(tiny_kb_dir)}, "tiny")
    torch.manual_seed(0)
    model = KET(KETConfig(input_dim=tiny_encoder.dim, concept_dim=tiny_encoder.dim, hidden=16, heads=2,
                          context_layers=1), {"emotion": label_space("meld", "emotion")}).eval()
    return save_tiny(model, pipe, tmp_path / "ket", ["emotion"])


@pytest.fixture
def joint_model_dir(tmp_path, tiny_encoder):
    """A tiny NoKnowledge model with two tasks (emotion + sentiment), like a joint model's folder."""
    pipe = InputPipeline(get_builder("conversation", window=2), tiny_encoder, {}, {}, "tiny")
    torch.manual_seed(0)
    spaces = {"emotion": label_space("meld", "emotion"), "sentiment": label_space("meld", "sentiment")}
    model = NoKnowledge(NoKnowledgeConfig(input_dim=tiny_encoder.dim, hidden=16, heads=2, context_layers=1),
                        spaces).eval()
    return save_tiny(model, pipe, tmp_path / "joint", ["emotion", "sentiment"])


@pytest.fixture
def ket_annotator(ket_model_dir, tiny_encoder, tiny_atomic):
    from kgemo.annotate import Annotator

    # Every retrieved event whatever its similarity: these tests are about retrieval and its outputs; the
    # similarity threshold (none shown by default) has tests of its own (test_annotator.py).
    return Annotator.from_pretrained(ket_model_dir, device="cpu", encoder=tiny_encoder, events=tiny_atomic,
                                     min_event_similarity=-1.0)
