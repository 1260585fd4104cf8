import pytest
import torch
from tiny_data import tiny_prepared

from kgemo.graphs import batches
from kgemo.nn import HeteroGraphEncoder


@pytest.mark.parametrize("conv", ["gat", "hgt"])
def test_runs_on_a_concept_graph_batch(conv, tiny_encoder):
    data = tiny_prepared(tiny_encoder, "concept", sizes=(3, 1, 1))
    batch = next(batches(data.graphs["train"], 3, data.pipeline.transform))
    in_dims = {t: batch[t].x.size(-1) for t in ("utterance", "token", "concept")}
    enc = HeteroGraphEncoder(in_dims, batch.metadata(), hidden=16, layers=2, conv=conv, heads=2).eval()
    out = enc(batch.x_dict, batch.edge_index_dict)
    assert set(out) == {"utterance", "token", "concept"}
    for t, v in out.items():
        assert v.shape == (batch[t].num_nodes, 16) and torch.isfinite(v).all()
    # Message passing reaches utterances from their tokens: changing concept features changes utterance output.
    x2 = dict(batch.x_dict)
    x2["concept"] = x2["concept"] * 3
    out2 = enc(x2, batch.edge_index_dict)
    assert not torch.allclose(out["utterance"], out2["utterance"])


def test_rejects_bad_options():
    with pytest.raises(ValueError, match="divisible"):
        HeteroGraphEncoder({"a": 2}, (["a"], []), hidden=10, heads=4)
    with pytest.raises(ValueError, match="conv must be"):
        HeteroGraphEncoder({"a": 2}, (["a"], []), conv="sage")
