"""The cached collection: reused when nothing changed, updated file by file, equal to a full rebuild."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa_bot.search.bilingual import query_units
from qa_bot.search.indexing import MANIFEST, Shard, collection_folder, open_collection
from qa_bot.settings import Settings
from tests.conftest import SEEDS, write_corpus

QUERIES = ["graph neural network", "数据集蒸馏 后门攻击", "DOORPING backdoor", "image transformer distillation",
           "multi-GPU training", "contrastive clustering", "bot detection Twitter users"]


def results(collection, k=10):
    """Each query's top papers as (id, score), and every paper with its locations and title."""
    corpus, index = collection.corpus, collection.index
    found = {}
    for query in QUERIES:
        scores = index.unit_scores(query_units(query))
        candidates = index.matching([term for unit in query_units(query) for term in unit])
        ranked = sorted(candidates.tolist(), key=lambda position: (-round(scores[position], 9),
                                                                   corpus.paper_at(position).paper_id))[:k]
        found[query] = [(corpus.paper_at(p).paper_id, round(float(scores[p]), 9)) for p in ranked]
    papers = sorted((p.paper_id, p.title, tuple(p.locations), p.authors, p.year) for p in corpus.papers)
    return found, papers, corpus.record_count


def assert_best_is_the_full_ranking(index):
    for query in QUERIES + ["graph clustering TinyMIM", "federated learning memory"]:
        units = query_units(query)
        scores = index.unit_scores(units)
        candidates = index.matching([term for unit in units for term in unit]).tolist()
        for k in (1, 5):
            # ties in paper-id order (the stored ids are the index's keys), as shards order them
            expected = sorted(candidates, key=lambda position: (-scores[position], int(index.keys[position])))[:k]
            top, found = index.best(units, k)
            assert top.tolist() == expected and found.tolist() == [scores[p] for p in expected]


def rebuilt(folder: Path, tmp_path: Path, **settings):
    """The collection built from nothing, in a cache of its own."""
    fresh = tmp_path / f"fresh-{time.monotonic_ns()}"
    return open_collection(Settings(corpus=folder, cache_dir=fresh, **settings))


def copy_of_seeds(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for path in sorted(SEEDS.glob("*.txt")):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_an_unchanged_folder_is_opened_from_the_cache(tmp_path):
    settings = Settings(corpus=SEEDS, cache_dir=tmp_path / "cache")
    first = open_collection(settings)
    second = open_collection(settings)
    assert not first.from_cache and second.from_cache
    assert (first.added, first.removed) == (32, 0) and (second.added, second.removed) == (0, 0)
    assert results(second) == results(first)


def test_a_touched_file_with_the_same_content_is_not_read_again(tmp_path):
    folder = copy_of_seeds(tmp_path)
    settings = Settings(corpus=folder, cache_dir=tmp_path / "cache")
    before = open_collection(settings)
    os.utime(next(folder.glob("*.txt")), ns=(time.time_ns(), time.time_ns()))
    after = open_collection(settings)
    assert after.from_cache and results(after) == results(before)


@pytest.mark.parametrize("change", ["add", "change", "remove", "append", "duplicate"])
def test_an_update_equals_a_full_rebuild(tmp_path, change):
    folder = copy_of_seeds(tmp_path)
    settings = Settings(corpus=folder, cache_dir=tmp_path / "cache")
    open_collection(settings)
    files = sorted(folder.glob("*.txt"))
    if change == "add":
        (folder / "new.txt").write_text("Sparse attention for long documents cuts memory by 40%.\n", "utf-8")
    elif change == "change":
        files[1].write_text("A new abstract about graph clustering with 7 datasets.\n", "utf-8")
    elif change == "remove":
        files[0].unlink()
    elif change == "append":
        with open(files[2], "a", encoding="utf-8") as handle:
            handle.write("Quantum annealing schedules for portfolio optimisation.\n")
    else:  # a new file repeating stored abstracts: same papers, more locations
        (folder / "zz-copy.txt").write_text(files[0].read_text("utf-8"), "utf-8")
    updated = open_collection(settings)
    assert not updated.from_cache
    assert results(updated) == results(rebuilt(folder, tmp_path))
    assert results(open_collection(settings)) == results(updated)  # and it is what the cache now holds
    assert_best_is_the_full_ranking(updated.index)  # across segments and dead positions


def test_updates_report_the_papers_added_and_removed(tmp_path):
    folder = write_corpus(tmp_path / "c", {"a.txt": "Graph clustering with contrastive views.\nBackdoor attacks.\n"})
    settings = Settings(corpus=folder, cache_dir=tmp_path / "cache")
    assert (open_collection(settings).added, open_collection(settings).removed) == (2, 0)
    (folder / "a.txt").write_text("Graph clustering with contrastive views.\nA third abstract.\nA fourth one.\n", "utf-8")
    updated = open_collection(settings)
    assert (updated.added, updated.removed) == (2, 1)
    assert updated.corpus.paper_count == 3


def test_many_updates_are_gathered_into_one_segment_again(tmp_path, monkeypatch):
    monkeypatch.setattr("qa_bot.search.indexing.MAX_SEGMENTS", 3)
    folder = copy_of_seeds(tmp_path)
    settings = Settings(corpus=folder, cache_dir=tmp_path / "cache")
    open_collection(settings)
    for number in range(5):
        (folder / f"added-{number}.txt").write_text(f"Abstract number {number} on federated learning.\n", "utf-8")
        updated = open_collection(settings)
        assert len(updated.index.segments) <= 3
        assert_best_is_the_full_ranking(updated.index)
    files = sorted(folder.glob("0*.txt"))
    files[0].unlink()
    updated = open_collection(settings)
    assert results(updated) == results(rebuilt(folder, tmp_path))


def test_bm25_settings_need_no_new_index(tmp_path):
    folder = copy_of_seeds(tmp_path)
    open_collection(Settings(corpus=folder, cache_dir=tmp_path / "cache"))
    other = open_collection(Settings(corpus=folder, cache_dir=tmp_path / "cache", bm25_variant="okapi", bm25_b=0.9))
    assert other.from_cache
    assert results(other) == results(rebuilt(folder, tmp_path, bm25_variant="okapi", bm25_b=0.9))


KILLER = """
import sys
from pathlib import Path
from qa_bot.search import indexing
from qa_bot.settings import Settings

def stop(*args, **kwargs):  # the moment after the segment is written, before the manifest
    print("written", flush=True)
    import time
    time.sleep(60)

indexing.write_generation = stop
indexing.open_collection(Settings(corpus=Path(sys.argv[1]), cache_dir=Path(sys.argv[2])))
"""


def test_a_build_killed_mid_way_leaves_a_cache_the_next_run_completes(tmp_path):
    folder = copy_of_seeds(tmp_path)
    cache = tmp_path / "cache"
    settings = Settings(corpus=folder, cache_dir=cache)
    before = results(open_collection(settings))
    (folder / "new.txt").write_text("Sparse attention for long documents cuts memory by 40%.\n", "utf-8")
    process = subprocess.Popen([sys.executable, "-c", KILLER, str(folder), str(cache)], stdout=subprocess.PIPE,
                               text=True, cwd=Path(__file__).parent.parent)
    assert process.stdout.readline().strip() == "written"
    process.send_signal(signal.SIGKILL)
    process.wait()
    manifest = collection_folder(settings) / MANIFEST
    assert manifest.exists()  # the previous manifest is untouched: it names the old collection
    (folder / "new.txt").unlink()
    assert results(open_collection(settings)) == before
    (folder / "new.txt").write_text("Sparse attention for long documents cuts memory by 40%.\n", "utf-8")
    assert results(open_collection(settings)) == results(rebuilt(folder, tmp_path))


def test_a_damaged_segment_is_rebuilt_with_one_warning(tmp_path):
    settings = Settings(corpus=SEEDS, cache_dir=tmp_path / "cache")
    good = results(open_collection(settings))
    [segment] = collection_folder(settings).glob("seg-*")
    postings = segment / "postings_frequencies.npy"
    postings.write_bytes(postings.read_bytes()[:-8] + b"garbage!")  # same size, new time, other bytes
    with pytest.warns(UserWarning, match="failed its check and is rebuilt"):
        again = open_collection(settings)
    assert not again.from_cache and results(again) == good
    assert open_collection(settings).from_cache


def test_the_store_holds_the_records_metadata(tmp_path):
    folder = write_corpus(tmp_path / "c", {"refs.bib": (Path(__file__).parent / "data" / "exports" / "zotero.bib")
                                           .read_text("utf-8")})
    stored = open_collection(Settings(corpus=folder, cache_dir=tmp_path / "cache")).corpus
    from qa_bot.collection.corpus import load_corpus

    memory = load_corpus(folder)
    assert [vars_of(p) for p in stored.papers] == [vars_of(p) for p in memory.papers]


def vars_of(paper):
    return (paper.paper_id, paper.text, paper.lang, paper.title, paper.locations, paper.authors, paper.year,
            paper.venue, paper.doi, paper.url)


@pytest.mark.parametrize("change", ["lose the title", "gain the title"])
def test_an_update_follows_the_title_a_paper_gains_or_loses(tmp_path, change):
    abstract = "We cluster citation graphs with contrastive views and report gains on five benchmarks."
    titled = json.dumps({"title": "Quokka: spectral ensembles", "abstract": abstract}) + "\n"
    files = {"a.txt": abstract + "\n"} if change == "gain the title" else {"a.txt": abstract + "\n", "b.jsonl": titled}
    folder = write_corpus(tmp_path / "c", files)
    settings = Settings(corpus=folder, cache_dir=tmp_path / "cache")
    before = open_collection(settings)
    if change == "gain the title":
        (folder / "b.jsonl").write_text(titled, "utf-8")
    else:
        (folder / "b.jsonl").unlink()
    after = open_collection(settings)
    quokka = after.index.unit_scores(query_units("quokka spectral"))
    assert (quokka.max() > 0) == (change == "gain the title")
    assert before.index.unit_scores(query_units("quokka")).max() != quokka.max()
    assert results(after) == results(rebuilt(folder, tmp_path))


def index_run(folder: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa_bot", "index", "--json", "--corpus", str(folder)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "QA_BOT_CACHE_DIR": str(cache)})


def test_qa_bot_index_says_what_it_added_and_removed(tmp_path):
    folder, cache = copy_of_seeds(tmp_path), tmp_path / "cache"
    first = json.loads(index_run(folder, cache).stdout)
    assert (first["papers"], first["added"], first["removed"], first["from_cache"]) == (32, 32, 0, False)
    assert (first["records"], first["files"]) == (50, 5)
    assert json.loads(index_run(folder, cache).stdout)["from_cache"]
    (folder / "new.txt").write_text("One new abstract.\nAnother new abstract.\n", "utf-8")
    sorted(folder.glob("0*.txt"))[0].unlink()
    update = json.loads(index_run(folder, cache).stdout)
    assert (update["papers"], update["added"], update["removed"], update["from_cache"]) == (30, 2, 4, False)


def test_the_progress_line_counts_files_and_records_and_estimates_the_time_left(monkeypatch):
    from io import StringIO

    from qa_bot.search.indexing import FileEntry, FileReading, Progress, ScannedFile

    monkeypatch.setattr(Progress, "QUIET_SECONDS", 0.0)
    log = StringIO()
    progress = Progress(log)
    progress.start([ScannedFile(name, Path(name), 1000, 0) for name in ("a.txt", "b.txt", "c.txt", "d.txt")])
    for name in ("a.txt", "b.txt"):
        progress.advance(FileReading(FileEntry(name, 1000, 0, "x", 250)))
    progress.finish()
    [line] = log.getvalue().splitlines()[:1]
    assert line.startswith("qa-bot: reading files 1/4, 250 records, ") and "records/s" in line and "left" in line
    assert log.getvalue().count("\n") == 1  # not a terminal: a line each LOG_SECONDS, not one per file


def test_a_shard_is_named_from_one_as_the_user_counts_it():
    assert [str(Shard(number, 3)) for number in range(3)] == ["shard 1 of 3", "shard 2 of 3", "shard 3 of 3"]
