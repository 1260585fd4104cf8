"""Utterances as encoder inputs, in batches: the data side of fine-tuning.

A split becomes an :class:`UtteranceSet` (every utterance with its context, tokenised once, with its label ids);
training draws length-bucketed, shuffled batches from :class:`BucketBatches` (resumable mid-epoch); evaluation
reads longest-first batches (:func:`eval_loader`). A batch is the tokenizer's padded tensors plus ``labels``::

    {"input_ids": (B, T), "attention_mask": (B, T), "token_type_ids": (B, T), "labels": (B, tasks)}
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch

from ..data import Conversation, LabelSpace
from ..encoders.encoder_inputs import ContextFormat, InputTokenizer, conversation_inputs
from ..errors import DataFormatError

__all__ = ["UtteranceSet", "BucketBatches", "collate_utterances", "train_loader", "eval_loader"]


class UtteranceSet(torch.utils.data.Dataset):
    """Every utterance of a split as ``(input_ids, token_type_ids, labels)``, tokenised once.

    Args:
        conversations: the split.
        tokenizer: turns inputs into ids (context cut from its oldest end).
        context: how an utterance and its past become one input.
        label_spaces: task → label space; labels are stored as ids, -1 = unlabelled.
    """

    def __init__(self, conversations: Sequence[Conversation], tokenizer: InputTokenizer, context: ContextFormat,
                 label_spaces: Mapping[str, LabelSpace]):
        inputs, labels = [], []
        for conv in conversations:
            inputs += conversation_inputs(conv, context)
            for k, u in enumerate(conv):
                row = []
                for task, space in label_spaces.items():
                    name = u.labels.get(task)
                    try:
                        row.append(-1 if name is None else space.index(name))
                    except (KeyError, ValueError):
                        raise DataFormatError(f"utterance {k + 1}: unknown {space.name} label {name!r}; "
                                              f"expected one of {list(space.labels)}", dialogue=conv.id) from None
                labels.append(row)
        self.encoded = tokenizer(inputs)
        self.labels = torch.tensor(labels, dtype=torch.long).reshape(len(inputs), len(label_spaces))  # (N, tasks)
        self.lengths = np.array([len(ids) for ids, _ in self.encoded])

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int):
        return self.encoded[i], self.labels[i]


class BucketBatches(torch.utils.data.Sampler):
    """Shuffled batches of similar length (less padding), reproducible per (seed, epoch), resumable mid-epoch.

    Each epoch shuffles the utterances, sorts each run of ``batch_size * bucket_batches`` of them by length, cuts
    batches and shuffles the batches. After :meth:`resume` the next epoch skips the batches already trained on.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, bucket_batches: int = 50):
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.bucket = max(1, bucket_batches) * batch_size
        self.epoch, self._skip = 0, 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this before every epoch
        self.epoch = epoch

    def resume(self, epoch: int, batches_done: int) -> None:
        self.epoch, self._skip = epoch, batches_done

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.bucket):
            chunk = order[start:start + self.bucket]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        skip, self._skip = self._skip, 0
        yield from batches[skip:]


def collate_utterances(tokenizer: InputTokenizer):
    """The ``collate_fn`` that pads a list of ``UtteranceSet`` items into one batch."""
    def collate(items):
        batch = tokenizer.pad([enc for enc, _ in items])                   # (B, T) each
        batch["labels"] = torch.stack([y for _, y in items])                # (B, tasks)
        return batch
    return collate


def train_loader(data: UtteranceSet, tokenizer: InputTokenizer, sampler: BucketBatches):
    """Training batches in ``sampler``'s order."""
    return torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=collate_utterances(tokenizer))


def eval_loader(data: UtteranceSet, tokenizer: InputTokenizer, batch_size: int):
    """Evaluation batches, longest first: little padding, and an out-of-memory error shows on the first batch."""
    order = np.argsort(-data.lengths, kind="stable").tolist()
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return torch.utils.data.DataLoader(data, batch_sampler=batches, collate_fn=collate_utterances(tokenizer))
