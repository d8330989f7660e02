import gzip
import json

import pytest

from qa_bot.collection.corpus import load_corpus
from qa_bot.errors import CorpusError
from qa_bot.search.indexing import open_collection
from qa_bot.settings import Settings
from qa_bot.text.language import detect_language
from tests.conftest import SEEDS, write_corpus

DOORPING_FILES = {
    "000_a261c613d12b610b.txt": 13,
    "001_72c796b347336c82.txt": 7,
    "002_ab19003648141882.txt": 11,
    "003_312e2e590661b8c3.txt": 5,
    "004_2c0d154558004bfd.txt": 9,
}


@pytest.fixture(scope="module")
def seeds():
    return load_corpus(SEEDS)


def test_seeds_hold_50_records_of_32_papers(seeds):
    assert seeds.record_count == 50
    assert len(seeds.papers) == 32
    assert sum(len(paper.locations) for paper in seeds.papers) == 50
    assert seeds.issues == []


def test_marker_lines_are_not_papers(seeds):
    assert not any(paper.text.lower().startswith("translated by") for paper in seeds.papers)


def test_a_paper_keeps_every_location(seeds):
    doorping = next(paper for paper in seeds.papers if "DOORPING" in paper.text)
    assert {(loc.file, loc.line) for loc in doorping.locations} == set(DOORPING_FILES.items())


def test_every_location_points_at_the_papers_own_line(seeds):
    for paper in seeds.papers:
        for loc in paper.locations:
            line = (SEEDS / loc.file).read_text("utf-8").splitlines()[loc.line - 1]
            assert line.strip() == paper.text


def test_languages(seeds):
    by_lang = {lang: sum(p.lang == lang for p in seeds.papers) for lang in ("en", "zh")}
    assert by_lang["en"] + by_lang["zh"] == 32
    assert by_lang["zh"] >= 11
    assert detect_language("变压器验证引起了机器学习研究的关注,用于GPU。") == "zh"
    assert detect_language("We propose MGG, a system for 多GPU training of GNNs on many machines.") == "en"


def test_titles_name_the_method_or_dataset(seeds):
    titles = [paper.title for paper in seeds.papers]
    for name in ("TinyMIM", "DOORPING", "MGTAB", "MGG", "DESTA"):
        assert any(title.startswith(f"{name}:") for title in titles), name
    assert all(0 < len(title) <= 100 for title in titles)


def test_paper_id_is_stable_across_file_order_and_white_space(tmp_path):
    a = write_corpus(tmp_path / "a", {"x.txt": "First abstract here.\nSecond  abstract\there.\n"})
    b = write_corpus(tmp_path / "b", {"0.txt": "Second abstract here.\n", "1.txt": "\n\nFirst abstract here.\n"})
    ids_a = {p.text.split()[0]: p.paper_id for p in load_corpus(a).papers}
    ids_b = {p.text.split()[0]: p.paper_id for p in load_corpus(b).papers}
    assert ids_a == ids_b
    # The SHA-256 of "First abstract here." (white space normalised), cut to 16 hex digits: the same
    # on any machine and in any version that keeps the id scheme the cache and exports rely on.
    assert ids_a["First"] == "cd6326f7dd787dd4"


def test_jsonl_records_merge_with_txt_records(tmp_path):
    folder = write_corpus(tmp_path / "c", {
        "a.txt": "Shared abstract about graphs.\n",
        "b.jsonl": json.dumps({"abstract": "Shared abstract about graphs.", "title": "Graphs", "url": "u"}) + "\n"
        + json.dumps({"abstract": "Another one.", "id": "x1"}) + "\n",
    })
    corpus = load_corpus(folder)
    assert len(corpus.papers) == 2
    shared = corpus.papers[0]
    assert [(loc.file, loc.line) for loc in shared.locations] == [("a.txt", 1), ("b.jsonl", 1)]
    assert shared.title == "Graphs" and shared.url == "u"


def test_a_jsonl_record_id_is_the_key_of_its_location(tmp_path):
    folder = write_corpus(tmp_path / "c", {"b.jsonl": json.dumps({"abstract": "One.", "id": "MED-10"}) + "\n"
                                           + json.dumps({"abstract": "Two.", "id": 42}) + "\n"
                                           + json.dumps({"abstract": "Three.", "id": {"nested": 1}}) + "\n"})
    assert [paper.locations[0].key for paper in load_corpus(folder).papers] == ["MED-10", "42", None]


def test_a_gzip_compressed_file_is_read_as_its_inner_format(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    lines = [json.dumps({"abstract": "Statins and breast cancer survival.", "id": "MED-10", "title": "Statins"}),
             json.dumps({"abstract": "Soy intake and bone density.", "id": "MED-11"})]
    (folder / "export.jsonl.gz").write_bytes(gzip.compress("\n".join(lines).encode("utf-8")))
    (folder / "notes.txt.gz").write_bytes(gzip.compress(b"A third abstract, in a compressed text file.\n"))
    corpus = load_corpus(folder)
    assert [(paper.text[:5], paper.locations[0].file, paper.locations[0].line) for paper in corpus.papers] == [
        ("Stati", "export.jsonl.gz", 1), ("Soy i", "export.jsonl.gz", 2), ("A thi", "notes.txt.gz", 1)]
    assert corpus.papers[0].title == "Statins"
    assert open_collection(Settings(corpus=folder, cache_dir=tmp_path / "cache")).corpus.paper_count == 3


def test_a_broken_gzip_file_is_skipped_with_an_issue(tmp_path):
    folder = write_corpus(tmp_path / "c", {"good.txt": "A good abstract.\n"})
    (folder / "broken.jsonl.gz").write_bytes(b"not gzip at all")
    corpus = load_corpus(folder)
    assert [paper.text for paper in corpus.papers] == ["A good abstract."]
    assert [str(issue) for issue in corpus.issues] == ["broken.jsonl.gz: not a valid gzip file; the whole file was skipped"]


def test_malformed_lines_are_reported_and_skipped(tmp_path):
    folder = write_corpus(tmp_path / "c", {
        "good.txt": "A good abstract.\n",
        "bad.jsonl": '{"abstract": "Fine."}\nnot json\n{"title": "no abstract"}\n[1, 2]\n',
    })
    corpus = load_corpus(folder)
    assert [p.text for p in corpus.papers] == ["Fine.", "A good abstract."]
    assert [(i.file, i.line) for i in corpus.issues] == [("bad.jsonl", 2), ("bad.jsonl", 4), ("bad.jsonl", None)]
    assert "not valid JSON" in str(corpus.issues[0])
    assert str(corpus.issues[2]) == "bad.jsonl: 1 record without an abstract skipped (the first at line 3)"


def test_a_file_that_is_not_utf8_is_skipped_with_its_line(tmp_path):
    folder = write_corpus(tmp_path / "c", {
        "good.txt": "A good abstract.\n",
        "gbk.txt": "English line first.\n".encode() + "变压器验证\n".encode("gbk"),
    })
    corpus = load_corpus(folder)
    assert [p.text for p in corpus.papers] == ["A good abstract."]
    assert [(i.file, i.line) for i in corpus.issues] == [("gbk.txt", 2)]
    assert "UTF-8" in corpus.issues[0].message


def test_strict_mode_fails_on_the_first_problem(tmp_path):
    folder = write_corpus(tmp_path / "c", {"good.txt": "A good abstract.\n", "bad.jsonl": "not json\n"})
    with pytest.raises(CorpusError, match=r"bad.jsonl:1"):
        load_corpus(folder, strict=True)


@pytest.mark.parametrize("files, message", [
    ({}, "no corpus files"),
    ({"a.txt": "translated by 谷歌翻译\n\n"}, "no abstracts found"),
])
def test_empty_corpus_is_an_error(tmp_path, files, message):
    folder = write_corpus(tmp_path / "c", files)
    with pytest.raises(CorpusError, match=message):
        load_corpus(folder)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(CorpusError, match="corpus folder not found"):
        load_corpus(tmp_path / "nope")


def test_a_stored_collection_derives_the_titles_of_a_corpus_read_whole(tmp_path):
    stored = open_collection(Settings(corpus=SEEDS, cache_dir=tmp_path)).corpus
    assert [p.title for p in stored.papers] == [p.title for p in load_corpus(SEEDS).papers]
    assert stored.paper(paper_with_text(stored, "TinyMIM").paper_id).title.startswith("TinyMIM")


def paper_with_text(corpus, key):
    [paper] = [paper for paper in corpus.papers if key in paper.text and paper.lang == "en"]
    return paper
