"""Task metrics of generated answers, per example and aggregated with bootstrap intervals.

Every metric scores one answer against its reference and returns a float, or ``None`` when
it does not apply (e.g. final-answer match for a reference without a final answer); ``None``
scores are left out of the mean. Rates (exact match, JSON validity...) are 0 or 1 per
example, so their mean is a fraction; chrF and ROUGE-L are in [0, 1]; the length ratio is
answer words / reference words; loss is the mean token cross-entropy of the reference reply.

* ``exact``: the answer equals the reference after whitespace is collapsed and case folded.
* ``final_answer``: the final answers agree, as found by an extractor: ``last_number`` (the
  last number in the text; ``1,000`` = ``1000``, ``2.50`` = ``2.5``), ``hashes`` (the text
  after ``####``, GSM8K style) or ``regex:PATTERN`` (the last match; its first group when
  it has one).
* ``contains``: the normalised reference occurs in the normalised answer.
* ``json_valid``: the answer is JSON (a surrounding Markdown code fence is allowed).
* ``json_schema``: the answer is JSON and conforms to the given JSON schema (``jsonschema``).
* ``format``: the stripped answer matches the given regular expression in full.
* ``chrf``: chrF (``sacrebleu``), character n-gram F-score, / 100.
* ``rouge_l``: ROUGE-L F-measure (``rouge-score``; its tokenizer keeps a-z and 0-9 only).
* ``length_ratio``: words of the answer / words of the reference (1 = same length).
* ``refusal``: the answer refuses or is AI boilerplate (the scan's refusal check).
* ``loss`` / ``perplexity``: of the reference reply under the model (not a generation metric).

:func:`summarize` gives the mean and a percentile bootstrap 95% interval over examples;
:func:`paired_difference` the same for the difference of two systems on the same examples
(resampling examples, so that the pairing is kept).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np


class MetricError(ValueError):
    """A metric cannot be set up (unknown name, a regular expression or JSON schema that does
    not parse)."""


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    kind: str  # "rate" (0-1, shown in %), "score" (0-1, shown x100), "ratio", "loss"
    higher_is_better: Optional[bool]
    needs_reference: bool
    help: str


_INFO = [
    MetricInfo("exact", "exact match", "rate", True, True,
               "The answer equals the reference (whitespace and case ignored)."),
    MetricInfo("final_answer", "final-answer match", "rate", True, True,
               "The final answers agree (last number, '#### N', or a regex of yours)."),
    MetricInfo("contains", "contains reference", "rate", True, True,
               "The reference occurs in the answer (whitespace and case ignored)."),
    MetricInfo("json_valid", "valid JSON", "rate", True, False, "The answer parses as JSON."),
    MetricInfo("json_schema", "JSON schema", "rate", True, False,
               "The answer is JSON that conforms to the given JSON schema."),
    MetricInfo("format", "format", "rate", True, False,
               "The answer matches the given regular expression in full."),
    MetricInfo("chrf", "chrF", "score", True, True, "Character n-gram F-score against the reference (sacrebleu)."),
    MetricInfo("rouge_l", "ROUGE-L", "score", True, True,
               "Longest-common-subsequence F-measure against the reference (rouge-score)."),
    MetricInfo("length_ratio", "length ratio", "ratio", None, True,
               "Words in the answer / words in the reference (1 = the same length)."),
    MetricInfo("refusal", "refusal rate", "rate", False, False,
               "The answer refuses or is AI boilerplate ('As an AI language model...')."),
    MetricInfo("loss", "loss", "loss", False, True,
               "Mean cross-entropy of the reference reply's tokens under the model (what training lowers)."),
    MetricInfo("perplexity", "perplexity", "loss", False, True, "exp(loss)."),
]
METRICS: dict[str, MetricInfo] = {m.name: m for m in _INFO}
GENERATION_METRICS = tuple(m.name for m in _INFO if m.kind != "loss")
LOSS_METRICS = ("loss", "perplexity")
#: The metric a verdict leads with: the first of these that was chosen.
HEADLINE_ORDER = ("final_answer", "exact", "json_schema", "format", "json_valid", "contains", "chrf", "rouge_l",
                  "refusal", "loss")
EXTRACTORS = ("last_number", "hashes", "regex:PATTERN")


def info(name: str) -> MetricInfo:
    return METRICS[name]


# -- options ------------------------------------------------------------------------------------------


@dataclass
class MetricOptions:
    """Settings of the metrics that need one: the final-answer ``extractor``, the JSON schema
    (a dict, or JSON text) and the ``format`` regular expression."""

    extractor: str = "last_number"
    json_schema: Any = None
    format_regex: Optional[str] = None
    _validator: Any = field(default=None, repr=False, compare=False)
    _format: Any = field(default=None, repr=False, compare=False)
    _extract: Any = field(default=None, repr=False, compare=False)

    def prepare(self, metrics: Sequence[str] = ()) -> "MetricOptions":
        """Parse and check the settings (MetricError with a clear message when one is bad, or
        when a chosen metric lacks the setting it needs). Returns self."""
        ex = (self.extractor or "last_number").strip()
        if ex.startswith("regex:"):
            try:
                self._extract = re.compile(ex[len("regex:"):])
            except re.error as exc:
                raise MetricError(f"the final-answer regex {ex[6:]!r} does not parse: {exc}") from None
        elif ex not in ("last_number", "hashes"):
            raise MetricError(f"unknown final-answer extractor {ex!r} (use last_number, hashes or regex:PATTERN)")
        self.extractor = ex
        if self.format_regex is not None:
            try:
                self._format = re.compile(self.format_regex, re.DOTALL)
            except re.error as exc:
                raise MetricError(f"the format regex {self.format_regex!r} does not parse: {exc}") from None
        elif "format" in metrics:
            raise MetricError("the format metric needs a regular expression (--format-regex)")
        if self.json_schema is not None:
            self._validator = schema_validator(self.json_schema)
        elif "json_schema" in metrics:
            raise MetricError("the json_schema metric needs a JSON schema (--json-schema FILE)")
        return self

    def to_dict(self) -> dict:
        return {"extractor": self.extractor, "json_schema": self.json_schema, "format_regex": self.format_regex}


def schema_validator(schema: Any):
    """A jsonschema validator for ``schema`` (a dict, or JSON text); MetricError when the
    text is not JSON or the schema is not a valid JSON schema."""
    import jsonschema

    if isinstance(schema, (str, bytes)):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise MetricError(f"the JSON schema is not JSON: {exc}") from None
    if not isinstance(schema, (dict, bool)):
        raise MetricError("the JSON schema must be a JSON object")
    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise MetricError(f"the JSON schema is not valid: {exc.message}") from None
    return cls(schema)


def parse_metric_list(text: str | Sequence[str]) -> list[str]:
    """Metric names from ``"exact,final_answer"`` (or a list); MetricError for unknown ones."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n and n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise MetricError(f"unknown metric(s): {', '.join(unknown)} (known: {', '.join(METRICS)})")
    out: list[str] = []
    for n in names:
        if n not in out:
            out.append(n)
    return out


# -- per-example metrics ------------------------------------------------------------------------------

_WS = re.compile(r"\s+")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?|(?<![\w.])[-+]?\.\d+")


def normalize_text(text: Optional[str]) -> str:
    """Whitespace collapsed to single spaces, stripped, case folded."""
    return _WS.sub(" ", text or "").strip().casefold()


def exact_match(output: str, reference: str) -> float:
    return float(normalize_text(output) == normalize_text(reference))


def normalize_number(text: str) -> Optional[str]:
    """A number as a canonical string ("1,000.50" -> "1000.5", "$3" -> "3", "-0" -> "0",
    "3/4" stays), or None when ``text`` is not a number."""
    t = text.strip().replace("$", "").replace(",", "").rstrip(".")
    if t.startswith("+"):
        t = t[1:]
    if "/" in t:
        a, _, b = t.partition("/")
        na, nb = normalize_number(a), normalize_number(b)
        return f"{na}/{nb}" if na is not None and nb is not None else None
    try:
        value = float(t)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _canonical(text: str) -> str:
    number = normalize_number(text)
    return number if number is not None else normalize_text(text).strip(" .")


def extract_final(text: Optional[str], extractor: str = "last_number", compiled: Any = None) -> Optional[str]:
    """The final answer of ``text`` in canonical form (numbers normalised), or None."""
    text = text or ""
    if extractor == "hashes":
        found = re.findall(r"####[ \t]*([^\n]*)", text)
        value = found[-1].strip() if found else ""
        if not value:
            return None
        number = normalize_number(value)
        if number is not None:
            return number
        inner = _NUMBER.findall(value)
        if len(inner) == 1:  # "#### 42 apples"
            return normalize_number(inner[0])
        return _canonical(value)
    if extractor.startswith("regex:"):
        pattern = compiled or re.compile(extractor[len("regex:"):])
        matches = list(pattern.finditer(text))
        if not matches:
            return None
        m = matches[-1]
        value = m.group(1) if pattern.groups else m.group(0)
        return _canonical(value) if value is not None else None
    found = _NUMBER.findall(text)
    return normalize_number(found[-1]) if found else None


def final_answer_match(output: str, reference: str, extractor: str = "last_number",
                       compiled: Any = None) -> Optional[float]:
    """1.0 when both final answers agree, 0.0 when not (or the answer has none); None when the
    reference has no final answer."""
    want = extract_final(reference, extractor, compiled)
    if want is None:
        return None
    got = extract_final(output, extractor, compiled)
    return float(got is not None and got == want)


def contains_reference(output: str, reference: str) -> Optional[float]:
    ref = normalize_text(reference)
    if not ref:
        return None
    return float(ref in normalize_text(output))


_FENCE = re.compile(r"^```[\w+-]*\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_json_answer(text: Optional[str]) -> tuple[bool, Any]:
    """(True, value) when the answer is JSON (inside a Markdown code fence or not)."""
    t = (text or "").strip()
    m = _FENCE.match(t)
    if m:
        t = m.group(1).strip()
    if not t:
        return False, None
    try:
        return True, json.loads(t)
    except ValueError:
        return False, None


def json_valid(output: str) -> float:
    return float(parse_json_answer(output)[0])


def json_schema_match(output: str, validator) -> float:
    ok, value = parse_json_answer(output)
    return float(ok and validator.is_valid(value))


def format_match(output: str, compiled) -> float:
    return float(compiled.fullmatch((output or "").strip()) is not None)


_CHRF = None
_ROUGE = None


def chrf(output: str, reference: str) -> Optional[float]:
    """chrF of the answer against the reference, in [0, 1] (sacrebleu's score / 100)."""
    global _CHRF
    if not (reference or "").strip():
        return None
    if _CHRF is None:
        from sacrebleu.metrics import CHRF

        _CHRF = CHRF()
    return float(_CHRF.sentence_score(output or "", [reference]).score) / 100.0


def rouge_l(output: str, reference: str) -> Optional[float]:
    """ROUGE-L F-measure of the answer against the reference."""
    global _ROUGE
    if not (reference or "").strip():
        return None
    if _ROUGE is None:
        from rouge_score import rouge_scorer

        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return float(_ROUGE.score(reference, output or "")["rougeL"].fmeasure)


def _words(text: str) -> int:
    return len((text or "").split())


def length_ratio(output: str, reference: str) -> Optional[float]:
    n = _words(reference)
    if not n:
        return None
    return _words(output) / n


def refusal(output: str) -> float:
    from ..core.quality.heuristics import _refusal

    text = output or ""
    return float(_refusal(text, text.lower()) is not None)


class Scorer:
    """Scores answers with the chosen generation metrics (loss metrics are not scored here)."""

    def __init__(self, metrics: Sequence[str], options: Optional[MetricOptions] = None) -> None:
        self.metrics = [m for m in parse_metric_list(list(metrics)) if m not in LOSS_METRICS]
        self.options = (options or MetricOptions()).prepare(self.metrics)

    def score(self, output: Optional[str], reference: str) -> dict[str, Optional[float]]:
        """Each metric's score (None: does not apply, or no answer was generated)."""
        if output is None:
            return {m: None for m in self.metrics}
        o = self.options
        out: dict[str, Optional[float]] = {}
        has_ref = bool((reference or "").strip())
        for m in self.metrics:
            if METRICS[m].needs_reference and not has_ref:
                out[m] = None
            elif m == "exact":
                out[m] = exact_match(output, reference)
            elif m == "final_answer":
                out[m] = final_answer_match(output, reference, o.extractor, o._extract)
            elif m == "contains":
                out[m] = contains_reference(output, reference)
            elif m == "json_valid":
                out[m] = json_valid(output)
            elif m == "json_schema":
                out[m] = json_schema_match(output, o._validator)
            elif m == "format":
                out[m] = format_match(output, o._format)
            elif m == "chrf":
                out[m] = chrf(output, reference)
            elif m == "rouge_l":
                out[m] = rouge_l(output, reference)
            elif m == "length_ratio":
                out[m] = length_ratio(output, reference)
            elif m == "refusal":
                out[m] = refusal(output)
        return out


# -- choosing metrics ---------------------------------------------------------------------------------

_ENDS_IN_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?\D{0,20}$")


def default_metrics(references: Sequence[str], options: Optional[MetricOptions] = None) -> list[str]:
    """Metrics that suit these references: final-answer match when most end in a number (or
    hold ``#### N``; ``options.extractor`` is set to match), exact match and JSON validity when
    most are JSON, exact match for short answers, chrF and ROUGE-L for longer text; always the
    length ratio, the refusal rate, loss and perplexity. With no references: answers side by
    side and loss only (the refusal rate and, for JSON-like tasks, nothing else)."""
    refs = [r for r in references if (r or "").strip()]
    chosen: list[str] = []
    if options is not None and options.json_schema is not None:
        chosen += ["json_schema"]
    if options is not None and options.format_regex is not None:
        chosen += ["format"]
    if not refs:
        return chosen + ["refusal", "loss", "perplexity"]
    share = lambda pred: sum(1 for r in refs if pred(r)) / len(refs)  # noqa: E731
    json_like = share(lambda r: parse_json_answer(r)[0] and isinstance(parse_json_answer(r)[1], (dict, list))) >= 0.6
    words = statistics.median(_words(r) for r in refs)
    if share(lambda r: "####" in r) >= 0.5:
        chosen.append("final_answer")
        if options is not None and options.extractor == "last_number":
            options.extractor = "hashes"
    elif not json_like and share(lambda r: bool(_ENDS_IN_NUMBER.search(r.strip()))) >= 0.6:
        chosen.append("final_answer")
    if json_like:
        chosen += ["exact", "json_valid"]
    elif words <= 8:
        chosen += ["exact", "contains"]
    else:
        chosen += ["chrf", "rouge_l"]
    chosen += ["length_ratio", "refusal", "loss", "perplexity"]
    out: list[str] = []
    for m in chosen:
        if m not in out:
            out.append(m)
    return out


def headline_metric(metrics: Sequence[str]) -> Optional[str]:
    """The metric a verdict leads with (the first chosen of HEADLINE_ORDER)."""
    for m in HEADLINE_ORDER:
        if m in metrics:
            return m
    return None


# -- aggregation --------------------------------------------------------------------------------------

N_BOOT = 2000
_CHUNK_CELLS = 2_000_000  # resampled values held at once


def _clean(values: Sequence[Optional[float]], weights: Optional[Sequence[float]] = None) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    xs, ws = [], []
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            continue
        w = 1.0 if weights is None else float(weights[i])
        if w <= 0:
            continue
        xs.append(float(v))
        ws.append(w)
    return np.asarray(xs, dtype=np.float64), np.asarray(ws, dtype=np.float64)


def _boot_means(x: np.ndarray, w: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of the weighted mean (examples resampled with replacement)."""
    n = len(x)
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot, dtype=np.float64)
    step = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, n_boot, step):
        k = min(step, n_boot - start)
        idx = rng.integers(0, n, size=(k, n))
        ww = w[idx]
        out[start:start + k] = (x[idx] * ww).sum(axis=1) / ww.sum(axis=1)
    return out


def bootstrap_ci(values: Sequence[Optional[float]], weights: Optional[Sequence[float]] = None,
                 n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> tuple[Optional[float],
                                                                                     Optional[list[float]], int]:
    """(mean, [lo, hi], n): the (weighted) mean of the values that are not None and its
    percentile bootstrap interval; (None, None, 0) when there are none."""
    x, w = _clean(values, weights)
    n = len(x)
    if not n:
        return None, None, 0
    mean = float((x * w).sum() / w.sum())
    if n == 1 or np.all(x == x[0]):
        return mean, [mean, mean], n
    reps = _boot_means(x, w, n_boot, seed)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    return mean, [float(min(lo, mean)), float(max(hi, mean))], n


def summarize(values: Sequence[Optional[float]], weights: Optional[Sequence[float]] = None,
              n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """``{"mean", "ci95": [lo, hi], "n"}`` (mean and ci95 None when nothing was scored)."""
    mean, ci, n = bootstrap_ci(values, weights, n_boot, seed)
    return {"mean": mean, "ci95": ci, "n": n}


def paired_difference(a: Sequence[Optional[float]], b: Sequence[Optional[float]], n_boot: int = N_BOOT,
                      seed: int = 0) -> dict:
    """Mean of ``a - b`` over the examples both scored, with a bootstrap 95% interval that
    resamples examples (``{"mean", "ci95", "n"}``)."""
    diffs = [None if x is None or y is None else float(x) - float(y) for x, y in zip(a, b)]
    return summarize(diffs, n_boot=n_boot, seed=seed)


def summarize_loss(losses: Sequence[Optional[float]], tokens: Sequence[int], n_boot: int = N_BOOT,
                   seed: int = 0) -> dict[str, dict]:
    """Token-weighted mean loss with its interval, and perplexity = exp(loss) (interval too)."""
    loss = summarize(losses, weights=[max(0, int(t)) for t in tokens], n_boot=n_boot, seed=seed)
    if loss["mean"] is None:
        return {"loss": loss, "perplexity": {"mean": None, "ci95": None, "n": 0}}

    def ex(v: float) -> float:
        return math.exp(min(v, 700.0))

    return {"loss": loss, "perplexity": {"mean": ex(loss["mean"]), "ci95": [ex(v) for v in loss["ci95"]],
                                         "n": loss["n"]}}
