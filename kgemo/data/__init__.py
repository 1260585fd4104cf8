"""kgemo.data: the conversation schema, label spaces, dataset loaders (built-in and your own files) and downloads.

>>> from kgemo.data import load_dataset, DATASETS
>>> convs = load_dataset("meld", "train")          # list[Conversation], labels as names
>>> DATASETS["meld"].metric("emotion")
'weighted_f1'
>>> mine = load_dataset("examples/my_chats.jsonl", "train")   # your own file + its YAML header (docs/your-data.md)
"""
from __future__ import annotations

from .conversation import Conversation, Utterance, as_conversation
from .text import normalise_text
from .labels import EKMAN7, LABEL_SPACES, TASKS, LabelSpace, label_space, to_ekman
from .registry import (DATASETS, DatasetSpec, dataset_checksums, dataset_files, file_dataset, get_dataset,
                       load_dataset)
from .report import LoadReport
from .download import download_dataset
from .jsonl import FileHeader, SplitRule, read_header
from .export import export_dataset, write_dataset_file
from .validate import FileCheck, check_file

__all__ = [
    "Utterance", "Conversation", "as_conversation", "normalise_text",
    "LabelSpace", "label_space", "LABEL_SPACES", "TASKS", "EKMAN7", "to_ekman",
    "DATASETS", "DatasetSpec", "get_dataset", "load_dataset", "dataset_files", "dataset_checksums",
    "LoadReport", "download_dataset",
    "file_dataset", "read_header", "FileHeader", "SplitRule", "check_file", "FileCheck", "export_dataset",
    "write_dataset_file",
]
