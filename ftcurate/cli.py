"""ftcurate command line: headless commands over ftcurate.core (the GUI calls the same code).

Exit codes: 0 success (validate: no errors), 1 the data has errors (validate: bad records;
stats: an incomplete import or damaged records; export: damaged records left out), 2 the
input can't be read at all, the project can't be opened or written (in use, disk full,
read-only, changed outside ftcurate), or the arguments are wrong. Never a traceback for
any of these.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from typing import Optional, Sequence

from . import __version__

EXIT_OK, EXIT_ERRORS, EXIT_FAIL = 0, 1, 2


class CliError(Exception):
    def __init__(self, message: str, key: str = "error") -> None:
        super().__init__(message)
        self.key = key


def _emit(args, payload: dict, human: str) -> None:
    if getattr(args, "json", False):
        json.dump(payload, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(human)


def _progress_printer(args):
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return None

    def progress(done: int, total: int, message: str) -> None:
        end = f"/{total:,}" if total else ""
        sys.stderr.write(f"\r\x1b[K{message} {done:,}{end}")  # \x1b[K: clear the rest of the line
        sys.stderr.flush()

    return progress


def _mapping(args) -> Optional[dict]:
    from .core.io.formats import parse_mapping

    return parse_mapping(args.map) if getattr(args, "map", None) else None


# -- commands -------------------------------------------------------------------------------

def cmd_validate(args) -> int:
    from .core.io.validate import validate_path

    heldout = None
    if args.heldout:
        heldout = validate_path(args.heldout, "auto", None, args.max_tokens).loaded
    report = validate_path(args.path, args.format, _mapping(args), args.max_tokens, args.tokenizer,
                           heldout=heldout, progress=_progress_printer(args), max_errors=args.max_errors)
    _emit(args, report.to_dict(), report.summary())
    return EXIT_ERRORS if report.rejected else EXIT_OK


def _open_project(path: str, create: bool = False, readonly: bool = False, wait: float = 0.0):
    from .core.project.store import Project

    if not create and not os.path.exists(path):
        raise CliError(f"{path}: no such project (create one with `ftcurate import DATASET --project {path}`)",
                       "not_found")
    if readonly:
        return Project.open(path, readonly=True)  # (an older project is upgraded first)

    def waiting(exc) -> None:
        print(f"ftcurate: waiting up to {wait:g} s for the project: {exc}", file=sys.stderr, flush=True)

    return Project.open(path, create=create, wait=wait, on_wait=waiting)


def _few(items, n: int = 8) -> str:
    items = list(items)
    return ", ".join(map(str, items[:n])) + (f" and {len(items) - n} more" if len(items) > n else "")


def _damaged_line(damaged: list) -> str:
    reasons = sorted({d["reason"] for d in damaged})
    return (f"{len(damaged)} damaged record(s) cannot be read and were left out: records "
            f"{_few(d['index'] for d in damaged)} ({'; '.join(reasons[:3])})")


def _incomplete_line(src: dict, project: str) -> str:
    return (f"source {src['id']} ({src['path']}) is an incomplete import: {src['records']:,} records stored "
            f"so far; import it again to finish it: ftcurate import {src['path']} --project {project}")


def cmd_import(args) -> int:
    from .core.io.ingest import import_dataset
    from .core.io.validate import size_advice

    created = not os.path.exists(args.project)
    project = _open_project(args.project, create=True)
    try:
        if args.reviewer:
            project.reviewer = args.reviewer
        reports = [import_dataset(project, args.dataset, args.format, _mapping(args), role=args.role,
                                  max_tokens=args.max_tokens, progress=_progress_printer(args),
                                  max_error_details=args.max_errors)]
        if args.test:
            reports.append(import_dataset(project, args.test, "auto", None, role="test",
                                          max_tokens=args.max_tokens, max_error_details=args.max_errors))
            reports[0].advice = size_advice(reports[0].loaded, project.count(split="test"))
        payload = {"project": os.path.abspath(args.project), "imports": [r.to_dict() for r in reports],
                   "records": project.count()}
        human = "\n".join(r.summary() for r in reports) + f"\nproject {args.project}: {project.count()} records"
    except BaseException:
        if created:  # the command failed as a whole: no new project is left behind
            project.discard()
        raise
    finally:
        project.close()
    _emit(args, payload, human)
    # as validate: 1 when the data has errors (the records that could not be read are listed,
    # the rest is imported), 0 when every record came in
    return EXIT_ERRORS if any(r.rejected for r in reports) else EXIT_OK


def cmd_stats(args) -> int:
    from .core.io.ingest import project_stats

    with _open_project(args.project, readonly=True) as project:
        stats = project_stats(project, args.include, args.max_tokens, args.tokenizer)
    s = stats["stats"]
    human = [f"{stats['project']}: {stats['records']} records",
             "  status: " + ", ".join(f"{k} {v}" for k, v in stats["status"].items()),
             "  splits: " + ", ".join(f"{k} {v}" for k, v in stats["splits"].items()),
             f"  {args.include} train records: {stats['selected']}, ~{s['total_tokens']:,} tokens "
             f"({s['tokenizer']}); {s['default_epochs']} epochs -> ~{s['billed_tokens']:,} tokens trained"]
    for src in stats["sources"]:
        state = f"{src['records']:,} of {src['total']:,} records" if src["complete"] else \
            f"INCOMPLETE import, {src['records']:,} records so far"
        human.append(f"  source {src['id']} ({src['role']}, {src['format']}): {src['path']}: {state}")
    for src in stats["sources"]:
        if not src["complete"]:
            human.append("  warning: " + _incomplete_line(src, args.project))
    errors = stats["import_errors"]
    if errors["errors"]:
        line = (f"  import errors: {errors['records']:,} records could not be imported ("
                + ", ".join(f"{k} {v:,}" for k, v in sorted(errors["by_key"].items())) + ")")
        if errors["left_out"]:
            line += f"; details kept for {errors['kept']:,} errors, {errors['left_out']:,} not kept"
        human.append(line)
    if stats["damaged"]:
        human.append("  warning: " + _damaged_line(stats["damaged"]))
    human += ["  advice: " + a for a in stats["advice"]]
    _emit(args, stats, "\n".join(human))
    return EXIT_ERRORS if stats["damaged"] or stats["incomplete"] else EXIT_OK


def cmd_export(args) -> int:
    from .core.io.export import export_project

    # Export only reads the project: it runs beside the app (or a decide) that has it open.
    with _open_project(args.project, readonly=True) as project:
        result = export_project(project, args.output, args.format, args.include, args.val_fraction, args.seed,
                                progress=_progress_printer(args), full_paths=args.full_paths)
        damaged = project.damaged_seen
        incomplete = [s for s in project.sources() if not s["complete"]]
    human = [f"wrote {n} records to {result.files[s]}" for s, n in result.counts.items()]
    if result.skipped:
        human.append(f"skipped {len(result.skipped)} records {args.format} cannot hold: {result.skipped[0][2]}")
    human += [f"dataset card: {result.card}", f"decision log: {result.log}"]
    warnings = [_incomplete_line(s, args.project) for s in incomplete]
    if damaged:
        warnings.append(_damaged_line(damaged))
    for w in warnings:
        print(f"ftcurate export: warning: {w}", file=sys.stderr)
    payload = result.to_dict()
    payload.update(damaged=damaged, incomplete=[s["id"] for s in incomplete], warnings=warnings)
    _emit(args, payload, "\n".join(human))
    return EXIT_ERRORS if damaged else EXIT_OK


def _pick_source(project, args, cmd: str = "decide") -> dict:
    """The source whose record indices the command takes: ``--source N``, else the first
    completely imported training file."""
    sources = project.sources()
    if getattr(args, "source", None) is not None:
        src = next((s for s in sources if s["id"] == args.source), None)
        if src is None:
            raise CliError(f"the project has no source {args.source} (its sources: "
                           f"{_few(s['id'] for s in sources) or 'none'})", "bad_source")
        if not src["complete"]:
            print(f"ftcurate {cmd}: warning: " + _incomplete_line(src, args.project), file=sys.stderr)
        return src
    train = [s for s in sources if s["role"] == "train"]
    src = next((s for s in train if s["complete"]), None)
    if src is None and train:
        raise CliError(_incomplete_line(train[0], args.project) + f"; or pass --source {train[0]['id']} "
                       "to decide on the records stored so far", "incomplete_source")
    if src is None:
        raise CliError("the project has no imported training file", "no_source")
    return src


def _record_ids(project, source_id: int, indices) -> list[int]:
    """Row ids of the records at these 0-based indices of a source file."""
    ids = []
    for idx in indices:
        try:
            ids.append(project.id_for_index(source_id, idx))
        except KeyError:
            raise CliError(f"record index {idx} is not in the project (bad or rejected at import)",
                           "bad_index") from None
    return ids


def cmd_decide(args) -> int:
    with _open_project(args.project, wait=args.wait) as project:
        reviewer = args.reviewer or project.reviewer
        if args.undo or args.redo:
            ids = project.undo() if args.undo else project.redo()
            word = "undone" if args.undo else "redone"
            print(f"{word} {len(ids)} record(s)" if ids is not None else f"nothing to {word[:-2]}o", flush=True)
            return EXIT_OK
        source_id = _pick_source(project, args)["id"]
        action, indices = ("approve", args.approve) if args.approve else (
            ("reject", args.reject) if args.reject else ("reset", args.reset))
        ids = _record_ids(project, source_id, indices)
        do = getattr(project, action)
        word = {"approve": "approved", "reject": "rejected", "reset": "reset"}[action]
        for idx, rid in zip(indices, ids):
            do([rid], reviewer=reviewer)
            # Printed only once the decision is committed.
            print(f"{word} {idx}", flush=True)
    return EXIT_OK


def cmd_dismiss(args) -> int:
    """Dismiss findings the scan got wrong (not a duplicate / leak / outlier / problem)."""
    from .core.project import dismissals as dm

    with _open_project(args.project, wait=args.wait) as project:
        reviewer = args.reviewer or project.reviewer
        source_id = _pick_source(project, args, "dismiss")["id"]
        if args.duplicate:
            a, b = _record_ids(project, source_id, args.duplicate)
            dm.dismiss_pair(project, a, b, args.reason, reviewer)
            what = f"not a duplicate: {args.duplicate[0]} and {args.duplicate[1]}"
        elif args.leak:
            train = _record_ids(project, source_id, args.leak[:1])[0]
            tests = [s for s in project.sources() if s["role"] == "test" and s["complete"]]
            test_src = args.test_source if args.test_source is not None else (tests[0]["id"] if tests else None)
            if test_src is None:
                raise CliError("the project has no held-out (test) file", "no_source")
            test = _record_ids(project, test_src, args.leak[1:])[0]
            dm.dismiss_leak(project, train, test, args.reason, reviewer)
            what = f"not a leak: training record {args.leak[0]}, held-out record {args.leak[1]}"
        else:
            kind, indices = ((dm.OUTLIER, args.outlier) if args.outlier else
                             (dm.LENGTH_OUTLIER, args.length_outlier) if args.length_outlier else
                             (dm.FLAG + args.flag[0], [int(i) for i in args.flag[1:]]))
            if not indices:
                raise CliError("say which records: --flag NAME IDX [IDX ...]", "bad_arguments")
            dm.dismiss_finding(project, _record_ids(project, source_id, indices), kind, args.reason, reviewer)
            what = f"{dm.says(kind)}: " + ", ".join(map(str, indices))
    print(f"dismissed ({what})", flush=True)
    return EXIT_OK


def cmd_labels(args) -> int:
    """The label set (define, undefine, list) and labels on records (add, remove)."""
    from .core.project.annotation import AnnotationError, define_labels, label_set, parse_label_def

    writes = bool(args.define or args.undefine or args.add or args.remove)
    with _open_project(args.project, readonly=not writes, wait=getattr(args, "wait", 0.0)) as project:
        try:
            if args.define or args.undefine:
                define_labels(project, [parse_label_def(d, i) for i, d in enumerate(args.define or [])],
                              remove=args.undefine or [])
        except AnnotationError as exc:
            raise CliError(str(exc), "bad_label") from None
        for label, indices, call in ((args.add, args.records, "add_label"), (args.remove, args.records, "remove_label")):
            if not label:
                continue
            if not indices:
                raise CliError("say which records: --records IDX [IDX ...]", "bad_arguments")
            ids = _record_ids(project, _pick_source(project, args, "labels")["id"], indices)
            getattr(project, call)(ids, label.strip(), reviewer=args.reviewer or project.reviewer)
            print(f"{'labelled' if call == 'add_label' else 'unlabelled'} {len(ids)} record(s) {label.strip()!r}",
                  flush=True)
        counts = project.all_labels()
        defs = label_set(project)
    in_set = {d.name for d in defs}
    payload = {"label_set": [d.to_dict() for d in defs],
               "labels": [{"name": k, "records": n, "in_set": k in in_set} for k, n in counts.items()]}
    lines = [f"{d.name}  {d.color}  key {d.key or '-'}  {counts.get(d.name, 0):,} record(s)" for d in defs]
    lines += [f"{k}  (not in the label set)  {n:,} record(s)" for k, n in counts.items() if k not in in_set]
    _emit(args, payload, "\n".join(lines) or "no labels (define some: --define NAME[:COLOUR[:KEY]])")
    return EXIT_OK


def cmd_guidelines(args) -> int:
    """Show or set the project's review guidelines (Markdown)."""
    from .core.project.annotation import AnnotationError, guidelines, set_guidelines

    writes = args.set is not None or args.clear
    with _open_project(args.project, readonly=not writes) as project:
        if args.set is not None:
            try:
                with open(args.set, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise CliError(f"{args.set}: cannot read it ({exc})", "unreadable") from None
            try:
                set_guidelines(project, text)
            except AnnotationError as exc:
                raise CliError(str(exc), "bad_guidelines") from None
        elif args.clear:
            set_guidelines(project, "")
        text = guidelines(project)
    _emit(args, {"guidelines": text}, text or "no guidelines yet (set them: --set FILE.md)")
    return EXIT_OK


def cmd_scan(args) -> int:
    from .core.io.fileio import write_text_atomic
    from .core.quality.scan import ScanSettings, scan_files, scan_project, summary

    settings = ScanSettings()
    if args.settings:
        with open(args.settings, encoding="utf-8") as f:
            settings = ScanSettings.from_json(f.read())
    for pair in args.set or []:
        settings = _apply_setting(settings, pair)
    settings = _engine_options(settings, args)
    progress = _progress_printer(args)
    if args.train.endswith(".ftcurate"):
        if args.test:
            raise CliError("to scan a project against a test file, import it: ftcurate import TEST "
                           "--project P --role test", "bad_arguments")
        from .core.project.dismissals import apply_dismissals
        from .core.project.numbering import number_report

        with _open_project(args.train) as project:
            # records named by their index in the source file: the numbers `decide` takes
            report = number_report(project, apply_dismissals(project, scan_project(project, settings,
                                                                                   progress=progress)))
    else:
        report = scan_files(args.train, args.test, args.format, _mapping(args), settings, progress=progress)
    if progress:
        sys.stderr.write("\n")
    if args.out:
        write_text_atomic(args.out, json.dumps(report, ensure_ascii=False) + "\n")
    human = summary(report) + (f"\nreport: {args.out}" if args.out else "")
    _emit(args, report, human)
    return EXIT_OK


def _engine_options(settings, args):
    """--engine, --address and --against-index over the settings (file or --set)."""
    import dataclasses

    changes = {}
    if getattr(args, "engine", None):
        changes["engine"] = args.engine
    if getattr(args, "address", None) is not None:
        changes["ray_address"] = args.address
        changes.setdefault("engine", "ray")
    if getattr(args, "against_index", None) is not None:
        changes["against_index"] = args.against_index
    return dataclasses.replace(settings, **changes) if changes else settings


def cmd_index(args) -> int:
    """The corpus index: add a dataset, list them, remove one."""
    from .core.index import add_file, list_datasets, redact_location, remove_dataset

    where = redact_location(args.index)
    if args.action == "add":
        if not args.files:
            raise CliError("say which file(s) to add: ftcurate index add FILE --index LOCATION", "bad_arguments")
        if args.name and len(args.files) > 1:
            raise CliError("--name names one file; add the files one by one", "bad_arguments")
        progress = _progress_printer(args)
        results = []
        for path in args.files:
            results.append(add_file(args.index, path, name=args.name, fmt=args.format, mapping=_mapping(args),
                                    progress=progress))
            if progress:
                sys.stderr.write("\n")
        human = "\n".join(
            (f"added {r['dataset']['name']} ({r['dataset']['records']:,} records) to {where}" if r["added"] else
             f"{r['dataset']['name']} is already in {where} (same content); nothing added") for r in results)
        _emit(args, {"index": where, "results": results}, human)
    elif args.action == "rm":
        if not args.files:
            raise CliError("say which dataset(s) to remove: ftcurate index rm NAME --index LOCATION", "bad_arguments")
        removed = [remove_dataset(args.index, name) for name in args.files]
        _emit(args, {"index": where, "removed": removed},
              "\n".join(f"removed {d['name']} from {where}" for d in removed))
    else:
        datasets = list_datasets(args.index)
        lines = [f"{d['name']}  {d['records']:,} records  added {d.get('added', '?')}  {d.get('path', '')}"
                 for d in datasets]
        _emit(args, {"index": where, "datasets": datasets},
              "\n".join(lines) or f"{where}: no datasets yet (ftcurate index add FILE --index {where})")
    return EXIT_OK


def _apply_setting(settings, pair: str):
    from .core.quality.scan import ScanSettings

    key, sep, value = pair.partition("=")
    if not sep:
        raise CliError(f"bad --set {pair!r}: use NAME=VALUE", "bad_arguments")
    d = settings.to_dict()
    target = d["heuristics"] if key.startswith("heuristics.") else d
    name = key.split(".", 1)[1] if key.startswith("heuristics.") else key
    if name not in target:
        raise CliError(f"unknown scan setting {key!r}", "bad_arguments")
    try:
        target[name] = json.loads(value)
    except ValueError:
        target[name] = value
    try:
        return ScanSettings.from_dict(d, where="--set")
    except ValueError as exc:  # strict: "no" is not taken for true, a typo is named
        raise CliError(str(exc), "bad_arguments") from None


def _quiet_ml_libraries() -> None:
    """transformers' info lines and deprecation notes are noise on a command line."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def _train_config(args):
    from .train import TrainConfig
    from .train.runfiles import load_run_config

    config = load_run_config(args.config) if args.config else TrainConfig(model_dir="")
    if config.trust_remote_code and not args.trust_remote_code:
        # Never carried over from a settings file (e.g. another run's) without being asked for.
        config.trust_remote_code = False
        print(f"ftcurate train: {args.config} turns on trust_remote_code; left off (pass --trust-remote-code to run "
              "the Python code in the model folder)", file=sys.stderr)
    if args.trust_remote_code:
        config.trust_remote_code = True
    overrides = {"model_dir": args.model, "output_dir": args.output, "max_steps": args.max_steps,
                 "epochs": args.epochs, "learning_rate": args.lr, "lora_r": args.lora_r, "method": args.method,
                 "batch_size": args.batch_size, "max_seq_len": args.max_seq_len, "eval_steps": args.eval_steps,
                 "seed": args.seed, "world_size": args.devices, "strategy": args.strategy}
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)
    if args.allow_leakage:
        config.allow_leakage = True
    if args.no_packing:
        config.packing = False
    if getattr(args, "uncurated", False):
        config.uncurated = True
    problems = config.problems()
    if problems:
        raise CliError("bad training settings: " + "; ".join(problems), "bad_arguments")
    return config


def _train_line(event: dict) -> Optional[str]:
    """A human line for a training event (None: not worth a line)."""
    kind = event.get("type")
    if kind == "train":
        total = event.get("max_steps") or 0
        return (f"step {event['step']}/{total}  loss {event['loss']:.4f}  lr {event['learning_rate']:.2e}  "
                f"{event['tokens_per_second']:,.0f} tok/s")
    if kind == "eval":
        return f"step {event['step']}  eval loss {event['eval_loss']:.4f}" + ("  (best)" if event.get("best") else "")
    if kind == "warning":
        return "warning: " + event["message"]
    if kind == "start":
        n = int(event.get("world_size") or 1)
        on = f"{event['device']} x {n} processes ({event.get('strategy') or 'ddp'})" if n > 1 else event["device"]
        return (f"training on {on}: {event['num_train']} examples, {event['num_eval']} validation, "
                f"{event['max_steps']} steps" + (f", resuming {event['resumed_from']}" if event.get("resumed_from")
                                                 else ""))
    if kind == "early_stop":
        return f"early stop at step {event['step']}: best eval loss {event['best_eval_loss']:.4f} at step " \
               f"{event['best_step']}"
    return None


def cmd_train(args) -> int:
    import signal
    import threading

    from .train import LeakageError, TrainError, distributed, load_data, train
    from .train.data import public_leak

    config = _train_config(args)
    _quiet_ml_libraries()
    # Several processes: this one launches them (--devices N), or is one of them (under torchrun).
    ranked = distributed.launched_rank()
    if ranked:
        config = distributed.prepare_rank(config)
    launching = not ranked and config.world_size > 1
    data = None if launching else load_data(args.data, args.eval, val_fraction=args.val_fraction, seed=config.seed,
                                            uncurated=config.uncurated)
    every = [1]

    def on_event(event: dict) -> None:
        if args.json:
            json.dump(event, sys.stdout, ensure_ascii=False)
            sys.stdout.write("\n")
            sys.stdout.flush()
            return
        if event.get("type") == "start":  # about 100 loss lines per run
            every[0] = max(1, int(event.get("max_steps") or 0) // 100)
        if event.get("type") == "train" and event["step"] % every[0] and event["step"] != event.get("max_steps"):
            return
        line = _train_line(event)
        if line:
            print(line, flush=True)

    # Ctrl-C once: stop after the current step and save; twice: cancel at once.
    flags = {"stop": False, "cancel": False}

    def on_sigint(signum, frame):  # noqa: ARG001
        if flags["stop"]:
            flags["cancel"] = True
        else:
            flags["stop"] = True
            print("stopping after this step and saving (Ctrl-C again to cancel)", file=sys.stderr, flush=True)

    previous = previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, on_sigint)
        if launching:  # SIGTERM (a job scheduler, kill): end the child processes too, then exit
            previous_term = signal.signal(signal.SIGTERM, lambda *_: flags.update(cancel=True))
    try:
        if launching:  # N child processes, followed from here (ftcurate.train.launch)
            from .train.launch import train_processes

            result = train_processes(config, args.data, args.eval, val_fraction=args.val_fraction,
                                     cancel=lambda: flags["cancel"], on_event=on_event, stop=lambda: flags["stop"],
                                     resume=args.resume, full_paths=args.full_paths)
        elif ranked:  # one rank: the ranks stop together (rank 0 reads <output>/control)
            if distributed.is_main_process():
                on_event({"type": "info", "message": f"Data: {data.summary()}."})
            result = train(config, data, progress=None, on_event=on_event,
                           stop=distributed.RankControl(config.output_dir, flags), resume=args.resume,
                           full_paths=args.full_paths)
        else:
            result = train(config, data, progress=None, cancel=lambda: flags["cancel"], on_event=on_event,
                           stop=lambda: flags["stop"], resume=args.resume, full_paths=args.full_paths)
    except LeakageError as exc:
        if args.json:
            json.dump({"error": exc.key, "message": str(exc), "leaks": [public_leak(h) for h in exc.leaks]},
                      sys.stdout, ensure_ascii=False)
            sys.stdout.write("\n")
        print(f"ftcurate train: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    except TrainError as exc:
        raise CliError(str(exc), exc.key) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    if not args.json:
        how = "stopped" if result.stopped else ("early-stopped" if result.early_stopped else "finished")
        loss = f", loss {result.first_loss:.4f} -> {result.final_loss:.4f}" if result.final_loss is not None else ""
        ev = f", best eval loss {result.best_eval_loss:.4f} (step {result.best_step})" \
            if result.best_eval_loss is not None else ""
        on = f" on {result.world_size} processes" if result.world_size > 1 else ""
        print(f"{how} at step {result.global_step}/{result.max_steps}{on}{loss}{ev}")
        print(f"adapter: {result.adapter_dir}")
    return EXIT_OK


def cmd_demo_model(args) -> int:
    from .train.model import create_demo_model, is_demo_model

    folder = args.folder
    if os.path.isdir(folder) and os.listdir(folder) and not is_demo_model(folder):
        raise CliError(f"{folder} is not empty; choose a new folder for the demo model", "folder_not_empty")
    _quiet_ml_libraries()
    from .train.model import DEMO_TRAIN_SETTINGS

    path = create_demo_model(folder, seed=args.seed)
    flags = {"learning_rate": "--lr", "epochs": "--epochs", "batch_size": "--batch-size",
             "max_seq_len": "--max-seq-len"}
    suggested = " ".join(f"{flags[k]} {v:g}" for k, v in DEMO_TRAIN_SETTINGS.items() if k in flags)
    _emit(args, {"model_dir": os.path.abspath(path), "demo": True, "train_settings": DEMO_TRAIN_SETTINGS},
          f"demo model written to {path} (random weights: only for trying the training flow; it learns the "
          f"help-desk sample resources/sample/helpdesk with: ftcurate train {suggested} ...)")
    return EXIT_OK


def cmd_gui(args) -> int:
    """Hand every argument to the app's own parser (one place defines the gui options)."""
    from .gui.app import main as gui_main

    return gui_main(list(args.gui_args))


# -- parser ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from .core.io.formats import FORMAT_CHOICES, FORMATS
    from .core.io.ingest import INCLUDE_CHOICES
    from .core.io.validate import DEFAULT_MAX_ERRORS, DEFAULT_MAX_TOKENS

    p = argparse.ArgumentParser(prog="ftcurate", description="Curate fine-tuning datasets and train LoRA adapters.")
    p.add_argument("--version", action="version", version=f"ftcurate {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def fmt_args(sp, with_map=True):
        sp.add_argument("--format", default="auto", choices=FORMAT_CHOICES,
                        help="dataset format (default: detect from the file)")
        if with_map:
            sp.add_argument("--map", action="append", metavar="KEY=COLUMN",
                            help="column mapping for CSV/Parquet or unusual keys, e.g. prompt=question")
        sp.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                        help=f"warn about examples longer than this (default {DEFAULT_MAX_TOKENS})")

    sp = sub.add_parser("validate", help="check a dataset file: errors by line, warnings, token stats")
    sp.add_argument("path")
    fmt_args(sp)
    sp.add_argument("--tokenizer", help="local Hugging Face tokenizer folder to count tokens with")
    sp.add_argument("--heldout", help="held-out (test) file, to report its size")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("--max-errors", type=int, default=DEFAULT_MAX_ERRORS, metavar="N",
                    help=f"list the details of the first N errors (default {DEFAULT_MAX_ERRORS:,}); "
                         "all errors are counted")
    sp.set_defaults(func=cmd_validate)

    sp = sub.add_parser("import", help="import a dataset file into a project (created if missing)")
    sp.add_argument("dataset")
    sp.add_argument("--project", required=True, help="project file (.ftcurate)")
    fmt_args(sp)
    sp.add_argument("--role", choices=("train", "test"), default="train",
                    help="train data, or a held-out test set")
    sp.add_argument("--test", help="also import this held-out test file")
    sp.add_argument("--reviewer", help="reviewer name stored in the project")
    sp.add_argument("--max-errors", type=int, default=DEFAULT_MAX_ERRORS, metavar="N",
                    help=f"keep the details of the first N errors per file in the project (default "
                         f"{DEFAULT_MAX_ERRORS:,}); all errors are counted")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_import)

    sp = sub.add_parser("stats", help="counts and token statistics of a project")
    sp.add_argument("project")
    sp.add_argument("--include", choices=INCLUDE_CHOICES, default="not-rejected")
    sp.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    sp.add_argument("--tokenizer")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_stats)

    sp = sub.add_parser("export", help="write the curated records, a dataset card and a decision log")
    sp.add_argument("project")
    sp.add_argument("--output", "--out", "-o", required=True, help="output file")
    sp.add_argument("--format", default="openai-chat", choices=FORMATS)
    sp.add_argument("--include", choices=INCLUDE_CHOICES, default="approved",
                    help="approved records only (default), everything not rejected, or all")
    sp.add_argument("--val-fraction", type=float, default=0.0, help="fraction held out as validation split")
    sp.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    sp.add_argument("--full-paths", action="store_true",
                    help="write absolute paths in the dataset card (default: relative to the project)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("decide", help="record review decisions (scripted review)")
    sp.add_argument("project")
    g = sp.add_mutually_exclusive_group(required=True)
    g.add_argument("--approve", type=int, nargs="+", metavar="IDX", help="0-based record indices in the file")
    g.add_argument("--reject", type=int, nargs="+", metavar="IDX")
    g.add_argument("--reset", type=int, nargs="+", metavar="IDX", help="back to unreviewed")
    g.add_argument("--undo", action="store_true", help="undo the last decision")
    g.add_argument("--redo", action="store_true", help="redo the last undone decision")
    sp.add_argument("--reviewer")
    sp.add_argument("--source", type=int, help="source id (default: the first completely imported training file)")
    sp.add_argument("--wait", type=float, nargs="?", const=10.0, default=0.0, metavar="SECONDS",
                    help="if another ftcurate has the project open, wait up to SECONDS (default 10) for it "
                         "instead of failing at once")
    sp.set_defaults(func=cmd_decide)

    sp = sub.add_parser("dismiss", help="dismiss a finding the scan got wrong (a decision: undo with decide --undo)")
    sp.add_argument("project")
    g = sp.add_mutually_exclusive_group(required=True)
    g.add_argument("--duplicate", type=int, nargs=2, metavar=("IDX", "IDX"), help="these two are not duplicates")
    g.add_argument("--leak", type=int, nargs=2, metavar=("TRAIN_IDX", "TEST_IDX"),
                   help="this training record does not leak that held-out record")
    g.add_argument("--outlier", type=int, nargs="+", metavar="IDX", help="not outliers")
    g.add_argument("--length-outlier", type=int, nargs="+", metavar="IDX", help="not length outliers")
    g.add_argument("--flag", nargs="+", metavar=("NAME", "IDX"), help="not a problem: a heuristic flag, e.g. "
                                                                      "--flag refusal 12 40")
    sp.add_argument("--reason", default="", help="why (kept in the decision log)")
    sp.add_argument("--reviewer")
    sp.add_argument("--source", type=int, help="source id of the training records (default: the first complete one)")
    sp.add_argument("--test-source", type=int, help="source id of the held-out file (default: the first one)")
    sp.add_argument("--wait", type=float, nargs="?", const=10.0, default=0.0, metavar="SECONDS",
                    help="wait up to SECONDS for another ftcurate that has the project open")
    sp.set_defaults(func=cmd_dismiss)

    sp = sub.add_parser("labels", help="the project's label set (name, colour, key) and labels on records")
    sp.add_argument("project")
    sp.add_argument("--define", action="append", metavar="NAME[:COLOUR[:KEY]]",
                    help="add or change a label of the set, e.g. math:#1c7ed6:1 (repeatable)")
    sp.add_argument("--undefine", action="append", metavar="NAME", help="drop a label from the set (repeatable)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--add", metavar="LABEL", help="give LABEL to the --records")
    g.add_argument("--remove", metavar="LABEL", help="take LABEL from the --records")
    sp.add_argument("--records", type=int, nargs="+", metavar="IDX", help="0-based record indices in the file")
    sp.add_argument("--source", type=int, help="source id (default: the first completely imported training file)")
    sp.add_argument("--reviewer")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_labels)

    sp = sub.add_parser("guidelines", help="show or set the project's review guidelines (Markdown)")
    sp.add_argument("project")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--set", metavar="FILE", help="a Markdown file with the guidelines")
    g.add_argument("--clear", action="store_true", help="remove the guidelines")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_guidelines)

    sp = sub.add_parser("scan", help="quality scan: duplicates, near duplicates, outliers, leakage, flags")
    sp.add_argument("train", help="dataset file, or a project (.ftcurate)")
    sp.add_argument("--test", help="held-out / test file to check for leakage")
    sp.add_argument("--format", default="auto", choices=FORMAT_CHOICES)
    sp.add_argument("--map", action="append", metavar="KEY=COLUMN")
    sp.add_argument("--out", help="write the JSON report here")
    sp.add_argument("--settings", help="scan settings JSON file")
    sp.add_argument("--set", action="append", metavar="NAME=VALUE",
                    help="change one setting, e.g. minhash_threshold=0.85 or heuristics.language=true")
    sp.add_argument("--engine", choices=("local", "ray"),
                    help="where the scan runs: local (default) or a Ray cluster (docs/scaling.md)")
    sp.add_argument("--address", metavar="ADDRESS",
                    help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (implies --engine ray; "
                         "without it Ray starts on this machine)")
    sp.add_argument("--against-index", metavar="LOCATION",
                    help="flag records already in this corpus index (a folder, or redis://HOST:PORT/DB)")
    sp.add_argument("--json", action="store_true", help="print the report as JSON")
    sp.set_defaults(func=cmd_scan)

    sp = sub.add_parser("index", help="a corpus index of datasets already trained on (add, ls, rm)")
    sp.add_argument("action", choices=("add", "ls", "rm"), help="add files, list the datasets, remove datasets")
    sp.add_argument("files", nargs="*", metavar="FILE|NAME", help="add: dataset files; rm: dataset names")
    sp.add_argument("--index", required=True, metavar="LOCATION",
                    help="a folder (created on the first add) or redis://[:PASSWORD@]HOST:PORT/DB "
                         "(password also from $FTCURATE_REDIS_PASSWORD)")
    sp.add_argument("--name", help="add: the dataset's name in the index (default: the file name)")
    sp.add_argument("--format", default="auto", choices=FORMAT_CHOICES)
    sp.add_argument("--map", action="append", metavar="KEY=COLUMN")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_index)

    from .train.config import METHODS, STRATEGIES
    from .train.config import help_text as _help

    def help_text(name: str) -> str:
        return _help(name).replace("%", "%%")  # argparse formats help with %

    def train_options(sp) -> None:
        """The options of what to train and how (train and pilot share them)."""
        sp.add_argument("--model", help="base model folder (config.json, tokenizer, *.safetensors)")
        sp.add_argument("--data", required=True, help="project (.ftcurate: approved records) or dataset file")
        sp.add_argument("--uncurated", action="store_true", help=help_text("uncurated"))
        sp.add_argument("--eval", help="validation file (default: the project's validation split, else 10%% of the "
                                       "data)")
        sp.add_argument("--output", "--out", "-o", help="output folder for the adapter, checkpoints and metrics")
        sp.add_argument("--config", help="training settings JSON (e.g. a run_config.json); options below override it")
        sp.add_argument("--max-steps", type=int, help=help_text("max_steps"))
        sp.add_argument("--epochs", type=float, help=help_text("epochs"))
        sp.add_argument("--lr", type=float, help=help_text("learning_rate"))
        sp.add_argument("--lora-r", type=int, help=help_text("lora_r"))
        sp.add_argument("--method", choices=METHODS, help=help_text("method"))
        sp.add_argument("--batch-size", type=int, help=help_text("batch_size"))
        sp.add_argument("--max-seq-len", type=int, help=help_text("max_seq_len"))
        sp.add_argument("--eval-steps", type=int, help=help_text("eval_steps"))
        sp.add_argument("--seed", type=int, help=help_text("seed"))
        sp.add_argument("--devices", type=int, metavar="N", help=help_text("world_size") + " See docs/training.md for "
                        "several machines.")
        sp.add_argument("--strategy", choices=STRATEGIES, help=help_text("strategy"))
        sp.add_argument("--val-fraction", type=float, default=0.1,
                        help="fraction of the training records held out for validation when there is no validation "
                             "split or --eval file (default 0.1; 0 = none)")
        sp.add_argument("--no-packing", action="store_true", help="padded batches instead of padding-free packing")
        sp.add_argument("--allow-leakage", action="store_true", help=help_text("allow_leakage"))
        sp.add_argument("--trust-remote-code", action="store_true",
                        help=help_text("trust_remote_code") + " A --config file cannot turn it on by itself.")
        sp.add_argument("--json", action="store_true", help="print one JSON event per line")

    sp = sub.add_parser("train", help="train a LoRA / QLoRA / DoRA adapter on a project or dataset file")
    train_options(sp)
    sp.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    sp.add_argument("--full-paths", action="store_true",
                    help="write the full model and output paths into run_config.json and the adapter files "
                         "(default: relative to the run folder, or the model folder's name)")
    sp.set_defaults(func=cmd_train)

    from .cli_eval import add_evaluate_parser, add_pilot_parser

    add_evaluate_parser(sub)
    add_pilot_parser(sub, train_options)

    sp = sub.add_parser("demo-model", help="write a tiny random model for trying the training flow")
    sp.add_argument("folder")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_demo_model)

    sp = sub.add_parser("gui", help="open the desktop app", add_help=False,
                        usage="ftcurate gui [PATH] [--screenshot PNG] [--tab VIEW] [--theme THEME]")
    sp.add_argument("gui_args", nargs=argparse.REMAINDER, help="see: ftcurate gui --help")
    sp.set_defaults(func=cmd_gui)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .core.io.formats import DatasetError
    from .core.progress import Cancelled
    from .core.project.store import ProjectError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["gui"]:  # options in any order, parsed (and documented) by the app itself
        return cmd_gui(argparse.Namespace(gui_args=argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except (DatasetError, CliError, ProjectError, ValueError, OSError, sqlite3.Error) as exc:
        if isinstance(exc, sqlite3.Error):  # a project read that failed: say what it means
            from .core.project.errors import explain

            exc = explain(exc, getattr(args, "project", None) or "(the project)", "read")
        key = getattr(exc, "key", type(exc).__name__)
        message = str(exc)
        if getattr(args, "json", False):
            json.dump({"error": key, "message": message}, sys.stdout)
            sys.stdout.write("\n")
        print(f"ftcurate {args.command}: {message}", file=sys.stderr)
        return EXIT_FAIL
    except (KeyboardInterrupt, Cancelled):
        print("cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
