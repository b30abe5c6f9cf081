"""Training data: which records to train and evaluate on, leakage checks, and how a record
becomes token ids with a loss mask.

``load_data`` reads a project (approved and edited training records, edits applied) or a
plain dataset file. The validation set is the project's validation split, a separate file,
or a deterministic fraction of the training records. A project's test split - the golden
held-out set - is never trained or early-stopped on; ``ftcurate evaluate`` uses it.

``render`` formats a conversation with the tokenizer's own chat template (the format the
model will see at inference time) and marks which tokens are learned: by default only the
assistant replies, including their end-of-turn token, so the model learns to stop.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

from ..core.project.records import Record

IGNORE = -100  # label of tokens that are not learned
TRAINED_STATUSES = ("approved", "edited")  # review states a project trains on

#: Used when a tokenizer has no chat template (base models often have none). Each turn is
#: ``<|role|>`` on its own line, the text, then a newline; assistant turns end with the EOS
#: token so the model learns to stop; a prompt for generation ends with ``<|assistant|>\n``.
#: The runner saves the tokenizer with this template beside the adapter, so inference uses
#: exactly the format that was trained.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and bos_token %}{{ bos_token }}{% endif %}"
    "{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['content'] %}{{ message['content'] }}{% endif %}"
    "{% if message.get('tool_calls') %}{{ message['tool_calls'] | tojson }}{% endif %}"
    "{% if message['role'] == 'assistant' and eos_token %}{{ eos_token }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


class FallbackTemplateWarning(UserWarning):
    """The tokenizer has no chat template; FALLBACK_CHAT_TEMPLATE is used."""


class DataError(ValueError):
    """The training data cannot be used (nothing approved, unreadable file...)."""


@dataclass
class TrainData:
    """Records to train on and to evaluate on while training."""

    train: list[Record]
    eval: list[Record] = field(default_factory=list)
    source: str = ""  # the file or project the records came from
    eval_source: str = ""  # where the validation records came from, in words
    project_path: Optional[str] = None  # set for projects: the leakage check reopens it
    leakage: list[dict] = field(default_factory=list)  # unresolved leakage of these training records
    warnings: list[str] = field(default_factory=list)
    train_ids: Optional[list[int]] = None  # projects: the store id of each training record
    uncurated: bool = False  # every imported training record, whatever its review state (load_data)

    def leaks_in_training(self, leaks: list[dict]) -> list[dict]:
        """The leakage hits whose training record is one of ours (all of them when the
        records' ids are unknown)."""
        if self.train_ids is None:
            return list(leaks)
        ours = set(self.train_ids)
        return [h for h in leaks if h["index"] in ours]

    def summary(self) -> str:
        return (f"{len(self.train)} training and {len(self.eval)} validation examples"
                + (f" ({self.eval_source})" if self.eval_source else ""))


# -- loading ------------------------------------------------------------------------------------


def is_project_file(path: str) -> bool:
    """A .ftcurate file, or any file that starts like an SQLite database."""
    if path.endswith(".ftcurate"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _has_reply(rec: Record) -> bool:
    return any(m.role == "assistant" and (m.content or m.tool_calls or m.function_call) for m in rec.messages)


def _read_file(path: str) -> tuple[list[Record], int]:
    """Good records of a dataset file, and how many records could not be read."""
    from ..core.io.formats import DatasetReader

    out, bad = [], 0
    for item in DatasetReader(path):
        if item.ok:
            out.append(item.record)
        else:
            bad += 1
    return out, bad


def _split_fraction(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic validation split by position (the same rule export uses)."""
    from ..core.io.export import assign_validation

    if fraction <= 0 or len(items) < 2:
        return items, []
    chosen = assign_validation(list(range(len(items))), fraction, seed)
    if len(chosen) >= len(items):
        chosen = set(sorted(chosen)[:-1])
    return ([x for i, x in enumerate(items) if i not in chosen], [x for i, x in enumerate(items) if i in chosen])


def load_data(source: str, eval_source: Optional[str] = None, val_fraction: float = 0.1,
              seed: int = 42, uncurated: bool = False) -> TrainData:
    """Training and validation records from ``source`` (a project or a dataset file).

    Project: approved and edited records of the training split, edits applied. Validation:
    ``eval_source`` when given, else the project's approved validation records, else a
    ``val_fraction`` of the training records (deterministic for ``seed``). Records with no
    assistant reply teach nothing and are left out (with a warning). Raises DataError
    when there is nothing to train on, and the readers' errors for unreadable files.

    ``uncurated`` (projects): every imported training (and validation) record as imported,
    whatever its review state - the raw data, to measure what the curation gained - except
    records that the last scan found leaking held-out items (training on those would make
    the raw model look better than it is on the very items it saw; a warning counts them)."""
    source = os.fspath(source)
    if not os.path.exists(source):
        raise DataError(f"{source}: no such file")
    data = TrainData(train=[], source=os.path.abspath(source), uncurated=bool(uncurated))
    # (store id or None, record) pairs, so that a project's ids follow the split.
    train: list[tuple[Optional[int], Record]]
    evals: list[tuple[Optional[int], Record]] = []
    leaks: list[dict] = []
    if is_project_file(source):
        from ..core.io.ingest import iter_selected
        from ..core.project.store import Project

        with Project.open(source, readonly=True) as project:
            data.project_path = os.path.abspath(source)
            if uncurated:
                train = _every_record(project, "train", data)
                if not train:
                    raise DataError(f"{source}: the project has no training records")
            else:
                train = [(sr.id, sr.record) for sr in iter_selected(project, "approved", split="train")]
            if not train:
                n = project.count(split="train")
                raise DataError(f"{source}: no approved training records (of {n}); approve or edit records "
                                "in the review before training")
            if eval_source is None:
                if uncurated:
                    evals = _every_record(project, "validation", data)
                else:
                    evals = [(sr.id, sr.record) for sr in iter_selected(project, "approved", split="validation")]
                if evals:
                    data.eval_source = "the project's validation split"
            leaks = check_leakage(project)
            if project.count(split="test") and project.load_scan("quality") is None:
                data.warnings.append("The project has a test set but no stored scan: run a scan to check that "
                                     "no training record leaks a test record.")
    else:
        records, bad = _read_file(source)
        train = [(None, r) for r in records]
        if bad:
            data.warnings.append(f"{bad} record(s) of {os.path.basename(source)} could not be read and are "
                                 "left out (see `ftcurate validate`).")
        if not train:
            raise DataError(f"{source}: no usable records")
    if eval_source:
        if is_project_file(eval_source):
            from ..core.io.ingest import iter_selected
            from ..core.project.store import Project

            with Project.open(eval_source, readonly=True) as project:
                evals = [(None, sr.record) for sr in iter_selected(project, "approved", split="validation")]
        else:
            records, bad = _read_file(eval_source)
            evals = [(None, r) for r in records]
            if bad:
                data.warnings.append(f"{bad} record(s) of {os.path.basename(eval_source)} could not be read.")
        data.eval_source = os.path.abspath(eval_source)
    elif not evals and val_fraction > 0:
        train, evals = _split_fraction(train, val_fraction, seed)
        if evals:
            data.eval_source = f"{val_fraction:.0%} of the training records (seed {seed})"
    for name, items in (("train", train), ("validation", evals)):
        kept = [(i, r) for i, r in items if _has_reply(r)]
        if len(kept) < len(items):
            data.warnings.append(f"{len(items) - len(kept)} {name} record(s) have no assistant reply and are "
                                 "left out (nothing to learn).")
        if name == "train":
            train = kept
        else:
            evals = kept
    if not train:
        raise DataError(f"{source}: no record has an assistant reply to learn")
    data.train = [r for _, r in train]
    data.eval = [r for _, r in evals]
    if data.project_path:
        data.train_ids = [i for i, _ in train]
        data.leakage = data.leaks_in_training(leaks)
    return data


def _every_record(project, split: str, data: TrainData) -> list[tuple[Optional[int], Record]]:
    """Every record of ``split`` as imported (the raw data), less the ones that leak held-out
    records by the last scan (counted in a warning)."""
    from ..core.project.dismissals import stored_report

    report = stored_report(project)
    leaking: set[int] = set()
    if isinstance(report, dict) and report.get("index", "record_id") == "record_id":
        for key in ("leakage", "validation_leakage"):
            leaking.update(int(h["index"]) for h in report.get(key) or [] if isinstance(h, dict) and "index" in h)
    out, dropped = [], 0
    for sr in project.iter_records(split=split):
        if sr.id in leaking:
            dropped += 1
            continue
        out.append((sr.id, sr.original))
    if dropped:
        data.warnings.append(f"{dropped} uncurated {split} record(s) leak held-out records (last scan) and are left "
                             "out, so that the raw model is not scored on items it was trained on.")
    return out


# -- leakage ------------------------------------------------------------------------------------


def check_leakage(project) -> list[dict]:
    """Leakage in the project's stored scan that training would include.

    A hit from the last ``"quality"`` scan counts only while its training record would be
    trained on - approved or edited, in the training split - and the leaked record is still
    in the test (or validation) split. Unreviewed and rejected records are not trained on,
    so their leaks do not count. Each entry is the scan's hit (``index``: training record
    id, ``test_index``: the leaked record's id, ``method``, ``score``, ``field``) plus
    ``kind`` ("test" or "validation") and how a user finds the records: ``record`` and
    ``test_record``, each record's 0-based index in its source file, and ``source`` /
    ``test_source``, those files' names. Leaks a reviewer dismissed ("not a leak") do not
    count. Empty when there is no stored scan."""
    from ..core.project.dismissals import stored_report

    report = stored_report(project)
    if not isinstance(report, dict) or report.get("index", "record_id") != "record_id":
        return []
    hits = [(h, "test") for h in report.get("leakage") or []]
    hits += [(h, "validation") for h in report.get("validation_leakage") or []]
    if not hits:
        return []
    wanted = sorted({int(h["index"]) for h, _ in hits} | {int(h["test_index"]) for h, _ in hits})
    state: dict[int, tuple[str, str, int, int]] = {}
    try:
        found = project.get_many(wanted)
    except KeyError:  # some records are gone: look the others up one by one
        found = []
        for rid in wanted:
            try:
                found.append(project.get(rid))
            except KeyError:
                continue
    for sr in found:
        state[sr.id] = (sr.status, sr.split, sr.source_id, sr.index)
    names = {s["id"]: os.path.basename(str(s["path"] or "")) for s in project.sources()}
    out = []
    for h, kind in hits:
        train = state.get(int(h["index"]))
        other = state.get(int(h["test_index"]))
        if train is None or other is None:
            continue
        if train[0] not in TRAINED_STATUSES or train[1] != "train" or other[1] != kind:
            continue
        out.append({**h, "kind": kind, "record": train[3], "source": names.get(train[2], ""),
                    "test_record": other[3], "test_source": names.get(other[2], "")})
    return out


def public_leak(hit: dict) -> dict:
    """A leak as reports show it: records by their 0-based index in their source file
    (``record``/``source``, ``test_record``/``test_source``), no store ids."""
    return {k: v for k, v in hit.items() if k not in ("index", "test_index")}


def describe_leakage(leaks: list[dict]) -> str:
    """One sentence about unresolved leakage, naming the training records by their
    0-based index in their source file (the numbers ``ftcurate decide`` takes)."""
    n_train = len({h["index"] for h in leaks})
    kinds = sorted({h["kind"] for h in leaks})
    by_source: dict[str, set[int]] = {}
    for h in leaks:
        if "record" in h:
            by_source.setdefault(str(h.get("source") or ""), set()).add(int(h["record"]))
    parts = []
    for source, records in sorted(by_source.items()):
        shown = sorted(records)
        text = ", ".join(str(i) for i in shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
        parts.append(f"record{'s' if len(shown) > 1 else ''} {text}" + (f" of {source}" if source else ""))
    where = f"; {'; '.join(parts)}" if parts else ""
    return f"{n_train} training record(s) leak {' and '.join(kinds)} records (last scan{where})"


# -- rendering -----------------------------------------------------------------------------------


class Rendered(NamedTuple):
    input_ids: list[int]
    labels: list[int]


_warned: set[int] = set()


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_template_for(tokenizer) -> str:
    """The tokenizer's chat template, or FALLBACK_CHAT_TEMPLATE (warning once per tokenizer)."""
    if has_chat_template(tokenizer):
        return tokenizer.chat_template
    if id(tokenizer) not in _warned:
        _warned.add(id(tokenizer))
        warnings.warn("The tokenizer has no chat template; using ftcurate's fallback format "
                      "('<|role|>' line, text, newline; EOS after assistant turns). Prompt the tuned model "
                      "in the same format (the tokenizer saved with the adapter carries it).",
                      FallbackTemplateWarning, stacklevel=3)
    return FALLBACK_CHAT_TEMPLATE


def _message_dict(m) -> dict[str, Any]:
    d: dict[str, Any] = {"role": m.role, "content": m.content if m.content is not None else ""}
    if m.name is not None:
        d["name"] = m.name
    if m.tool_calls is not None:
        d["tool_calls"] = m.tool_calls
    if m.function_call is not None:
        d["function_call"] = m.function_call
    if m.tool_call_id is not None:
        d["tool_call_id"] = m.tool_call_id
    return d


def conversation(record: Record, upto: Optional[int] = None) -> list[dict]:
    """The record's messages as chat-template dicts (the first ``upto`` of them)."""
    msgs = record.messages if upto is None else record.messages[:upto]
    return [_message_dict(m) for m in msgs]


def format_chat(tokenizer, messages: list[dict], tools=None, add_generation_prompt: bool = False) -> str:
    """Conversation text in the tokenizer's chat format (or the fallback format)."""
    kwargs = {"tools": tools} if tools else {}
    return tokenizer.apply_chat_template(messages, chat_template=chat_template_for(tokenizer), tokenize=False,
                                         add_generation_prompt=add_generation_prompt, **kwargs)


def segments(tokenizer, record: Record) -> tuple[str, list[tuple[int, int]]]:
    """The formatted conversation and the character spans of the learned assistant turns
    (each from after the assistant header to the end of the turn, end-of-turn token
    included). Turns with OpenAI ``weight: 0`` are not learned."""
    msgs = conversation(record)
    full = format_chat(tokenizer, msgs, record.tools)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for i, m in enumerate(record.messages):
        if m.role != "assistant" or m.weight == 0:
            continue
        span = None
        if i > 0:
            try:
                head = format_chat(tokenizer, msgs[:i], record.tools, add_generation_prompt=True)
                upto = format_chat(tokenizer, msgs[: i + 1], record.tools)
            except Exception:  # noqa: BLE001 - some templates reject partial conversations
                head = upto = None
            # Templates are usually prefix-stable; some (e.g. ones that drop earlier
            # reasoning) are not, and then the reply text is searched for instead.
            if head is not None and upto is not None and full.startswith(upto) and upto.startswith(head) \
                    and len(upto) > len(head) and len(head) >= cursor:
                span = (len(head), len(upto))
        if span is None:
            reply = m.content or ""
            pos = full.find(reply, cursor) if reply else -1
            if pos < 0:
                continue
            end = pos + len(reply)
            eos = getattr(tokenizer, "eos_token", None)
            rest = full[end:]
            for tail in filter(None, (eos, "<|im_end|>", "<|eot_id|>", "<|end|>")):
                stripped = rest.lstrip(" ")
                if stripped.startswith(tail):
                    end += len(rest) - len(stripped) + len(tail)
                    break
            span = (pos, end)
        spans.append(span)
        cursor = span[1]
    return full, spans


def _tokenize_with_spans(tokenizer, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[bool]]:
    """Token ids of ``text`` and, per token, whether it starts inside a span."""
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids = list(enc["input_ids"])
        learned = [any(s <= start < e for s, e in spans) for start, _ in enc["offset_mapping"]]
        return ids, learned
    # Slow tokenizers have no offsets: tokenize the pieces one by one (the boundaries sit
    # at turn markers, where whole-text tokenization splits too).
    ids, learned = [], []
    pos = 0
    for s, e in sorted(spans) + [(len(text), len(text))]:
        for piece, flag in ((text[pos:s], False), (text[s:e], True)):
            if piece:
                part = tokenizer(piece, add_special_tokens=False, verbose=False)["input_ids"]
                ids += part
                learned += [flag] * len(part)
        pos = max(pos, e)
    return ids, learned


def render_full(tokenizer, record: Record, assistant_only: bool = True) -> Rendered:
    """``render`` without the length cut."""
    text, spans = segments(tokenizer, record)
    ids, learned = _tokenize_with_spans(tokenizer, text, spans)
    if assistant_only:
        labels = [t if keep else IGNORE for t, keep in zip(ids, learned)]
    else:
        labels = list(ids)
    if labels:
        labels[0] = IGNORE  # never learn across the boundary of packed examples
    return Rendered(ids, labels)


def render(tokenizer, record: Record, max_len: int = 1024, assistant_only: bool = True) -> Rendered:
    """Token ids and labels of ``record`` for causal-LM training.

    Labels are the ids themselves (the model shifts them) with -100 on tokens not learned:
    with ``assistant_only`` everything but the assistant replies (system, user and tool
    turns, turn headers), and always the first token. Uses the tokenizer's chat template;
    without one, FALLBACK_CHAT_TEMPLATE (a FallbackTemplateWarning is issued). Examples
    longer than ``max_len`` tokens are cut at ``max_len`` (the end is lost)."""
    ids, labels = render_full(tokenizer, record, assistant_only)
    return Rendered(ids[:max_len], labels[:max_len])


def prompt_and_reference(record: Record) -> tuple[list[dict], str]:
    """For generation: the conversation up to the last assistant turn, and that turn's text."""
    last = max((i for i, m in enumerate(record.messages) if m.role == "assistant"), default=None)
    if last is None:
        return conversation(record), ""
    return conversation(record, last), record.messages[last].content or ""
