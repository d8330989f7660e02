"""The export formats (tests/data/exports: BibTeX, RIS, CSL-JSON, CSV, arXiv/OpenAlex JSONL, and
broken ones), the metadata they carry into the JSON contract, the source cards and the exports."""

import json
from datetime import datetime
from pathlib import Path

import bibtexparser
import pytest
from bibtexparser.middlewares import LatexDecodingMiddleware

from qa_bot.answer.assistant import Assistant
from qa_bot.app.cli import format_search, format_sources, print_cited_bibtex
from qa_bot.collection.corpus import Paper, load_corpus
from qa_bot.app.display import bibliographic_html, closest_papers_html, source_card_html
from qa_bot.errors import CorpusError
from qa_bot.app.export import cited_papers, conversation_markdown, references_bibtex
from qa_bot.app.output import answer_json, search_json, short_authors
from qa_bot.collection.readers import Location, bibtex_value, inverted_abstract, read_bib, read_csv
from qa_bot.search.retrieve import Hit, Retriever, SearchResult
from qa_bot.settings import Settings
from tests.conftest import write_corpus
from tests.contract import assert_contract, assert_metadata
from tests.fakes import FakeModel, declining

EXPORTS = Path(__file__).parent / "data" / "exports"
SPARSE = "block-sparse attention pattern aligned with the section headings"
MUELLER = "two-level scheme halves cross-partition traffic"
MUELLER_QUESTION = "How much does the two-level partitioning scheme cut cross-partition traffic on sparse social graphs?"
MUELLER_ANSWER = "A two-level scheme halves cross-partition traffic on sparse social graphs [1]."


@pytest.fixture(scope="module")
def exports():
    return load_corpus(EXPORTS)


@pytest.fixture(scope="module")
def exports_retriever(tmp_path_factory):
    return Retriever.open(Settings(corpus=EXPORTS, cache_dir=tmp_path_factory.mktemp("exports-cache")))


def paper(corpus, words: str) -> Paper:
    return next(p for p in corpus.papers if words in p.text)


def test_every_broken_record_is_a_warning_naming_file_and_line_and_the_rest_loads(exports):
    assert [str(issue) for issue in exports.issues] == [
        "arxiv.jsonl:3: not valid JSON (Unterminated string starting at); skipped",
        "broken.bib:9: malformed BibTeX entry (Unexpected block start: `@article`. Was still looking for "
        "field-value closing `}`); skipped",
        "broken.json:3: not valid JSON (Invalid control character at); the rest of the file was skipped",
        'jabref.bib:23: "tkde" in journal is not a defined @string; kept as written',
        "latin1.csv:2: not valid UTF-8; the whole file was skipped",
        "mendeley.ris: 1 record without an abstract skipped (the first at line 21)",
        'openalex.jsonl:3: "abstract_inverted_index" gives "moisture" no list of positions; skipped',
        "openalex.jsonl: 1 record without an abstract skipped (the first at line 2)",
        "scholar.csv: 1 record without an abstract skipped (the first at line 5)",
        "zotero.bib: 1 record without an abstract skipped (the first at line 24)",
    ]
    assert len(exports.papers) == 15
    # The good entries on both sides of the broken ones are kept.
    assert {loc.key for p in exports.papers for loc in p.locations if loc.file == "broken.bib"} == {
        "ito2019quant", "silva2023soil"}
    assert any(loc.file == "broken.json" for p in exports.papers for loc in p.locations)


def test_bibtex_latex_accents_and_braces_become_plain_text():
    reading = read_bib("zotero.bib", (EXPORTS / "zotero.bib").read_text("utf-8"))
    first = reading.records[0]
    assert first.title == "GNNs on Sparse Graphs: Müller's Partitioning Revisited"
    assert first.authors == ("Jörg Müller", "Aiko Nakamura", "Benoît François")
    assert (first.year, first.venue, first.doi) == (2021, "Journal of Graph Computing", "10.5555/jgc.2021.0142")
    assert first.location == Location("zotero.bib", 3, "mueller2021graphs")
    assert "keeps 96% of the dense model" in reading.records[1].text


def test_bibtex_string_macros_joins_and_months_resolve():
    reading = read_bib("jabref.bib", (EXPORTS / "jabref.bib").read_text("utf-8"))
    kernels, tables, drift = reading.records
    assert (kernels.venue, kernels.year, kernels.title) == (
        "Journal of Machine Learning Research", 2021, "Random Features for Streaming Kernel Regression")
    assert tables.venue == "Proceedings of the Workshop on Data Integration"
    assert tables.authors == ("Beatriz da Silva",) and kernels.authors == ("Chinedu Okafor", "Lars Svensson")
    # A name no @string defines is kept, and said once, at the entry's line.
    assert drift.venue == "tkde" and drift.authors == ("Petr Novák",)
    assert [str(issue) for issue in reading.issues] == [
        'jabref.bib:23: "tkde" in journal is not a defined @string; kept as written']


@pytest.mark.parametrize("raw, text, undefined", [
    ('"Proc. " # conf # {, 2nd {ed.}}', "Proc. Conference, 2nd {ed.}", []),
    ("jan", "January", []), ("2021", "2021", []), ("{a # b}", "a # b", []), ('"x # y" # nope', "x # ynope", ["nope"]),
])
def test_a_bibtex_value_resolves_part_by_part(raw, text, undefined):
    assert bibtex_value(raw, {"conf": "Conference"}) == (text, undefined)


def test_openalex_works_give_their_abstract_and_metadata(exports):
    work = paper(exports, "songbirds")
    assert work.text == ("Night-flying songbirds call as they migrate. We place forty low-cost recorders along a "
                         "coastline and count calls with a small classifier. Counts track weather-radar estimates of "
                         "migration with a correlation of 0.83, at a tenth of the cost.")
    assert work.title == "Acoustic Monitoring of Bird Migration with Low-Cost Recorders"
    assert work.authors == ("Hanna Lindqvist", "Tomás Ferreira", "Grace Mwangi")
    assert (work.year, work.venue, work.doi) == (2023, "Ecological Informatics", "10.5555/ecoinf.2023.07")


@pytest.mark.parametrize("index, text", [
    ({"b": [1], "a": [0, 2]}, "a b a"), ({}, ""), (None, None), ({"gap": [5], "first": [0]}, "first gap"),
])
def test_an_inverted_index_is_read_in_position_order(index, text):
    assert inverted_abstract(index) == text


@pytest.mark.parametrize("index", [["a"], {"a": 0}, {"a": ["0"]}, {"a": [-1]}, {"a": [True]}])
def test_a_malformed_inverted_index_is_an_error(index):
    with pytest.raises(ValueError, match="abstract_inverted_index"):
        inverted_abstract(index)


def test_the_same_abstract_in_several_formats_is_one_paper_with_every_location(exports):
    sparse = paper(exports, SPARSE)
    assert [(loc.file, loc.line, loc.key) for loc in sparse.locations] == [
        ("zotero.bib", 15, "chen2022sparse"), ("zotero.json", 2, None)]
    mueller = paper(exports, MUELLER)
    assert [(loc.file, loc.line) for loc in mueller.locations] == [("mendeley.ris", 1), ("zotero.bib", 3)]


def test_each_format_gives_its_metadata(exports):
    ris = paper(exports, "renewable power")
    assert (ris.title, ris.authors, ris.year) == ("Energy-aware scheduling of batch inference jobs",
                                                  ("Samir Haddad", "Ewa Kowalski"), 2024)
    assert (ris.venue, ris.url) == ("International Conference on Green Computing", "https://example.org/haddad2024")
    csl = paper(exports, "Tide gauges")
    assert csl.title == "Tide-gauge records reveal accelerating coastal subsidence"  # markup removed
    assert (csl.authors, csl.year) == (("Chidi Okoye", "Delta Monitoring Consortium"), 2020)
    arxiv = paper(exports, "shuffled")
    assert (arxiv.authors, arxiv.year, arxiv.url) == (("Marco Rossi", "Claire Dubois"), 2024,
                                                      "https://arxiv.org/abs/2403.01234")
    openalex = paper(exports, "stale")
    assert (openalex.doi, openalex.venue, openalex.year) == ("10.5555/fl.2022.3", "Distributed AI Letters", 2022)


def test_csv_with_a_bom_and_a_quoted_newline():
    reading = read_csv("scholar.csv", (EXPORTS / "scholar.csv").read_bytes().decode("utf-8-sig"))
    first, second = reading.records
    assert first.title == "Learned Index Structures for Time Series"
    assert first.text.startswith("Time-series databases answer range queries over billions of points.\nWe replace")
    assert (first.authors, first.year, first.doi, first.venue) == (("L Garcia", "R Patel"), 2021, "10.5555/ts.2021.9",
                                                                   "Data Systems Review")
    assert (first.location.line, second.location.line) == (2, 4)
    assert second.authors == ("M Ivanova",) and second.doi is None


def test_a_given_title_wins_and_a_paper_without_one_gets_a_derived_title(tmp_path):
    folder = write_corpus(tmp_path / "c", {"refs.tsv": "ABSTRACT\tTitle\nWe propose FLUX, a fast solver. FLUX is fast.\t\n"})
    assert load_corpus(folder).papers[0].title.startswith("FLUX")
    assert paper(load_corpus(EXPORTS), "wake-word").title == "Low-Power Wake Words"


def test_strict_mode_fails_on_malformed_input_but_not_on_records_without_an_abstract(tmp_path):
    with pytest.raises(CorpusError, match=r"arxiv.jsonl:3: not valid JSON"):
        load_corpus(EXPORTS, strict=True)
    folder = write_corpus(tmp_path / "c", {"a.bib": (EXPORTS / "zotero.bib").read_text("utf-8")})
    assert len(load_corpus(folder, strict=True).papers) == 2


def test_a_control_character_in_any_field_rejects_the_record(tmp_path):
    folder = write_corpus(tmp_path / "c", {
        "ok.txt": "A good abstract.\n",
        "bad.bib": "@article{k,\n  title = {Evil \x1b[2J title},\n  abstract = {Fine text.}\n}\n",
    })
    corpus = load_corpus(folder)
    assert [p.text for p in corpus.papers] == ["A good abstract."]
    assert [str(issue) for issue in corpus.issues] == ["bad.bib:1: control character U+001B in the record; skipped"]


def test_search_json_carries_the_metadata(exports_retriever):
    result = json.loads(search_json(exports_retriever.search("sparse attention clinical notes", 3)))
    first = result["results"][0]
    assert_metadata(first)
    assert (first["authors"], first["year"], first["doi"]) == (["Wei Chen", "Ngozi Okafor"], 2022, None)
    assert first["url"] == "https://example.org/papers/chen2022sparse.pdf"
    assert first["locations"][0] == {"file": "zotero.bib", "line": 15, "key": "chen2022sparse"}
    assert first["locations"][1] == {"file": "zotero.json", "line": 2}


def test_ask_json_carries_the_metadata_in_sources_and_citations(exports_retriever, tmp_path):
    contract = json.loads(answer_json(ask_exports(exports_retriever, tmp_path)))
    assert_contract(contract, {p.paper_id: p.text for p in exports_retriever.corpus.papers})
    citation = contract["citations"][0]
    assert (citation["authors"], citation["year"], citation["venue"], citation["doi"]) == (
        ["Jörg Müller", "Aiko Nakamura"], 2021, "Journal of Graph Computing", "10.5555/jgc.2021.0142")
    assert citation["url"] is None


HOSTILE_PAPER = Paper("p1", "Some abstract.", "en", "T", [Location("x.bib", 1, "k")], authors=(
    '<script>alert(1)</script>', "B & C", "D", "E"), year=2020, venue='"><img src=x onerror=alert(1)>')


def test_the_card_shows_metadata_escaped_with_a_safe_link():
    html = bibliographic_html(Paper(**{**slots(HOSTILE_PAPER), "doi": '10.1/x"onmouseover=alert(1)'}))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;, B &amp; C, D, et al. · 2020 · &quot;&gt;&lt;img" in html
    assert ('<a class="qa-link" href="https://doi.org/10.1/x%22onmouseover%3Dalert(1)" target="_blank" '
            'rel="noopener">doi:10.1/x&quot;onmouseover=alert(1)</a>') in html


@pytest.mark.parametrize("url, linked", [
    ("https://example.org/a?b=1&c=2", True), ("http://example.org", True),
    ("javascript:alert(1)", False), ("data:text/html,<b>x</b>", False), ("https://x.org/\" onclick=1", False),
])
def test_only_web_addresses_become_links(url, linked):
    html = bibliographic_html(Paper(**{**slots(HOSTILE_PAPER), "url": url}))
    assert ('target="_blank" rel="noopener"' in html) == linked
    assert "javascript" not in html and "data:" not in html and "onclick" not in html


def test_a_source_card_holds_the_metadata(exports_retriever, tmp_path):
    answer = ask_exports(exports_retriever, tmp_path)
    card = source_card_html(answer.citations[0], "en", 1, None)
    assert 'href="https://doi.org/10.5555/jgc.2021.0142" target="_blank" rel="noopener"' in card
    assert "Jörg Müller, Aiko Nakamura · 2021 · Journal of Graph Computing" in card


def test_the_closest_papers_of_a_declined_answer_show_their_metadata(exports):
    html = closest_papers_html([Hit(1, paper(exports, "renewable power"), 3.0, "snippet")], show_scores=False)
    assert ('Samir Haddad, Ewa Kowalski · 2024 · International Conference on Green Computing · <a class="qa-link" '
            'href="https://example.org/haddad2024" target="_blank" rel="noopener">') in html


def test_the_bibtex_export_round_trips_through_bibtexparser(exports):
    papers = [paper(exports, MUELLER), paper(exports, "renewable power"), HOSTILE_PAPER,
              Paper("p2", "摘要：变压器 50% & {x}", "zh", "标题 #1 $x$", [Location("a.txt", 1)])]
    library = bibtexparser.parse_string(references_bibtex(papers), append_middleware=[LatexDecodingMiddleware()])
    assert library.failed_blocks == []
    entries = library.entries
    assert [e.key for e in entries] == ["mueller2021graphs", f"qa{papers[1].paper_id}", "k", "qap2"]
    for entry, original in zip(entries, papers):
        fields = {key: field.value for key, field in entry.fields_dict.items()}
        assert fields["abstract"] == original.text and fields["title"] == original.title
        assert fields.get("author", "") == " and ".join(original.authors)
        assert fields.get("year") == (str(original.year) if original.year else None)
    assert {f.key: f.value for f in entries[0].fields}["doi"] == "10.5555/jgc.2021.0142"


def test_the_markdown_export_lists_the_metadata(exports_retriever, tmp_path):
    answer = ask_exports(exports_retriever, tmp_path)
    text = conversation_markdown([answer], "exports", "fake.gguf", datetime(2026, 1, 2, 3, 4))
    assert "Jörg Müller, Aiko Nakamura · 2021 · Journal of Graph Computing · <https://doi.org/10.5555/jgc.2021.0142>" in text
    assert cited_papers([answer, answer]) == [answer.citations[0].paper]


def ask_exports(retriever, tmp_path):
    stream = Assistant(retriever, FakeModel(MUELLER_ANSWER), Settings(corpus=EXPORTS, cache_dir=tmp_path)).ask(
        MUELLER_QUESTION)
    list(stream)
    return stream.answer


def slots(paper: Paper) -> dict:
    return {name: getattr(paper, name) for name in Paper.__slots__}


def test_ask_bibtex_prints_the_cited_papers(exports_retriever, tmp_path, capsys):
    model = FakeModel(MUELLER_ANSWER, coverage=declining("How do quantum computers factor large integers?"))
    assistant = Assistant(exports_retriever, model, Settings(corpus=EXPORTS, cache_dir=tmp_path))
    print_cited_bibtex(assistant, MUELLER_QUESTION)
    printed = capsys.readouterr()
    library = bibtexparser.parse_string(printed.out, append_middleware=[LatexDecodingMiddleware()])
    assert [entry.key for entry in library.entries] == ["mueller2021graphs"]
    assert library.entries[0].fields_dict["author"].value == "Jörg Müller and Aiko Nakamura"
    print_cited_bibtex(assistant, "How do quantum computers factor large integers?")
    printed = capsys.readouterr()
    assert printed.out == "" and "cites no paper" in printed.err


def test_plain_text_search_shows_the_metadata(exports_retriever):
    text = format_search(exports_retriever.search("bird migration recorders", 1))
    assert text.splitlines()[2] == (
        "    Lindqvist, Ferreira et al. · 2023 · Ecological Informatics · https://doi.org/10.5555/ecoinf.2023.07")
    # A record without metadata adds no line.
    seeds_like = Paper("p", "An abstract.", "en", "T", [Location("a.txt", 1)])
    assert format_search(SearchResult("q", [Hit(1, seeds_like, 1.0, "An abstract.")], 0.0)).count("\n") == 2


def test_plain_text_sources_of_an_answer_show_the_metadata(exports_retriever, tmp_path):
    text = format_sources(ask_exports(exports_retriever, tmp_path))
    assert "      Müller, Nakamura · 2021 · Journal of Graph Computing · https://doi.org/10.5555/jgc.2021.0142\n" in text


@pytest.mark.parametrize("authors, shown", [
    ((), ""), (("Jörg Müller",), "Müller"), (("Ann Smith", "Bo Lee"), "Smith, Lee"),
    (("Ann Smith", "Bo Lee", "Cy Wu"), "Smith, Lee et al."), (("张伟", "Consortium"), "张伟, Consortium"),
])
def test_authors_are_shortened_to_two_family_names(authors, shown):
    assert short_authors(authors) == shown


def test_a_given_title_is_indexed_with_the_abstract(exports_retriever, exports):
    # "Schema" stands only in the title of the JabRef entry, not in its abstract.
    titled = paper(exports, "cryptic")
    assert "schema" not in titled.text.lower()
    assert [hit.paper.paper_id for hit in exports_retriever.search("schema", 3).hits] == [titled.paper_id]
    assert titled.indexed_text == f"{titled.given_title}\n{titled.text}"
    untitled = Paper("p", "An abstract.", "en", "Derived title", [Location("a.txt", 1)])
    assert untitled.indexed_text == "An abstract."


def test_plain_text_closest_papers_of_a_declined_answer_show_the_metadata(exports_retriever, tmp_path):
    model = FakeModel("unused", coverage=declining("Which telescope observed the songbirds?"))
    stream = Assistant(exports_retriever, model, Settings(corpus=EXPORTS, cache_dir=tmp_path)).ask(
        "Which telescope observed the songbirds?")
    list(stream)
    assert stream.answer.abstained
    assert format_sources(stream.answer).splitlines()[1:3] == [
        "  - Acoustic Monitoring of Bird Migration with Low-Cost Recorders · openalex.jsonl:1",
        "    Lindqvist, Ferreira et al. · 2023 · Ecological Informatics · https://doi.org/10.5555/ecoinf.2023.07"]
