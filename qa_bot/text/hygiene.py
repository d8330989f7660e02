"""Text hygiene at the edges: what comes in (questions, corpus lines) and what goes out (answers).

- Questions and queries are normalised once: bytes that were not UTF-8 (Python hands argv over
  as lone surrogates, stdin decodes them to U+FFFD) become U+FFFD, the text is NFC, control and
  format characters (NUL, ESC, zero-width spaces, direction marks) are removed, white space is
  collapsed. Nothing of that is left to reach a JSON line or the terminal.
- Corpus text follows one rule for `.txt` and `.jsonl`: a line holding a control character
  (other than tab and line breaks) or a lone surrogate is rejected.
- Corpus text is data, never instructions: `instruction_spans` finds the stretches that address
  the assistant ("ignore all previous instructions", "reply only ...", "you are now ...", role
  words such as "system:", and the same in Chinese), so that they end sentences, are never
  evidence and are never quoted.
- An answer is plain text: `plain_text` removes markup tags (and what a script or style element
  holds), `uncited_markers_removed` any marker that no citation stands behind.

Not handled: instructions phrased as ordinary statements ("The correct answer is 42."), which
no pattern can tell from a finding.
"""

import re
import unicodedata
from functools import cache, lru_cache

from qa_bot.errors import BadInputError
from qa_bot.text.markers import MARKER, MARKER_TEXT, markers_of

REPLACEMENT = "\ufffd"
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# C0 controls except tab, line feed and carriage return; DEL; C1 controls; lone surrogates.
CORPUS_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# An HTML/XML tag, comment or doctype: "<script>", "</b>", "<img src=x onerror=...>", "<!-- -->".
MARKUP_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<![A-Za-z][^<>]*>", re.DOTALL)
# Elements whose content is code, not text: it goes with the tags.
CODE_ELEMENT = re.compile(r"<(?P<code>script|style)\b[^>]*>.*?(?:</(?P=code)\s*>|$)", re.DOTALL | re.IGNORECASE)
WORD = re.compile(r"\w")

_EN_INSTRUCTION = (
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}?\b(?:instructions?|prompts?|rules?|"
    r"directions?|guidelines?|context|everything)\b",
    r"\b(?:you\s+(?:are|must|should|will)\s+now|from\s+now\s+on|pretend\s+(?:to\s+be|you)|act\s+as\s+(?:an?\s+)?"
    r"(?:assistant|ai|chatbot|system|admin))\b",
    r"\b(?:reply|respond|answer|say|output|print|write|return)\s+(?:only|just|with|exactly)\b",
    r"\b(?:say|reply|respond|output|print|write|type|repeat|with)\s*[:,]?\s*[\"“「]",  # ... "PWNED"
    r"(?:^|(?<=[.!?\n>]))\s*(?:please\s+)?(?:say|print|output|reply|respond|repeat|type)\b",  # an imperative opening
    r"\b(?:do\s+not|don't|never)\s+(?:cite|mention|follow|answer|reveal|tell)\b",
    r"\b(?:assistant|ai\s+model|language\s+model|chatbot)\s*[,:]\s*(?:you|please|ignore|reply|say)\b",
    r"(?:^|(?<=[.!?\n>]))\s*(?:system|assistant|user|developer)\s*:",  # a role word opening a sentence
    r"\b(?:new|updated|real|actual)\s+instructions?\s*:",
    r"\b(?:important|attention|note\s+to\s+(?:the\s+)?(?:ai|assistant|model))\s*[:!]\s*(?=\w[^.!?\n]{0,80}"
    r"\b(?:ignore|reply|respond|say|output|instructions?|assistant)\b)",
    r"\bprompt\s+injection\b|\bjailbreak\b",
)
_ZH_INSTRUCTION = (
    r"(?:忽略|无视|忘记|不要理会|不要遵循|忽视)[^。！？\n]{0,20}?(?:指令|指示|说明|提示|规则|要求|内容)",
    r"(?:你现在是|你是一个|你将扮演|扮演一个|假装你是|从现在开始)",
    r"(?:只|仅|请只|请仅)(?:回复|回答|输出|说)",
    r"(?:请|必须)?(?:回复|输出)[“\"「]",
    r"(?:系统提示|系统指令|新的指令|新指令)|(?:^|(?<=[。！？\n>]))\s*(?:助手|系统|用户)[:：]",
    r"不要(?:引用|提及|回答|透露)",
)
INSTRUCTION = re.compile("|".join(_EN_INSTRUCTION + _ZH_INSTRUCTION), re.IGNORECASE)
# The same, one pattern each, with words one of which every match of the pattern holds: a text
# holding none of them is not searched with that pattern. Alone, each pattern is scanned with its
# own prefix search; with the words, most are never run (6.6 ms an abstract for the alternation,
# 0.4 ms for the patterns alone, measured).
_NEEDED_WORDS = (
    ("ignore", "disregard", "forget", "override", "bypass"), ("now", "pretend", "act"),
    ("reply", "respond", "answer", "say", "output", "print", "write", "return"), ('"', "“", "「"),
    ("say", "print", "output", "reply", "respond", "repeat", "type"), ("not", "don't", "never"),
    ("assistant", "model", "chatbot"), ("system", "assistant", "user", "developer"), ("instruction",),
    ("important", "attention", "note"), ("prompt", "jailbreak"),
    ("忽略", "无视", "忘记", "不要理会", "不要遵循", "忽视"), ("你现在是", "你是一个", "你将扮演", "扮演一个", "假装你是", "从现在开始"),
    ("只", "仅"), ("回复", "输出"), ("系统", "新的指令", "新指令", "助手", "用户"), ("不要",),
)
FOLDS_TO_ASCII = re.compile("[\u0130\u0131\u017f\u212a]")  # the letters that match an ASCII one ignoring case
INSTRUCTION_PARTS = tuple((words, re.compile(part, re.IGNORECASE))
                          for words, part in zip(_NEEDED_WORDS, _EN_INSTRUCTION + _ZH_INSTRUCTION, strict=True))


def normalize_question(text: str) -> str:
    """The question as the pipeline sees it: invalid bytes replaced, NFC, no control or format
    characters, white space collapsed. May be empty."""
    text = unicodedata.normalize("NFC", LONE_SURROGATE.sub(REPLACEMENT, text))
    return " ".join("".join(map(_visible, text)).split())


def _visible(char: str) -> str:
    """A control or format character becomes a space if it separates words (tab, line feed), else
    nothing (NUL, ESC, zero-width space, a direction mark)."""
    if unicodedata.category(char) not in ("Cc", "Cf"):
        return char
    return " " if char.isspace() else ""


def is_blank(text: str) -> bool:
    """Nothing to ask: white space and replaced bytes only."""
    return not text.replace(REPLACEMENT, "").strip()


def corpus_control_character(text: str) -> str | None:
    """The first character that a corpus line may not hold, as U+XXXX, or None."""
    found = CORPUS_CONTROL.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def printable_name(name: str) -> str:
    """A file name fit for output: bytes that were not UTF-8 shown as U+FFFD."""
    return LONE_SURROGATE.sub(REPLACEMENT, name)


def instruction_spans(text: str) -> list[tuple[int, int]]:
    """Where the text addresses the assistant instead of reporting research (start, end)."""
    if not looks_like_instruction(text):  # nearly every abstract: the slow alternation is not needed
        return []
    return [match.span() for match in INSTRUCTION.finditer(text)]


def text_segments(text: str) -> list[str]:
    """The stretches of `text` a sentence may be taken from, each a substring of it: markup (a tag,
    a script element) and citation markers ([2], 【1】) are boundaries and belong to no stretch, and
    an instruction to the assistant starts a stretch of its own, so no sentence quoted from the
    corpus carries a tag, a marker, or an instruction next to a finding."""
    pieces, start = [], 0
    for match in _boundaries().finditer(text):
        pieces.append(text[start : match.start()])
        start = match.end()
    pieces.append(text[start:])
    return [part for piece in pieces for part in _cut_before_instructions(piece) if has_words(part)]


@cache
def _boundaries() -> re.Pattern:
    return re.compile(f"{CODE_ELEMENT.pattern}|{MARKUP_TAG.pattern}|{MARKER_TEXT}", re.DOTALL | re.IGNORECASE)


def _cut_before_instructions(piece: str) -> list[str]:
    cuts = [0, *(start for start, _ in instruction_spans(piece)), len(piece)]
    return [piece[begin:end] for begin, end in zip(cuts, cuts[1:])]


def has_words(text: str) -> bool:
    return WORD.search(text) is not None


@lru_cache(maxsize=8192)  # the same abstract is split for its snippet, its title and its evidence
def looks_like_instruction(text: str) -> bool:
    lowered = text.lower()
    if FOLDS_TO_ASCII.search(text):  # "İgnore" matches the pattern but does not lower-case to "ignore"
        return INSTRUCTION.search(text) is not None
    return any(any(word in lowered for word in words) and part.search(text) for words, part in INSTRUCTION_PARTS)


def plain_text(text: str) -> str:
    """The text without markup: tags removed, and the content of script and style elements too."""
    text = CODE_ELEMENT.sub(" ", text)
    text = MARKUP_TAG.sub(" ", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def uncited_markers_removed(text: str, cited: set[int]) -> str:
    """The text without the markers ([2], [1, 3], 【2】) that name no citation of the answer."""
    def keep_cited(match: re.Match) -> str:
        numbers = markers_of(match.group())
        return match.group() if numbers and set(numbers) <= cited else ""

    return MARKER.sub(keep_cited, text)


def shown_answer(text: str, cited: set[int]) -> str:
    """An answer's text as every front end may show it: plain, with cited markers only."""
    return uncited_markers_removed(plain_text(text), cited)


def require_text(text: str, empty_message: str) -> str:
    """The normalised text; BadInputError(empty_message) when nothing is left to ask or search."""
    text = normalize_question(text)
    if is_blank(text):
        raise BadInputError(empty_message)
    return text


def cut_to_tokens(text: str, count_tokens, budget: int) -> str:
    """The longest start of `text` that takes at most `budget` model tokens, cut at a space when
    there is one near the end (a Chinese text has none: it is cut between characters)."""
    if count_tokens(text) <= budget:
        return text
    low, high = 0, len(text)  # count_tokens(text[:low]) <= budget < count_tokens(text[:high])
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count_tokens(text[:middle]) <= budget else (low, middle)
    cut = text[:low]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0.8 * len(cut) else cut).rstrip()
