"""JSON arrays of records, streamed element by element with exact positions.

:func:`iter_json_array` reads the file through a sliding window of decoded text (a few MB;
it grows only to hold one element longer than that), so memory does not depend on the
size of the file. Each element is decoded by the standard library's C decoder
(``json.JSONDecoder.raw_decode``) where it starts; the window is only walked in Python
around damage.

What a damaged array gives, one item per case (``loaded + rejected = records`` holds,
and no complete element is ever dropped without an item that covers it):

* a broken element (bad JSON, nested too deeply, an integer of more than 4,300 digits):
  ``invalid_json`` for that element;
* text where an element or a separator should be (``[{...} garbage {...}]``), a ``]`` with
  more elements after it, or text after the closing ``]``: ``unexpected_text`` where it
  starts;
* a file that ends inside an element, or between elements before the closing ``]``:
  ``truncated_json`` (the complete elements before it load);
* bytes that are not UTF-8 inside an element: ``invalid_utf8``.

After damage, reading resumes at the next record start: in a pretty-printed array the next
line with the elements' indent that starts an element after a comma (JSON strings can't
span lines, so a lost quote or bracket is contained); in a one-line array the first ``, {``
where an object decodes that shares a key with the file's records (learnt from the first
good record, else from the last element of the file). A missing comma between two
elements (``{...} {...}``) loses nothing and is accepted.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from typing import Iterator, Optional

from .base import DatasetError, RawItem

BOM = codecs.BOM_UTF8
CHUNK_BYTES = 4 * 1024 * 1024  # read at a time; the window holds about this much text
TAIL_BYTES = 1024 * 1024  # read from the end of the file to learn the records' keys
# A broken element is read on this far at most, when a record's start was found after it
# (the window stays bounded when a quote is missing in a one-line array).
MAX_ELEMENT_CHARS = 64 * 1024 * 1024
SNIPPET_CHARS = 60

_WS = re.compile(r"[ \t\n\r]*")
_SURROGATE = re.compile("[\udc80-\udcff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def lone_surrogate(obj: object, text: str, start: int = 0, end: Optional[int] = None) -> Optional[tuple[str, str]]:
    """An error when the decoded record holds half of a surrogate pair (a ``\\ud800`` escape
    with no partner in ``text[start:end]``): not a character, so its text cannot be stored
    or written as UTF-8. None when it has none (the usual case: no such escape at all)."""
    if not _SURROGATE_ESCAPE.search(text, start, len(text) if end is None else end):
        return None
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        return ("invalid_json", f"\\u{code:04x} is half of a surrogate pair, not a character "
                                "(the text cannot be stored as UTF-8)")
    except (ValueError, TypeError, RecursionError):
        return None
    return None
# Text between elements that is not a value, a separator or the end of the array.
_JUNK = re.compile(r'[^{\["\],]*')
_UNKNOWN = object()  # the elements' indent before the first element
_VALUE_START = frozenset('{["-0123456789tfnNI')  # what a JSON value (as Python reads it) starts with

TRUNCATED_IN = "the file ends in the middle of this record (truncated JSON array)"
TRUNCATED_AFTER = ("the file ends before the array is closed (no closing ']'): "
                   "it was cut off here, records after this point are missing")


class _Window:
    """A sliding window over a file's text, decoded as UTF-8 (bad bytes become lone surrogates)."""

    def __init__(self, f, chunk: int) -> None:
        self._f = f
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.chunk = chunk
        self.text = ""
        self.eof = False
        self.col0 = 0  # characters of text[0]'s line that were dropped (a very long line)

    def more(self, at_least: int = 0) -> bool:
        """Read on (at least ``at_least`` bytes); False at the end of the file."""
        if self.eof:
            return False
        data = self._f.read(max(self.chunk, at_least))
        if not data:
            self.eof = True
            tail = self._dec.decode(b"", final=True)
            self.text += tail
            return bool(tail)
        self.text += self._dec.decode(data)
        return True

    def drop(self, pos: int) -> int:
        """Forget the text before the start of ``pos``'s line (before ``pos`` on a very long
        line); return ``pos``'s new offset."""
        cut = self.text.rfind("\n", 0, pos) + 1
        if cut == 0 or pos - cut > self.chunk:
            self.col0 = (self.col0 if cut == 0 else 0) + pos - cut
            cut = pos
        else:
            self.col0 = 0
        self.text = self.text[cut:]
        return pos - cut


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


def error_message(exc: Exception, text: str = "", pos: int = 0, line: int = 1, col0: int = 0) -> str:
    """A plain message for a decoding error of the element that starts at ``text[pos]`` on
    physical line ``line`` (the place inside it as a line and column of the file; ``col0``:
    characters of ``text[0]``'s line that come before ``text``)."""
    if isinstance(exc, json.JSONDecodeError):
        at = min(max(exc.pos, pos), len(text))
        err_line = line + text.count("\n", pos, at)
        nl = text.rfind("\n", 0, at)
        col = at - nl + (col0 if nl < 0 else 0)
        return f"invalid JSON: {exc.msg} (line {err_line}, column {col})"
    return value_error_message(exc)


def value_error_message(exc: Exception) -> str:
    """Messages for what the decoder refuses that is not a syntax error."""
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    if "digits" in str(exc) and "integer" in str(exc):
        return "invalid JSON: a number has more than 4,300 digits (Python's limit for integers)"
    return f"invalid JSON: {exc}"


def iter_json_array(path: str, chunk_bytes: Optional[int] = None) -> Iterator[RawItem]:
    """Yield one item per array element (0-based index, physical line where it starts), and
    one error item for each stretch of text that is not an element (see the module help).
    ``chunk_bytes``: bytes read at a time (default :data:`CHUNK_BYTES`)."""
    decoder = json.JSONDecoder()
    with open(path, "rb") as f:
        if f.read(len(BOM)) != BOM:
            f.seek(0)
        w = _Window(f, max(1024, chunk_bytes or CHUNK_BYTES))
        w.more()
        pos, line = _skip_ws(w, 0, 1)
        if pos >= len(w.text) or w.text[pos] != "[":
            raise DatasetError("not_array", f"{path}: expected a JSON array of records or JSON Lines")
        pos += 1
        index = 0
        state = "value"  # what comes next: "value" (an element or "]"), "sep" ("," or "]")
        keys = _Keys(path, decoder)
        indent: object = _UNKNOWN  # the elements' indent: the first one's (None: not at a line start)
        while True:
            if pos > w.chunk:
                pos = w.drop(pos)
            end_line = line  # the line where the last element or separator ended
            pos, line = _skip_ws(w, pos, line)
            text = w.text
            if pos >= len(text):
                yield RawItem(index, end_line, error=("truncated_json", TRUNCATED_AFTER))
                return
            c = text[pos]
            if c == "]":
                nxt, nxt_line = _skip_ws(w, pos + 1, line)
                text = w.text
                if nxt >= len(text):
                    return  # the end
                if text[nxt] not in ",{[":
                    # Text after the closing bracket: more records may follow (a bracket in
                    # the wrong place, a broken record's end); else it is not read.
                    start = _next_record(w, nxt, decoder, keys.get(), indent)
                    text = w.text
                    if start is None:
                        yield from _after_end(w, pos + 1, line, index)
                        return
                    yield RawItem(index, line, error=(
                        "unexpected_text", f"unexpected text between array elements: {_snippet(text[pos:start])!r}"
                        " (a ']' that closes the array, but more records follow)"))
                    index += 1
                    line += text.count("\n", pos, start)
                    pos = start
                    state = "value"
                    continue
                # A "]" with more elements after it: not the end.
                stop = nxt + 1 if text[nxt] in ",[" else nxt
                yield RawItem(index, line, error=(
                    "unexpected_text", f"unexpected text between array elements: {_snippet(text[pos:stop])!r} "
                    "(a ']' that closes the array, but more elements follow)"))
                index += 1
                pos, line = stop, nxt_line
                state = "value"
                continue
            if state == "sep":
                if c == ",":
                    pos += 1
                    state = "value"
                    continue
                if c in "{[":
                    state = "value"  # a missing comma: this is the next element
                    continue
            elif c in _VALUE_START and not (c == "[" and _records_follow(w, pos + 1, decoder, keys)):
                # -- an element starts here
                if indent is _UNKNOWN:
                    indent = _indent_at(text, pos)
                item, stop, how = _element(w, pos, line, index, decoder, keys, indent)
                text = w.text
                yield item
                if how == "truncated":
                    return
                index += 1
                if item.error is None:
                    keys.learn(item.obj)
                line += text.count("\n", pos, stop)
                pos = stop
                state = "sep" if how == "ok" else "value"
                continue
            # Text that is not an element where a separator or an element should be.
            stop = _junk_stop(w, pos, decoder, keys.get(), indent)
            text = w.text
            yield RawItem(index, line, error=(
                "unexpected_text", f"unexpected text between array elements: {_snippet(text[pos:stop])!r} "
                f"(expected {'a record' if state == 'value' else repr(',') + ' or ' + repr(']')})"))
            index += 1
            line += text.count("\n", pos, stop)
            pos = stop
            state = "sep"


def _records_follow(w: _Window, pos: int, decoder: json.JSONDecoder, keys: "_Keys") -> bool:
    """Whether a record (an object with the records' keys) starts at ``pos`` (after
    whitespace): a "[" before it is a stray bracket, not an array element holding the rest
    of the file's records."""
    if not keys.known:
        return False
    pos, _ = _skip_ws(w, pos, 0)
    text = w.text
    while (not w.eof and pos < len(text) and text[pos] == "{" and len(text) - pos < MAX_ELEMENT_CHARS
           and _scan_element(text, pos)[0] is None):
        w.more(len(text))
        text = w.text
    return _record_at(text, pos, decoder, keys.get())


def _skip_ws(w: _Window, pos: int, line: int) -> tuple[int, int]:
    while True:
        end = _WS.match(w.text, pos).end()
        line += w.text.count("\n", pos, end)
        pos = end
        if pos < len(w.text) or not w.more():
            return pos, line


def _junk_end(w: _Window, pos: int) -> int:
    """The end of a stretch of text (and strings) without ``{[],`` from ``pos``, trailing
    whitespace left out."""
    stop = pos
    while True:
        text = w.text
        stop = _JUNK.match(text, stop).end()
        if stop < len(text) and text[stop] == '"':  # a string where none belongs: part of the junk
            k = _STR_BODY.match(text, stop + 1).end()
            if k < len(text):
                stop = k + 1 if text[k] == '"' else k
                continue
            if not w.more():
                return len(w.text)  # a string the file ends in
            continue
        if stop < len(text) or not w.more():
            # Leave the whitespace before what follows to the caller (never nothing).
            while stop > pos + 1 and w.text[stop - 1] in " \t\r\n":
                stop -= 1
            return max(stop, min(pos + 1, len(w.text)))


def _junk_stop(w: _Window, pos: int, decoder: json.JSONDecoder, known_keys: set, indent: object) -> int:
    """Where junk that starts at ``pos`` ends: at the first record start inside the stretch
    of text (and strings) without ``{[],``, else at its end when a separator or a record
    follows; else (the reader has lost its place, e.g. after a lost quote, and reads strings
    as text) at the next record start, so that one item covers it all and the records after
    it load."""
    stop = _junk_end(w, pos)
    start = _next_record(w, pos, decoder, known_keys, indent, end=stop)
    if start is not None:
        return start
    nxt = _WS.match(w.text, stop).end()
    while (not w.eof and nxt < len(w.text) and w.text[nxt] in "{[" and len(w.text) - nxt < MAX_ELEMENT_CHARS
           and _scan_element(w.text, nxt)[0] is None):
        w.more(len(w.text))  # what follows must be whole to be judged
    text = w.text
    if nxt >= len(text) or text[nxt] in ",]" or _record_at(text, nxt, decoder, known_keys):
        return stop
    start = _next_record(w, stop, decoder, known_keys, indent)
    return start if start is not None else stop


def _after_end(w: _Window, pos: int, line: int, index: int) -> Iterator[RawItem]:
    """After the closing bracket only whitespace may follow (else one item says it is not read)."""
    pos, line = _skip_ws(w, pos, line)
    if pos < len(w.text):
        yield RawItem(index, line, error=(
            "unexpected_text", "unexpected text after the end of the array (the closing ']'): "
            f"{_snippet(w.text[pos:pos + 200])!r}; it is not read"))


def _element(w: _Window, pos: int, line: int, index: int, decoder: json.JSONDecoder,
             keys: "_Keys", indent: object = None) -> tuple[RawItem, int, str]:
    """Read the element at ``w.text[pos]``. Returns (item, where reading goes on, how):
    how is "ok" (a complete element; a separator follows), "value" (a broken element was
    skipped up to the next element), "end" (it was skipped up to the closing bracket at the
    returned position) or "truncated" (the file ends inside it). ``indent``: the elements'
    indent, to resynchronise at the next element (see :func:`_resync`)."""
    while True:
        text = w.text
        try:
            obj, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            # Keep no reference to the exception: it holds the whole window (exc.doc).
            err_pos = exc.pos if isinstance(exc, json.JSONDecodeError) else None
            message = error_message(exc, text, pos, line, w.col0)
        else:
            if end >= len(text) and not w.eof and w.more():
                continue  # a number or a word may go on in the next chunk
            if _SURROGATE.search(text, pos, end):
                return RawItem(index, line, error=(
                    "invalid_utf8", "the record contains bytes that are not valid UTF-8")), end, "ok"
            half = lone_surrogate(obj, text, pos, end)
            if half is not None:
                return RawItem(index, line, error=half), end, "ok"
            return RawItem(index, line, obj=obj), end, "ok"
        # Junk right before an element ("nonsense{...}"): the junk is the error, not the element.
        j = _JUNK.match(text, pos).end()
        if pos < j < len(text) and text[j] in "{[" and _decodes(text, j, decoder):
            return RawItem(index, line, error=("unexpected_text", "unexpected text between array elements: "
                                                f"{_snippet(text[pos:j])!r} (expected a record)")), j, "value"
        # A broken element, or one that goes on past the window.
        stop, _cut = _scan_element(text, pos)
        nxt = _resync(text, pos, decoder, keys.get(), stop, indent)
        if stop is None and not w.eof:
            # Not closed in the window. Broken when the decoder failed before the next
            # element's start; else it may be a long element: read on (the window doubles
            # while one element needs it), up to MAX_ELEMENT_CHARS when a next record is in sight.
            long_enough = len(text) - pos > MAX_ELEMENT_CHARS
            if nxt is None or ((err_pos is None or err_pos >= nxt) and not long_enough):
                w.more(len(text))
                continue
        broken = RawItem(index, line, error=("invalid_json", message))
        if nxt is not None:
            return broken, nxt, "value"
        if stop is None:  # the file ends inside it
            return RawItem(index, line, error=("truncated_json", TRUNCATED_IN)), len(text), "truncated"
        if text[stop] == ",":
            return broken, stop + 1, "value"
        return broken, stop, "end"


class _Keys:
    """The keys of the file's records (from its first good record, or else its last element),
    to tell records from nested objects when resynchronising in a one-line array."""

    def __init__(self, path: str, decoder: json.JSONDecoder) -> None:
        self._path = path
        self._decoder = decoder
        self._keys: Optional[set] = None
        self._learnt = False

    def learn(self, obj) -> None:
        if self._keys is None and isinstance(obj, dict):
            self._keys = set(obj)
            self._learnt = True

    @property
    def known(self) -> bool:
        """The keys are those of a record read so far (not a guess)."""
        return bool(self._keys) and self._learnt

    def get(self) -> set:
        if self._keys is None:
            self._keys = _tail_keys(self._path, self._decoder)
        return self._keys


# Inside a string: anything but a quote, a backslash or a newline, or an escape. A raw
# newline cannot be in a JSON string, so a broken string is taken to end at the line end.
_STR_BODY = re.compile(r'[^"\\\n]*(?:\\.[^"\\\n]*)*')
_STRUCT = re.compile(r'["{}\[\],]')
_OPENERS = re.compile(r"[{\[]+")
_CLOSERS = re.compile(r"[}\]]+")


def _scan_element(text: str, pos: int) -> tuple[Optional[int], bool]:
    """Walk one (possibly broken) element from ``pos``, tracking strings and bracket depth
    (runs of brackets at a time: 100,000-deep nesting is walked quickly).

    Returns (position of the ``,`` or ``]`` that ends it at depth 0, or None when the text
    ends first; whether the text ended inside the element, i.e. it was cut off)."""
    depth = 0
    i = pos
    n = len(text)
    while True:
        m = _STRUCT.search(text, i)
        if m is None:
            return None, depth > 0
        j = m.start()
        c = text[j]
        if c == '"':
            k = _STR_BODY.match(text, j + 1).end()
            if k >= n:
                return None, True
            i = k + 1
        elif c in "{[":
            k = _OPENERS.match(text, j).end()
            depth += k - j
            i = k
        elif c in "}]":
            k = _CLOSERS.match(text, j).end()
            if k - j <= depth:
                depth -= k - j
            else:  # closers past depth 0: a "]" ends the element, a "}" is skipped
                q = j + depth
                depth = 0
                while q < k:
                    if text[q] == "]":
                        return q, False
                    q += 1
            i = k
        else:  # ","
            if depth == 0:
                return j, False
            i = j + 1


def _indent_at(text: str, pos: int) -> Optional[str]:
    """The whitespace before ``pos`` on its line, when ``pos`` starts the line; else None."""
    k = pos
    while k > 0 and text[k - 1] in " \t":
        k -= 1
    if k == 0 or text[k - 1] == "\n":
        return text[k:pos]
    return None


_OBJECT_BOUNDARY = re.compile(r"\}[ \t\r\n]*,[ \t\r\n]*(?=\{)")
_COMMA_OBJECT = re.compile(r",[ \t\r\n]*(?=\{)")


def _resync(text: str, pos: int, decoder: json.JSONDecoder, known_keys: set, stop: Optional[int] = None,
            indent: object = None, tries: int = 256) -> Optional[int]:
    """Where the element after a broken one starts, found without trusting its brackets.

    In a pretty-printed array (``indent``: the elements' indent) it is the next line with
    that indent that starts with ``{`` or ``[`` after a comma, which survives broken
    brackets and quotes, or a record right after ``stop`` when that comes first (an element
    that ends on the line where the next one starts). In a one-line array (``indent`` None) it is the first place where a
    record starts: after a ``, {`` (``}, {`` while the records' keys are unknown; among the
    next ``tries``), or after ``stop`` (the comma where the bracket walk ended the element).
    A record: an object that decodes, is followed by ``,`` or ``]`` and shares a key with
    ``known_keys`` (an empty set: any object). None when there is none in the text."""
    if indent is _UNKNOWN or indent is None:
        # The elements' indent (learnt from the first element, which may be this one): a
        # broken record can make the reader start an "element" inside it, at another indent.
        indent = _indent_at(text, pos) if indent is _UNKNOWN else None
    best = None
    if stop is not None and text[stop] == ",":
        start = _WS.match(text, stop + 1).end()
        if _record_at(text, start, decoder, known_keys):
            best = start
    if indent is not None:
        sibling = re.compile(r",[ \t\r\n]*\n" + re.escape(indent) + r"(?=[{\[])")
        m = sibling.search(text, pos + 1, best if best is not None else len(text))
        return m.end() if m is not None else best
    # The first record start wins (a lost quote can make the bracket walk skip records).
    # With the records' keys known, any ", {" may start one (a lost quote can hide the "}");
    # without, only "}, {" does.
    boundary = _COMMA_OBJECT if known_keys else _OBJECT_BOUNDARY
    for k, m in enumerate(boundary.finditer(text, pos + 1)):
        if k >= tries or (best is not None and m.end() >= best):
            break
        if _record_at(text, m.end(), decoder, known_keys):
            return m.end()
    return best


def _next_record(w: _Window, pos: int, decoder: json.JSONDecoder, known_keys: set,
                 indent: object, end: Optional[int] = None) -> Optional[int]:
    """Where the next record starts after ``pos`` (a new line that starts with ``{`` at the
    elements' indent, or ", {" in a one-line array, where a record decodes): before ``end``
    when given, else reading on up to MAX_ELEMENT_CHARS; None when there is none."""
    starts = (re.compile(r"\n" + re.escape(indent) + r"(?=\{)") if isinstance(indent, str)
              else (_COMMA_OBJECT if known_keys else _OBJECT_BOUNDARY))
    at = pos
    while True:
        text = w.text
        for m in starts.finditer(text, at, len(text) if end is None else end):
            if _record_at(text, m.end(), decoder, known_keys):
                return m.end()
            at = m.end()
        if end is not None or w.eof or len(text) - pos > MAX_ELEMENT_CHARS or not w.more(len(text)):
            return None
        at = max(pos, at - 64)


def _decodes(text: str, start: int, decoder: json.JSONDecoder) -> bool:
    try:
        decoder.raw_decode(text, start)
    except (ValueError, RecursionError):
        return False
    return True


def _record_at(text: str, start: int, decoder: json.JSONDecoder, known_keys: set) -> bool:
    if start >= len(text) or text[start] != "{":
        return False
    try:
        obj, stop = decoder.raw_decode(text, start)
    except (ValueError, RecursionError):
        return False
    after = _WS.match(text, stop).end()
    if after >= len(text) or text[after] not in ",]":
        return False
    return isinstance(obj, dict) and (not known_keys or bool(known_keys & set(obj)))


def _tail_keys(path: str, decoder: json.JSONDecoder, tries: int = 50) -> set:
    """Keys of the array's last element (the object that ends right before the closing
    bracket), read from the end of the file, to recognise records when no earlier one decoded."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - TAIL_BYTES))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return set()
    starts = [m.end() for m in _OBJECT_BOUNDARY.finditer(text)][-tries:]
    for start in reversed(starts):
        try:
            obj, stop = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        after = _WS.match(text, stop).end()
        if after < len(text) and text[after] == "]" and not text[after + 1:].strip():
            return set(obj) if isinstance(obj, dict) else set()
    return set()
