"""What a question asks for, analysed once at the top of the pipeline and passed down as a `Query`.

Retrieval, abstention, evidence, the citation check and the answer's wording all read the same
value instead of re-reading the question: its language, the part that asks (a chatty question's
description of the asker's situation left out), the names it mentions, what kind of answer it
wants, and whether it points back to an earlier turn. Rules, not a model: the packaged models are
too small to classify questions, and every rule here is a pattern a reader can check.
"""

import re
from dataclasses import dataclass
from typing import Literal

from qa_bot.search.bilingual import Words, unit_terms
from qa_bot.text.language import detect_language

# name: which paper or method (its name); entity: which dataset, benchmark, simulator (another name).
Asks = Literal["papers", "metadata", "number", "name", "entity", "list", "yes_no", "explanation"]

# "Which papers ...?", "哪些论文 ...?": the answer is every paper that qualifies, not a sentence.
PAPERS = re.compile(
    r"\b(?:which|what|any|list(?: all)?(?: the)?|are there(?: any)?|do any(?: of the)?|which of the)\s+"
    r"(?:\w+\s+){0,2}?(?:papers|works|studies|abstracts|articles)\b|\bwhich of (?:these|the) (?:papers|works)\b|"
    r"哪些(?:论文|文章|工作|研究)|哪几篇|有哪些.{0,12}(?:论文|文章|工作)|(?:论文|文章)中有哪些",
    re.IGNORECASE,
)
# What an abstract never holds: who wrote it, when and where it appeared, what it ran on, its code.
METADATA = {
    "authors": r"\b(?:who (?:are|were|is|was) the authors?|authors? of|(?:list|name) the authors|who (?:wrote|writes|proposed|"
    r"developed|created)|written by|affiliat\w*|universit(?:y|ies)|"
    r"institution|lab(?:oratory)? (?:is|are|did)|which (?:team|group|company))\b|作者|谁写|谁提出|哪个(?:团队|机构|大学|实验室)|单位",
    "date": r"\b(?:what|which) year\b|\bwhen (?:was|were|did) .{0,60}\b(?:published|released|appear|written|come out|came out)\b|"
    r"\b(?:publication|release) (?:year|date)\b|哪一?年|什么时候(?:发表|发布|提出)|发表(?:时间|年份|于哪)",
    "venue": r"\b(?:venue|conference|journal|workshop|proceedings|published (?:in|at)|accepted (?:at|to|by))\b|"
    r"会议|期刊|发表在|发表于",
    "code": r"\b(?:source code|code (?:is |was )?(?:available|released|public|open)|github|repository|open[- ]sourced?|"
    r"licen[cs]e[ds]?)\b|代码|开源|许可证|仓库",
    "funding": r"\b(?:fund(?:ed|ing)|grants?|sponsor\w*)\b|资助|基金",
    "hardware": r"\b(?:what|which) (?:kind of )?(?:hardware|gpus?|cpus?|machines?|accelerators?|cluster)\b.{0,40}"
    r"\b(?:train|run|use|used|need|evaluat)\w*|\bhow many gpus?\b.{0,30}\b(?:train|need|use)\w*|"
    r"\btrain(?:ed|ing)? (?:on|with) (?:which|what) (?:hardware|gpus?)\b|什么(?:硬件|显卡|GPU)|多少(?:块|张)?(?:GPU|显卡)",
    "time": r"\bhow long (?:did|does|do|would) (?:it|the \w+|training|they) (?:take|train)\w*\b|\btraining (?:time|cost|budget)\b|"
    r"\bgpu[- ]hours\b|训练(?:了)?多(?:长|久)|训练时间|训练成本",
}
METADATA_PATTERNS = {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in METADATA.items()}
# Where an abstract does state such a thing ("Code is available at github.com/..."): then it is answered.
METADATA_STATED = {
    "authors": re.compile(r"\b(?:by [A-Z][a-z]+ et al|authored by|the authors are)\b"),
    "date": re.compile(r"\b(?:19|20)\d{2}\b"),
    "venue": re.compile(r"\b(?:CVPR|ICCV|ECCV|NeurIPS|ICML|ICLR|ACL|EMNLP|NAACL|AAAI|IJCAI|KDD|WWW|SIGIR|OSDI|SOSP|"
                        r"conference|journal|proceedings)\b", re.IGNORECASE),
    "code": re.compile(r"\b(?:code|github|available at|open[- ]source)\b|https?://|代码|开源", re.IGNORECASE),
    "funding": re.compile(r"\b(?:funded|grant|supported by)\b|资助|基金", re.IGNORECASE),
    "hardware": re.compile(r"\b(?:[AHV]100|RTX|TPU|A6000|\d+\s*(?:GPUs|NVIDIA))\b|\d+\s*(?:块|张)"),
    "time": re.compile(r"\b\d+(?:\.\d+)?\s*(?:hours?|days?|minutes?|GPU[- ]hours?)\b|\d+\s*(?:小时|天|分钟)", re.IGNORECASE),
}
QUANTITY = re.compile(
    r"\bhow (?:many|much|fast|large|big|long|accurate|well)\b|\b(?:accuracy|speed-?ups?|faster|slower|score|scores|"
    r"percentage|percent|rate|mIoU|NDS|F1|top-1|gains?|improvements?|improve[sd]? by|reduc\w+ by|outperform\w* by|"
    r"what (?:number|fraction|proportion|share)|by what (?:factor|margin))\b|多少|几[个种项次倍位类篇]|多快|多大|准确率|"
    r"精度|加速|提升|提高了|降低了|得分|比例|百分之",
    re.IGNORECASE,
)
IDENTIFY = re.compile(
    r"\b(?:which|what)\s+(?:\w+\s+){0,3}?(?:paper|work|study|article|method|approach|model|toolbox|benchmark|framework|"
    r"dataset|metric|technique|system|algorithm|architecture|tool|library|network|name)\b(?!s)|\bwhat is (?:it|the \w+) called\b|"
    r"\bwhat (?:is|was) the name\b|\bwhat do (?:they|the authors) call\b|"
    r"哪篇|哪个|哪种|叫什么|什么方法|什么名字|名称是什么|什么模型|什么框架|什么数据集",
    re.IGNORECASE,
)
LIST = re.compile(
    r"\b(?:which|what)\s+(?:\w+\s+){0,3}?(?:methods|approaches|models|benchmarks|frameworks|datasets|metrics|techniques|"
    r"systems|tasks|baselines|components|modules|steps|stages|equations|languages|domains|applications|types|kinds|"
    r"categories|relations|relationships|features|attacks|defenses|losses|properties|challenges|contributions)\b|"
    r"\blist\b|\bname (?:the|all|some)\b|哪些|哪几",
    re.IGNORECASE,
)
ENTITY_TARGET = re.compile(
    r"\b(?:datasets?|benchmarks?|metrics?|simulators?|environments?|corpus|corpora|languages?|hardware|platforms?)\b|"
    r"数据集|基准|指标|模拟器|仿真|环境|语料|平台",
    re.IGNORECASE,
)
YES_NO = re.compile(r"^(?:is|are|does|do|did|can|could|has|have|was|were|will|would|should)\b|吗[？?]?$|是否|有没有|能否|可否",
                    re.IGNORECASE)
# A question's situation before it asks: "We run a small lab with two GPUs, so is there ...?"
ASKING_START = re.compile(
    r"(?:^|[.!;:,，。；：！]\s*|\b(?:so|and|but)\s+)((?:so\s+)?(?:which|what|how|is there|are there|does|do|did|can|could|"
    r"is|are|has|have|was|were|why|where|when|who|tell me|I(?:'d| would) like to know|I want to know|I wonder)\b)",
    re.IGNORECASE,
)
ZH_ASKING_START = re.compile(r"[，。；！,;]\s*(?=[^，。；！,;]*(?:吗|哪|什么|多少|如何|怎么|怎样|是否|有没有|为什么|几)[^，。；！,;]*[？?]?$)")
SHORT_EN_WORDS, SHORT_ZH_CHARACTERS = 15, 30  # a question this short describes no situation first
# Where a question asks a second thing: after a question mark, at "..., and how many ...", at
# "，它在哪个数据集上…?". Each part gets the sentence that answers it, not only the first part.
PART_BOUNDARY = re.compile(
    r"(?<=[?？])\s*(?=\S)|,?\s+and\s+(?=(?:roughly |approximately |also |then )?(?:what|which|how|in which|on which|where|who|when|why)\b)|"
    r",\s*(?=(?:what|which|how many|how much)\b)|"
    r"[，,;；]\s*(?=(?:它|该|其|这个|并且|以及|另外)[^，,。]*(?:吗|哪|什么|多少|如何|怎么|是否|几))",
    re.IGNORECASE,
)
MIN_PART_WORDS, MIN_PART_CHARACTERS = 3, 6  # "On average, how much ...?" is one question
# Names: acronyms, CamelCase, letter-digit tokens (GPT-4, T5), and capitalised words inside a sentence.
NAME = re.compile(r"(?<![A-Za-z0-9-])(?=[A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*[A-Z0-9])[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]")
CAPITALISED = re.compile(r"(?<=[a-z0-9,;:)]\s)([A-Z][a-z]{2,}(?:-[A-Z]?[a-z]+)*)\b|(?<=[\u3400-\u9fff])([A-Z][a-z]{2,})\b")
NOT_NAMES = frozenset(
    "I English Chinese Which What How Why When Where Who Is Are Does Do Can The This That These Those "
    "Monte Carlo Transformer Transformers Markov Gaussian Bayesian Euclidean Fourier Laplacian Boolean".split()
)


@dataclass(frozen=True)
class Part:
    """One thing a question asks ("how many relationship types ...?" of "How many users, and how
    many relationship types does MGTAB contain?")."""

    text: str
    asks: Asks
    metadata: str | None
    words: Words  # its content words with their glosses
    topic_terms: frozenset[str]  # the index terms of those words that are not the question's names


@dataclass(frozen=True)
class Query:
    """A question, analysed once."""

    text: str  # the whole question, as asked
    lang: str  # "en" or "zh"
    asking: str  # the part that asks: a chatty question without the asker's situation before it
    asks: Asks
    metadata: str | None  # for asks == "metadata": authors, date, venue, code, funding, hardware, time
    names: tuple[str, ...]  # methods, models, datasets the question names ("MGTAB", "Mamba", "GPT-4")
    parts: tuple[Part, ...]  # what it asks, one part per thing asked (one for most questions)
    words: Words  # the content words of the whole question, with their glosses
    asking_words: Words  # those of the part that asks
    name_terms: frozenset[str]  # the index terms of the names it gives



def analyse(question: str) -> Query:
    text = " ".join(question.split())
    asking = asking_part(text)
    names = names_in(text)
    name_terms = frozenset().union(*map(unit_terms, names))
    parts = tuple(analyse_part(part, name_terms) for part in parts_of(asking))
    return Query(text, detect_language(text), asking, *kind_of_answer(asking), names, parts, Words.of(text),
                 Words.of(asking), name_terms)


def analyse_part(text: str, name_terms: frozenset[str]) -> Part:
    words = Words.of(text)
    return Part(text, *kind_of_answer(text), words, frozenset(words.terms) - name_terms)


def asking_part(text: str) -> str:
    """The question without the situation its asker describes first ("We run a small lab with two
    GPUs, so is there a method that ...?"): from where the first question starts, when the text
    does not start with one. Short questions are their own asking part."""
    if detect_language(text) == "zh":
        if len(text) <= SHORT_ZH_CHARACTERS:
            return text
        starts = [match.end() for match in ZH_ASKING_START.finditer(text)]
        return text[starts[0]:] if starts else text
    if len(text.split()) <= SHORT_EN_WORDS:
        return text
    starts = [match.start(1) for match in ASKING_START.finditer(text)]
    if not starts or starts[0] == 0:
        return text
    return re.sub(r"^so\s+", "", text[starts[0]:], flags=re.IGNORECASE)


def parts_of(asking: str) -> list[str]:
    """The sub-questions of the asking part; a piece too short to ask anything stays with the next."""
    parts: list[str] = []
    carried = ""
    for piece in PART_BOUNDARY.split(asking):
        piece = f"{carried} {piece}".strip()
        if is_too_short(piece):
            carried = piece
            continue
        parts.append(piece)
        carried = ""
    if carried:
        parts = parts[:-1] + [f"{parts[-1]} {carried}"] if parts else [carried]
    return parts or [asking]


def is_too_short(piece: str) -> bool:
    if detect_language(piece) == "zh":
        return len(piece) < MIN_PART_CHARACTERS
    return len(piece.split()) < MIN_PART_WORDS


def kind_of_answer(asking: str) -> tuple[Asks, str | None]:
    if PAPERS.search(asking):
        return "papers", None
    for kind, pattern in METADATA_PATTERNS.items():
        if pattern.search(asking):
            return "metadata", kind
    if QUANTITY.search(asking):
        return "number", None
    if LIST.search(asking):
        return "list", None
    if IDENTIFY.search(asking):
        return ("entity" if ENTITY_TARGET.search(asking) else "name"), None
    if YES_NO.search(asking.strip()):
        return "yes_no", None
    return "explanation", None


def names_in(text: str) -> tuple[str, ...]:
    found = [entity_part(name) for name in NAME.findall(text)] + [a or b for a, b in CAPITALISED.findall(text)]
    return tuple(dict.fromkeys(name for name in found if name and name not in NOT_NAMES))


def entity_part(name: str) -> str:
    """A compound of a plain word and a name is about the name: "multi-GPU" names GPU, which a
    Chinese abstract writes as 多GPU; plurals are the name ("GPUs")."""
    parts = [part for part in name.split("-") if not (part.isalpha() and part.islower())]
    entity = "-".join(parts)
    return entity[:-1] if re.fullmatch(r"[A-Z0-9-]{2,}s", entity) else entity


def states_metadata(kind: str, sentence: str) -> bool:
    """Whether an abstract's sentence states the kind of metadata asked for."""
    return METADATA_STATED[kind].search(sentence) is not None
