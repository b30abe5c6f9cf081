"""``ftcurate evaluate`` and ``ftcurate pilot``: systems side by side on a golden set, and the
pilot curve (:mod:`ftcurate.train.compare`, :mod:`ftcurate.train.pilot`).

``evaluate --json`` prints one JSON object::

    {"systems": {NAME: {"n": int, "metrics": {METRIC: {"mean": float, "ci95": [lo, hi]}}}},
     "clean_only": {same shape} or null, "examples": [{"index", "reference", "outputs", "scores"}],
     "verdict": [str, ...], ...}

Exit codes: 0 success, 2 unusable input (golden set, metric, schema, adapter, model) or out
of memory (the results so far are saved), 130 cancelled with Ctrl-C (likewise).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Callable, Optional

EVAL_SYSTEMS = "base,fewshot,tuned,raw"


def _split(text: Optional[str]) -> Optional[list[str]]:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def add_compare_options(sp: argparse.ArgumentParser) -> None:
    """Options of how answers are generated and scored (evaluate and pilot share them)."""
    from .train.fewshot import DEFAULT_K, METHODS as FEWSHOT_METHODS
    from .train.generate import DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS
    from .train.metrics import METRICS

    sp.add_argument("--metrics", metavar="M1,M2", help="task metrics, comma-separated, from: " + ", ".join(METRICS)
                    + " (default: picked from the references, e.g. final_answer when they end in a number)")
    sp.add_argument("--extractor", default="last_number", metavar="HOW",
                    help="final-answer extractor: last_number (default), hashes ('#### N') or regex:PATTERN "
                         "(its first group)")
    sp.add_argument("--json-schema", metavar="FILE", help="JSON schema the answers must conform to (json_schema)")
    sp.add_argument("--format-regex", metavar="REGEX", help="regular expression an answer must match in full "
                                                            "(format)")
    sp.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS,
                    help=f"length limit of each answer (default {DEFAULT_MAX_NEW_TOKENS})")
    sp.add_argument("--gen-batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                    help=f"prompts answered at once (default {DEFAULT_BATCH_SIZE}; halved when memory runs out)")
    sp.add_argument("--sample", action="store_true", help="sample answers (--temperature, --top-p, --gen-seed) "
                                                          "instead of greedy decoding")
    sp.add_argument("--temperature", type=float, default=0.7)
    sp.add_argument("--top-p", type=float, default=0.95)
    sp.add_argument("--gen-seed", type=int, default=0)
    sp.add_argument("--fewshot-k", type=int, default=DEFAULT_K, help=f"examples in a few-shot prompt (default "
                                                                     f"{DEFAULT_K})")
    sp.add_argument("--fewshot-select", choices=FEWSHOT_METHODS, default="similar",
                    help="few-shot examples most similar to the question (default) or at random (--fewshot-seed)")
    sp.add_argument("--fewshot-seed", type=int, default=0)
    sp.add_argument("--fewshot-from", metavar="FILE", help="take the few-shot examples from this file or project "
                                                           "(default: the adapter's own training data)")
    sp.add_argument("--limit", type=int, help="evaluate only the first N golden items (a quick look)")
    sp.add_argument("--cache", metavar="FILE", help="answer cache (default: eval_cache.jsonl beside the report)")
    sp.add_argument("--no-cache", action="store_true", help="generate every answer again")


def compare_settings(args, cache_dir: Optional[str]):
    """CompareSettings from the parsed options; CliError for a schema file that cannot be read."""
    from .cli import CliError
    from .train.compare import CACHE_FILE, CompareSettings
    from .train.fewshot import FewShotSettings
    from .train.generate import Decoding
    from .train.metrics import MetricOptions

    schema = None
    if args.json_schema:
        try:
            with open(args.json_schema, encoding="utf-8") as f:
                schema = f.read()
        except OSError as exc:
            raise CliError(f"{args.json_schema}: {exc.strerror or exc}", "bad_input") from None
    cache = None
    if not args.no_cache:
        cache = args.cache or (os.path.join(cache_dir, CACHE_FILE) if cache_dir else None)
    return CompareSettings(
        baselines=_split(getattr(args, "baselines", None)), metrics=_split(args.metrics),
        metric_options=MetricOptions(extractor=args.extractor, json_schema=schema, format_regex=args.format_regex),
        decoding=Decoding(max_new_tokens=args.max_new_tokens, greedy=not args.sample, temperature=args.temperature,
                          top_p=args.top_p, seed=args.gen_seed),
        batch_size=args.gen_batch_size,
        fewshot=FewShotSettings(k=args.fewshot_k, method=args.fewshot_select, seed=args.fewshot_seed),
        fewshot_from=args.fewshot_from, general_path=getattr(args, "general", None), cache_path=cache,
        limit=args.limit, trust_remote_code=getattr(args, "trust_remote_code", False))


def _cancel_on_sigint() -> tuple[Callable[[], bool], Callable[[], None]]:
    """Ctrl-C sets a flag the evaluation checks (so the answers so far are saved); returns
    (cancel check, restore)."""
    flag = {"cancel": False}
    previous = None

    def on_sigint(signum, frame):  # noqa: ARG001
        flag["cancel"] = True
        print("cancelling: the answers so far are kept", file=sys.stderr, flush=True)

    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, on_sigint)

    def restore() -> None:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)

    return (lambda: flag["cancel"]), restore


def _table(report: dict) -> list[str]:
    from .train.metrics import METRICS
    from .train.verdict import fmt_interval, fmt_value

    metrics = report.get("metrics") or []
    lines = []
    for title, systems in (("", report.get("systems")), ("clean items only: ", report.get("clean_only"))):
        if not systems:
            continue
        for name, s in systems.items():
            cells = []
            for m in metrics:
                v = s["metrics"].get(m) or {}
                if v.get("mean") is None:
                    continue
                ci = f" [{fmt_interval(m, v['ci95'])}]" if v.get("ci95") and v["ci95"][0] != v["ci95"][1] else ""
                cells.append(f"{METRICS[m].label} {fmt_value(m, v['mean'])}{ci}")
            lines.append(f"{title}{name} (n={s['n']}): " + ("; ".join(cells) or "no scores"))
    return lines


def cmd_evaluate(args) -> int:
    from .cli import EXIT_FAIL, EXIT_OK, CliError, _emit, _progress_printer, _quiet_ml_libraries
    from .train.compare import EvalError, EvalOutOfMemory, EvalStopped, compare
    from .train.report import cli_payload, save_report
    from .train.runfiles import run_model_dir

    adapters = list(args.adapter or [])
    first = adapters[0] if adapters else args.raw_adapter
    model = args.model or (run_model_dir(first) if first else None)
    if not model:
        raise CliError("no base model: pass --model (the adapter's run_config.json does not lead to the model "
                       "folder)" if first else "pass --model", "bad_arguments")
    report_dir = None if args.no_report else (args.report or first)
    settings = compare_settings(args, report_dir)
    _quiet_ml_libraries()
    progress = _progress_printer(args)
    cancel, restore = _cancel_on_sigint()
    code = EXIT_OK
    try:
        report = compare(model, args.data, adapters=adapters, raw_adapter=args.raw_adapter, settings=settings,
                         progress=progress, cancel=cancel)
    except (EvalStopped, EvalOutOfMemory) as exc:
        report = exc.report
        code = 130 if isinstance(exc, EvalStopped) else EXIT_FAIL
        print(f"ftcurate evaluate: {exc}" + ("; the answers so far are in the report" if report_dir else ""),
              file=sys.stderr)
    except EvalError as exc:
        raise CliError(str(exc), "bad_input") from None
    finally:
        restore()
        if progress:
            sys.stderr.write("\n")
    if report_dir:
        report["report"] = save_report(report, report_dir)
    human = list(report.get("verdict") or []) + [""] + _table(report)
    if report.get("warnings"):
        human += [""] + [f"note: {w}" for w in report["warnings"]]
    if report_dir:
        human.append(f"report: {report['report']} (and .md, .html)")
    _emit(args, cli_payload(report), "\n".join(human))
    return code


def add_evaluate_parser(sub) -> None:
    sp = sub.add_parser("evaluate", help="compare base, few-shot, tuned and raw systems on a golden set",
                        description="Answer every golden item with each system (base: the base model; fewshot: "
                                    "the base model with k training examples in the prompt; tuned: each adapter; "
                                    "raw: the adapter trained on the uncurated data), score the answers with "
                                    "bootstrap 95% intervals, and say which is better.")
    sp.add_argument("--model", help="base model folder (default with --adapter: the one its run was trained on, "
                                    "when run_config.json still leads to it)")
    sp.add_argument("--adapter", action="append", metavar="DIR",
                    help="adapter folder (a training output folder); repeat for several")
    sp.add_argument("--raw-adapter", metavar="DIR", help="the adapter trained on the uncurated data "
                                                         "(ftcurate train --uncurated)")
    sp.add_argument("--data", required=True, help="golden set: a held-out file, or a project (its test split)")
    sp.add_argument("--baselines", metavar="S1,S2", help=f"systems to compare, from {EVAL_SYSTEMS} (default: every "
                                                         "one that can run)")
    add_compare_options(sp)
    sp.add_argument("--general", help="general-conversation file: the same metrics before (base) and after "
                                      "(adapters), to see whether the tuning cost general ability")
    sp.add_argument("--report", metavar="DIR", help="write eval_report.json, .md and .html into DIR (default: the "
                                                    "first adapter's folder)")
    sp.add_argument("--no-report", action="store_true", help="write no report files")
    sp.add_argument("--trust-remote-code", action="store_true", help="run code shipped in the model folder")
    sp.add_argument("--json", action="store_true", help="print the report as one JSON object")
    sp.set_defaults(func=cmd_evaluate)


# -- pilot ---------------------------------------------------------------------------------------------


def cmd_pilot(args) -> int:
    from .cli import EXIT_FAIL, EXIT_OK, CliError, _emit, _progress_printer, _quiet_ml_libraries, _train_config
    from .core.progress import Cancelled
    from .train import TrainError, load_data
    from .train.compare import EvalError
    from .train.pilot import PilotError, pilot

    if not args.output:
        raise CliError("pass --output (the folder for the pilot's runs and report)", "bad_arguments")
    config = _train_config(args)
    golden = args.golden or args.data
    sizes = None
    if args.sizes:
        try:
            sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        except ValueError:
            raise CliError(f"--sizes {args.sizes!r}: give whole numbers, e.g. 100,250,500", "bad_arguments") from None
    _quiet_ml_libraries()
    data = load_data(args.data, args.eval, val_fraction=args.val_fraction, seed=config.seed,
                     uncurated=config.uncurated)
    settings = compare_settings(args, None)
    progress = _progress_printer(args)
    cancel, restore = _cancel_on_sigint()
    try:
        result = pilot(config, data, golden, args.output, metric=(_split(args.metrics) or [None])[0], sizes=sizes,
                       seed=args.pilot_seed, settings=settings, progress=progress, cancel=cancel)
    except Cancelled:
        print("ftcurate pilot: cancelled; the points so far are in pilot.json", file=sys.stderr)
        return 130
    except (PilotError, EvalError) as exc:
        raise CliError(str(exc), "bad_input") from None
    except TrainError as exc:
        raise CliError(str(exc), exc.key) from None
    finally:
        restore()
        if progress:
            sys.stderr.write("\n")
    from .train.verdict import fmt_interval, fmt_value

    metric = result["metric"]
    human = [f"{'base' if p['n'] == 0 else p['n']:>8}: {fmt_value(metric, p['mean'])} "
             f"[{fmt_interval(metric, p['ci95'])}]" for p in result["points"]]
    human += result.get("verdict") or []
    human.append(f"report: {os.path.join(args.output, 'pilot.html')}")
    _emit(args, result, "\n".join(human))
    return EXIT_OK if result.get("status") == "complete" else EXIT_FAIL


def add_pilot_parser(sub, add_train_options: Callable[[argparse.ArgumentParser], None]) -> None:
    sp = sub.add_parser("pilot", help="train on 100, 250, 500, ... examples and plot a metric against the number "
                                      "of examples (would more data help?)")
    sp.add_argument("--golden", help="golden set (default: --data's test split when it is a project)")
    sp.add_argument("--sizes", metavar="N1,N2", help="sample sizes (default 100,250,500,1000,2500,...; all the "
                                                     "examples are always the last point)")
    sp.add_argument("--pilot-seed", type=int, help="seed of the nested samples (default: the training seed)")
    add_train_options(sp)
    add_compare_options(sp)
    sp.set_defaults(func=cmd_pilot)
