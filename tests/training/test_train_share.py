"""Learning-curve shares (``data.train_share``): nested subsets per seed, dev capped, a related task's labels kept,
the config checks, and a run's metrics.json saying what it was trained on."""
from __future__ import annotations

import json

import pytest
from test_own_data import experiment, lines, tiny_pipeline, write

from kgemo.errors import KgemoError
from kgemo.training import fit, prepare_data
from kgemo.training.data import share_indices


def test_shares_are_nested_fixed_per_seed_and_never_empty():
    n = 1038  # MELD's train conversations
    small, large = share_indices(n, 0.05, 1, "meld/train"), share_indices(n, 0.25, 1, "meld/train")
    assert len(small) == 52 and len(large) == 260                    # ceil(share * n)
    assert set(small) <= set(large) and small == sorted(small)        # nested, in the split's own order
    assert share_indices(n, 0.05, 1, "meld/train") == small           # fixed by the seed ...
    assert share_indices(n, 0.05, 2, "meld/train") != small           # ... and another seed draws others
    assert share_indices(n, 0.05, 1, "meld/dev") != small             # dev is drawn apart from train
    assert len(share_indices(10, 0.01, 0, "x")) == 1 and len(share_indices(10, 3, 0, "x")) == 3
    assert share_indices(7, 1.0, 3, "x") == list(range(7))            # 100%: the split as it is


def big_file(tmp_path):
    many = [{**x, "id": f"{x['id']}-{r}"} for r in range(10) for x in lines()]  # 30 conversations per split
    return write(tmp_path / "d", many)


def test_train_and_dev_are_capped_test_is_whole(tmp_path):
    path = big_file(tmp_path)
    full = prepare_data(experiment(tmp_path, [path]), pipeline=tiny_pipeline())
    part = prepare_data(experiment(tmp_path, [path], train_share=0.2), pipeline=tiny_pipeline())
    assert [len(part.graphs[s]) for s in ("train", "dev", "test")] == [6, 6, 30]
    ids = {c.id for c in full.conversations["train"]}
    assert {c.id for c in part.conversations["train"]} < ids
    uncapped = prepare_data(experiment(tmp_path, [path], train_share=0.2, share_dev=False), pipeline=tiny_pipeline())
    assert [len(uncapped.graphs[s]) for s in ("train", "dev")] == [6, 30]
    other_seed = prepare_data(experiment(tmp_path, [path], train_share=0.2, share_seed=5), pipeline=tiny_pipeline())
    assert {c.id for c in other_seed.conversations["train"]} != {c.id for c in part.conversations["train"]}


def test_share_tasks_keep_every_conversation_and_remove_only_those_labels(tmp_path):
    path = big_file(tmp_path)
    part = prepare_data(experiment(tmp_path, [path], train_share=0.2, share_tasks=["emotion"]),
                        pipeline=tiny_pipeline())
    assert len(part.graphs["train"]) == 30
    labelled = [g for g in part.graphs["train"] if (g["utterance"].y_emotion >= 0).any()]
    assert len(labelled) == 6
    # the cached graphs of the whole split are not touched: a later run sees every label
    full = prepare_data(experiment(tmp_path, [path]), pipeline=tiny_pipeline())
    assert all((g["utterance"].y_emotion >= 0).any() for g in full.graphs["train"])


def test_config_checks_and_resolved_config_without_shares(tmp_path):
    path = big_file(tmp_path)
    for bad in (0, 1.5, "half", True):
        with pytest.raises(KgemoError, match="test.yaml: data.train_share"):
            experiment(tmp_path, [path], train_share=bad)
    with pytest.raises(KgemoError, match=r"data.share_tasks \['act'\] are not in data.tasks"):
        experiment(tmp_path, [path], train_share=0.5, share_tasks=["act"])
    # unused, the options stay out of the resolved config (the checksum every existing results row records)
    unused = {"train_share", "train_conversations", "share_seed", "share_dev", "share_tasks", "target_labels"}
    assert not unused & set(experiment(tmp_path, [path]).to_dict()["data"])
    assert experiment(tmp_path, [path], train_share=0.5).to_dict()["data"]["train_share"] == 0.5


def test_metrics_record_the_share(tmp_path):
    path = big_file(tmp_path)
    config = experiment(tmp_path, [path], train_share=0.1)
    result = fit(config, data=prepare_data(config, pipeline=tiny_pipeline()))
    assert result["train_share"] == {"share": 0.1, "conversations": None, "seed": 0, "tasks": ["emotion"],
                                     "dev_capped": True, "labelled_conversations": {"train": 3, "dev": 3}}
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["train_utterances"] == 3 * 4


def test_a_number_of_conversations(tmp_path):
    path = big_file(tmp_path)
    part = prepare_data(experiment(tmp_path, [path], train_conversations=7), pipeline=tiny_pipeline())
    assert [len(part.graphs[s]) for s in ("train", "dev", "test")] == [7, 7, 30]   # dev: the same share, 7/30
    share = prepare_data(experiment(tmp_path, [path], train_share=0.25), pipeline=tiny_pipeline())
    assert {c.id for c in part.conversations["train"]} < {c.id for c in share.conversations["train"]}  # nested
    with pytest.raises(KgemoError, match="not both"):
        experiment(tmp_path, [path], train_share=0.5, train_conversations=3)
    with pytest.raises(KgemoError, match="data.train_conversations=0"):
        experiment(tmp_path, [path], train_conversations=0)


def test_target_labels_take_a_share_of_the_target_and_keep_the_source_whole(tmp_path):
    source = big_file(tmp_path / "s")
    target = big_file(tmp_path / "t")
    config = experiment(tmp_path, [source], target_datasets=[str(target)], target_labels=True, train_share=0.1)
    data = prepare_data(config, pipeline=tiny_pipeline())
    by_file = {}
    for g, c in zip(data.graphs["train"], data.conversations["train"]):
        by_file.setdefault(c.dataset, []).append(bool((g["utterance"].y_emotion >= 0).any()))
    assert [len(by_file[str(source)]), len(by_file[str(target)])] == [30, 3]     # the source whole, 10% of the target
    assert all(by_file[str(target)])                                               # with their labels
    assert len(data.graphs["dev"]) == 3 and {c.dataset for c in data.conversations["dev"]} == {str(target)}
    unlabelled = prepare_data(experiment(tmp_path, [source], target_datasets=[str(target)]), pipeline=tiny_pipeline())
    assert sum(bool((g["utterance"].y_emotion >= 0).any()) for g in unlabelled.graphs["train"]) == 30  # source only
    with pytest.raises(KgemoError, match="target_labels .* needs data.target_datasets"):
        experiment(tmp_path, [source], target_labels=True)


def test_neutral_share_drops_only_all_neutral_conversations_nested_per_seed():
    import torch
    from torch_geometric.data import HeteroData

    from kgemo.training.data import neutral_share

    def graph(labels):
        g = HeteroData()
        g["utterance"].y_emotion = torch.tensor(labels)
        return g

    # 0 = neutral; -1 = unlabelled. Conversations 0, 2, 4, 5 are all-neutral (4 with an unlabelled turn).
    labels = [[0, 0], [0, 3], [0], [-1, -1], [0, -1], [0, 0, 0], [2]]
    graphs = [graph(y) for y in labels]
    convs = list(range(len(labels)))
    _, none = neutral_share(graphs, convs, "emotion", 0, 0.0, seed=1, key="d/train")
    assert none == [1, 3, 6]                     # a conversation without labels is not "all neutral"
    _, half = neutral_share(graphs, convs, "emotion", 0, 0.5, seed=1, key="d/train")
    _, most = neutral_share(graphs, convs, "emotion", 0, 0.75, seed=1, key="d/train")
    assert len(half) == 5 and len(most) == 6 and set(half) <= set(most) and {1, 3, 6} <= set(half)
    assert neutral_share(graphs, convs, "emotion", 0, 1.0, seed=1, key="d/train")[1] == convs


def test_neutral_share_is_checked_and_left_out_of_the_resolved_config_when_unused(tmp_path):
    import pytest

    from kgemo.errors import KgemoError
    from kgemo.training import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\nmodel: {name: no_knowledge}\n")
    assert "neutral_share" not in load_config(cfg).to_dict()["data"]
    assert load_config(cfg, ["data.neutral_share=0.25"]).data.neutral_share == 0.25
    with pytest.raises(KgemoError, match="data.neutral_share=1.5"):
        load_config(cfg, ["data.neutral_share=1.5"])


def test_max_train_conversations_reads_only_the_first_train_conversations(tmp_path):
    """A subsample taken before encoding (data.max_train_conversations), for encoders too slow for a whole train
    split: dev and test stay whole, so the scores compare with a full run's."""
    path = big_file(tmp_path)
    full = prepare_data(experiment(tmp_path, [path]), pipeline=tiny_pipeline())
    pipe = tiny_pipeline()
    part = prepare_data(experiment(tmp_path / "p", [path], max_train_conversations=7), pipeline=pipe)
    assert [len(part.graphs[s]) for s in ("train", "dev", "test")] == [7, 30, 30]
    assert [c.id for c in part.conversations["train"]] == [c.id for c in full.conversations["train"][:7]]
    for bad in (0, 2.5, True, "all"):
        with pytest.raises(KgemoError, match=rf"test.yaml: data.max_train_conversations={bad!r}[;:] expected a (whole|number)"):
            experiment(tmp_path, [path], max_train_conversations=bad)
    assert "max_train_conversations" not in experiment(tmp_path, [path]).to_dict()["data"]
