"""Encoder fixtures: the packaged MiniLM (loaded once per session) and a tiny random BERT saved to disk."""
from __future__ import annotations

import pytest

TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", ",", ".", "'", "?"] + (
    "i you we love hate it the a is not happy sad so very can t believe that this what day good bad "
    "##s ##ing ##ed ##ly un ##believ ##able".split())


@pytest.fixture(scope="session")
def minilm():
    from kgemo.encoders import SentenceEncoder

    return SentenceEncoder()


@pytest.fixture(scope="session")
def minilm_tokens():
    from kgemo.encoders import TokenEncoder

    return TokenEncoder()


def save_tiny_bert(folder, seed: int = 0, max_position: int = 64):
    """A random 2-layer, 32-d BertModel with a WordPiece tokenizer built from a vocab file written here."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    # Built with the tokenizers library: the same code works on transformers 4 and 5 (whose BertTokenizerFast
    # alias silently ignores vocab_file).
    backend = Tokenizer(models.WordPiece.from_file(str(vocab_file), unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.BertProcessing(("[SEP]", TINY_VOCAB.index("[SEP]")),
                                                       ("[CLS]", TINY_VOCAB.index("[CLS]")))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                        model_max_length=max_position)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=max_position)
    BertModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def make_tiny_bert():
    """``make_tiny_bert(folder, seed=0)`` saves a tiny random BERT there and returns the folder."""
    return save_tiny_bert


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")
