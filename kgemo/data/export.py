"""Write conversations as a dataset file of your own (:mod:`kgemo.data.jsonl`): any built-in dataset, or a list of
:class:`Conversation` objects, as ``<name>.jsonl`` + ``<name>.yaml``.

A dataset exported here and loaded back gives the same conversations as its built-in loader — ids, order, texts,
speakers, labels, reply links, ``meta`` — so a model trained from the file scores exactly as one trained from the
original files (tests/data/test_jsonl_export.py checks both).

Example:
    >>> jsonl, header = export_dataset("meld", "exported/")
    >>> jsonl.name, header.name
    ('meld.jsonl', 'meld.yaml')
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from ..storage import atomic_write
from .conversation import Conversation
from .jsonl import FileHeader
from .registry import get_dataset

__all__ = ["export_dataset", "write_dataset_file", "conversation_line"]


def conversation_line(conversation: Conversation, split: str | None = None) -> dict[str, Any]:
    """One line of a dataset file: ``{"id", "split", "turns": [{"speaker", "text", <task>: label, "id"}], ...}``.

    ``reply_to`` and ``meta`` are written when the conversation has them; ``split`` when given (else the
    conversation's own, if any).
    """
    split = split or conversation.split
    out: dict[str, Any] = {"id": conversation.id}
    if split:
        out["split"] = split
    turns = []
    for u in conversation.utterances:
        turn: dict[str, Any] = {"speaker": u.speaker, "text": u.text}
        turn.update(u.labels)
        if u.id is not None:
            turn["id"] = u.id
        turns.append(turn)
    out["turns"] = turns
    if conversation.reply_to is not None:
        out["reply_to"] = [list(p) for p in conversation.reply_to]
    if conversation.meta:
        out["meta"] = dict(conversation.meta)
    return out


def write_dataset_file(path: str | Path, header: FileHeader | Mapping[str, Any],
                       conversations: Mapping[str, Sequence[Conversation]], comment: str = "") -> tuple[Path, Path]:
    """Write ``path`` (``.jsonl``, one conversation per line, split by split in the order given) and its header
    ``<stem>.yaml`` beside it; both atomically. Returns ``(jsonl, header)``.

    Args:
        header: a :class:`FileHeader` or the mapping a header file holds (``name``, ``tasks``, ``splits``).
        conversations: split → conversations.
        comment: a line written as a YAML comment at the top of the header.
    """
    path = Path(path)
    if path.suffix != ".jsonl":
        raise ValueError(f"{path}: a dataset file ends in .jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        for split, convs in conversations.items():
            for conv in convs:
                fh.write(json.dumps(conversation_line(conv, split), ensure_ascii=False) + "\n")
    head = header.to_dict() if isinstance(header, FileHeader) else dict(header)
    hpath = path.with_suffix(".yaml")
    with atomic_write(hpath, "w", encoding="utf-8") as fh:
        if comment:
            fh.write("".join(f"# {line}\n" for line in comment.splitlines()))
        yaml.safe_dump(head, fh, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)
    return path, hpath


def export_dataset(name: str, out_dir: str | Path, root: str | Path | None = None, strict: bool = True,
                   splits: Sequence[str] = ("train", "dev", "test"), **options) -> tuple[Path, Path]:
    """Write dataset ``name`` (every split) as ``out_dir/<name>.jsonl`` + ``out_dir/<name>.yaml``.

    The header declares the dataset's own label spaces (labels in the same order, neutral class, aliases) and
    metrics, and ``splits: given``; each line carries its split.

    Args:
        name: a registered dataset (``meld``, ``emorynlp``, ``dailydialog``, ``mastodon``, ``iemocap``).
        out_dir: the folder to write into (created).
        root, strict, options: as for :func:`~kgemo.data.load_dataset` (e.g. ``layout="original"``).
        splits: the splits to write.

    Returns:
        ``(jsonl, header)`` paths.
    """
    spec = get_dataset(name)
    convs = {split: spec.load(split, root=root, strict=strict, **options) for split in splits}
    header = FileHeader(Path(out_dir) / f"{spec.name}.yaml", spec.name, spec.tasks, spec.metrics, None,
                        spec.description)
    comment = (f"Header of {spec.name}.jsonl: {spec.name} exported by `kgemo data export {spec.name}` from kgemo's "
               f"built-in loader.\nFormat: docs/your-data.md. Source: {spec.homepage or 'see docs/data.md'}.")
    return write_dataset_file(Path(out_dir) / f"{spec.name}.jsonl", header, convs, comment)
