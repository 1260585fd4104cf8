import csv
import gzip

import pytest

from kgemo.errors import DataFormatError
from kgemo.knowledge.readers import (BadRows, Edge, read_atomic2019, read_atomic2020, read_ckbc,
                                     read_conceptnet_csv, read_nrc_vad)


def test_conceptnet_gzip_keeps_english_pairs_and_reports_bad_rows(kb_sources):
    path = kb_sources / "conceptnet-assertions-5.7.0.csv.gz"
    bad = BadRows(str(path))
    edges = list(read_conceptnet_csv(path, bad))
    assert Edge("IsA", "dog", "animal", 2.0) in edges
    # /c/en/ice_cream/n/wn/food → ice_cream; /c/en/bark/v → bark.
    assert Edge("Causes", "ice_cream", "happy", 2.5) in edges
    assert Edge("RelatedTo", "dog", "bark", 0.5) in edges
    # French/German ends are dropped, not errors.
    assert all(e.head not in ("chien", "hund") for e in edges)
    assert len(edges) == 8
    assert bad.rows == 12 and bad.count == 2
    assert bad.examples[0].startswith(f"{path}:9: no numeric weight")
    assert bad.examples[1].startswith(f"{path}:10: expected 5 tab-separated columns, found 4")


def test_ckbc_reads_phrases_as_concepts_and_reports_bad_rows(fixtures):
    path = fixtures / "ckbc-mini.txt"
    bad = BadRows(str(path))
    edges = list(read_ckbc(path, bad))
    assert Edge("Desires", "dog", "ice_cream", 1.5) in edges
    assert len(edges) == 8
    assert [e.split(": ", 1)[0] for e in bad.examples] == [f"{path}:9", f"{path}:10"]
    assert "non-numeric weight 'abc'" in bad.examples[0]
    assert "found 2" in bad.examples[1]


def test_ckbc_labelled_keeps_positive_rows(tmp_path):
    path = tmp_path / "dev1.txt"
    path.write_text("IsA\ttool\tobject\t1\nIsA\tdog\tcar\t0\nIsA\tx\ty\t2\n")
    bad = BadRows(str(path))
    assert list(read_ckbc(path, bad, labelled=True)) == [Edge("IsA", "tool", "object", 1.0)]
    assert bad.count == 1 and "label must be 1 or 0" in bad.examples[0]


def test_nrc_vad_skips_header_and_reports_bad_rows(fixtures):
    path = fixtures / "nrc-vad-mini.txt"
    bad = BadRows(str(path))
    rows = list(read_nrc_vad(path, bad))
    assert rows[0] == ("dog", 0.8, 0.5, 0.6)
    assert len(rows) == 9
    assert bad.count == 1 and bad.examples[0].startswith(f"{path}:11: non-numeric score")


def test_atomic2019_json_cells_none_dropped_and_bad_rows(fixtures):
    path = fixtures / "atomic2019-mini.csv"
    bad = BadRows(str(path))
    tuples = list(read_atomic2019(path, bad))
    assert ("PersonX passes the exam", "xReact", "happy") in tuples
    assert all(t.tail != "none" for t in tuples)
    assert ("PersonX eats ___ for dinner", "xNeed", "to cook") in tuples
    assert bad.rows == 6 and bad.count == 2
    assert bad.examples[0].startswith(f"{path}:6: bad JSON list in column xReact")
    assert bad.examples[1].startswith(f"{path}:7: expected 12 columns, found 2")


def test_atomic2019_and_2020_drop_the_nan_artifact_like_none(tmp_path):
    # v4_atomic_dev.csv holds 14 cells of ["nan"] (a missing-value artifact of the release): no tail, like "none".
    rels = ["oEffect", "oReact", "oWant", "xAttr", "xEffect", "xIntent", "xNeed", "xReact", "xWant"]
    cells = {r: "[]" for r in rels} | {"xIntent": '["to be sure"]', "xReact": '["nan"]', "xWant": '["None"]'}
    path = tmp_path / "a.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["event", *rels, "prefix", "split"])
        w.writerow(["PersonX pays ___ to details", *(cells[r] for r in rels), "[]", "dev"])
    assert list(read_atomic2019(path, BadRows(str(path)))) == [("PersonX pays ___ to details", "xIntent", "to be sure")]
    tsv = tmp_path / "b.tsv"
    tsv.write_text("PersonX pays @@ xReact\tnan| careful\nPersonX pays\txIntent\tNaN\n")
    assert list(read_atomic2020(tsv, BadRows(str(tsv)))) == [("PersonX pays", "xReact", "careful")]


def test_atomic2019_wrong_header_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataFormatError, match=r"x\.csv:1: not an ATOMIC 2019 CSV"):
        list(read_atomic2019(path, BadRows(str(path))))


def test_atomic2020_both_layouts(fixtures):
    path = fixtures / "atomic2020-mini.tsv"
    bad = BadRows(str(path))
    tuples = list(read_atomic2020(path, bad))
    assert ("PersonX adopts a puppy", "xReact", "excited") in tuples
    assert ("PersonX adopts a puppy", "xReact", "none") not in tuples
    assert ("PersonX gets a dog", "isAfter", "PersonX visits a shelter") in tuples
    assert len(tuples) == 6
    assert bad.count == 1 and bad.examples[0].startswith(f"{path}:5: expected")


def test_mostly_bad_file_is_a_format_error(tmp_path):
    path = tmp_path / "train100k.txt"
    path.write_text("".join(f"not a ckbc row {i}\n" for i in range(20)))
    bad = BadRows(str(path))
    assert list(read_ckbc(path, bad)) == []
    with pytest.raises(DataFormatError, match="20 of 20 rows are malformed"):
        bad.check()


def test_truncated_gzip_names_the_file(tmp_path):
    data = gzip.compress(b"IsA\tdog\tanimal\t2.0\n" * 2000)
    path = tmp_path / "train100k.txt.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="train100k.txt.gz: cannot read"):
        list(read_ckbc(path, BadRows(str(path))))


def test_a_short_file_with_no_usable_row_is_refused(tmp_path):
    bad = BadRows(str(tmp_path / "x.txt"))
    for i in range(3):
        bad.rows += 1
        bad.add(i + 1, "not a row")
    with pytest.raises(DataFormatError, match="3 of 3 rows are malformed"):
        bad.check()
