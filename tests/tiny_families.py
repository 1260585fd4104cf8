"""Tiny random encoders of each Hugging Face family kgemo supports, saved as model folders with their tokenizer.

``save_tiny_family(family, folder, seed=0)`` writes a 2-layer, 32-d, 2-head model of the family's own config and
model class (``BertModel``, ``RobertaModel``, ``MPNetModel``, ``DebertaV2Model``, ...) and a tokenizer of the
family's kind (WordPiece for BERT / ELECTRA / MPNet, byte-level BPE for RoBERTa, Unigram for XLM-R and
DeBERTa-v2) with the family's special tokens and input format, built with the ``tokenizers`` library and saved
under the family's tokenizer class, so that ``AutoTokenizer`` loads what a real checkpoint of the family gives
(for instance no ``token_type_ids`` for RoBERTa and MPNet). No file is downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path

FAMILIES = ("bert", "roberta", "xlm-roberta", "electra", "mpnet", "deberta-v2")

#: Words the tiny vocabularies know (lower case), and sentences the byte-level BPE learns its merges on.
WORDS = ("i you we love hate it the a is not happy sad so very can t believe that this what day good bad "
         "ann bob are fine okay").split()
CORPUS = ["i love it", "i hate it", "so happy", "so sad", "what a good day", "what a bad day", "i can't believe that",
          "this is not good", "very very happy", "you are so unbelievable", "ann: okay", "bob: fine"]
_PIECES = ["!", ",", ".", "'", "?", ":", "##s", "##ing", "##ed", "##ly", "un", "##believ", "##able"]

# family → (special tokens in id order, pad, cls, sep, unk, mask, tokenizer class, pair template is RoBERTa's)
_SPECIALS = {
    "bert": (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]",
             "BertTokenizer", False),
    "electra": (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]",
                "ElectraTokenizer", False),
    "mpnet": (["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>"], "<pad>", "<s>", "</s>", "[UNK]", "<mask>",
              "MPNetTokenizer", True),
    "roberta": (["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<pad>", "<s>", "</s>", "<unk>", "<mask>",
                "RobertaTokenizer", True),
    "xlm-roberta": (["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<pad>", "<s>", "</s>", "<unk>", "<mask>",
                    "XLMRobertaTokenizer", True),
    "deberta-v2": (["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"], "[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]",
                   "DebertaV2Tokenizer", False),
}


def _backend(family: str):
    """The family's tokenizer pipeline (normaliser, pre-tokeniser, model, post-processor) on a tiny vocabulary."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials, pad, cls, sep, unk, mask, _, roberta_pairs = _SPECIALS[family]
    if family in ("bert", "electra", "mpnet"):
        vocab = {t: i for i, t in enumerate(specials + _PIECES + WORDS)}
        tok = Tokenizer(models.WordPiece(vocab, unk_token=unk))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
    elif family == "roberta":
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
            vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False))
    else:  # sentencepiece-style Unigram: XLM-R, DeBERTa-v2
        pieces = [(t, 0.0) for t in specials] + [("▁", -2.0)]
        pieces += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!,.'?:"]
        pieces += [("▁" + w, -1.0) for w in WORDS] + [(w, -1.5) for w in WORDS]
        tok = Tokenizer(models.Unigram(pieces, unk_id=specials.index(unk)))
        tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
    ids = {t: tok.token_to_id(t) for t in specials}
    assert all(ids[t] == i for i, t in enumerate(specials)), ids  # specials first, in the family's order
    pair = f"{cls} $A {sep} {sep} $B {sep}" if roberta_pairs else f"{cls} $A {sep} $B:1 {sep}:1"
    tok.post_processor = processors.TemplateProcessing(single=f"{cls} $A {sep}", pair=pair,
                                                       special_tokens=[(cls, ids[cls]), (sep, ids[sep])])
    return tok


def _config(family: str, vocab_size: int, max_position: int, embedding_size: int | None):
    import transformers

    specials, pad, *_ = _SPECIALS[family]
    common = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, pad_token_id=specials.index(pad))
    if family in ("roberta", "xlm-roberta", "mpnet"):  # positions start after the padding index (padding_idx + 1)
        common.update(max_position_embeddings=max_position + specials.index(pad) + 1, bos_token_id=0,
                      eos_token_id=2)
    else:
        common.update(max_position_embeddings=max_position)
    if family == "bert":
        return transformers.BertConfig(**common)
    if family == "roberta":
        return transformers.RobertaConfig(**common, type_vocab_size=1)
    if family == "xlm-roberta":
        return transformers.XLMRobertaConfig(**common, type_vocab_size=1)
    if family == "electra":
        return transformers.ElectraConfig(**common, embedding_size=embedding_size or 32)
    if family == "mpnet":
        return transformers.MPNetConfig(**common, relative_attention_num_buckets=32)
    if family == "deberta-v2":  # DeBERTa-v3-base's settings, scaled down
        return transformers.DebertaV2Config(**common, relative_attention=True, position_buckets=16,
                                            max_relative_positions=-1, pos_att_type=["p2c", "c2p"],
                                            norm_rel_ebd="layer_norm", share_att_key=True,
                                            position_biased_input=False, type_vocab_size=0, layer_norm_eps=1e-7)
    raise ValueError(f"unknown family {family!r}; known: {FAMILIES}")


def save_tiny_family(family: str, folder: str | Path, seed: int = 0, max_position: int = 64,
                     embedding_size: int | None = None, prefix: bool = False) -> Path:
    """Save a tiny random model of ``family`` and its tokenizer to ``folder``; returns the folder.

    Args:
        family: one of :data:`FAMILIES` (the ``config.model_type``).
        seed: seeds the random weights.
        max_position: the longest input (tokens); RoBERTa-like families get ``padding_idx + 1`` more positions.
        embedding_size: ELECTRA only: the embedding width (not 32 adds ELECTRA's embedding projection).
        prefix: save the weights as a task model does (``roberta.embeddings...``: a ``*ForMaskedLM`` checkpoint).
    """
    import torch
    from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials, pad, cls, sep, unk, mask, tokenizer_class, _ = _SPECIALS[family]
    backend = _backend(family)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=pad, cls_token=cls, sep_token=sep,
                                        unk_token=unk, mask_token=mask, bos_token=cls, eos_token=sep,
                                        model_max_length=max_position)
    torch.manual_seed(seed)
    config = _config(family, backend.get_vocab_size(), max_position, embedding_size)
    if prefix:
        from transformers import AutoModelForMaskedLM

        model = AutoModelForMaskedLM.from_config(config)
    else:
        model = AutoModel.from_config(config)
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # The family's own tokenizer class (what a real checkpoint names): it decides the model inputs (no
    # token_type_ids for RoBERTa-like families) and how word lists are read.
    path = folder / "tokenizer_config.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["tokenizer_class"] = tokenizer_class
    path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    # Saved again as that class loads it: transformers 5 rebuilds some families' pipelines (normaliser,
    # pre-tokeniser, post-processor) from the class, and a real checkpoint's tokenizer.json is what the class
    # builds; so is this one now.
    AutoTokenizer.from_pretrained(str(folder)).save_pretrained(folder)
    return folder


def sentence_transformers_folder(folder: str | Path, dim: int = 32, normalize: bool = True,
                                 max_seq_length: int = 16) -> Path:
    """Make a saved model folder a sentence-transformers folder: the transformer, mean pooling, optional Normalize."""
    folder = Path(folder)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": dim, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False,
         "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length,
                                                                  "do_lower_case": False}))
    return folder
