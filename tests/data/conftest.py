"""Writers of tiny dataset files in each loader's format, for the bad-input tests."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "data"

MELD_HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID", "Season",
               "Episode", "StartTime", "EndTime"]
EMORY_HEADER = ["Utterance", "Speaker", "Emotion", "Scene_ID", "Utterance_ID", "Season", "Episode", "Start_Time",
                "End_Time"]


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def meld_row(n, text, speaker="Joey", emotion="joy", sentiment="positive", dia=0, utt=0):
    return [str(n), text, speaker, emotion, sentiment, str(dia), str(utt), "1", "1", "00:00:01,000", "00:00:02,000"]


def emory_row(text, speaker="['Joey Tribbiani']", emotion="Joyful", scene=1, utt=1, season=1, episode=1):
    return [text, speaker, emotion, str(scene), str(utt), str(season), str(episode), "00:00:01.000", "00:00:02.000"]


@pytest.fixture
def write_meld(tmp_path):
    """write_meld(rows, split="train", raw=None) -> data root with meld/<split>_sent_emo.csv."""

    def write(rows=None, split="train", raw: bytes | None = None) -> Path:
        folder = tmp_path / "meld"
        folder.mkdir(exist_ok=True)
        (folder / f"{split}_sent_emo.csv").write_bytes(raw if raw is not None else csv_bytes(MELD_HEADER, rows))
        return tmp_path

    return write


@pytest.fixture
def write_emory(tmp_path):
    """write_emory(rows, split="train", raw=None) -> data root with emorynlp/emory_<split>.csv."""

    def write(rows=None, split="train", raw: bytes | None = None) -> Path:
        folder = tmp_path / "emorynlp"
        folder.mkdir(exist_ok=True)
        name = {"dev": "val"}.get(split, split)
        (folder / f"emory_{name}.csv").write_bytes(raw if raw is not None else csv_bytes(EMORY_HEADER, rows))
        return tmp_path

    return write


@pytest.fixture
def write_dd_original(tmp_path):
    """write_dd_original(texts, acts, emotions, split="test") -> data root with dailydialog/original/ files.

    ``texts`` are lists of utterances (joined with `` __eou__ ``) or raw lines; labels are lists of codes or raw
    lines.
    """

    def write(texts, acts, emotions, split="test") -> Path:
        name = {"dev": "validation"}.get(split, split)
        folder = tmp_path / "dailydialog" / "original"
        folder.mkdir(parents=True, exist_ok=True)

        def line(x, sep):
            return x if isinstance(x, str) else sep.join(str(v) for v in x) + sep

        (folder / f"dialogues_{name}.txt").write_text("".join(line(t, " __eou__ ") + "\n" for t in texts))
        (folder / f"dialogues_act_{name}.txt").write_text("".join(line(a, " ") + "\n" for a in acts))
        (folder / f"dialogues_emotion_{name}.txt").write_text("".join(line(e, " ") + "\n" for e in emotions))
        return tmp_path

    return write


def convlab_turn(text, speaker="user", intent="inform", emotion="no emotion", idx=0):
    return {"speaker": speaker, "utterance": text, "utt_idx": idx, "emotion": emotion,
            "dialogue_acts": {"binary": [{"intent": intent, "domain": "", "slot": ""}], "categorical": [],
                              "non-categorical": []}}


@pytest.fixture
def write_convlab(tmp_path):
    """write_convlab(dialogues) -> data root with dailydialog/convlab/data.zip; dialogues = [(split, [turn])]."""

    def write(dialogues, raw: bytes | None = None) -> Path:
        folder = tmp_path / "dailydialog" / "convlab"
        folder.mkdir(parents=True, exist_ok=True)
        counters: dict[str, int] = {}
        data = []
        for split, turns in dialogues:
            k = counters[split] = counters.get(split, -1) + 1
            data.append({"dataset": "dailydialog", "data_split": split, "dialogue_id": f"dailydialog-{split}-{k}",
                         "original_id": f"{split}-{k}", "domains": ["Ordinary Life"], "turns": turns})
        with zipfile.ZipFile(folder / "data.zip", "w") as zf:
            zf.writestr("data/dialogues.json", raw if raw is not None else json.dumps(data, indent=1))
        return tmp_path

    return write


@pytest.fixture
def write_mastodon(tmp_path):
    """write_mastodon(dialogues, adjacency_lines, split="train") -> data root with mastodon/ files."""

    def write(dialogues, adjacency, split="train", raw_json: bytes | None = None) -> Path:
        folder = tmp_path / "mastodon"
        folder.mkdir(exist_ok=True)
        (folder / f"{split}.json").write_bytes(raw_json if raw_json is not None else
                                               json.dumps(dialogues, indent=1).encode())
        (folder / f"{split}_adj.txt").write_text("".join(line + "\n" for line in adjacency))
        return tmp_path

    return write


@pytest.fixture
def iemocap_root(tmp_path):
    """A data root with a copy of the IEMOCAP-layout fixture under iemocap/ (tests may edit the copy)."""
    folder = tmp_path / "iemocap"
    folder.mkdir()
    for f in (FIXTURES / "iemocap").glob("*.tsv"):
        (folder / f.name).write_bytes(f.read_bytes())
    return tmp_path
