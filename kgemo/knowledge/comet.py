"""COMET commonsense generation (COSMIC / TODKAT), with a persistent cache, and an offline retrieval stand-in.

:class:`CometGenerator` loads a local COMET checkpoint with ``transformers``:

* COMET-BART (seq2seq, e.g. comet-atomic-2020's BART) — input ``"{head} {relation} [GEN]"``, tails decoded by the
  decoder;
* COMET-GPT2 style (causal LM) — the same prompt, the tail is the continuation (prompt tokens cut off).

``generate`` decodes with beam search (``num_beams`` ≥ k, the top-k beams are the k tails) or greedily
(``num_beams=1``: one tail). ``relation_states`` returns, per text and relation, the hidden state COSMIC uses as
that relation's feature: the last layer's state at the final input token (encoder side for BART), or the masked
mean over input tokens with ``pool="mean"``.

Both are cached in SQLite (``$KGEMO_HOME/knowledge/comet/cache.sqlite``) keyed by (model id, relation, text,
decoding parameters), so a second pass over a dataset runs no model at all. The model id hashes the
checkpoint's config and weight files, so other weights never reuse the cache.

:class:`RetrievedComet` has the same interface but answers from ATOMIC retrieval
(:class:`~kgemo.knowledge.atomic.AtomicRetriever`), so COSMIC / TODKAT run offline without COMET weights; its
states are the similarity-weighted mean of the retrieved tails' sentence embeddings. ``.source`` says which one
produced a result (``"comet"`` or ``"atomic-retrieval"``) and ``.id`` names the exact model or table + encoder.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic_relations import COSMIC_RELATIONS
from ..devices import pick_device
from ..errors import CacheError, DataNotFoundError
from ..storage import kgemo_home, read_json, sha256_file, sha256_json, write_json

__all__ = ["CometGenerator", "RetrievedComet", "GenerationCache", "COSMIC_RELATIONS", "DEFAULT_PROMPT",
           "save_random_comet", "save_word_tokenizer"]

log = logging.getLogger(__name__)

#: COMET-ATOMIC-2020's input format.
DEFAULT_PROMPT = "{head} {relation} [GEN]"
_SCHEMA = 1


class GenerationCache:
    """SQLite store of generations (JSON lists of tails) and relation states (float32 blobs).

    A database that fails SQLite's integrity check is moved aside (``*.corrupt-<time>``) with a warning and
    started afresh. Each batch is one transaction, so an interrupted run keeps every finished batch.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else kgemo_home() / "knowledge" / "comet" / "cache.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=60)
            ok = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            if not ok:
                raise sqlite3.DatabaseError("integrity check failed")
            self._init(conn)
            return conn
        except sqlite3.DatabaseError as exc:
            try:
                conn.close()
            except Exception:
                pass
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.warning("generation cache %s is corrupt (%s): moved to %s, starting a new one", self.path, exc,
                        aside.name)
            os.replace(self.path, aside)
            conn = sqlite3.connect(self.path, timeout=60)
            self._init(conn)
            return conn

    @staticmethod
    def _init(conn: sqlite3.Connection) -> None:
        conn.executescript("""
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS generations (model TEXT, relation TEXT, text TEXT, params TEXT,
                tails TEXT NOT NULL, PRIMARY KEY (model, relation, text, params));
            CREATE TABLE IF NOT EXISTS states (model TEXT, relation TEXT, text TEXT, pool TEXT, dim INTEGER,
                vec BLOB NOT NULL, PRIMARY KEY (model, relation, text, pool));
        """)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(_SCHEMA),))
        conn.commit()

    def get_generations(self, model: str, params: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list]:
        out = {}
        for rel, text in keys:
            row = self.conn.execute("SELECT tails FROM generations WHERE model=? AND relation=? AND text=? AND "
                                    "params=?", (model, rel, text, params)).fetchone()
            if row is not None:
                try:
                    out[(rel, text)] = json.loads(row[0])
                except json.JSONDecodeError:  # a damaged row is a miss, and will be overwritten
                    pass
        return out

    def put_generations(self, model: str, params: str, rows: list[tuple[str, str, list[str]]]) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?)",
                                  [(model, r, t, params, json.dumps(tails, ensure_ascii=False))
                                   for r, t, tails in rows])

    def get_states(self, model: str, pool: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        out = {}
        for rel, text in keys:
            row = self.conn.execute("SELECT dim, vec FROM states WHERE model=? AND relation=? AND text=? AND "
                                    "pool=?", (model, rel, text, pool)).fetchone()
            if row is not None and len(row[1]) == 4 * row[0]:
                out[(rel, text)] = np.frombuffer(row[1], dtype=np.float32).copy()
        return out

    def put_states(self, model: str, pool: str, rows: list[tuple[str, str, np.ndarray]]) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?, ?, ?)",
                                  [(model, r, t, pool, int(v.size), np.asarray(v, np.float32).tobytes())
                                   for r, t, v in rows])

    def count(self, model: str | None = None) -> dict[str, int]:
        where, args = ("WHERE model=?", (model,)) if model else ("", ())
        g = self.conn.execute(f"SELECT COUNT(*) FROM generations {where}", args).fetchone()[0]
        s = self.conn.execute(f"SELECT COUNT(*) FROM states {where}", args).fetchone()[0]
        return {"generations": int(g), "states": int(s)}


class _CachedProvider:
    """The cache bookkeeping shared by the COMET generator and the retrieval stand-in."""

    id: str
    source: str

    def _setup_cache(self, cache: bool | str | Path) -> None:
        self.cache = None if cache is False else GenerationCache(None if cache is True else cache)
        self.counters = {"generation_hits": 0, "generation_misses": 0, "state_hits": 0, "state_misses": 0}

    def cache_stats(self) -> dict[str, int]:
        out = dict(self.counters)
        if self.cache is not None:
            out.update(self.cache.count(self.id))
        return out

    def generate(self, texts: Sequence[str], relations: Sequence[str] = COSMIC_RELATIONS, k: int = 3,
                 num_beams: int | None = 5) -> list[dict[str, list[str]]]:
        """Up to ``k`` tails per (text, relation): ``[{relation: [tail, ...]}, ...]`` in input order."""
        texts, relations = list(texts), list(relations)
        params = self._params(k, num_beams)
        keys = [(r, t) for t in dict.fromkeys(texts) for r in relations]
        found = self.cache.get_generations(self.id, params, keys) if self.cache is not None else {}
        missing = [key for key in keys if key not in found]
        self.counters["generation_hits"] += len(keys) - len(missing)
        self.counters["generation_misses"] += len(missing)
        if missing:
            new = self._generate(missing, k, num_beams)
            found.update(new)
            if self.cache is not None:
                self.cache.put_generations(self.id, params, [(r, t, tails) for (r, t), tails in new.items()])
        return [{r: list(found[(r, t)]) for r in relations} for t in texts]

    def relation_states(self, texts: Sequence[str], relations: Sequence[str] = COSMIC_RELATIONS,
                        pool: str = "last") -> np.ndarray:
        """Per text and relation, a feature vector. Shapes: returns ``[n, len(relations), d]`` float32."""
        texts, relations = list(texts), list(relations)
        keys = [(r, t) for t in dict.fromkeys(texts) for r in relations]
        found = self.cache.get_states(self.id, pool, keys) if self.cache is not None else {}
        found = {key: v for key, v in found.items() if v.size == self.dim}
        missing = [key for key in keys if key not in found]
        self.counters["state_hits"] += len(keys) - len(missing)
        self.counters["state_misses"] += len(missing)
        if missing:
            new = self._states(missing, pool)
            found.update(new)
            if self.cache is not None:
                self.cache.put_states(self.id, pool, [(r, t, v) for (r, t), v in new.items()])
        out = np.zeros((len(texts), len(relations), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for j, r in enumerate(relations):
                out[i, j] = found[(r, t)]
        return out


def _model_id(path: Path) -> str:
    """``comet:<folder name>:<hash of config + weight files>``, memoised by file size and mtime."""
    files = sorted(p for p in path.iterdir() if p.is_file() and (p.name == "config.json" or p.suffix in
                   (".safetensors", ".bin", ".pt", ".pth", ".model", ".json", ".txt")))
    memo_path = kgemo_home() / "knowledge" / "comet" / "model_ids.json"
    try:
        memo = read_json(memo_path) if memo_path.is_file() else {}
    except CacheError:
        memo = {}
    stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    key = f"{path.resolve()}|{sha256_json(stamp)}"
    if key not in memo:
        memo[key] = sha256_json({p.name: sha256_file(p) for p in files})[:16]
        write_json(memo_path, memo)
    return f"comet:{path.name}:{memo[key]}"


class CometGenerator(_CachedProvider):
    """A local COMET checkpoint (BART seq2seq or GPT-2 causal LM); see the module docstring.

    Args:
        model_name_or_path: folder with ``config.json``, weights and tokenizer (``save_pretrained`` layout).
        device: ``cuda`` / ``cpu``; default: CUDA when available.
        cache: True (the default SQLite file), False, or a path to another SQLite file.
        prompt: input template with ``{head}`` and ``{relation}``.
        max_length: input tokens kept (longer utterances are truncated).
        max_new_tokens: tail length limit.
        batch_size: texts × relations per forward pass.

    Example:
        >>> comet = CometGenerator("/models/comet-atomic_2020_BART")          # doctest: +SKIP
        >>> comet.generate(["I lost my keys"], ["xReact"], k=2)               # doctest: +SKIP
        [{'xReact': ['annoyed', 'frustrated']}]
        >>> comet.relation_states(["I lost my keys"]).shape                  # doctest: +SKIP
        (1, 5, 1024)
    """

    source = "comet"

    def __init__(self, model_name_or_path: str | Path, device: str | None = None, cache: bool | str | Path = True,
                 prompt: str = DEFAULT_PROMPT, max_length: int = 64, max_new_tokens: int = 24,
                 batch_size: int = 32):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        path = Path(model_name_or_path).expanduser()
        if not (path / "config.json").is_file():
            raise DataNotFoundError(
                f"no COMET checkpoint at {model_name_or_path} (a folder with config.json, weights and tokenizer). "
                f"COMET weights are not bundled: download COMET-BART from the comet-atomic-2020 release, or use "
                f"RetrievedComet (ATOMIC retrieval) offline")
        self.path = path
        self.device = pick_device(device)
        config = AutoConfig.from_pretrained(path)
        self.is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        cls = AutoModelForSeq2SeqLM if self.is_seq2seq else AutoModelForCausalLM
        self.model = cls.from_pretrained(path).to(self.device).eval()
        if self.tokenizer.pad_token is None:  # GPT-2 has none: pad with EOS (masked anyway)
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.dim = int(getattr(config, "d_model", None) or config.hidden_size)
        self.prompt, self.max_length, self.max_new_tokens = prompt, max_length, max_new_tokens
        self.batch_size = batch_size
        self.id = _model_id(path)
        self._setup_cache(cache)

    def __repr__(self) -> str:
        kind = "seq2seq" if self.is_seq2seq else "causal"
        return f"CometGenerator({self.id}, {kind}, d={self.dim}, device={self.device})"

    def _params(self, k: int, num_beams: int | None) -> str:
        beams = max(num_beams or 1, k) if (num_beams or 1) > 1 else 1
        return json.dumps({"k": k if beams > 1 else 1, "beams": beams, "max_new": self.max_new_tokens,
                           "prompt": self.prompt, "max_len": self.max_length}, sort_keys=True)

    def _encode(self, prompts: list[str]):
        # Causal LMs continue the last token, so their batches are padded on the left.
        self.tokenizer.padding_side = "right" if self.is_seq2seq else "left"
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self.max_length)
        enc.pop("token_type_ids", None)
        return {k: v.to(self.device) for k, v in enc.items()}

    def _generate(self, keys: list[tuple[str, str]], k: int, num_beams: int | None) -> dict:
        import torch

        beams = max(num_beams or 1, k) if (num_beams or 1) > 1 else 1
        n_ret = k if beams > 1 else 1
        out: dict[tuple[str, str], list[str]] = {}
        for i in range(0, len(keys), self.batch_size):
            chunk = keys[i:i + self.batch_size]
            enc = self._encode([self.prompt.format(head=t, relation=r) for r, t in chunk])
            with torch.inference_mode():
                gen = self.model.generate(**enc, num_beams=beams, num_return_sequences=n_ret,
                                          max_new_tokens=self.max_new_tokens, do_sample=False,
                                          early_stopping=beams > 1,
                                          pad_token_id=self.tokenizer.pad_token_id)
            if not self.is_seq2seq:
                gen = gen[:, enc["input_ids"].shape[1]:]
            texts = self.tokenizer.batch_decode(gen, skip_special_tokens=True)
            for j, key in enumerate(chunk):
                tails = [s.strip() for s in texts[j * n_ret:(j + 1) * n_ret]]
                out[key] = [t for t in dict.fromkeys(tails) if t]
        return out

    def _states(self, keys: list[tuple[str, str]], pool: str) -> dict:
        import torch

        if pool not in ("last", "mean"):
            raise ValueError(f"pool must be 'last' or 'mean', not {pool!r}")
        out: dict[tuple[str, str], np.ndarray] = {}
        for i in range(0, len(keys), self.batch_size):
            chunk = keys[i:i + self.batch_size]
            enc = self._encode([self.prompt.format(head=t, relation=r) for r, t in chunk])
            mask = enc["attention_mask"]
            with torch.inference_mode():
                if self.is_seq2seq:
                    hidden = self.model.get_encoder()(**enc).last_hidden_state
                else:
                    hidden = self.model(**enc, output_hidden_states=True).hidden_states[-1]
            if pool == "mean":
                m = mask.unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
            elif self.is_seq2seq:  # right padding: the last real token
                vec = hidden[torch.arange(len(chunk)), mask.sum(1) - 1]
            else:  # left padding: the last position
                vec = hidden[:, -1]
            for key, v in zip(chunk, vec.float().cpu().numpy()):
                out[key] = v
        return out


class RetrievedComet(_CachedProvider):
    """COMET's interface answered from ATOMIC retrieval (offline stand-in for COSMIC / TODKAT).

    ``generate`` returns the tails :meth:`AtomicRetriever.search` finds for each relation; ``relation_states`` is
    the similarity-weighted mean of the sentence embeddings of the top ``state_k`` retrieved tails (zeros when a
    relation has none), ``d = encoder.dim``.

    Args:
        retriever: an :class:`~kgemo.knowledge.atomic.AtomicRetriever`.
        cache: as for :class:`CometGenerator`.
        state_k: tails averaged into a relation state.
        tail_memo: tail embeddings kept in memory between calls (a dataset's batches retrieve the same few
            thousand tails over and over; 50,000 × 384-d float32 is 77 MB). 0 turns it off.
    """

    source = "atomic-retrieval"

    def __init__(self, retriever: Any, cache: bool | str | Path = True, state_k: int = 3, tail_memo: int = 50_000):
        self.retriever = retriever
        self.state_k = state_k
        self.tail_memo = int(tail_memo)
        self._tail_vectors: dict[str, np.ndarray] = {}
        self._last_queries: tuple[tuple[str, ...], np.ndarray] | None = None
        self._setup_cache(cache)

    @property
    def id(self) -> str:  # type: ignore[override]
        return self.retriever.id

    @property
    def dim(self) -> int:
        return int(self.retriever.encoder.dim)

    def __repr__(self) -> str:
        return f"RetrievedComet({self.id})"

    def _params(self, k: int, num_beams: int | None) -> str:
        return json.dumps({"k": k}, sort_keys=True)  # beams mean nothing for retrieval

    def hits(self, texts: Sequence[str], relations: Sequence[str] = COSMIC_RELATIONS, k: int = 3):
        """The raw :class:`~kgemo.knowledge.types.AtomicHit` lists (with heads and scores), uncached."""
        return self.retriever.search(list(texts), k=k, relations=tuple(relations))

    def _grouped(self, keys: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
        texts = list(dict.fromkeys(t for _, t in keys))
        rels = list(dict.fromkeys(r for r, _ in keys))
        return texts, rels

    def _search(self, texts: list[str], k: int, relations: tuple[str, ...]):
        # generate() and relation_states() of one batch ask for the same texts: their query embeddings are
        # computed once (the last batch's are kept).
        key = tuple(texts)
        if self._last_queries is None or self._last_queries[0] != key:
            self._last_queries = (key, self.retriever.encode_queries(texts))
        return self.retriever.search_vectors(self._last_queries[1], k=k, relations=relations)

    def _tail_embeddings(self, tails: list[str]) -> np.ndarray:
        """``[len(tails), dim]``: the memo's rows, the rest encoded in one batch (and memoised while there is room)."""
        todo = [t for t in tails if t not in self._tail_vectors]
        new = (np.asarray(self.retriever.encoder.encode(todo, show_progress=False), dtype=np.float32)
               if todo else np.zeros((0, self.dim), np.float32))
        fresh = dict(zip(todo, new))
        room = max(self.tail_memo - len(self._tail_vectors), 0)
        self._tail_vectors.update(list(fresh.items())[:room])
        if not tails:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([fresh[t] if t in fresh else self._tail_vectors[t] for t in tails])

    def _generate(self, keys: list[tuple[str, str]], k: int, num_beams: int | None) -> dict:
        texts, rels = self._grouped(keys)
        res = self._search(texts, k, tuple(rels))
        wanted = set(keys)
        return {(r, t): [h.tail for h in hits[r]] for t, hits in zip(texts, res) for r in rels if (r, t) in wanted}

    def _states(self, keys: list[tuple[str, str]], pool: str) -> dict:
        texts, rels = self._grouped(keys)
        res = self._search(texts, self.state_k, tuple(rels))
        tails = list(dict.fromkeys(h.tail for hits in res for r in rels for h in hits[r]))
        emb = self._tail_embeddings(tails)
        row = {t: i for i, t in enumerate(tails)}
        wanted = set(keys)
        out = {}
        for t, hits in zip(texts, res):
            for r in rels:
                if (r, t) not in wanted:
                    continue
                hs = hits[r]
                if not hs:
                    out[(r, t)] = np.zeros(self.dim, np.float32)
                    continue
                w = np.maximum(np.array([h.score for h in hs], np.float32), 1e-6)
                out[(r, t)] = (w[:, None] * emb[[row[h.tail] for h in hs]]).sum(0) / w.sum()
        return out


def save_word_tokenizer(folder: str | Path, words: Sequence[str]) -> int:
    """Save a word-level tokenizer over ``words`` (after ``<pad> <s> </s> <unk> [GEN]``, split on whitespace) to
    ``folder``, for the tiny checkpoints of :func:`save_random_comet`; returns its vocabulary size."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>", "[GEN]", *dict.fromkeys(words)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    return len(vocab)


def save_random_comet(folder: str | Path, words: Sequence[str], max_positions: int = 128, seed: int = 0) -> Path:
    """Save a random, untrained COMET-BART checkpoint (1 layer, d = 16, a word-level tokenizer over ``words``) to
    ``folder``, in the layout :class:`CometGenerator` loads.

    For tests and benchmarks of kgemo's batching, caching and graph plumbing where no COMET weights exist (offline
    machines): it decodes noise, never commonsense. The same arguments give the same weights.
    """
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    folder = Path(folder)
    vocab_size = save_word_tokenizer(folder, words)
    torch.manual_seed(seed)
    cfg = BartConfig(vocab_size=vocab_size, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                     max_position_embeddings=max_positions, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                     decoder_start_token_id=2, forced_bos_token_id=None, forced_eos_token_id=None)
    BartForConditionalGeneration(cfg).save_pretrained(folder)
    return folder
