"""Plain sentences on top of an evaluation report: did fine-tuning help, did curation help?

A difference between two systems counts only when its 95% bootstrap interval (paired over
the same golden items) lies on one side of zero; otherwise the two do as well as each other
on this golden set. When training records leak golden items, the sentences use the clean
items only (and say so).
"""

from __future__ import annotations

from typing import Optional

from .metrics import METRICS


def fmt_value(metric: str, value: Optional[float]) -> str:
    """A metric's value as reports show it: rates in %, scores x100, ratios and losses as numbers."""
    if value is None:
        return "–"
    kind = METRICS[metric].kind if metric in METRICS else "ratio"
    if kind == "rate":
        return f"{100 * value:.1f}%"
    if kind == "score":
        return f"{100 * value:.1f}"
    if metric == "perplexity":
        return f"{value:.2f}" if value < 1e4 else f"{value:.3g}"
    return f"{value:.3f}" if kind == "ratio" else f"{value:.4f}"


def fmt_interval(metric: str, ci: Optional[list]) -> str:
    if not ci:
        return ""
    return f"{fmt_value(metric, ci[0])} to {fmt_value(metric, ci[1])}"


def _points(metric: str, value: float, signed: bool = True) -> str:
    kind = METRICS[metric].kind
    if kind in ("rate", "score"):
        v = 100 * value
        return f"{v:+.0f}" if signed else f"{abs(v):.0f}"
    return f"{value:+.3f}" if signed else f"{abs(value):.3f}"


def describe_difference(metric: str, diff: dict, inside: bool = False) -> str:
    """"+18 points of final-answer match (95% CI +11 to +25)"; ``inside`` (for text already in
    parentheses): "a difference of +2 points of exact match, 95% CI -5 to +9"."""
    info = METRICS[metric]
    unit = " points of " if info.kind in ("rate", "score") else " in "
    lo, hi = diff["ci95"]
    ci = f"95% CI {_points(metric, lo)} to {_points(metric, hi)}"
    if inside:
        return f"a difference of {_points(metric, diff['mean'])}{unit}{info.label}, {ci}"
    return f"{_points(metric, diff['mean'])}{unit}{info.label} ({ci})"


def outcome(metric: str, diff: Optional[dict]) -> Optional[str]:
    """"better" when a - b is better beyond noise, "worse" when worse, "same" when the interval
    holds zero; None when it cannot be told (no interval, or a metric without a direction)."""
    if not diff or diff.get("ci95") is None or diff.get("mean") is None:
        return None
    higher = METRICS[metric].higher_is_better
    if higher is None:
        return None
    lo, hi = diff["ci95"]
    if not higher:
        lo, hi = -hi, -lo
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "same"


def _find(comparisons: list[dict], a: str, b: str, metric: str, which: str) -> Optional[dict]:
    for c in comparisons:
        if c["a"] == a and c["b"] == b and c["metric"] == metric and c["set"] == which:
            return c
    return None


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def verdict_lines(report: dict, displays: dict[str, str], kinds: dict[str, str], k: int) -> list[str]:
    """The verdict: one sentence per question the report can answer."""
    lines: list[str] = []
    metric = report.get("headline")
    comparisons = report.get("comparisons") or []
    n_golden = report.get("n_golden") or 0
    leaked = report.get("leaked") or []
    which = "clean" if leaked and report.get("clean_only") else "all"
    status = report.get("status")
    if status in ("cancelled", "out_of_memory", "running"):
        what = {"cancelled": "Cancelled", "out_of_memory": "Stopped: out of memory",
                "running": "Still running"}[status]
        lines.append(f"{what}: the numbers cover the answers generated so far.")
    if not report.get("has_references", True):
        lines.append("The golden set has no reference answers: only the answers side by side can be compared.")
    if metric is None:
        return lines + ["Choose a task metric to get a verdict."]
    tuned = [name for name, kind in kinds.items() if kind == "tuned"]
    base = next((n for n, kd in kinds.items() if kd == "base"), None)
    fewshot = next((n for n, kd in kinds.items() if kd == "fewshot"), None)
    raw = next((n for n, kd in kinds.items() if kd == "raw"), None)

    def sentence(a: str, b: str) -> Optional[tuple[str, str]]:
        """(outcome of a against b, the difference in words: b - a when b is the better one)."""
        diff = _find(comparisons, a, b, metric, which)
        result = outcome(metric, diff)
        if result is None:
            return None
        if result == "worse":
            diff = {"mean": -diff["mean"], "ci95": [-diff["ci95"][1], -diff["ci95"][0]]}
        return result, describe_difference(metric, diff, inside=result == "same")

    for t in tuned[:3]:
        T = _cap(displays[t])
        if fewshot:
            found = sentence(t, fewshot)
            if found:
                result, text = found
                if result == "better":
                    lines.append(f"{T} beats {displays[fewshot]} by {text}.")
                elif result == "worse":
                    lines.append(f"{_cap(displays[fewshot])} beats {displays[t]} by {text}: fine-tuning is not "
                                 "worth it here.")
                else:
                    lines.append(f"{_cap(displays[fewshot])} does as well as {displays[t]} ({text}): fine-tuning "
                                 "may not be worth it here.")
        if base:
            found = sentence(t, base)
            if found:
                result, text = found
                if result == "better":
                    lines.append(f"{T} beats the base model by {text}.")
                elif result == "worse":
                    lines.append(f"The base model beats {displays[t]} by {text}: the fine-tune made it worse.")
                else:
                    lines.append(f"{T} is no better than the base model ({text}).")
    if raw and tuned:
        found = sentence(tuned[0], raw)
        if found:
            result, text = found
            if result == "better":
                lines.append(f"Curated beats raw by {text}: the curation paid off.")
            elif result == "worse":
                lines.append(f"Raw beats curated by {text}: look at what the review removed.")
            else:
                lines.append(f"The raw data trains as well as the curated data ({text}): on this golden set the "
                             "curation did not change the result.")
    if leaked:
        n_clean = n_golden - len(leaked)
        if n_clean:
            lines.append(f"{len(leaked)} of {n_golden} golden items are leaked by training records (last scan): "
                         f"the verdict uses the {n_clean} clean items.")
        else:
            lines.append(f"All {n_golden} golden items are leaked by training records (last scan): these numbers "
                         "flatter the models.")
    elif n_golden and n_golden < 30:
        lines.append(f"Only {n_golden} golden items: the intervals are wide; 50-200 items give a clearer answer.")
    general = report.get("general") or {}
    gmetric = general.get("headline")
    if gmetric and base and tuned:
        for t in tuned[:1]:
            diff = _find(general.get("comparisons") or [], t, base, gmetric, "all")
            result = outcome(gmetric, diff)
            if result == "worse":
                lines.append(f"On the general set {displays[t]} scores {describe_difference(gmetric, diff)} "
                             "against the base model: the tuning has cost general ability (lower the learning rate "
                             "or epochs, or mix some general data in).")
            elif result is not None:
                lines.append(f"On the general set {displays[t]} keeps up with the base model "
                             f"({describe_difference(gmetric, diff, inside=True)}).")
    return lines
