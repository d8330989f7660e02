"""The stored collection's files and the checked cache files: written beside their place, trusted only
when they pass their checks, and named in the warning when they do not."""

import errno
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from qa_bot.search import cache, store
from qa_bot.search.index import Segment
from qa_bot.search.indexing import collection_folder, open_collection
from qa_bot.settings import Settings
from qa_bot.search.store import DamagedStore, SegmentPapers, StoredPapers, StoredSegment, write_segment
from tests.conftest import SEEDS, write_corpus


def test_a_checked_file_is_written_into_folders_that_do_not_exist_yet(tmp_path):
    path = tmp_path / "a" / "b" / "entry.json"
    cache.write_checked(path, "from", {"名": "数据"})
    assert cache.load_checked(path, "from", lambda payload: True) == {"名": "数据"}


def test_a_checked_file_is_staged_hidden_beside_its_place(tmp_path, monkeypatch):
    """A rename is atomic only within one file system, and a listing of the folder must not see a
    half-written entry as one of its own."""
    staged = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda source, target: (staged.append(Path(source)), replace(source, target)))
    path = tmp_path / "entry.json"
    cache.write_checked(path, "from", [1])
    [staging] = staged
    assert staging.parent == path.parent and staging.name.startswith(".entry.json.")


def test_writers_that_keep_putting_a_folder_in_the_way_give_up_with_busy(tmp_path, monkeypatch):
    def in_the_way(source, target):
        raise IsADirectoryError(errno.EISDIR, "is a folder", str(target))

    monkeypatch.setattr(os, "replace", in_the_way)
    monkeypatch.setattr(cache, "set_aside", lambda path: None)
    path = tmp_path / "entry.json"
    with pytest.raises(OSError) as raised:
        cache.write_checked(path, "from", [1])
    assert raised.value.errno == errno.EBUSY and raised.value.filename == str(path)
    assert raised.value.strerror == "other writers keep replacing it"
    assert list(tmp_path.iterdir()) == []  # the staged file is not left behind


def test_a_folder_in_the_way_is_moved_aside_within_its_folder_and_deleted(tmp_path, monkeypatch):
    deleted = []
    monkeypatch.setattr(cache.shutil, "rmtree", lambda path, ignore_errors=False: deleted.append(
        (Path(path), sorted(p.name for p in Path(path).iterdir()), ignore_errors)))
    path = tmp_path / "collection-x"
    (path / "seg-1").mkdir(parents=True)
    cache.set_aside(path)
    [(trash, inside, ignore_errors)] = deleted
    assert trash.parent == tmp_path and trash.name.startswith(".stale-") and inside == ["entry"]
    assert ignore_errors  # a trash folder that cannot be deleted does not fail the write
    assert not path.exists()


def test_the_warnings_name_the_entry_and_the_reason(tmp_path):
    path = tmp_path / "entry.json"
    path.write_text("not json", "utf-8")
    with pytest.warns(cache.QaBotWarning) as warned:
        assert cache.load_checked(path, "from", lambda payload: True) is None
        cache.warn_not_saved(path, OSError(errno.ENOSPC, "No space left on device"))
    assert [str(warning.message) for warning in warned] == [
        "the cached entry.json failed its check and is rebuilt",
        f"cannot write the cache at {tmp_path} (No space left on device); continuing without it"]


def segment_files(tmp_path):
    settings = Settings(corpus=SEEDS, cache_dir=tmp_path / "cache")
    collection = open_collection(settings)
    [segment] = collection_folder(settings).glob("seg-*")
    return settings, collection, segment


def test_a_stored_file_touched_without_change_is_trusted_and_one_changed_is_named(tmp_path):
    settings, first, segment = segment_files(tmp_path)
    texts = segment / "texts.bin"
    os.utime(texts, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert open_collection(settings).from_cache  # hashed again, found equal
    data = bytearray(texts.read_bytes())
    data[0] ^= 1
    texts.write_bytes(bytes(data))
    with pytest.warns(cache.QaBotWarning) as warned:
        again = open_collection(settings)
    assert [str(w.message) for w in warned] == [
        f"the cached {segment.parent.name}/{segment.name}/texts.bin failed its check and is rebuilt"]
    assert not again.from_cache and again.corpus.paper_count == first.corpus.paper_count


def test_a_missing_stored_file_is_named(tmp_path):
    settings, _, segment = segment_files(tmp_path)
    (segment / "lengths.npy").unlink()
    with pytest.warns(cache.QaBotWarning, match=f"cached {segment.parent.name}/{segment.name}/lengths.npy failed"):
        assert not open_collection(settings).from_cache


def written_segment(folder: Path, texts: list[bytes]) -> Path:
    folder.mkdir()
    count = len(texts)
    papers = SegmentPapers(lambda: iter(texts), lambda: iter([b"[]"] * count), np.arange(count, dtype=np.uint64),
                           np.zeros(count, dtype=np.uint8), np.ones(count, dtype=np.int32))
    postings = Segment(0, np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32))
    write_segment(folder, papers, postings, [])
    return folder


def test_a_segment_maps_its_arrays_and_blobs_instead_of_reading_them(tmp_path):
    segment = StoredSegment(written_segment(tmp_path / "s", ["一".encode(), b"two"]), 0, {})
    assert isinstance(segment.ids, np.memmap) and isinstance(segment.texts, np.memmap)
    assert [segment.text(0), segment.text(1)] == ["一", "two"]


def test_a_segment_whose_arrays_disagree_is_damaged(tmp_path):
    folder = written_segment(tmp_path / "s", [b"one", b"two"])
    np.save(folder / "languages.npy", np.zeros(1, dtype=np.uint8))
    with pytest.raises(DamagedStore) as raised:
        StoredSegment(folder, 0, {})
    assert raised.value.path == folder


def test_a_segment_of_empty_texts_opens(tmp_path):
    """An empty file cannot be memory-mapped: a blob with no bytes is read as none."""
    segment = StoredSegment(written_segment(tmp_path / "s", [b"", b""]), 0, {})
    assert [segment.text(0), segment.text(1)] == ["", ""]


def test_stored_papers_find_a_file_s_records_and_count_languages(tmp_path):
    folder = write_corpus(tmp_path / "c", {
        "a.jsonl": '{"abstract": "Graph networks for molecules are studied here in depth."}\n'
                   '{"abstract": "图神经网络用于分子性质预测。"}\n',
        "b.jsonl": '{"abstract": "Backdoor attacks on dataset distillation are shown to work."}\n'})
    corpus = open_collection(Settings(corpus=folder, cache_dir=tmp_path / "cache")).corpus
    assert corpus.language_counts() == {"en": 2, "zh": 1}
    assert corpus.paper_at_location("a.jsonl", 2).text == "图神经网络用于分子性质预测。"
    assert corpus.paper_at_location("b.jsonl", 1).text.startswith("Backdoor")
    assert corpus.paper_at_location("b.jsonl", 2) is None and corpus.paper_at_location("c.jsonl", 1) is None


def test_stored_papers_without_a_file_table_have_no_positions(tmp_path):
    segment = StoredSegment(written_segment(tmp_path / "s", [b"one"]), 0, {})
    assert StoredPapers([segment], np.ones(1, dtype=bool), Counter).positions_in("a.txt") == []


def test_a_file_s_checksum_is_its_sha256(tmp_path):
    written_segment(tmp_path / "s", [b"one"])
    assert store.file_sha256(tmp_path / "s" / "texts.bin") == (  # `printf one | sha256sum`
        "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed")


def test_a_segment_whose_array_cannot_be_read_is_damaged(tmp_path):
    folder = written_segment(tmp_path / "s", [b"one"])
    (folder / "ids.npy").write_bytes(b"not an array")
    with pytest.raises(DamagedStore) as raised:
        StoredSegment(folder, 0, {})
    assert raised.value.path == folder
