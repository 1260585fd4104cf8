"""The plain-torch BERT sentence encoder gives sentence-transformers' numbers, without importing it."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tiny_families import sentence_transformers_folder

from kgemo.encoders.bert_sentence import BertSentenceModel, can_load

TEXTS = ["i love it!", "what a bad day.", "i can't believe that", "so very very happy " * 20, "?"]


def _st_folder(folder, normalize=True):
    """A saved BertModel folder as a sentence-transformers folder (mean pooling, optional Normalize)."""
    return sentence_transformers_folder(folder, dim=32, normalize=normalize, max_seq_length=16)


@pytest.mark.parametrize("normalize", [True, False])
def test_matches_sentence_transformers_on_a_tiny_random_bert(tmp_path, make_tiny_bert, normalize):
    from sentence_transformers import SentenceTransformer

    folder = _st_folder(make_tiny_bert(tmp_path / "tiny", seed=3), normalize)
    assert can_load(folder)
    ours = BertSentenceModel(folder)
    theirs = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    assert ours.max_seq_length == theirs.max_seq_length == 16  # the long text is cut at 16 tokens by both
    a = ours.encode(TEXTS, batch_size=2)
    b = theirs.encode(TEXTS, batch_size=2, convert_to_numpy=True)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert ours.tokenizer(["i love it"])["input_ids"] == [theirs.tokenizer("i love it")["input_ids"]]


def test_other_models_are_left_to_sentence_transformers(tmp_path, make_tiny_bert):
    folder = _st_folder(make_tiny_bert(tmp_path / "tiny"))
    pooling = folder / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**cfg, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    assert not can_load(folder)                               # CLS pooling: not this module's model
    assert not can_load(tmp_path / "nothing-here")
    plain = make_tiny_bert(tmp_path / "plain-hf")             # a Hugging Face folder without modules.json
    assert not can_load(plain)


def test_the_packaged_minilm_loads_without_sentence_transformers():
    # In a fresh interpreter: encoding with the default model must not import sentence-transformers/transformers.
    code = ("import sys, warnings; warnings.simplefilter('ignore');"
            "from kgemo.encoders import SentenceEncoder;"
            "v = SentenceEncoder().encode(['hello there']);"
            "print(v.shape, 'sentence_transformers' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(1, 384) False False"


@pytest.mark.slow
def test_the_packaged_minilm_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm.source.path), device="cpu", local_files_only=True)
    st.max_seq_length = minilm.max_length
    texts = TEXTS + ["Oh my God, I can't believe you did that!", "Okay."]
    np.testing.assert_allclose(minilm.encode(texts), st.encode(texts, convert_to_numpy=True), atol=1e-5)


@pytest.mark.parametrize("targets", [["query", "value"], ["query", "key", "value", "dense"]])
def test_a_lora_adapter_folds_in_as_peft_merges_it(tmp_path, make_tiny_bert, targets):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    folder = _st_folder(make_tiny_bert(tmp_path / "base", seed=1), normalize=False)
    torch.manual_seed(0)
    peft_model = get_peft_model(AutoModel.from_pretrained(str(folder)), LoraConfig(r=4, lora_alpha=8,
                                                                                  target_modules=targets))
    with torch.no_grad():  # peft starts B at zero; give the adapter something to fold in
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    merged = peft_model.merge_and_unload().eval()
    config = json.loads((folder / "config.json").read_text())
    ours = BertSentenceModel(config=config, weights=folder / "model.safetensors", normalize=False,
                             lora=tmp_path / "adapter")
    ids = torch.tensor([[2, 11, 12, 13, 3, 14, 15, 3], [2, 16, 17, 3, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    types = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        h = merged(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    expected = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    np.testing.assert_allclose(ours.pool(ids, mask, types).detach().numpy(), expected.numpy(), atol=1e-5)
    base_only = BertSentenceModel(config=config, weights=folder / "model.safetensors", normalize=False)
    assert not np.allclose(base_only.pool(ids, mask, types).detach().numpy(), expected.numpy(), atol=1e-3)
