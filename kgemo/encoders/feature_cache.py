"""The on-disk feature cache: encode a collection of texts once, verify it on every load.

Layout (under ``kgemo_home()/features`` unless given a root)::

    features/
      <encoder id, as a file name>/
        <key>-<hash12>.safetensors          # one file per (encoder, key), e.g. meld_test-1a2b3c4d5e6f
        .partial/<key>-<hash12>/            # finished chunks of an unfinished build (removed when done)
          <texts sha16>-<chunk size>-00000.safetensors

Each file holds one float32 tensor ``features`` (n, dim) and string metadata: format, encoder id, key, n, dim,
sha256 of the texts, sha256 of the sources (the dataset files that produced the texts) and sha256 of the tensor
bytes. A file whose bytes do not parse or whose checksum fails is *corrupt*; one whose texts or sources differ
from the caller's is *stale*. Both are reported with ``logging.warning`` naming the file and rebuilt.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

import numpy as np

from ..checksums import arrays_sha256, file_sha256
from ..errors import CacheError, KgemoError
from ..storage import atomic_write, kgemo_home, sha256_json, short_hash
from .lazy_model import check_texts, show_bar
from .encoder_inputs import check_inputs, inputs_sha256

__all__ = ["FeatureCache", "dataset_features", "Encoder"]

logger = logging.getLogger(__name__)

FORMAT = "kgemo-features/1"
TENSOR = "features"
#: Texts per chunk when a build is large enough to be resumable.
DEFAULT_CHUNK_SIZE = 8192


class Encoder(Protocol):
    """What the cache needs from an encoder (:class:`SentenceEncoder` or anything alike).

    Optional: ``conversation_inputs(conversation)`` (what to encode per utterance; default its text) and
    ``encode_inputs(inputs, ...)`` (encodes strings and ``(target, context)`` pairs; default ``encode``).
    """

    id: str

    def encode(self, texts: list[str], batch_size: int | None = None,
               show_progress: bool | None = None) -> np.ndarray: ...


class FeatureCache:
    """Features on disk, keyed by encoder id, collection key, source checksums and the texts themselves.

    Args:
        root: folder for the cache; default ``kgemo_home() / "features"`` (``$KGEMO_HOME`` moves it).
        chunk_size: collections longer than this are encoded in chunks, each saved as it finishes, so that a
            killed build resumes where it stopped.

    Example:
        >>> cache = FeatureCache()
        >>> x = cache.get_or_encode(SentenceEncoder(), ["hi", "bye"], key="demo")   # encodes, saves
        >>> x = cache.get_or_encode(SentenceEncoder(), ["hi", "bye"], key="demo")   # reads, no model load
        >>> x.shape
        (2, 384)
    """

    def __init__(self, root: str | os.PathLike | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE):
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self._root = None if root is None else Path(root).expanduser()
        self.chunk_size = int(chunk_size)

    @property
    def root(self) -> Path:
        return self._root if self._root is not None else kgemo_home() / "features"

    def path_for(self, encoder_id: str, key: str) -> Path:
        """The file that holds ``key``'s features for the encoder with id ``encoder_id``."""
        return self.root / _slug(encoder_id) / f"{_slug(key)}-{short_hash(json.dumps([encoder_id, key]), 12)}" \
                                               f".safetensors"

    # -- public verbs -----------------------------------------------------------------------------------------
    def get_or_encode(self, encoder: Encoder, texts: Iterable[str], key: str,
                      sources: Mapping[str, str] | None = None, desc: str | None = None) -> np.ndarray:
        """Features of ``texts`` from the cache, or encoded (and saved) when missing, corrupt or stale.

        Args:
            encoder: a :class:`SentenceEncoder` (or anything with ``id`` and ``encode``).
            texts: the texts, in order; their sha256 is checked on load. An encoder with ``encode_inputs``
                (a fine-tuned one) may also be given ``(target, context)`` pairs.
            key: names the collection, e.g. ``"meld/test"``; one file per (encoder, key).
            sources: file name → sha256 of the data files the texts came from (see :func:`file_sha256`).
            desc: label of the progress bar.

        Returns:
            float32 array ``(len(texts), dim)``.
        """
        pairs = hasattr(encoder, "encode_inputs")
        texts = check_inputs(texts, "texts") if pairs else check_texts(texts)
        if not isinstance(key, str) or not key:
            raise ValueError(f"key must be a non-empty string, got {key!r}")
        # For plain strings inputs_sha256 equals texts_sha256, so files written before pairs existed stay valid.
        want = {"format": FORMAT, "encoder": str(encoder.id), "key": key,
                "sources_sha256": sha256_json(_norm_sources(sources)), "texts_sha256": inputs_sha256(texts),
                "n": str(len(texts))}
        path = self.path_for(want["encoder"], key)
        features = self._load(path, want)
        if features is not None:
            logger.debug("%s: %d cached features", path, len(features))
            return features
        features = self._build(encoder, texts, path, want, desc or key)
        self._save(path, features, {**want, "sources": json.dumps(_norm_sources(sources), sort_keys=True)})
        shutil.rmtree(self._partial_dir(path), ignore_errors=True)
        return features

    def conversation_features(self, encoder: Encoder, conversations: Sequence[Any], key: str,
                              sources: Mapping[str, str] | None = None, desc: str | None = None
                              ) -> list[np.ndarray]:
        """One ``(len(conversation), dim)`` array per conversation, in order, from a single cached collection.

        The encoder's ``conversation_inputs(conversation)`` decides what is encoded (a fine-tuned encoder reads
        each utterance with its speaker and past turns); without it, the utterance texts. The inputs enter the
        cache key, so features of other inputs are never reused.
        """
        to_inputs = getattr(encoder, "conversation_inputs", None)
        per_conv = [to_inputs(conv) if to_inputs is not None else conv.texts for conv in conversations]
        features = self.get_or_encode(encoder, [x for inputs in per_conv for x in inputs], key, sources=sources,
                                      desc=desc)
        bounds = np.cumsum([0] + [len(x) for x in per_conv])
        return [features[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    # -- building ----------------------------------------------------------------------------------------------
    def _build(self, encoder: Encoder, texts: list[str], path: Path, want: dict[str, str], desc: str
               ) -> np.ndarray:
        if len(texts) <= self.chunk_size:
            return _checked(encoder, _encode(encoder, texts), len(texts))
        from tqdm.auto import tqdm

        partial = self._partial_dir(path)
        prefix = f"{want['texts_sha256'][:16]}-{self.chunk_size}-"
        # Chunks of another build (other texts or chunk size) can never be used again.
        if partial.is_dir():
            stale = [p for p in partial.iterdir() if not p.name.startswith(prefix)]
            if stale:
                logger.info("%s: removing %d chunk file(s) of an older build", partial, len(stale))
                for p in stale:
                    p.unlink(missing_ok=True)
        n_chunks = math.ceil(len(texts) / self.chunk_size)
        parts: list[np.ndarray] = []
        resumed = 0
        with tqdm(total=len(texts), desc=desc, unit="text", disable=show_bar(None, len(texts))) as bar:
            for c in range(n_chunks):
                chunk = texts[c * self.chunk_size:(c + 1) * self.chunk_size]
                chunk_path = partial / f"{prefix}{c:05d}.safetensors"
                chunk_want = {**want, "chunk": str(c), "chunk_texts_sha256": inputs_sha256(chunk),
                              "n": str(len(chunk))}
                part = self._load(chunk_path, chunk_want)
                if part is None:
                    part = _checked(encoder, _encode(encoder, chunk, show_progress=False), len(chunk))
                    self._save(chunk_path, part, chunk_want)
                else:
                    resumed += 1
                parts.append(part)
                bar.update(len(chunk))
        if resumed:
            logger.info("%s: resumed %d of %d chunks from %s", path.name, resumed, n_chunks, partial)
        dims = {p.shape[1] for p in parts}
        if len(dims) != 1:
            raise CacheError(f"{partial}: chunks have different widths {sorted(dims)}; delete the folder")
        return np.concatenate(parts, axis=0)

    def _partial_dir(self, path: Path) -> Path:
        return path.parent / ".partial" / path.name[: -len(".safetensors")]

    # -- reading and writing -------------------------------------------------------------------------------
    def _save(self, path: Path, features: np.ndarray, meta: dict[str, str]) -> None:
        from safetensors.numpy import save

        features = np.ascontiguousarray(features, dtype=np.float32)
        meta = {**meta, "n": str(features.shape[0]), "dim": str(features.shape[1]),
                "data_sha256": arrays_sha256(features)}
        with atomic_write(path, "wb") as fh:
            fh.write(save({TENSOR: features}, metadata=meta))

    def _load(self, path: Path, want: Mapping[str, str]) -> np.ndarray | None:
        """The cached array if ``path`` exists, parses, checks out and matches ``want``; else None (logged)."""
        if not path.is_file():
            return None
        try:
            meta, features = _read(path)
        except CacheError as exc:
            logger.warning("%s: corrupt feature cache (%s); rebuilding it", path, exc)
            return None
        for field in ("format", "encoder", "key", "chunk"):
            if meta.get(field) != want.get(field):
                logger.warning("%s: feature cache written for another %s (%r, expected %r); rebuilding it",
                               path, field, meta.get(field), want.get(field))
                return None
        for field, what in (("sources_sha256", "the source data files changed"),
                            ("texts_sha256", "the texts changed"),
                            ("chunk_texts_sha256", "the texts of this chunk changed")):
            if meta.get(field) != want.get(field):
                logger.warning("%s: stale feature cache (%s); rebuilding it", path, what)
                return None
        return features


def _read(path: Path) -> tuple[dict[str, str], np.ndarray]:
    """Parse and verify one cache file; any defect is a :class:`CacheError` saying what is wrong."""
    from safetensors.numpy import load

    data = path.read_bytes()
    if len(data) < 8:
        raise CacheError(f"{len(data)} bytes, too short for a safetensors file")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8:
        raise CacheError(f"header of {header_len} bytes does not fit in a {len(data)}-byte file (truncated?)")
    try:
        header = json.loads(data[8:8 + header_len])
        meta = header["__metadata__"]
        if not isinstance(meta, dict):
            raise TypeError("metadata is not a mapping")
        tensors = load(data)
    except Exception as exc:  # json, KeyError, safetensors' own error: the file is not what we wrote
        raise CacheError(f"unreadable ({type(exc).__name__}: {str(exc)[:120]})") from None
    if meta.get("format") != FORMAT:
        raise CacheError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
    features = tensors.get(TENSOR)
    if features is None or features.dtype != np.float32 or features.ndim != 2:
        raise CacheError(f"no float32 matrix named {TENSOR!r}")
    if [str(d) for d in features.shape] != [meta.get("n"), meta.get("dim")]:
        raise CacheError(f"shape {features.shape} disagrees with metadata n={meta.get('n')} dim={meta.get('dim')}")
    if arrays_sha256(features) != meta.get("data_sha256"):
        raise CacheError("data checksum mismatch")
    return meta, features


def _encode(encoder: Encoder, inputs: list, show_progress: bool | None = None) -> Any:
    """``encode_inputs`` when the encoder has it (it takes pairs), else ``encode``."""
    encode = getattr(encoder, "encode_inputs", None) or encoder.encode
    return encode(inputs, show_progress=show_progress)


def _checked(encoder: Encoder, features: Any, n: int) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] != n:
        raise KgemoError(f"encoder {encoder.id} returned shape {features.shape} for {n} texts")
    if not np.isfinite(features).all():
        raise KgemoError(f"encoder {encoder.id} returned NaN/inf features; with fp16 on GPU try fp16=False")
    return features


def _norm_sources(sources: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in sorted((sources or {}).items(), key=lambda kv: str(kv[0]))}


def _slug(text: str) -> str:
    """A file-name-safe version of ``text`` (readable, not unique: the hash in the name keeps it unique)."""
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", text).strip("._")[:100] or "_"


def dataset_features(encoder: Encoder, dataset: str, split: str, root: str | os.PathLike | None = None,
                     cache: FeatureCache | None = None) -> tuple[list, list[np.ndarray]]:
    """Load ``dataset``/``split`` and its features (cached, keyed by the sha256 of the dataset's files).

    Args:
        encoder: the encoder whose features to return.
        dataset, split: as for :func:`kgemo.data.load_dataset` (``"meld"``, ``"test"``).
        root: dataset root (default ``kgemo.storage.data_root()``).
        cache: the :class:`FeatureCache` to use (default one under ``kgemo_home()``).

    Returns:
        ``(conversations, features)``: ``features[i]`` is a float32 array ``(len(conversations[i]), dim)``.

    Example:
        >>> convs, feats = dataset_features(SentenceEncoder(), "meld", "test")
        >>> len(convs) == len(feats), feats[0].shape[1]
        (True, 384)
    """
    from ..data import dataset_files, load_dataset

    conversations = load_dataset(dataset, split, root=root)
    files = [Path(p) for p in dataset_files(dataset, split, root=root)]
    sources = {_source_name(p, files): file_sha256(p) for p in files}
    cache = cache if cache is not None else FeatureCache()
    features = cache.conversation_features(encoder, conversations, key=f"{dataset}/{split}", sources=sources,
                                           desc=f"encoding {dataset}/{split}")
    return conversations, features


def _source_name(path: Path, files: list[Path]) -> str:
    # File names, not absolute paths, enter the key: moving the data root must not invalidate the cache.
    names = [p.name for p in files]
    return path.name if names.count(path.name) == 1 else path.as_posix()
