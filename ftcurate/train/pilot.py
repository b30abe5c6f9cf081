"""The pilot curve: would more data help?

:func:`pilot` trains with the same settings on 100, 250, 500, ... and finally all training
examples - nested random samples (each contains the smaller ones), seeded - evaluates each
adapter on the golden set with one task metric, and returns the metric against the number of
examples with its 95% interval (the base model is the point at 0 examples). Every run keeps
the same validation set. A curve still rising at its right end says that more examples of
the same kind would likely help; a flat one that they would not, before anyone collects them.

Each point's run lies in ``<output>/n-<size>``; a point whose adapter is already there (an
earlier pilot that was stopped) is evaluated again without training. ``pilot.json``,
``pilot.md`` and ``pilot.html`` (with the curve) are written into the output folder after
every point, atomically.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import replace
from typing import Callable, Optional, Sequence

from ..core.io.fileio import write_text_atomic
from ..core.io.safe_text import html_text, json_safe, md_code, md_text
from ..core.progress import Cancelled, CancelCheck, ProgressCallback
from .compare import CompareSettings, compare
from .config import TrainConfig
from .data import TrainData
from .metrics import METRICS, paired_difference
from .verdict import describe_difference, fmt_interval, fmt_value, outcome

DEFAULT_SIZES = (100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000)
PILOT_JSON = "pilot.json"
PILOT_MD = "pilot.md"
PILOT_HTML = "pilot.html"


class PilotError(ValueError):
    """The pilot cannot run (too few examples, bad sizes)."""


def pilot_sizes(total: int, sizes: Optional[Sequence[int]] = None) -> list[int]:
    """The sizes below ``total`` (default 100, 250, 500, 1,000, 2,500, ...), then ``total``."""
    chosen = sorted({int(s) for s in (sizes or DEFAULT_SIZES) if 0 < int(s) < total})
    return chosen + [total]


def nested_order(n: int, seed: int) -> list[int]:
    """A seeded permutation of range(n): the first k items are the sample of size k, so each
    sample contains every smaller one."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def _subset(data: TrainData, picked: list[int]) -> TrainData:
    ids = [data.train_ids[i] for i in picked] if data.train_ids is not None else None
    sub = TrainData(train=[data.train[i] for i in picked], eval=list(data.eval), source=data.source,
                    eval_source=data.eval_source, project_path=data.project_path, warnings=list(data.warnings),
                    train_ids=ids)
    sub.leakage = sub.leaks_in_training(data.leakage) if data.leakage else []
    return sub


def pilot(config: TrainConfig, data: TrainData, golden, output_dir: str, metric: Optional[str] = None,
          sizes: Optional[Sequence[int]] = None, seed: Optional[int] = None,
          settings: Optional[CompareSettings] = None, progress: Optional[ProgressCallback] = None,
          cancel: Optional[CancelCheck] = None, on_point: Optional[Callable[[dict], None]] = None,
          trainer: Optional[Callable] = None) -> dict:
    """Train and evaluate on nested samples of ``data.train``; returns (and saves) the curve::

        {"metric", "seed", "sizes", "total", "points": [{"n", "run", "mean", "ci95", "n_scored"}],
         "verdict": [str], "status": "complete" | "cancelled"}

    ``metric``: the task metric of the curve (default: the headline metric the golden set
    suggests). ``settings``: how each adapter is evaluated (decoding, metric options).
    ``on_point(result so far)`` after each point. Raises PilotError, TrainError,
    EvalInputError; a cancel ends with Cancelled after the points so far are saved."""
    from .runner import train as default_train

    run = trainer or default_train
    total = len(data.train)
    if total < 2:
        raise PilotError("the pilot needs at least 2 training examples")
    seed = config.seed if seed is None else int(seed)
    points_sizes = pilot_sizes(total, sizes)
    order = nested_order(total, seed)
    os.makedirs(output_dir, exist_ok=True)
    base = settings or CompareSettings()
    metrics = [metric] if metric else None
    result: dict = {"metric": metric, "seed": seed, "sizes": points_sizes, "total": total,
                    "model_dir": os.path.abspath(config.model_dir), "output_dir": os.path.abspath(output_dir),
                    "points": [], "status": "running", "verdict": []}
    steps = len(points_sizes) + 1

    def say(i: int, text: str) -> None:
        if progress is not None:
            progress(i, steps, text)

    scores: dict[int, list] = {}
    try:
        say(0, "evaluating the base model (0 examples)")
        report = compare(config.model_dir, golden, settings=replace(base, baselines=["base"], metrics=metrics,
                                                                    general_path=None),
                         cancel=cancel)
        metric = metric or report["headline"]
        if metric is None or METRICS[metric].higher_is_better is None:
            raise PilotError("the pilot needs a task metric with a better direction (e.g. exact, final_answer)")
        result["metric"] = metric
        metrics = [metric]
        result["points"].append(_point(0, None, report, "base", metric))
        scores[0] = [ex["scores"]["base"].get(metric) for ex in report["examples"]]
        _save(result, output_dir)
        for i, n in enumerate(points_sizes, 1):
            run_dir = os.path.join(output_dir, f"n-{n}")
            if not os.path.isfile(os.path.join(run_dir, "adapter_model.safetensors")):
                say(i, f"training on {n} of {total} examples")

                def inner(done: int, steps_total: int, message: str, _n=n, _i=i) -> None:
                    say(_i, f"n={_n}: {message} {done}/{steps_total}" if steps_total else f"n={_n}: {message}")

                run(replace(config, output_dir=run_dir), _subset(data, order[:n]), progress=inner, cancel=cancel)
            say(i, f"evaluating the adapter trained on {n} examples")
            report = compare(config.model_dir, golden, adapters=[run_dir],
                             settings=replace(base, baselines=["tuned"], metrics=metrics, general_path=None,
                                              cache_path=os.path.join(run_dir, "eval_cache.jsonl")),
                             cancel=cancel)
            result["points"].append(_point(n, run_dir, report, "tuned", metric))
            scores[n] = [ex["scores"]["tuned"].get(metric) for ex in report["examples"]]
            result["verdict"] = pilot_verdict(result, scores)
            _save(result, output_dir)
            if on_point is not None:
                on_point(json.loads(json.dumps(json_safe(result)[0])))
    except Cancelled:
        result["status"] = "cancelled"
        result["verdict"] = pilot_verdict(result, scores)
        _save(result, output_dir)
        raise
    result["status"] = "complete"
    result["verdict"] = pilot_verdict(result, scores)
    _save(result, output_dir)
    say(steps, "done")
    return result


def _point(n: int, run_dir: Optional[str], report: dict, system: str, metric: str) -> dict:
    m = (report["systems"].get(system) or {}).get("metrics", {}).get(metric) or {}
    clean = ((report.get("clean_only") or {}).get(system) or {}).get("metrics", {}).get(metric)
    out = {"n": n, "run": run_dir, "mean": m.get("mean"), "ci95": m.get("ci95"), "n_scored": m.get("n", 0)}
    if clean is not None:
        out["clean"] = {"mean": clean.get("mean"), "ci95": clean.get("ci95")}
    return out


def pilot_verdict(result: dict, scores: dict[int, list]) -> list[str]:
    """Is the curve still rising at its right end? (the last two points, paired)."""
    metric = result.get("metric")
    pts = [p for p in result.get("points") or [] if p["n"] > 0]
    if not metric or len(pts) < 1:
        return []
    label = METRICS[metric].label
    lines = []
    if len(pts) == 1:  # one size: against the base model (0 examples)
        a, b = pts[-1]["n"], 0
    else:
        a, b = pts[-1]["n"], pts[-2]["n"]
    diff = paired_difference(scores.get(a, []), scores.get(b, []))
    what = outcome(metric, diff)
    against = "the base model" if b == 0 else f"{b:,} examples"
    if what == "better":
        lines.append(f"Still rising: {a:,} examples beat {against} by {describe_difference(metric, diff)}; more "
                     "examples of the same kind would likely help.")
    elif what == "same":
        lines.append(f"Flat at the end: {a:,} examples do as well as {against} "
                     f"({describe_difference(metric, diff, inside=True)}); more of the same data is unlikely to "
                     f"raise {label} much - better examples or another approach may.")
    elif what == "worse":
        lines.append(f"Falling at the end: {a:,} examples score below {against} "
                     f"({describe_difference(metric, diff, inside=True)}); check the added examples and the "
                     "training settings.")
    return lines


# -- files ----------------------------------------------------------------------------------------------


def curve_svg(result: dict, width: int = 560, height: int = 300) -> str:
    """The pilot curve: the metric (with its 95% interval as a band) against examples (log scale)."""
    import math

    metric = result.get("metric")
    pts = [p for p in result.get("points") or [] if p.get("mean") is not None]
    if not metric or not pts:
        return ""
    kind = METRICS[metric].kind
    top = 1.0 if kind in ("rate", "score") else max(max((p.get("ci95") or [p["mean"]])[-1] for p in pts), 1e-9) * 1.1
    left, right, top_pad, bottom = 60, 20, 15, 40
    pw, ph = width - left - right, height - top_pad - bottom
    ns = [max(1, p["n"]) for p in pts]
    lo_n, hi_n = math.log10(min(ns)), math.log10(max(ns))
    span = (hi_n - lo_n) or 1.0

    def x(n: int) -> float:
        return left + pw * (math.log10(max(1, n)) - lo_n) / span

    def y(v: float) -> float:
        return top_pad + ph * (1 - v / top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{html_text(METRICS[metric].label)} against the number of training examples">']
    band = [p for p in pts if p.get("ci95")]
    if band:
        upper = " ".join(f"{x(max(1, p['n'])):.1f},{y(p['ci95'][1]):.1f}" for p in band)
        lower = " ".join(f"{x(max(1, p['n'])):.1f},{y(p['ci95'][0]):.1f}" for p in reversed(band))
        out.append(f'<polygon points="{upper} {lower}" fill="#2f6fbd" fill-opacity="0.18"/>')
    line = " ".join(f"{x(max(1, p['n'])):.1f},{y(p['mean']):.1f}" for p in pts)
    out.append(f'<polyline points="{line}" fill="none" stroke="#2f6fbd" stroke-width="2"/>')
    for p in pts:
        out.append(f'<circle cx="{x(max(1, p["n"])):.1f}" cy="{y(p["mean"]):.1f}" r="3.5" fill="#2f6fbd"/>')
        out.append(f'<text x="{x(max(1, p["n"])):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle">'
                   f'{"base" if p["n"] == 0 else p["n"]}</text>')
    out.append(f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + ph}" stroke="#555"/>')
    out.append(f'<line x1="{left}" y1="{top_pad + ph}" x2="{left + pw}" y2="{top_pad + ph}" stroke="#555"/>')
    for v in (0.0, top / 2, top):
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">'
                   f'{html_text(fmt_value(metric, v))}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 6}" font-size="12" text-anchor="middle">training examples '
               '(log scale)</text>')
    out.append("</svg>")
    return "".join(out)


def pilot_markdown(result: dict) -> str:
    metric = result.get("metric") or ""
    label = METRICS[metric].label if metric in METRICS else metric
    lines = ["# Pilot curve", "", f"Model: {md_code(result.get('model_dir'))}  ",
             f"Metric: {md_text(label)}; nested samples, seed {result.get('seed')}; status: {result.get('status')}", ""]
    lines += [f"- {md_text(v)}" for v in result.get("verdict") or []]
    lines += ["", "| examples | " + md_text(label) + " | 95% interval |", "|---|---|---|"]
    for p in result.get("points") or []:
        lines.append(f"| {'0 (base)' if p['n'] == 0 else p['n']} | {fmt_value(metric, p.get('mean'))} | "
                     f"{fmt_interval(metric, p.get('ci95'))} |")
    return "\n".join(lines) + "\n"


def pilot_html(result: dict) -> str:
    metric = result.get("metric") or ""
    label = METRICS[metric].label if metric in METRICS else metric
    rows = "".join(f"<tr><td>{'0 (base)' if p['n'] == 0 else p['n']}</td>"
                   f"<td>{html_text(fmt_value(metric, p.get('mean')))}</td>"
                   f"<td>{html_text(fmt_interval(metric, p.get('ci95')))}</td></tr>"
                   for p in result.get("points") or [])
    verdict = "".join(f"<li>{html_text(v)}</li>" for v in result.get("verdict") or [])
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ftcurate pilot curve</title>"
            "<style>body{font:14px/1.45 system-ui,sans-serif;margin:24px}td,th{border:1px solid #ccc;"
            "padding:4px 8px}table{border-collapse:collapse}</style></head><body><h1>Pilot curve</h1>"
            f"<p>{html_text(label)} against the number of training examples (nested samples, seed "
            f"{html_text(result.get('seed'))}; {html_text(result.get('status'))}).</p><ul>{verdict}</ul>"
            f"{curve_svg(result)}<table><tr><th>examples</th><th>{html_text(label)}</th><th>95% interval</th></tr>"
            f"{rows}</table></body></html>")


def _save(result: dict, folder: str) -> None:
    safe, _ = json_safe(result)
    write_text_atomic(os.path.join(folder, PILOT_MD), pilot_markdown(safe))
    write_text_atomic(os.path.join(folder, PILOT_HTML), pilot_html(safe))
    write_text_atomic(os.path.join(folder, PILOT_JSON), json.dumps(safe, ensure_ascii=False, indent=1) + "\n")


def read_pilot(folder: str) -> Optional[dict]:
    """A pilot's saved result, or None."""
    try:
        with open(os.path.join(folder, PILOT_JSON), encoding="utf-8") as f:
            d = json.load(f)
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None
