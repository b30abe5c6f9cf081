"""Quality heuristics: cheap per-record checks that each raise a flag with a reason.

Every check can be turned off in :class:`HeuristicSettings`. They are tuned for
precision: real fine-tuning data is full of code, math, lists and tables, and a flag
that fires on those is noise. Tuned on the bundled sample and on GSM8K, Code Alpaca,
Glaive tool calls, FastChat's dummy conversations and LLaMA-Factory's identity set.
The rules:

``empty_answer``
    An assistant turn without a tool call whose content is empty or whitespace (or no
    assistant turn at all).
``placeholder_answer``
    A whole assistant turn that, stripped and lower-cased (and without surrounding quotes
    or a trailing full stop), equals a placeholder: "N/A", "<noinput>", "TODO", "none",
    "-", "...", "TBD", "lorem ipsum ...", ... (:data:`PLACEHOLDERS`).
``truncated_answer``
    Only the last assistant turn with text is looked at. It is cut off when
    (a) it leaves a code block open (an odd number of ``` fences), or
    (b) it ends, without punctuation, on a lower-case word that can't end an English
    sentence (an article, conjunction, preposition, auxiliary or possessive: "the",
    "and", "of", "on", "is", "their", ...; :data:`DANGLING`) and the fragment after the
    last sentence end has at least 3 words; idioms such as "and so on", "log in" or
    "what it is" are allowed; or
    (c) it ends on a lower-case word (or a comma) after a fragment of at least 4 words,
    the answer has at least two earlier lines and every one of them ends like a sentence
    (".", "!", "?", ":", ";", a closing quote or bracket), and the last line is not a
    list item, a closing formula ("Let me know if ...", "Good luck"), nor code.
    Never flagged: an ending on a digit, any punctuation or closing bracket/quote, a
    colon, an emoji or other symbol, a closed code fence, or a last line that looks like
    code, a URL, a header, a table row or a shell command. A single-line answer that is
    only missing its full stop is not flagged.
``too_long``
    The example has more tokens than ``max_tokens`` (OpenAI's per-message recipe in
    :class:`~ftcurate.core.io.validate.TokenCounter`: a local tokenizer, or the estimate).
``refusal``
    A refusal or AI boilerplate phrase in assistant text outside code blocks ("As an AI
    language model,", "I'm sorry, but I can't", "I am unable to assist", "I don't have
    personal opinions", "I don't have the capability to ...", "my knowledge cutoff" ...),
    case-insensitive; the matched phrase is in the reason. Apologies that go on with
    something other than a refusal ("I'm sorry, but the website is down") and identity
    statements ("I am Vicuna, a language model trained by ...") are not flagged.
``pii``
    Personal data and secrets anywhere in the example: e-mail addresses, phone numbers
    (international "+44 20 7946 0958"; US "(555) 014-2368", "555-014-2368",
    "555.014.2368"), card numbers (issuer prefix and length, Luhn check), US social
    security numbers next to "SSN", and keys: OpenAI ``sk-...``, AWS ``AKIA...``, GitHub
    ``ghp_...``, Slack ``xox?-...``, Google ``AIza...``, Stripe ``sk_live_...``, private key
    blocks, and ``api_key = "..."``-style assignments whose value looks random. The
    reason says which kind and masks the value ("sk-…3f9a"). Plain numbers, years,
    arithmetic, dates, versions and IP addresses are not phone or card numbers; made-up
    addresses (user@example.com, someone@yourdomain.com) in code or quotes are skipped.
``mojibake``
    Text that has a mojibake-looking pair of characters ("Ã©", "â€™", cp1251 "Р°")
    and that :func:`ftfy.badness.is_bad` finds broken, or that holds U+FFFD replacement
    characters; the reason shows the snippet and ftfy's fix.
``repetition``
    In an assistant turn's prose (code is left out: repeated structure is normal there):
    (a) one sentence or line of at least 3 words appears ``repetition_repeats`` times
    (default 5) and makes up at least a third of the sentences, or (b) at least
    ``repetition_threshold`` (default 0.75) of the words lie in word 5-grams that
    appeared earlier in the turn (turns of 40 words or more; numbers are kept as words,
    so a times table whose rows differ in their numbers stays well below), or (c) one
    word 8 times or more in a row. On GSM8K the highest 5-gram share is 0.46; a
    sentence looped 15 times scores 0.89.
``unseen_media``
    References to images, attachments or links the model can't see, in the prompt or
    the answer outside code: "as shown in the image", "see the attached", "attached
    file", "in the picture above", "the chart below", "describe this image", "see
    figure 2", markdown image syntax, "click the link" (not in HTML/code tasks), or a
    prompt that gives a URL and asks to read, summarize or visit it (not in tasks about
    fetching or scraping it).
``wrong_language`` (off by default)
    The answer's prose (code removed) is mostly (over half its letters) in a script
    other than the target language's, or, for a Latin-script target with a stop-word
    list (en, es, fr, de, it, pt, nl), it has at least 12 words, under 8% stop words of
    the target language and at least 20% stop words of another one.
``template_placeholder``
    An unfilled ``{{name}}`` placeholder in any message, outside code and outside text
    about templates (HTML, Jinja, Vue, Handlebars, LaTeX ...).
"""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Optional, Sequence

from ..progress import CancelCheck, ProgressCallback, Reporter
from ..project.records import Record

# --------------------------------------------------------------------------------------
# Public names
# --------------------------------------------------------------------------------------

FLAGS: dict[str, str] = {
    "empty_answer": "An assistant answer is empty or only whitespace.",
    "placeholder_answer": "An assistant answer is only a placeholder such as 'N/A', '<noinput>' or 'TODO'.",
    "truncated_answer": "The last assistant answer stops mid-sentence or leaves a code block open.",
    "too_long": "The example has more tokens than the training maximum sequence length.",
    "refusal": "An assistant answer contains a refusal or 'As an AI language model' boilerplate.",
    "pii": "The example contains personal data or a secret: e-mail, phone, card number, API key.",
    "mojibake": "The text has broken encoding (mojibake) that ftfy can detect.",
    "repetition": "An assistant answer repeats itself (a repeated sentence or many repeated n-grams).",
    "unseen_media": "The example refers to an image, attachment or link the model can't see.",
    "wrong_language": "The answer is mostly not in the target language.",
    "template_placeholder": "The example has an unfilled template placeholder such as '{{name}}'.",
}

# Which setting switches each flag on or off.
FLAG_SETTING: dict[str, str] = {
    "empty_answer": "empty_answer",
    "placeholder_answer": "placeholder",
    "truncated_answer": "truncated",
    "too_long": "too_long",
    "refusal": "refusal",
    "pii": "pii",
    "mojibake": "mojibake",
    "repetition": "repetition",
    "unseen_media": "unseen_media",
    "wrong_language": "language",
    "template_placeholder": "template_placeholder",
}

DEFAULT_MAX_TOKENS = 4096
# Bump when a rule changes what gets flagged, so cached per-record results can be dropped.
RULES_VERSION = 1


def _opt(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass
class HeuristicSettings:
    """Which heuristics run, and their thresholds. Every field has a help text in
    its metadata (``fields(HeuristicSettings)[i].metadata["help"]``)."""

    empty_answer: bool = _opt(True, "Flag assistant answers that are empty or only whitespace.")
    placeholder: bool = _opt(True, "Flag answers that are only a placeholder: 'N/A', '<noinput>', 'TODO', "
                                   "'none', '-', '...', 'TBD', 'lorem ipsum'.")
    truncated: bool = _opt(True, "Flag last answers that stop mid-sentence (ending on a word like 'the' or "
                                 "'and', or a cut-off last sentence) or leave a code block open. "
                                 "Code, lists, numbers and URLs are not flagged.")
    too_long: bool = _opt(True, "Flag examples with more tokens than the maximum sequence length.")
    max_tokens: int = _opt(DEFAULT_MAX_TOKENS, "Maximum sequence length in tokens for the too-long check "
                                               "(counted with the chosen tokenizer, or estimated).")
    refusal: bool = _opt(True, "Flag refusals and AI boilerplate in answers: 'As an AI language model', "
                               "'I'm sorry, but I can't', 'I don't have personal opinions'.")
    pii: bool = _opt(True, "Flag personal data and secrets: e-mail addresses, phone numbers, card numbers "
                           "(Luhn-checked) and API keys or private keys.")
    mojibake: bool = _opt(True, "Flag broken text encoding (e.g. 'cafÃ©' for 'café'), detected with ftfy.")
    repetition: bool = _opt(True, "Flag answers that repeat themselves: a sentence repeated many times, or "
                                  "many repeated word 5-grams.")
    repetition_threshold: float = _opt(0.75, "Repetition: flag when at least this fraction of an answer's "
                                            "words lie in word 5-grams seen earlier in the answer (0-1; "
                                            "answers of 40 words or more).")
    repetition_repeats: int = _opt(5, "Repetition: flag when one sentence or line (3+ words) appears this "
                                      "many times and makes up a third of the answer.")
    unseen_media: bool = _opt(True, "Flag references to images, attachments or links the model can't see: "
                                    "'as shown in the image', 'see the attached', markdown images, "
                                    "'click the link'.")
    language: bool = _opt(False, "Flag answers that are mostly not in the target language (a cheap "
                                 "script and stop-word check).")
    target_language: str = _opt("en", "Target language for the language check, as a code: en, es, fr, de, "
                                      "it, pt, nl, ru, zh, ja, ko, ar, hi, el, he, th.")
    template_placeholder: bool = _opt(True, "Flag unfilled template placeholders such as '{{name}}' "
                                            "outside code.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "HeuristicSettings":
        """Build settings from a dict; unknown keys are ignored, missing keys keep their
        defaults, values are converted to the field's type."""
        out = cls()
        for f in fields(cls):
            if not d or f.name not in d or d[f.name] is None:
                continue
            value = d[f.name]
            default = f.default if f.default is not MISSING else None
            try:
                if isinstance(default, bool):
                    if isinstance(value, str):
                        value = value.strip().lower() in ("1", "true", "yes", "on")
                    else:
                        value = bool(value)
                elif isinstance(default, int):
                    value = int(value)
                elif isinstance(default, float):
                    value = float(value)
                elif isinstance(default, str):
                    value = str(value)
            except (TypeError, ValueError):
                continue
            setattr(out, f.name, value)
        return out

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}

    def enabled(self, flag: str) -> bool:
        return bool(getattr(self, FLAG_SETTING[flag]))


@dataclass
class Flag:
    index: int
    flag: str
    reason: str

    def to_dict(self) -> dict:
        return {"index": self.index, "flag": self.flag, "reason": self.reason}


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _snippet(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _tail(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else "…" + text[-(n - 1):]


_FENCE_RE = re.compile(r"^[ \t]*(?:```|~~~)", re.M)
_FENCED_BLOCK_RE = re.compile(r"(```|~~~).*?(?:\1|\Z)", re.S)
_INLINE_CODE_RE = re.compile(r"`[^`\n]*`")


def _strip_code(text: str) -> str:
    """Text without fenced code blocks and inline code."""
    if "`" not in text and "~~~" not in text:
        return text
    return _INLINE_CODE_RE.sub(" ", _FENCED_BLOCK_RE.sub("\n", text))


# A line that is almost surely code (math like "4 x 15 = 60" or "$60" is not): checked with
# three cheap regexes (line start, anywhere, line end) instead of one slow one.
_CODE_START_RE = re.compile(
    r"(?: {4,}|\t)\S|\s*(?:[{}]|(?:def|class|import|return|function|var|let|const|public|private|protected|"
    r"static|void|elif|except|SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE TABLE)\b|from \S+ import|"
    r"#include|#define|else:|try:|print\(|console\.|for \w+ in |@\w+|\w+(?:\.\w+)*\s*=\s*\S)")
_CODE_ANY_RE = re.compile(r"==|!=|->|=>|::|</?[a-zA-Z][\w\-]*(?:\s[^>]*)?/?>")
_CODE_END_RE = re.compile(r"(?:[{};]|\w\([^()]*\)\s*[:;]?|^\s*(?:if|while|for|with|def|class)\b.*:)\s*$")


def _is_code_line(line: str) -> bool:
    return bool(_CODE_START_RE.match(line) or _CODE_END_RE.search(line) or _CODE_ANY_RE.search(line))


def _code_fraction(lines: list[str]) -> float:
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return 0.0
    return sum(1 for ln in lines if _is_code_line(ln)) / len(lines)


def _prose_lines(text: str) -> Optional[list[str]]:
    """The lines of ``text`` outside code blocks; None when the text is mostly code."""
    plain = _strip_code(text)
    lines = [ln for ln in plain.split("\n") if ln.strip()]
    if not lines:
        return None
    code = [_is_code_line(ln) for ln in lines]
    if sum(code) > 0.3 * len(lines):
        return None
    return [ln for ln, c in zip(lines, code) if not c]


# --------------------------------------------------------------------------------------
# Empty / placeholder
# --------------------------------------------------------------------------------------

PLACEHOLDERS = frozenset({
    "n/a", "n.a", "n. a", "none", "-", "--", "---", "—", "–", "_", "?", "??", "???",
    "...", "..", "…", "todo", "to do", "tbd", "tba", "fixme", "xxx", "placeholder", "<noinput>",
    "<nooutput>", "<no input>", "<no output>", "noinput", "nooutput", "no input", "no output", "<none>",
    "<empty>", "[none]", "[empty]", "<blank>", "[blank]", "(blank)", "(none)", "(empty)", "<answer>",
    "[answer]", "<output>", "[output]", "answer here", "your answer here", "insert answer here",
    "<your answer>", "[your answer]", "output here", "response here", "<response>", "[response]",
    "lorem ipsum", "<unk>", "[unk]", "<pad>", "</s>", "<eos>", "<|endoftext|>", "no answer",
    "no response", "not applicable",
})
_QUOTES = "\"'`“”‘’«»"


def _placeholder(content: str) -> Optional[str]:
    t = content.strip()
    if len(t) > 60:
        return None
    low = t.lower().strip(_QUOTES).strip()
    if low in PLACEHOLDERS or low.startswith("lorem ipsum"):
        return t
    trimmed = low.rstrip(".").strip()
    if trimmed and trimmed in PLACEHOLDERS:
        return t
    return None


def _lorem(content: str) -> bool:
    return content.lstrip()[:11].lower() == "lorem ipsum"


# --------------------------------------------------------------------------------------
# Truncation
# --------------------------------------------------------------------------------------

# Words that can't end an English sentence (except in the idioms of _OK_ENDINGS). Words that
# often end one legitimately ("about", "like", "over", "while", "be", "will", ...) are left out.
DANGLING = frozenset({
    "the", "a", "an", "and", "or", "but", "nor", "of", "to", "into", "onto", "with", "from", "for", "at",
    "by", "on", "in", "as", "than", "because", "although", "though", "whereas", "whether", "if",
    "unless", "is", "are", "was", "were", "would", "can", "could", "should", "must", "has", "have",
    "had", "their", "your", "my", "our", "its", "very", "whose", "per", "via", "every",
})
# Verbs and auxiliaries that end an embedded question or a comparison legitimately
# ("I don't know what the problem is", "bigger than it was").
_AUX_END = frozenset({"is", "are", "was", "were", "would", "can", "could", "should", "must", "has", "have",
                      "had"})
_WH_RE = re.compile(r"\b(?:what|whatever|where|wherever|who|whoever|how|why|when|which|than|as)\b", re.I)
# Phrases that legitimately end on one of the words above ("and so on", "log in", "I want to").
_OK_ENDINGS = re.compile(
    r"(?:\b(?:so|later|go|goes|went|going|carry|carried|move|moved|hold|hang|come|came|comes|log|logged|"
    r"sign|signed|turn|turned|switch|switched|plug|plugged|check|checked|opt|built|fill|filled|keep|kept|"
    r"put|try|tried|take|took|taken|get|got|give|gave|break|broke|sit|stay|stand|look|looks|looked|"
    r"looking|dig|drop|step|lean|tune|pass|passed|run|cave|cash|zoom|chip|weigh|buy|sell|kick|set|start|"
    r"started|follow|followed|read|think|thought|talk|talked|bring|brought|care|cared|cares|worry|"
    r"worried|ask|asked|wonder|dream|live|lived|depend|rely|count|agree|sound|sounds|feel|feels|felt|"
    r"seem|seems|wait|waiting|pay|paid|deal|help|work|begin|play|stick|cope|along|done|finished|good|"
    r"bad|great|better|best|aware|proud|afraid|capable|full|rid|kind|sort|made|heard|about|out|over|"
    r"with|been|is|are|was|were|be|it's|that's|what's|there's|here's) (?:on|in|about|through|with|by|"
    r"for|to|at|of|from|without|within)|"
    r"\b(?:want|wants|wanted|need|needs|needed|have|has|had|ought|used|going|got|like|likes|love|loves|"
    r"try|tried|able|supposed|meant|plan|planned|hope|hoped|expect|prefer|mean|agree|refuse|decide|"
    r"choose|happen|seem|tend|forget|remember|promise|dare|afford|manage|fail|deserve|wish|how|where|"
    r"what|next|close|due|according|up|down) to|"
    r"\b(?:it|this|that|what|which|there|here|where|who|how|they|he|she|we|you|i|things|one|so|too|"
    r"not|never|always|still|already|really|just|well|truly|yes|no) (?:is|are|was|were|would|can|could|"
    r"should|must|has|have|had)|"
    r"\b(?:it|them|him|her|me|us|this|that|these|those|one|you) (?:to|with|for|on|in|at|by|from|of)|"
    r"\b(?:even|only|as|what) if|\bsuch as|\bas well as|\bon and on|\bvice versa)$", re.I)
_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*•+·▪‣◦]|\d{1,3}[.)]|[a-zA-Z][.)])\s")
_URLISH_RE = re.compile(r"https?://|www\.|\w\.(?:com|org|net|io|html?)\b")
_SENT_END_RE = re.compile(r"[.!?…。！？:;](?:[\"'”’)\]*_]*)(?:\s|$)")
_LINE_END_CHARS = frozenset(".!?…。！？:;\"'”’)]*`")
_LAST_WORD_RE = re.compile(r"([A-Za-z][A-Za-z'’\-]*),?$")
_LASTLINE_CODE_RE = re.compile(r"[=<>{}\[\];|\\^~@_]|\w\(|\w\.\w+\(|^(?: {2,}|\t)\S|^\s*[#>|$]|"
                               r"\$[A-Za-z_{(]|(?:^|\s)--?[A-Za-z]|\w/\w")
# Closing lines that are often left without a full stop ("Let me know if you have any questions").
_CLOSING_RE = re.compile(r"\b(?:let me know|hope (?:this|that|it) helps|good luck|enjoy|have a (?:great|good|nice)|"
                         r"thank|cheers|best (?:regards|wishes)|feel free|don't hesitate|do not hesitate|"
                         r"happy \w+ing|sincerely|regards|kind regards)\b", re.I)


def _truncation(answer: str) -> Optional[str]:
    s = answer.rstrip()
    if not s:
        return None
    if ("```" in s or "~~~" in s) and len(_FENCE_RE.findall(s)) % 2 == 1:
        return "unclosed code block (odd number of ``` fences), ends: " + repr(_tail(s, 40))
    last = s[-1]
    if not (last.isascii() and (last.isalpha() or last == ",")):
        return None  # digits, punctuation, brackets, quotes, emoji, symbols: never flagged
    m = _LAST_WORD_RE.search(s)
    if m is None:
        return None
    nl = s.rfind("\n")
    last_line = s[nl + 1:]
    stripped = last_line.strip()
    if _URLISH_RE.search(stripped) or _LASTLINE_CODE_RE.search(last_line) or stripped.endswith("|"):
        return None
    # The fragment after the last sentence end on the last line.
    ends = list(_SENT_END_RE.finditer(stripped))
    fragment = stripped[ends[-1].end():] if ends else stripped
    words = fragment.split()
    if len(words) < 3:
        return None
    word = m.group(1)
    low = word.lower()
    # Rule (b): a word that can't end a sentence.
    if (low == word and low in DANGLING and last != "," and not _OK_ENDINGS.search(" ".join(words[-2:]))
            and not (low in _AUX_END and _WH_RE.search(fragment))):
        return f"ends on '{word}' without punctuation: {_tail(stripped, 50)!r}"
    # Rule (c): a cut-off last sentence in otherwise punctuated prose.
    if (_LIST_ITEM_RE.match(last_line) or len(words) < 4 or not word[0].islower()
            or _CLOSING_RE.search(fragment)):
        return None
    # ... only in a multi-line answer whose every earlier line ends a sentence.
    earlier = [ln.rstrip() for ln in s[: max(nl, 0)].split("\n") if ln.strip()]
    if len(earlier) < 2 or not all(ln[-1] in _LINE_END_CHARS for ln in earlier):
        return None
    if _code_fraction(earlier) > 0.3:
        return None
    return f"last sentence is cut off: {_tail(stripped, 50)!r}"


# --------------------------------------------------------------------------------------
# Refusals and boilerplate (matched on lower-cased text with ’ turned into ')
# --------------------------------------------------------------------------------------

_REFUSAL_TRIGGERS = ("as a", "i'm", "i am", "i don", "i do not", "i can", "i currently", "sorry",
                     "apolog", "cutoff", "cut-off", "knowledge update", "appropriate for me", "against my",
                     "polic", "ethical guidelines", "i won't", "i will not", "i must decline")
_CAP_VERBS = (r"(?:perform|browse|access|book|order|place|make|provide|assist|help|send|check|call|fetch|"
              r"retrieve|process|execute|view|see|physically|interact|search|predict|feel|experience|form|"
              r"have|hold|express|share|give|offer|engage|play|display|open|read|recall|remember|answer|"
              r"complete|generate|create|write|do|look|purchase|buy|schedule|set|track|translate|connect|"
              r"control|monitor|find|get|update|reserve|cancel|transfer|deliver)")
_REFUSAL_PATTERNS = [
    r"as an? (?:ai|artificial intelligence)(?: (?:language )?model| assistant| chatbot| system| program)?"
    r"(?:,| i\b| developed| created| trained| designed| built)",
    r"as an? (?:large )?language model(?:,| i\b)",
    r"as an? (?:ai )?(?:chatbot|virtual assistant)(?:,| i\b)",
    r"i(?:'m| am) (?:just |only |merely )an? (?:ai|artificial intelligence|language model|computer program)\b",
    r"i (?:do not|don't) have (?:any )?personal (?:opinions|feelings|beliefs|experiences|preferences|views|"
    r"emotions|thoughts|biases)",
    r"i (?:currently )?(?:do not|don't) (?:currently )?have (?:the )?(?:ability|capability|capabilities|capacity|"
    r"functionality|functions?|means|access|permission|tools?) to (?:\w+ ){0,2}?" + _CAP_VERBS,
    r"i (?:cannot|can't|can not|am not able to|'m not able to|am unable to|'m unable to) (?:help|assist)"
    r" (?:you )?with (?:that|this|your|the request|such)",
    r"i (?:cannot|can't|can not) help with",
    r"(?:i(?:'m| am) )?(?:sorry|apologies|apologize),? (?:but )?(?:as an? (?:ai|artificial|language|large|virtual|chatbot)|"
    r"i(?:'m| am)? (?:currently )?(?:cannot|can't|can not|unable|not able|won't|will not|must decline|"
    r"do not have the|don't have the|do not have access|don't have access))",
    r"i(?:'m| am) (?:currently |afraid i(?:'m| am) )?(?:unable|not able) to " + _CAP_VERBS,
    r"i (?:cannot|can't|can not) (?:provide|fulfill|fulfil|comply with|browse|access real|"
    r"access the internet|access external|perform external|engage in|generate (?:inappropriate|harmful|"
    r"explicit|offensive)|assist with that|do that for you)",
    r"i (?:do not|don't) have (?:access to )?(?:real-time|current|live|up-to-date) (?:data|information|"
    r"access|capabilities)",
    r"i (?:do not|don't) have access to (?:the internet|real-time|external|personal data|your)",
    r"my (?:knowledge|training)(?: data)? (?:cutoff|cut-off)",
    r"as of my (?:last )?(?:knowledge|training) (?:update|cutoff|cut-off|data)",
    r"(?:it is|it's) not appropriate for me to",
    r"against my (?:programming|guidelines|policies|principles)",
    r"(?:openai|anthropic)(?:'s)? (?:use |usage |content )?polic(?:y|ies)",
    r"(?:my|the) ethical guidelines",
    r"i(?:'m| am) not (?:programmed|designed|allowed|permitted) to",
    r"i (?:won't|will not|must decline to) (?:help|assist|provide|engage|generate|create|write) (?:you )?"
    r"(?:with )?(?:that|this|such)",
    r"i must decline",
]
_REFUSAL_RE = re.compile("|".join(f"(?:{p})" for p in _REFUSAL_PATTERNS))


def _refusal(text: str, lower: str) -> Optional[str]:
    for t in _REFUSAL_TRIGGERS:
        if t in lower:
            break
    else:
        return None
    m = _REFUSAL_RE.search(lower)
    if m is None:
        return None
    return f"refusal/boilerplate phrase: {text[m.start():m.end()]!r}"


# --------------------------------------------------------------------------------------
# PII and secrets
# --------------------------------------------------------------------------------------

_EMAIL_RE = re.compile(
    r"(?<![\w.%+\-/:@])([A-Za-z0-9][A-Za-z0-9._%+\-]{0,63})@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}"
    r"[A-Za-z0-9])?\.)+[A-Za-z]{2,24})\b(?![@\w(])")
# Local parts and domains that are obviously made up for a code example.
_FILE_EXT_RE = re.compile(r"\.(?:png|jpe?g|gif|svg|webp|ico|bmp|js|mjs|ts|css|scss|py|json|html?|md|txt)$", re.I)
_FAKE_EMAIL_LOCAL = frozenset({"example", "test", "user", "username", "email", "someone", "name",
                               "yourname", "your.name", "your_email", "youremail", "your.email", "foo",
                               "bar", "abc", "xyz", "me", "myemail", "my.email", "sample", "noreply",
                               "no-reply", "john", "johndoe", "john.doe", "jdoe", "user1", "user2"})
_FAKE_EMAIL_DOMAIN = re.compile(r"(?:^|\.)(?:your-?domain|my-?domain|domain|email|example|test|invalid|localhost)"
                                r"\.|\.(?:test|invalid|example|local)$", re.I)

_PHONE_INTL_RE = re.compile(
    r"(?<![\w+\-=*/^.])(\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]\d{2,5}){1,4})"
    r"(?![\w\-+=*/^]|[.,]\d)")
_PHONE_US_RE = re.compile(
    r"(?<![\w\-+=*/^.(])((?:1[ .\-])?(?:\(\d{3}\) ?|\d{3}[.\-])\d{3}[.\-]\d{4})(?![\w\-+=*/^]|[.,]\d)")
_DIGITS_TO_0 = bytes.maketrans(b"123456789", b"000000000")
_PHONE_US_HINT = re.compile(rb"000[.\-]0000")
_PHONE_INTL_HINT = re.compile(rb"\+0{1,3}[ .\-]?(?:\(0{1,4}\)[ .\-]?)?0{1,4}(?:[ .\-]0{2,5}){1,4}")
_CARD_HINT = re.compile(rb"0000[ \-]?0000[ \-]?0000")
_AMEX_HINT = re.compile(rb"0000[ \-]000000[ \-]00000")
_CARD_RE = re.compile(r"(?<![\w\-.,/])(\d(?:[ \-]?\d){12,18})(?![\w\-]|[.,/]\d)")
_SSN_RE = re.compile(r"\b(?:ssn|social security(?: number| no\.?| #)?)\W{0,5}(\d{3}-\d{2}-\d{4})\b", re.I)

# (kind, literals of which one must be present, regex)
_KEY_PATTERNS = [
    ("OpenAI API key", ("sk-",),
     re.compile(r"(?<![\w\-])(sk-(?:proj-|live-|test-|ant-(?:api\d\d-)?)?[A-Za-z0-9_\-]{20,})")),
    ("AWS access key", ("AKIA", "ASIA"),
     re.compile(r"(?<![A-Z0-9])((?:AKIA|ASIA)[0-9A-Z]{16})(?![A-Z0-9])")),
    ("GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     re.compile(r"(?<!\w)(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("Slack token", ("xox",),
     re.compile(r"(?<!\w)(xox[abposr]-[A-Za-z0-9\-]{10,})")),
    ("Google API key", ("AIza",),
     re.compile(r"(?<!\w)(AIza[0-9A-Za-z_\-]{35})")),
    ("Stripe key", ("_live_",),
     re.compile(r"(?<!\w)((?:sk|rk)_live_[A-Za-z0-9]{16,})")),
]
_UNDERSCORE_KEYS = ("GitHub token", "Stripe key")
_PRIVATE_KEY_RE = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_SECRET_WORDS = ("key", "secret", "token", "passw", "pwd")
# A long quoted value assigned to a name that says it is a secret: the value is found first
# (the regex starts with [:=], which is fast), then the name before it is checked.
_ASSIGNED_VALUE_RE = re.compile(r"[:=]\s*[\"']([A-Za-z0-9_\-+/=.]{16,})[\"']")
_SECRET_NAME_RE = re.compile(r"(?:api[_\-]?key|apikey|secret[_\-]?key|client[_\-]?secret|secret|"
                             r"access[_\-]?(?:key|token)|auth[_\-]?token|bearer[_\-]?token|private[_\-]?key|"
                             r"password|passwd|pwd|token)[\"']?\s*$")
_NOT_SECRET_RE = re.compile(r"your|example|xxxx|dummy|placeholder|changeme|redacted|secret|token|"
                            r"password|insert|replace|sample|abcdef|123456|here", re.I)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_brand(d: str) -> Optional[str]:
    n = len(d)
    if d[0] == "4" and n in (13, 16, 19):
        return "Visa"
    if n == 16 and (51 <= int(d[:2]) <= 55 or 2221 <= int(d[:4]) <= 2720):
        return "Mastercard"
    if n == 15 and d[:2] in ("34", "37"):
        return "Amex"
    if n in (16, 19) and (d.startswith("6011") or d.startswith("65") or 644 <= int(d[:3]) <= 649):
        return "Discover"
    if 16 <= n <= 19 and 3528 <= int(d[:4]) <= 3589:
        return "JCB"
    return None


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(v / n * math.log2(v / n) for v in Counter(s).values())


def _looks_random(value: str) -> bool:
    """A key-like value: letters and digits mixed, high character entropy, no
    placeholder words."""
    if _NOT_SECRET_RE.search(value):
        return False
    if not (any(ch.isdigit() for ch in value) and any(ch.isalpha() for ch in value)):
        return False
    return _entropy(value) >= 3.5


def _mask(value: str, keep_start: int = 3, keep_end: int = 4) -> str:
    if len(value) <= keep_start + keep_end + 1:
        return value[:1] + "…"
    return value[:keep_start] + "…" + value[-keep_end:]


def _pii(text: str, lower: str) -> list[str]:
    found: list[str] = []

    def add(kind: str, shown: str) -> None:
        item = f"{kind} {shown}"
        if item not in found:
            found.append(item)

    if "@" in text:
        for m in _EMAIL_RE.finditer(text):
            local, domain = m.group(1), m.group(2)
            if local == "git" or _FILE_EXT_RE.search(domain):
                continue  # git@github.com:owner/repo, icon@2x.png
            if local.lower() in _FAKE_EMAIL_LOCAL or _FAKE_EMAIL_DOMAIN.search(domain):
                # A made-up address: skip it in code or quoted sample data, keep it in prose.
                before = text[m.start() - 1] if m.start() else ""
                line_start = text.rfind("\n", 0, m.start()) + 1
                line_end = text.find("\n", m.end())
                line = text[line_start: line_end if line_end >= 0 else len(text)]
                if (before and before in _QUOTES) or _is_code_line(line):
                    continue
            add("e-mail", f"{local[:1]}…@{domain}")
    if "-----BEGIN" in text:
        m = _PRIVATE_KEY_RE.search(text)
        if m:
            add("private key block", repr(m.group(0)))
    underscore = "_" in text
    for kind, literals, rx in _KEY_PATTERNS:
        if kind in _UNDERSCORE_KEYS and not underscore:
            continue
        for lit in literals:
            if lit in text:
                break
        else:
            continue
        for m in rx.finditer(text):
            value = m.group(1)
            if kind == "OpenAI API key" and not _looks_random(value[3:]):
                continue
            if kind == "Slack token" and not any(ch.isdigit() for ch in value):
                continue
            head = value[:value.index("-") + 1] if kind in ("OpenAI API key", "Slack token") else value[:4]
            add(kind, head + "…" + value[-4:])
    if ("=" in text or ":" in text) and any(w in lower for w in _SECRET_WORDS):
        for m in _ASSIGNED_VALUE_RE.finditer(text):
            value = m.group(1)
            if not _SECRET_NAME_RE.search(lower, max(0, m.start() - 40), m.start()):
                continue
            if _looks_random(value) and not any(value[-4:] in f for f in found):
                add("secret in assignment", _mask(value))
    # Numbers: find phone and card shapes first on a copy with every digit turned into 0,
    # where the hint patterns start with a literal and run fast; then confirm on the text.
    d = text.encode("utf-8", "ignore").translate(_DIGITS_TO_0)
    if b"+0" in d and _PHONE_INTL_HINT.search(d):
        for m in _PHONE_INTL_RE.finditer(text):
            digits = re.sub(r"\D", "", m.group(1))
            if 8 <= len(digits) <= 15:
                add("phone number", "…" + digits[-4:])
    if _PHONE_US_HINT.search(d):
        for m in _PHONE_US_RE.finditer(text):
            add("phone number", "…" + m.group(1)[-4:])
    if _CARD_HINT.search(d) or _AMEX_HINT.search(d):
        for m in _CARD_RE.finditer(text):
            digits = re.sub(r"\D", "", m.group(1))
            if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
                continue
            brand = _card_brand(digits)
            if brand and _luhn(digits):
                add(f"card number ({brand})", "…" + digits[-4:])
    if "ssn" in lower or "social security" in lower:
        for m in _SSN_RE.finditer(text):
            add("US social security number", "…" + m.group(1)[-4:])
    return found


# --------------------------------------------------------------------------------------
# Mojibake
# --------------------------------------------------------------------------------------

# UTF-8 read as Latin-1/cp1252 leaves a lead byte (Â..ô) before a continuation byte (0x80-0xBF as
# Latin-1 or cp1252); read as cp1251 it leaves Р/С before cp1251's 0x80-0xBF characters.
_CP1252_CONT = "\x80-\xbf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014" \
               "\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
_MOJIBAKE_HINT_RE = re.compile(f"[\xc2-\xf4][{_CP1252_CONT}]|[РС][\u0400-\u040f\u0450-\u045f\xa0-\xbf"
                               f"\u2013-\u2122\u0490\u0491]|\ufffd")


def _mojibake(text: str) -> Optional[str]:
    if text.isascii():
        return None
    hint = _MOJIBAKE_HINT_RE.search(text)
    if hint is None:
        return None
    if "\ufffd" in text:
        i = text.index("\ufffd")
        return f"replacement character U+FFFD (lost characters): {_snippet(text[max(0, i - 20): i + 20], 40)!r}"
    import ftfy
    from ftfy.badness import is_bad

    if not is_bad(text):
        return None
    fixed = ftfy.fix_encoding(text)
    if fixed == text:
        i = hint.start()
        return f"looks like broken encoding: {_snippet(text[max(0, i - 15): i + 25], 40)!r}"
    i = 0
    n = min(len(text), len(fixed))
    while i < n and text[i] == fixed[i]:
        i += 1
    start = max(0, i - 15)
    return (f"broken encoding: {_snippet(text[start: i + 20], 35)!r} → "
            f"{_snippet(fixed[start: i + 20], 35)!r}")


# --------------------------------------------------------------------------------------
# Repetition
# --------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+(?:['’]\w+)*")
REPEAT_NGRAM = 5
REPEAT_MIN_WORDS = 40
REPEAT_RUN = 8


def _repetition(answer: str, threshold: float, repeats: int, _prose: bool = False) -> Optional[str]:
    """Rules (a)-(c) of the module doc. Works on whitespace tokens of the lower-cased text
    (fenced code removed); when a rule fires on text that is mostly code, the check is
    redone on the prose lines only (repeated structure is normal in code)."""
    lower = _strip_code(answer).lower()
    words = lower.split()
    n_words = len(words)
    if n_words < 3:
        return None
    reason = None
    repeated_share = (n_words - len(set(words))) / n_words
    # (c) one word over and over.
    if n_words >= REPEAT_RUN and sum(map(operator.eq, words, words[1:])) >= REPEAT_RUN - 1:
        run, prev = 1, None
        for w in words:
            w = w.strip(",;")
            if w == prev and len(w) > 1 and w.isalpha():
                run += 1
                if run >= REPEAT_RUN:
                    reason = f"word repeated {REPEAT_RUN}+ times in a row: {w!r}"
                    break
            else:
                run, prev = 1, w
    # (a) one sentence or line many times.
    if reason is None and repeated_share >= 0.25 and n_words >= 3 * repeats:
        units = lower.replace(". ", ".\n").replace("! ", "!\n").replace("? ", "?\n").split("\n")
        units = [u for u in map(str.strip, units) if u]
        if len(units) >= repeats:
            unit, n = Counter(units).most_common(1)[0]
            if n >= repeats and n * 3 >= len(units) and len(unit.split()) >= 3:
                reason = f"sentence repeated {n} times: {_snippet(unit, 50)!r}"
    # (b) many words inside repeated 5-grams. A word inside a repeated n-gram repeats an
    # earlier word, so repeated_share bounds the coverage from above (a cheap exit).
    if reason is None and n_words >= REPEAT_MIN_WORDS and repeated_share >= threshold:
        k = REPEAT_NGRAM
        seen: set = set()
        covered = bytearray(n_words)
        for i in range(n_words - k + 1):
            gram = " ".join(words[i:i + k])
            if gram in seen:
                covered[i:i + k] = b"\x01" * k
            else:
                seen.add(gram)
        frac = sum(covered) / n_words
        if frac >= threshold:
            reason = (f"{frac:.0%} of {n_words} words are in repeated {k}-word phrases "
                      f"(threshold {threshold:.0%})")
    if reason is None or _prose:
        return reason
    lines = [ln for ln in lower.split("\n") if ln.strip()]
    code = [_is_code_line(ln) for ln in lines]
    if not any(code):
        return reason
    if sum(code) > 0.3 * len(lines):
        return None
    return _repetition("\n".join(ln for ln, c in zip(lines, code) if not c), threshold, repeats, True)


# --------------------------------------------------------------------------------------
# Unseen media (matched on lower-cased text without code)
# --------------------------------------------------------------------------------------

_MEDIA = (r"(?:image|images|picture|pictures|photo|photos|photograph|screenshot|screen shot|figure|diagram|"
          r"chart|graph|illustration|drawing|video|attachment|scan|map)")
# (literal that must be present, regex, weak): weak patterns are skipped in HTML/code contexts.
_UNSEEN_PATTERNS = [
    (("as shown", "as seen", "as depicted", "as illustrated", "as pictured"),
     r"as (?:shown|seen|depicted|illustrated|pictured) (?:in|on) (?:the|this|that|my|our|your|these) "
     r"(?:\w+ )?" + _MEDIA, False),
    (("attached",), r"(?:see|check|view|open|refer to|look at|review) (?:the |my |this |our )?attached", False),
    (("attached",), r"\battached (?:image|picture|photo|screenshot|file|document|pdf|spreadsheet|chart|"
                    r"diagram|graph|video|audio|recording|scan|map|excel|csv|report)", False),
    (("above", "below"), r"\b(?:in|on|from|see|at) (?:the|this) (?:\w+ )?" + _MEDIA + r" (?:above|below)",
     False),
    (("above", "below"), r"\bthe (?:\w+ )?" + _MEDIA + r" (?:above|below)\b", False),
    (("above", "below", "uploaded"),
     r"\b(?:above|below|attached|uploaded) " + _MEDIA + r"\b(?! (?:of|that|which|processing|file|data|url|"
     r"path|size|format|width|height|class|object|tag|element|component|function|library|module))", False),
    (("image", "picture", "photo", "screenshot", "video", "drawing", "painting"),
     r"\b(?:describe|caption|what(?:'s| is) (?:in|shown in|happening in)|look at|analy[sz]e|based on) "
     r"(?:this|the attached|the following|the given|my) (?:image|picture|photo|photograph|screenshot|video|"
     r"drawing|painting)\b(?!\s*(?:file|url|path|data|array|class|object|[(\[.=]))", False),
    (("click",), r"\bclick (?:on )?(?:the|this|that|my) link\b|\bclick here\b", True),
    (("fig",), r"\b(?:see|refer to|in|shown in) (?:fig\.|figure) ?\d", False),
    (("![",), r"!\[[^\]\n]{0,200}\]\([^)\s]+\)", False),
]
_UNSEEN_COMPILED = [(frozenset(lits), re.compile(p), weak) for lits, p, weak in _UNSEEN_PATTERNS]
_UNSEEN_TRIGGERS = tuple(sorted({t for lits, _, _ in _UNSEEN_PATTERNS for t in lits}))
_URL_RE = re.compile(r"https?://[^\s)>\]\"']+|\bwww\.[^\s)>\]\"']+", re.I)
_READ_URL_RE = re.compile(
    r"\b(?:summari[sz]e|read|visit|open|check out|look at|go to|browse|watch|listen to|review|"
    r"what does|what do|according to|based on|tell me about|explain)\b[^.?!\n]{0,80}"
    r"(?:https?://|www\.)|(?:https?://|www\.)\S+\s*[,:]?\s*(?:and |then )?(?:please )?"
    r"(?:summari[sz]e|read|tell me what|what does|explain)"
    r"|\b(?:this|the following|the) (?:link|article|page|website|web page|video|url|post|blog post|paper)"
    r"\s*[:\-]?\s*(?:https?://|www\.)")
_CODE_CONTEXT_RE = re.compile(r"\b(?:requests?|fetch|curl|wget|scrap\w*|api|endpoint|http request|"
                              r"get request|post request|download|crawl\w*|parse|url(?:lib)?|html|css|"
                              r"javascript|js|react|button|web ?page|code|program|script|function|"
                              r"hyperlink|anchor|href)\b|<[a-z/]")


def _unseen_media(prompt: str, answer: str) -> Optional[str]:
    both = f"{prompt}\n{answer}".lower()
    if not any(t in both for t in _UNSEEN_TRIGGERS) and "http" not in both and "www." not in both:
        return None
    for where, text in (("prompt", prompt), ("answer", answer)):
        if not text:
            continue
        plain = _strip_code(text).lower()
        present = {t for t in _UNSEEN_TRIGGERS if t in plain}
        if not present:
            continue
        codey = None
        for lits, rx, weak in _UNSEEN_COMPILED:
            if present.isdisjoint(lits):
                continue
            m = rx.search(plain)
            if m is None:
                continue
            if weak:
                if codey is None:
                    codey = bool(_CODE_CONTEXT_RE.search(plain))
                if codey:
                    continue
            return f"{where} refers to something the model can't see: {_snippet(m.group(0), 60)!r}"
    if prompt and ("http" in prompt or "www." in prompt):
        plain = _strip_code(prompt).lower()
        m = _READ_URL_RE.search(plain)
        if m and not _CODE_CONTEXT_RE.search(plain):
            url = _URL_RE.search(m.group(0)) or _URL_RE.search(plain)
            shown = url.group(0) if url else m.group(0)
            return f"prompt asks to read a link the model can't open: {_snippet(shown, 60)!r}"
    return None


# --------------------------------------------------------------------------------------
# Template placeholders
# --------------------------------------------------------------------------------------

_TEMPLATE_RE = re.compile(r"\{\{\s*[A-Za-z_][\w.\-]{0,40}\s*\}\}")
_TEMPLATE_CONTEXT_RE = re.compile(
    r"\{%|<[a-zA-Z/][^>]*>|\\[a-zA-Z]+\{|\b(?:jinja2?|django|flask|vue|angular|handlebars|mustache|liquid|twig|"
    r"template|templates|templating|ansible|helm|svelte|ember|blade|hugo|interpolat\w*|"
    r"placeholders?)\b", re.I)


def _template(texts: list[str]) -> Optional[str]:
    for text in texts:
        if "{{" not in text:
            continue
        plain = _strip_code(text)
        for m in _TEMPLATE_RE.finditer(plain):
            before = plain[max(0, m.start() - 2): m.start()]
            # f'{{x}}' and "{{" in strings are escaped braces; ${{ ... }} is a CI expression.
            if before and (before[-1] in _QUOTES or before[-1] == "$" or before in ("f'", 'f"')):
                continue
            if _TEMPLATE_CONTEXT_RE.search(plain):
                break  # text about templates: its placeholders are examples
            return f"unfilled template placeholder {m.group(0)!r}"
    return None


# --------------------------------------------------------------------------------------
# Language
# --------------------------------------------------------------------------------------

STOPWORDS = {
    "en": "the be to of and a in that have it for not on with he as you do at this but his by from they we "
          "say her she or an will my one all would there their what so up out if about who get which go "
          "me is are was were been has had can could should when how than then them these those its our "
          "your into more some no any i also just".split(),
    "es": "de la que el en y a los del se las por un para con no una su al lo como más pero sus le ya o "
          "este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos "
          "durante todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué unos yo "
          "otro otras otra él es son está".split(),
    "fr": "de la le et les des en un une du que est pour qui dans a par plus pas au sur ne se ce il sont "
          "avec ou son mais comme on tout nous elle je vous ils été aux cette ses leur y sa ont être même "
          "lui si elles sans".split(),
    "de": "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an "
          "werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum "
          "war haben nur oder aber vor zur bis mehr durch man ich wir".split(),
    "it": "di e il la che in a per un è del non una con le sono i da si gli al lo come più ma anche della "
          "nel ha se dei questo alla nella o ci delle sul mi cui".split(),
    "pt": "de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao ele "
          "das tem à seu sua ou ser quando muito há nos já está eu também só pelo pela até isso ela".split(),
    "nl": "de en van ik te dat die in een hij het niet zijn is was op aan met als voor had er maar om hem "
          "dan zou of wat mijn men dit zo door over ze zich bij ook tot je mij uit der daar haar naar heb "
          "hoe heeft hebben deze u want nog zal me zij nu ge geen omdat iets worden toch al".split(),
}
STOPWORDS_SETS = {k: frozenset(v) for k, v in STOPWORDS.items()}
LANG_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
              "pt": "Portuguese", "nl": "Dutch", "ru": "Russian", "uk": "Ukrainian", "zh": "Chinese",
              "ja": "Japanese", "ko": "Korean", "ar": "Arabic", "fa": "Persian", "hi": "Hindi", "el": "Greek",
              "he": "Hebrew", "th": "Thai"}
# The script each language is written in.
LANG_SCRIPT = {"en": "Latin", "es": "Latin", "fr": "Latin", "de": "Latin", "it": "Latin", "pt": "Latin",
               "nl": "Latin", "ru": "Cyrillic", "uk": "Cyrillic", "zh": "Han", "ja": "Japanese",
               "ko": "Hangul", "ar": "Arabic", "fa": "Arabic", "hi": "Devanagari", "el": "Greek",
               "he": "Hebrew", "th": "Thai"}
_SCRIPT_RANGES = [  # (first, last + 1, script), sorted
    (0x0000, 0x0250, "Latin"), (0x0370, 0x0400, "Greek"), (0x0400, 0x0530, "Cyrillic"),
    (0x0590, 0x0600, "Hebrew"), (0x0600, 0x0700, "Arabic"), (0x0750, 0x0780, "Arabic"),
    (0x0900, 0x0980, "Devanagari"), (0x0E00, 0x0E80, "Thai"), (0x1100, 0x1200, "Hangul"),
    (0x1E00, 0x1F00, "Latin"), (0x3040, 0x3100, "Kana"), (0x3130, 0x3190, "Hangul"),
    (0x3400, 0xA000, "Han"), (0xAC00, 0xD7B0, "Hangul"), (0xF900, 0xFB00, "Han"),
    (0xFB50, 0xFE00, "Arabic"), (0x20000, 0x2FA20, "Han"),
]


def _script(ch: str) -> str:
    o = ord(ch)
    for lo, hi, name in _SCRIPT_RANGES:
        if o < lo:
            break
        if o < hi:
            return name
    return "Other"


_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")
_WORD_STRIP = ".,;:!?()[]{}\"'`*_«»“”‘’¿¡…-–—/"


def _script_counts(text: str) -> Counter:
    b = text.encode("ascii", "ignore")
    counts = Counter({"Latin": len(b) - len(b.translate(None, _ASCII_LETTERS))})
    if not text.isascii():
        for run in _NON_ASCII_RE.findall(text):
            counts.update(_script(ch) for ch in run if ch.isalpha())
    return counts


def _language_words(text: str) -> list[str]:
    words = (w.strip(_WORD_STRIP) for w in text.lower().split())
    return [w for w in words if w.isalpha() and (len(w) > 1 or w in ("a", "y", "e", "o", "à", "è", "é"))]


def _language(answer: str, target: str, _prose: bool = False) -> Optional[str]:
    """Cheap checks on the whole answer first; when they suggest another language, the
    check is redone on the prose lines only (code is not a language)."""
    target = (target or "en").lower().replace("_", "-").split("-")[0]
    text = _strip_code(answer)
    if "http" in text or "www." in text:
        text = _URL_RE.sub(" ", text)
    scripts = _script_counts(text)
    n_letters = sum(scripts.values())
    if n_letters < 20:
        return None
    want = LANG_SCRIPT.get(target, "Latin")
    have = scripts["Kana"] + scripts["Han"] if want == "Japanese" else scripts[want]
    reason = None
    if have < 0.5 * n_letters:
        top, n = scripts.most_common(1)[0]
        top = "Japanese kana" if top == "Kana" else top
        reason = (f"answer is mostly in {top} script ({n / n_letters:.0%} of letters), "
                  f"target {LANG_NAMES.get(target, target)}")
    elif want == "Latin" and target in STOPWORDS_SETS:
        words = _language_words(text)
        if len(words) < 12:
            return None
        mine = sum(1 for w in words if w in STOPWORDS_SETS[target]) / len(words)
        if mine >= 0.08:
            return None
        best, best_share = None, 0.0
        for lang, sw in STOPWORDS_SETS.items():
            if lang != target:
                share = sum(1 for w in words if w in sw) / len(words)
                if share > best_share:
                    best, best_share = lang, share
        if best is not None and best_share >= 0.2 and best_share > 2 * mine:
            reason = (f"answer looks {LANG_NAMES[best]}: {best_share:.0%} {LANG_NAMES[best]} stop words, "
                      f"{mine:.0%} {LANG_NAMES.get(target, target)}")
    if reason is None or _prose:
        return reason
    lines = _prose_lines(answer)
    return _language("\n".join(lines), target, True) if lines else None


# --------------------------------------------------------------------------------------
# The checks together
# --------------------------------------------------------------------------------------

_DEFAULT_COUNTER = None


def _default_counter():
    global _DEFAULT_COUNTER
    if _DEFAULT_COUNTER is None:
        from ..io.validate import TokenCounter

        _DEFAULT_COUNTER = TokenCounter()
    return _DEFAULT_COUNTER


def check_record(record: Record, settings: Optional[HeuristicSettings] = None,
                 counter=None) -> list[tuple[str, str]]:
    """Run the enabled heuristics on one record; return ``(flag, reason)`` pairs, at most
    one per flag, in :data:`FLAGS` order. ``counter`` is a
    :class:`~ftcurate.core.io.validate.TokenCounter` (an estimating one when None)."""
    s = settings or HeuristicSettings()
    out: list[tuple[str, str]] = []
    turns = [m for m in record.messages if m.role == "assistant"]
    answer = "\n".join(m.content for m in turns if m.content and not m.content.isspace())
    multi = len(turns) > 1

    def turn_name(i: int) -> str:
        return f"assistant turn {i + 1}: " if multi else ""

    if s.empty_answer:
        if not turns:
            out.append(("empty_answer", "no assistant answer"))
        else:
            for i, m in enumerate(turns):
                if (m.content is None or not m.content.strip()) and not m.has_call:
                    shown = f" ({m.content[:20]!r})" if m.content else ""
                    out.append(("empty_answer", f"{turn_name(i)}answer is empty{shown}"))
                    break
    if s.placeholder:
        for i, m in enumerate(turns):
            if m.content and not m.has_call and (_placeholder(m.content) is not None or _lorem(m.content)):
                out.append(("placeholder_answer",
                            f"{turn_name(i)}answer is a placeholder: {_snippet(m.content, 30)!r}"))
                break
    if s.truncated:
        last = next((m for m in reversed(turns) if m.content and m.content.strip()), None)
        if last is not None and _placeholder(last.content) is None:
            r = _truncation(last.content)
            if r:
                out.append(("truncated_answer", r))
    if s.too_long:
        c = counter or _default_counter()
        total, _ = c.messages(record)
        if total > s.max_tokens:
            name = getattr(c, "name", "")
            out.append(("too_long", f"{total:,} tokens > max {s.max_tokens:,}" + (f" ({name})" if name else "")))
    if s.refusal and answer:
        prose = _strip_code(answer)
        r = _refusal(prose, prose.lower().replace("’", "'"))
        if r:
            out.append(("refusal", r))
    if s.pii or s.mojibake:
        full = record.text
        if s.pii:
            found = _pii(full, full.lower())
            if found:
                more = f" (+{len(found) - 4} more)" if len(found) > 4 else ""
                out.append(("pii", "; ".join(found[:4]) + more))
        if s.mojibake:
            r = _mojibake(full)
            if r:
                out.append(("mojibake", r))
    if s.repetition and answer:
        for m in turns:
            if m.content and len(m.content) >= 60:
                r = _repetition(m.content, s.repetition_threshold, max(2, s.repetition_repeats))
                if r:
                    out.append(("repetition", r))
                    break
    if s.unseen_media:
        r = _unseen_media(record.prompt_text, answer)
        if r:
            out.append(("unseen_media", r))
    if s.language and answer:
        r = _language(answer, s.target_language)
        if r:
            out.append(("wrong_language", r))
    if s.template_placeholder:
        r = _template([m.content for m in record.messages if m.content])
        if r:
            out.append(("template_placeholder", r))
    return out


def scan_heuristics(records: Sequence[Optional[Record]], settings: Optional[HeuristicSettings] = None,
                    counter=None, progress: Optional[ProgressCallback] = None,
                    cancel: Optional[CancelCheck] = None) -> list[Flag]:
    """Run :func:`check_record` over ``records``; ``Flag.index`` is the position in the
    sequence (None entries, e.g. rejected lines, are skipped). Raises
    :class:`~ftcurate.core.progress.Cancelled` when ``cancel()`` returns True."""
    s = settings or HeuristicSettings()
    if counter is None and s.too_long:
        counter = _default_counter()
    try:
        total = len(records)
    except TypeError:
        total = 0
    rep = Reporter(progress, cancel, total=total, every=2000)
    rep.check()
    flags: list[Flag] = []
    done = 0
    for i, record in enumerate(records):
        if i and i % 2000 == 0:
            rep.tick(i, "checking heuristics")
        if record is not None:
            for flag, reason in check_record(record, s, counter):
                flags.append(Flag(i, flag, reason))
        done = i + 1
    rep.total = total or done
    rep.tick(rep.total, "checking heuristics")
    return flags


def count_flags(flags: Sequence[Flag]) -> dict[str, int]:
    """Number of flags of each kind, in :data:`FLAGS` order (zero counts included)."""
    c = Counter(f.flag for f in flags)
    return {name: c.get(name, 0) for name in FLAGS}


__all__ = ["FLAGS", "FLAG_SETTING", "RULES_VERSION", "HeuristicSettings", "Flag", "check_record", "scan_heuristics",
           "count_flags", "PLACEHOLDERS", "DANGLING"]
