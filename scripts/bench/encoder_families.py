"""Encoder families: feature extraction and training utterances/s per architecture, as ratios to MiniLM.

In one process, on the same MELD utterances:

* the real encoders this machine has: the packaged MiniLM (``default``, BERT, 6 layers, 384-d) and MPNet-base
  (``mpnet``, 12 layers, 768-d) when ``kgemo encoders install mpnet`` has put it in ``$KGEMO_HOME``;
* the base size of the other families kgemo fine-tunes (RoBERTa, DeBERTa-v2/v3, ELECTRA, XLM-R: 12 layers,
  768-d, their own vocabulary sizes), built from their configurations with random weights — their speed does not
  depend on the weights, and no checkpoint of them is reachable here.

Every model reads the **same token sequences** (MiniLM's WordPiece ids of ``"speaker: text"`` + 2 past turns, as
``kgemo finetune`` builds them; every vocabulary here is larger than MiniLM's, so the ids are valid): the ratios
measure the architecture, not its tokenizer (a real RoBERTa or DeBERTa tokenizer gives somewhat different
lengths). Extraction: forward passes without gradients and mean pooling, batches of 64 sorted by length.
Training: forward, loss of a linear head, backward and an AdamW step, batches of 16, for full fine-tuning and for
LoRA (rank 8 on the attention query and value projections as ``kgemo.encoders.architectures`` resolves them per
family). The fastest of ``--repeat`` passes is kept.
"""
from __future__ import annotations

import os
import time

#: family → (transformers config class, model_type, base-size overrides); None = a real checkpoint.
BASES = {
    "roberta-base": ("RobertaConfig", {"vocab_size": 50265, "max_position_embeddings": 514, "pad_token_id": 1,
                                       "type_vocab_size": 1}),
    "deberta-v3-base": ("DebertaV2Config", {"vocab_size": 128100, "relative_attention": True,
                                            "position_buckets": 256, "norm_rel_ebd": "layer_norm",
                                            "share_att_key": True, "pos_att_type": ["p2c", "c2p"],
                                            "max_position_embeddings": 512, "position_biased_input": False,
                                            "type_vocab_size": 0, "layer_norm_eps": 1e-7}),
    "electra-base": ("ElectraConfig", {"vocab_size": 30522, "embedding_size": 768}),
    "xlm-roberta-base": ("XLMRobertaConfig", {"vocab_size": 250002, "max_position_embeddings": 514,
                                              "pad_token_id": 1, "type_vocab_size": 1}),
}


def add_arguments(parser) -> None:
    parser.add_argument("--extract-utterances", type=int, default=256, help="MELD test utterances to encode")
    parser.add_argument("--train-utterances", type=int, default=64, help="MELD train utterances per training pass")
    parser.add_argument("--families", nargs="*", default=None,
                        help="subset of: minilm mpnet " + " ".join(BASES))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--repeat", type=int, default=2, help="passes; the fastest is kept")


def _model(family: str):
    """``(model, note)``: the real checkpoint for minilm / mpnet, else the family's base size, random weights."""
    import transformers

    if family in ("minilm", "mpnet"):
        from kgemo.encoders.pooled_transformer import load_base

        base = load_base("default" if family == "minilm" else "mpnet")
        return transformers.AutoModel.from_pretrained(str(base.transformer_dir)), "real weights"
    cls, extra = BASES[family]
    config = getattr(transformers, cls)(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                        intermediate_size=3072, **extra)
    return transformers.AutoModel.from_config(config), "base size, random weights"


def _batches(ids: list[list[int]], size: int, pad: int):
    import torch

    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    for a in range(0, len(order), size):
        rows = [ids[i] for i in order[a:a + size]]
        width = max(map(len, rows))
        x = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            x[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
        yield x, mask


def _pool(model, x, mask):
    out = model(input_ids=x, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).to(out.dtype)
    return (out * m).sum(1) / m.sum(1).clamp_min(1.0)


def _fastest(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(args) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from kgemo.data import load_dataset
    from kgemo.encoders.architectures import lora_target_modules
    from kgemo.encoders.encoder_inputs import ContextFormat, InputTokenizer, conversation_inputs
    from kgemo.encoders.pooled_transformer import load_base, load_tokenizer
    from kgemo.errors import KgemoError

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tok = InputTokenizer(load_tokenizer(load_base("default").transformer_dir), 128)
    context = ContextFormat(speaker_prefix=True, past_turns=2)

    def sample(split: str, n: int) -> list[list[int]]:
        inputs = []
        for conv in load_dataset("meld", split):
            inputs += conversation_inputs(conv, context)
            if len(inputs) >= n:
                break
        return [ids for ids, _ in tok(inputs[:n])]

    extract_ids, train_ids = sample("test", args.extract_utterances), sample("train", args.train_utterances)
    families = args.families or ["minilm", "mpnet", *BASES]
    rows, notes, results = [], [], {}
    for family in families:
        try:
            model, what = _model(family)
        except KgemoError as exc:  # mpnet not installed here
            notes.append(f"{family}: skipped ({exc})")
            continue
        pad = model.config.pad_token_id or 0
        model.eval()
        with torch.no_grad():
            _pool(model, *next(_batches(extract_ids[:8], 8, pad)))  # warm-up
            extract = _fastest(lambda: [_pool(model, x, m) for x, m in _batches(extract_ids, 64, pad)], args.repeat)
        train = {}
        for mode in ("full", "lora"):
            net = model
            if mode == "lora":
                from peft import LoraConfig, get_peft_model

                net = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1,
                                                       target_modules=lora_target_modules(model)))
            head = torch.nn.Linear(model.config.hidden_size, 7)
            params = [p for p in [*net.parameters(), *head.parameters()] if p.requires_grad]
            opt = torch.optim.AdamW(params, lr=1e-5)
            labels = torch.arange(len(train_ids)) % 7
            net.train()

            def step_all():
                for x, m in _batches(train_ids, 16, pad):
                    loss = torch.nn.functional.cross_entropy(head(_pool(net, x, m)), labels[:x.size(0)])
                    loss.backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)

            x, m = next(_batches(train_ids[:4], 4, pad))   # warm-up: allocator, optimiser state
            torch.nn.functional.cross_entropy(head(_pool(net, x, m)), labels[:4]).backward()
            opt.zero_grad(set_to_none=True)
            train[mode] = _fastest(step_all, args.repeat)
            if mode == "lora":
                model = net.unload()   # the plain model back for the next family's bookkeeping
        results[family] = (extract, train, what, sum(p.numel() for p in model.parameters()))
        del model
    if "minilm" not in results:
        raise SystemExit("encoder_families: MiniLM (the reference) did not run")
    ref_e, ref_t, *_ = results["minilm"]
    for family, (extract, train, what, params) in results.items():
        rows.append({"family": family, "weights": what, "parameters_m": round(params / 1e6, 1),
                     "extract_utt_per_s": round(len(extract_ids) / extract, 1),
                     "extract_vs_minilm": round(ref_e / extract, 3),
                     "train_full_utt_per_s": round(len(train_ids) / train["full"], 2),
                     "train_full_vs_minilm": round(ref_t["full"] / train["full"], 3),
                     "train_lora_utt_per_s": round(len(train_ids) / train["lora"], 2),
                     "train_lora_vs_minilm": round(ref_t["lora"] / train["lora"], 3)})
    tokens = sum(map(len, extract_ids)) / len(extract_ids)
    notes += [f"{len(extract_ids)} MELD test / {len(train_ids)} train inputs (\"speaker: text\" + 2 past turns, "
              f"MiniLM WordPiece ids, {tokens:.1f} tokens on average); {args.threads} torch thread(s); fastest of "
              f"{args.repeat} passes; load average (1 min) at the end {os.getloadavg()[0]:.1f}."]
    return {"description": "Feature extraction and training throughput per encoder family, ratios to MiniLM, "
                           "measured in one run on the same token sequences.", "rows": rows, "notes": notes}
