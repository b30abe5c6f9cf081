"""The evaluation report: built from a comparison's state, written as ``eval_report.json``,
``eval_report.md`` and a self-contained ``eval_report.html`` (inline SVG charts, no scripts,
nothing fetched), each atomically, beside the run.

User text (prompts, references, answers, file names) is escaped for each format
(:mod:`ftcurate.core.io.safe_text`); NaN and Infinity become ``null`` in the JSON.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Optional

from ..core.io.fileio import write_text_atomic
from ..core.io.safe_text import html_text, json_safe, md_code, md_text
from .metrics import LOSS_METRICS, METRICS, headline_metric, paired_difference
from .verdict import describe_difference, fmt_interval, fmt_value, verdict_lines

REPORT_JSON = "eval_report.json"
REPORT_MD = "eval_report.md"
REPORT_HTML = "eval_report.html"
#: Differences worth a comparison line (the length ratio has no better side).
_NO_COMPARE = ("perplexity", "length_ratio")


# -- building ---------------------------------------------------------------------------------------


def _example_scores(state, system) -> list[dict]:
    refs = [ref for _, ref in state.prompts_refs]
    out = []
    for i, (o, ref) in enumerate(zip(system.outputs, refs)):
        s = state.scorer.score(o, ref)
        if "loss" in state.metrics:
            s["loss"] = system.losses[i]
        if "perplexity" in state.metrics:
            s["perplexity"] = math.exp(min(system.losses[i], 700.0)) if system.losses[i] is not None else None
        out.append(s)
    return out


def _pairs(kinds: dict[str, str]) -> list[tuple[str, str]]:
    tuned = [n for n, k in kinds.items() if k == "tuned"]
    base = [n for n, k in kinds.items() if k == "base"]
    fewshot = [n for n, k in kinds.items() if k == "fewshot"]
    raw = [n for n, k in kinds.items() if k == "raw"]
    pairs = []
    for t in tuned:
        pairs += [(t, b) for b in fewshot + base]
    if tuned and raw:
        pairs.append((tuned[0], raw[0]))
    if fewshot and base:
        pairs.append((fewshot[0], base[0]))
    return pairs


def _comparisons(kinds: dict[str, str], scores: dict[str, list[dict]], metrics: list[str],
                 keep: Optional[list[bool]], which: str, n_boot: int, seed: int) -> list[dict]:
    out = []
    for a, b in _pairs(kinds):
        for m in metrics:
            if m in _NO_COMPARE:
                continue
            xa = [s.get(m) for s in scores[a]]
            xb = [s.get(m) for s in scores[b]]
            if keep is not None:
                xa = [v if k else None for v, k in zip(xa, keep)]
                xb = [v if k else None for v, k in zip(xb, keep)]
            diff = paired_difference(xa, xb, n_boot=n_boot, seed=seed)
            if diff["n"]:
                out.append({"a": a, "b": b, "metric": m, "set": which, **diff})
    return out


def build_report(state, status: str = "complete", n_boot: Optional[int] = None) -> dict:
    """The report of a comparison (see :func:`ftcurate.train.compare.compare`)."""
    from .compare import REPORT_VERSION, summarize_system

    settings = state.settings
    n_boot = n_boot or settings.n_boot
    seed = settings.seed
    gold = state.gold
    metrics = list(state.metrics)
    kinds = {s.name: s.kind for s in state.systems}
    scores = {s.name: _example_scores(state, s) for s in state.systems}
    systems: dict[str, dict] = {}
    for s in state.systems:
        entry = summarize_system(s.outputs, scores[s.name], s.losses, s.tokens, metrics, n_boot=n_boot, seed=seed)
        entry.update({"kind": s.kind, "adapter": s.adapter, "complete": s.gen_done,
                      "seconds": round(s.seconds, 3), "new_tokens": s.new_tokens, "from_cache": s.from_cache})
        if s.kind == "fewshot" and s.shots:
            entry["shots"] = round(sum(s.shots) / len(s.shots), 2)
        systems[s.name] = entry
    keep = [not x for x in gold.leaked]
    clean = None
    if gold.n_leaked:
        clean = {}
        for s in state.systems:
            clean[s.name] = summarize_system(s.outputs, scores[s.name], s.losses, s.tokens, metrics, keep=keep,
                                             n_boot=n_boot, seed=seed)
    comparisons = _comparisons(kinds, scores, metrics, None, "all", n_boot, seed)
    if clean is not None and any(keep):
        comparisons += _comparisons(kinds, scores, metrics, keep, "clean", n_boot, seed)
    refs = [ref for _, ref in state.prompts_refs]
    examples = []
    for i, (rec, (msgs, ref)) in enumerate(zip(gold.records, state.prompts_refs)):
        prompt = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
        ex = {"index": gold.indices[i], "source": gold.sources[i], "prompt": prompt or "", "reference": ref,
              "leaked": gold.leaked[i],
              "outputs": {s.name: s.outputs[i] for s in state.systems},
              "scores": {s.name: scores[s.name][i] for s in state.systems}}
        few = next((s for s in state.systems if s.kind == "fewshot" and s.shots), None)
        if few is not None:
            ex["shots"] = few.shots[i]
        examples.append(ex)
    displays = {s.name: s.display(settings.fewshot.k) for s in state.systems}
    report: dict[str, Any] = {
        "version": REPORT_VERSION, "status": status, "status_message": state.status_message,
        "model_dir": os.path.abspath(state.model_dir),
        "data": state.golden_source if isinstance(state.golden_source, str) else "records",
        "n_golden": len(gold), "has_references": any(r.strip() for r in refs),
        "metrics": metrics, "headline": headline_metric(metrics),
        "metric_options": {k: v for k, v in state.options.to_dict().items() if v is not None},
        "decoding": settings.decoding.to_dict(), "batch_size": settings.batch_size, "max_len": state.max_len,
        "fewshot": {**settings.fewshot.to_dict(), "source": state.pool_source, "pool": state.pool_size}
        if "fewshot" in kinds.values() else None,
        "systems": systems, "clean_only": clean, "leaked": gold.leaked_indices(),
        "leak_project": gold.project_path,
        "comparisons": comparisons, "displays": displays,
        "examples": examples, "general": _general_report(state, n_boot, seed), "warnings": list(state.warnings),
        "n_boot": n_boot,
    }
    report["verdict"] = verdict_lines(report, displays, kinds, settings.fewshot.k)
    return report


def _general_report(state, n_boot: int, seed: int) -> Optional[dict]:
    from .compare import summarize_system

    if not state.general or not state.general_systems:
        return None
    from .data import prompt_and_reference

    refs = [prompt_and_reference(r)[1] for r in state.general]
    metrics = list(state.general_metrics)
    systems, scores, kinds = {}, {}, {}
    for s in state.general_systems:
        outputs = state.general_outputs.get(s.name) or [None] * len(refs)
        losses, tokens = state.general_losses.get(s.name) or ([None] * len(refs), [0] * len(refs))
        sc = [state.general_scorer.score(o, ref) for o, ref in zip(outputs, refs)]
        for i, d in enumerate(sc):
            d["loss"] = losses[i]
        scores[s.name] = sc
        kinds[s.name] = s.kind
        entry = summarize_system(outputs, sc, losses, tokens, metrics, n_boot=n_boot, seed=seed)
        entry["kind"] = s.kind
        systems[s.name] = entry
    gen_metrics = [m for m in metrics if m not in LOSS_METRICS]
    headline = headline_metric(gen_metrics) or ("loss" if "loss" in metrics else None)
    comparisons = []
    base = next((n for n, k in kinds.items() if k == "base"), None)
    if base:
        for name, kind in kinds.items():
            if kind in ("tuned", "raw"):
                for m in metrics:
                    if m in _NO_COMPARE:
                        continue
                    diff = paired_difference([d.get(m) for d in scores[name]], [d.get(m) for d in scores[base]],
                                             n_boot=n_boot, seed=seed)
                    if diff["n"]:
                        comparisons.append({"a": name, "b": base, "metric": m, "set": "all", **diff})
    outputs = {s.name: state.general_outputs.get(s.name) or [None] * len(refs) for s in state.general_systems}
    examples = [{"index": i, "reference": ref, "outputs": {name: out[i] for name, out in outputs.items()}}
                for i, ref in enumerate(refs)]
    return {"data": os.path.abspath(state.settings.general_path or ""), "n": len(refs), "metrics": metrics,
            "headline": headline, "systems": systems, "comparisons": comparisons, "examples": examples}


# -- Markdown ---------------------------------------------------------------------------------------


def _cell(metric: str, m: Optional[dict]) -> str:
    if not m or m.get("mean") is None:
        return "–"
    text = fmt_value(metric, m["mean"])
    if m.get("ci95") and m["ci95"][0] != m["ci95"][1]:
        text += f" ({fmt_interval(metric, m['ci95'])})"
    return text


def _table_md(systems: dict, metrics: list[str], names: list[str]) -> list[str]:
    head = "| system | n | " + " | ".join(md_text(METRICS[m].label) for m in metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for name in names:
        s = systems.get(name)
        if not s:
            continue
        cells = [_cell(m, s["metrics"].get(m)) for m in metrics]
        lines.append(f"| {md_text(name)} | {s['n']} | " + " | ".join(cells) + " |")
    return lines


def report_markdown(report: dict, examples: int = 20) -> str:
    """A human summary: verdict, the metric table (all items, then clean items), differences,
    and the first ``examples`` golden items side by side."""
    names = list(report.get("systems") or {})
    metrics = report.get("metrics") or []
    lines = ["# Evaluation", ""]
    if report.get("status") != "complete":
        lines += [f"**Partial report ({md_text(report.get('status'))})** "
                  + md_text(report.get("status_message") or ""), ""]
    lines += [f"Model: {md_code(report.get('model_dir'))}  ", f"Golden set: {md_code(report.get('data'))} "
              f"({report.get('n_golden', 0)} items)", ""]
    for name, s in (report.get("systems") or {}).items():
        if s.get("adapter"):
            lines.append(f"- {md_text(name)}: adapter {md_code(s['adapter'])}")
    lines.append("")
    if report.get("verdict"):
        lines += ["## Verdict", ""] + [f"- {md_text(v)}" for v in report["verdict"]] + [""]
    lines += ["## Metrics (mean, 95% bootstrap interval)", ""] + _table_md(report.get("systems") or {}, metrics, names)
    if report.get("clean_only"):
        lines += ["", f"### Clean golden items only ({report.get('n_golden', 0) - len(report.get('leaked') or [])} "
                      f"of {report.get('n_golden', 0)}; leaked items: "
                      + ", ".join(str(i) for i in (report.get("leaked") or [])[:30]) + ")", ""]
        lines += _table_md(report["clean_only"], metrics, names)
    comps = [c for c in report.get("comparisons") or [] if c["metric"] == report.get("headline")]
    if comps:
        lines += ["", "## Differences", ""]
        for c in comps:
            lines.append(f"- {md_text(c['a'])} − {md_text(c['b'])} ({c['set']} items): "
                         + md_text(describe_difference(c["metric"], c)))
    general = report.get("general")
    if general:
        lines += ["", f"## General set ({general['n']} items): before and after", ""]
        lines += _table_md(general["systems"], general["metrics"], list(general["systems"]))
    if report.get("warnings"):
        lines += ["", "## Notes", ""] + [f"- {md_text(w)}" for w in report["warnings"]]
    shown = (report.get("examples") or [])[:examples]
    if shown:
        lines += ["", f"## Answers side by side (first {len(shown)})"]
        for ex in shown:
            where = f"record {ex['index']}" + (f" of {md_text(ex['source'])}" if ex.get("source") else "")
            lines += ["", f"### {where}" + (" (leaked)" if ex.get("leaked") else ""), "",
                      f"**Prompt:** {md_text(ex['prompt'])}  ", f"**Reference:** {md_text(ex['reference'])}  "]
            for name, out in ex["outputs"].items():
                marks = _marks(ex["scores"].get(name) or {}, report.get("headline"))
                text = "(not generated)" if out is None else ("(empty answer)" if not out.strip() else out)
                lines.append(f"**{md_text(name)}**{marks}: {md_text(text)}  ")
    return "\n".join(lines) + "\n"


def _marks(scores: dict, headline: Optional[str]) -> str:
    if not headline or headline in LOSS_METRICS:
        return ""
    v = scores.get(headline)
    if v is None:
        return ""
    if METRICS[headline].kind == "rate":
        return " ✓" if v >= 1 else " ✗"
    return f" ({fmt_value(headline, v)})"


# -- HTML ---------------------------------------------------------------------------------------------

_COLORS = {"base": "#8c8c8c", "fewshot": "#d08c2a", "tuned": "#2f6fbd", "raw": "#b5473a"}


def bars_svg(report: dict, metric: str, which: str = "systems", width: int = 520) -> str:
    """An SVG bar chart of ``metric`` per system with its 95% interval as a whisker."""
    systems = report.get(which) or {}
    rows = [(n, s["metrics"].get(metric) or {}) for n, s in systems.items()]
    rows = [(n, m) for n, m in rows if m.get("mean") is not None]
    if not rows:
        return ""
    kind = METRICS[metric].kind
    top = max(max((m["ci95"] or [m["mean"]])[-1], m["mean"]) for _, m in rows)
    top = 1.0 if kind in ("rate", "score") else (top * 1.1 or 1.0)
    bar_h, gap, left, right = 22, 10, 120, 70
    height = len(rows) * (bar_h + gap) + 30
    plot = width - left - right
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{html_text(METRICS[metric].label)} per system">']
    kinds = {n: (systems[n].get("kind") or "tuned") for n, _ in rows}
    for i, (name, m) in enumerate(rows):
        y = 10 + i * (bar_h + gap)
        w = max(0.0, plot * m["mean"] / top)
        color = _COLORS.get(kinds[name], "#2f6fbd")
        out.append(f'<text x="{left - 8}" y="{y + bar_h * 0.7:.1f}" text-anchor="end" font-size="12">'
                   f'{html_text(name)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        if m.get("ci95"):
            lo, hi = (plot * v / top for v in m["ci95"])
            cy = y + bar_h / 2
            out.append(f'<line x1="{left + lo:.1f}" y1="{cy}" x2="{left + hi:.1f}" y2="{cy}" stroke="#222" '
                       'stroke-width="1.5"/>')
            for x in (lo, hi):
                out.append(f'<line x1="{left + x:.1f}" y1="{cy - 6}" x2="{left + x:.1f}" y2="{cy + 6}" '
                           'stroke="#222" stroke-width="1.5"/>')
        out.append(f'<text x="{left + plot + 6}" y="{y + bar_h * 0.7:.1f}" font-size="12">'
                   f'{html_text(fmt_value(metric, m["mean"]))}</text>')
    out.append(f'<line x1="{left}" y1="5" x2="{left}" y2="{height - 20}" stroke="#555"/>')
    out.append(f'<text x="{left}" y="{height - 5}" font-size="11" fill="#555">0</text>')
    out.append(f'<text x="{left + plot}" y="{height - 5}" font-size="11" fill="#555" text-anchor="end">'
               f'{html_text(fmt_value(metric, top))}</text>')
    out.append("</svg>")
    return "".join(out)


_CSS = ("body{font:14px/1.45 system-ui,sans-serif;margin:24px;max-width:1100px;color:#1d1d1d}"
        "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "vertical-align:top;text-align:left}th{background:#f2f2f2}.ok{color:#1c7c32}.bad{color:#b3261e}"
        ".muted{color:#666}.verdict li{margin:4px 0;font-weight:600}pre{white-space:pre-wrap;margin:0;"
        "font:inherit}")


def _table_html(systems: dict, metrics: list[str]) -> str:
    head = "".join(f"<th>{html_text(METRICS[m].label)}</th>" for m in metrics)
    rows = []
    for name, s in systems.items():
        cells = "".join(f"<td>{html_text(_cell(m, s['metrics'].get(m)))}</td>" for m in metrics)
        rows.append(f"<tr><td>{html_text(name)}</td><td>{s['n']}</td>{cells}</tr>")
    return f"<table><tr><th>system</th><th>n</th>{head}</tr>{''.join(rows)}</table>"


def report_html(report: dict, examples: int = 200) -> str:
    """A self-contained HTML page: verdict, charts with intervals, tables, answers side by side."""
    metrics = report.get("metrics") or []
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<title>ftcurate evaluation</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>Evaluation</h1>"]
    if report.get("status") != "complete":
        parts.append(f"<p class=\"bad\"><b>Partial report ({html_text(report.get('status'))})</b> "
                     f"{html_text(report.get('status_message') or '')}</p>")
    parts.append(f"<p class=\"muted\">Model: <code>{html_text(report.get('model_dir'))}</code><br>Golden set: "
                 f"<code>{html_text(report.get('data'))}</code> ({report.get('n_golden', 0)} items)</p>")
    if report.get("verdict"):
        parts.append("<ul class=\"verdict\">" + "".join(f"<li>{html_text(v)}</li>" for v in report["verdict"])
                     + "</ul>")
    chart_metrics = [m for m in metrics if m not in ("perplexity", "length_ratio")]
    which = "clean_only" if report.get("clean_only") else "systems"
    for m in chart_metrics:
        svg = bars_svg(report, m, which)
        if svg:
            parts.append(f"<h3>{html_text(METRICS[m].label)}"
                         + (" (clean items)" if which == "clean_only" else "") + f"</h3>{svg}")
    parts.append("<h2>Metrics (mean, 95% bootstrap interval)</h2>" + _table_html(report.get("systems") or {}, metrics))
    if report.get("clean_only"):
        parts.append("<h3>Clean golden items only</h3>" + _table_html(report["clean_only"], metrics)
                     + "<p class=\"muted\">Leaked items (record indices): "
                     + html_text(", ".join(str(i) for i in report.get("leaked") or [])) + "</p>")
    general = report.get("general")
    if general:
        parts.append(f"<h2>General set ({general['n']} items): before and after</h2>"
                     + _table_html(general["systems"], general["metrics"]))
    if report.get("warnings"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html_text(w)}</li>" for w in report["warnings"]) + "</ul>")
    shown = (report.get("examples") or [])[:examples]
    if shown:
        names = list(report.get("systems") or {})
        head = "".join(f"<th>{html_text(n)}</th>" for n in names)
        rows = []
        for ex in shown:
            cells = []
            for n in names:
                out = ex["outputs"].get(n)
                marks = _marks(ex["scores"].get(n) or {}, report.get("headline"))
                cls = "ok" if "✓" in marks else "bad" if "✗" in marks else ""
                text = "(not generated)" if out is None else ("(empty answer)" if not out.strip() else out)
                cells.append(f"<td><pre>{html_text(text)}</pre><span class=\"{cls}\">{html_text(marks)}</span></td>")
            leaked = " (leaked)" if ex.get("leaked") else ""
            rows.append(f"<tr><td>{ex['index']}{leaked}</td><td><pre>{html_text(ex['prompt'])}</pre></td>"
                        f"<td><pre>{html_text(ex['reference'])}</pre></td>{''.join(cells)}</tr>")
        parts.append(f"<h2>Answers side by side ({len(shown)} of {len(report.get('examples') or [])})</h2>"
                     f"<table><tr><th>record</th><th>prompt</th><th>reference</th>{head}</tr>{''.join(rows)}</table>")
    parts.append("</body></html>")
    return "".join(parts)


# -- files ---------------------------------------------------------------------------------------------


def report_json(report: dict) -> str:
    safe, _ = json_safe(report)
    return json.dumps(safe, ensure_ascii=False, indent=1) + "\n"


def save_report(report: dict, folder: str) -> str:
    """Write ``eval_report.json``, ``eval_report.md`` and ``eval_report.html`` into ``folder``
    (each atomically); returns the JSON file's path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, REPORT_JSON)
    write_text_atomic(os.path.join(folder, REPORT_MD), report_markdown(report))
    write_text_atomic(os.path.join(folder, REPORT_HTML), report_html(report))
    write_text_atomic(path, report_json(report))  # last: its presence means the set is whole
    return path


def cli_payload(report: dict) -> dict:
    """The object ``ftcurate evaluate --json`` prints: the contract's keys first, then the rest."""
    def shape(systems: Optional[dict]) -> Optional[dict]:
        if systems is None:
            return None
        return {name: {"n": s["n"], "metrics": {m: {"mean": v["mean"], "ci95": v["ci95"]}
                                                for m, v in s["metrics"].items()}, **{k: v for k, v in s.items()
                                                                                      if k not in ("n", "metrics")}}
                for name, s in systems.items()}

    out = {"systems": shape(report.get("systems")), "clean_only": shape(report.get("clean_only")),
           "examples": report.get("examples") or [], "verdict": report.get("verdict") or []}
    out.update({k: v for k, v in report.items() if k not in out})
    return json_safe(out)[0]
