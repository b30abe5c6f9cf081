"""Export faults of issue 12: the export set is written whole or not at all, credentials and
absolute paths stay out of it, user text cannot inject formulas or Markdown/HTML, file modes
are kept, and the JSON written is strict JSON."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import pathlib
import stat
import subprocess
import sys
import textwrap
import threading

import pytest
from markdown_it import MarkdownIt

from ftcurate.cli import main
from ftcurate.core.io.export import export_project
from ftcurate.core.io.ingest import import_dataset
from ftcurate.core.project.store import Project

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_chat(path, n, meta=None):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            obj = {"messages": [{"role": "user", "content": f"question {i}?"},
                                {"role": "assistant", "content": f"answer {i}."}]}
            if meta is not None:
                obj["metadata"] = meta
            f.write(json.dumps(obj) + "\n")


def make_project(tmp_path, n=10, data_name="data.jsonl", reviewer="ana", meta=None):
    (tmp_path / "proj").mkdir(parents=True, exist_ok=True)
    data = tmp_path / "proj" / data_name
    write_chat(data, n, meta)
    path = str(tmp_path / "proj" / "p.ftcurate")
    with Project.create(path, reviewer=reviewer) as p:
        import_dataset(p, str(data))
        p.approve(p.ids())
    return path


def strict_json(text):
    def no_constant(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=no_constant)


def card_files(card_text):
    """File name -> sha256 from the card's Contents table."""
    files = {}
    for line in card_text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and len(cells[-1]) == 64:
            files[cells[1]] = cells[-1]
    return files


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def export(path, out, **kw):
    with Project.open(path) as p:
        return export_project(p, str(out), **kw)


# -- 5: the export set is old or new, never a mix --------------------------------------------


def test_export_without_validation_removes_the_older_validation_file(tmp_path):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    first = export(path, out, val_fraction=0.5, seed=1)
    val = tmp_path / "out" / "clean.validation.jsonl"
    assert first.files["validation"] == str(val) and val.exists()
    second = export(path, out)
    assert "validation" not in second.files
    assert not val.exists()
    assert "clean.validation.jsonl" not in (tmp_path / "out" / "clean.card.md").read_text()


def test_a_validation_file_no_card_listed_is_left_alone(tmp_path):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    (tmp_path / "out").mkdir()
    mine = tmp_path / "out" / "clean.validation.jsonl"
    mine.write_text("my own file\n")
    export(path, out)
    assert mine.read_text() == "my own file\n"


def test_disk_full_while_writing_leaves_the_previous_set_and_says_disk_full(tmp_path, monkeypatch):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    export(path, out)
    folder = tmp_path / "out"
    before = {n: (folder / n).read_bytes() for n in os.listdir(folder)}
    with Project.open(path) as p:
        p.set_note(p.ids()[0], "changed since")
        p.reject(p.ids()[1])
    real_fsync = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) >= 2:  # the data file is written; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as info:
        export(path, out)
    monkeypatch.undo()
    assert "disk full" in str(info.value) and str(out) in str(info.value)
    assert {n: (folder / n).read_bytes() for n in os.listdir(folder)} == before


def test_kill_during_the_export_leaves_no_mixed_set_and_the_next_run_cleans_up(tmp_path):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    export(path, out, val_fraction=0.5, seed=1)
    old_card = (tmp_path / "out" / "clean.card.md").read_text()
    with Project.open(path) as p:
        p.reject(p.ids()[:4])
    # A second process is killed (no clean-up runs) right after the data file replaced the old one.
    script = textwrap.dedent(f"""
        import os
        from ftcurate.core.io.export import export_project
        from ftcurate.core.project.store import Project
        real = os.replace
        def replace(src, dst, *a, **k):
            real(src, dst, *a, **k)
            if os.fspath(dst) == {str(out)!r}:
                os._exit(9)
        os.replace = replace
        with Project.open({path!r}) as p:
            export_project(p, {str(out)!r}, val_fraction=0.5, seed=1)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    card = tmp_path / "out" / "clean.card.md"
    # A reader never finds a card that describes other data than what lies beside it.
    if card.exists():
        assert card.read_text() != old_card
        for name, digest in card_files(card.read_text()).items():
            assert sha256(tmp_path / "out" / name) == digest
    # The next export cleans up what the killed one left and writes a whole set.
    result = export(path, out, val_fraction=0.5, seed=1)
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["clean.card.md", "clean.decisions.csv", "clean.jsonl", "clean.validation.jsonl"]
    listed = card_files(card.read_text())
    assert set(listed) == {"clean.jsonl", "clean.validation.jsonl", "clean.decisions.csv"}
    for name, digest in listed.items():
        assert sha256(tmp_path / "out" / name) == digest
    assert sum(result.counts.values()) == 6


def test_an_error_while_replacing_the_files_puts_the_previous_set_back(tmp_path, monkeypatch):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    export(path, out, val_fraction=0.5)
    folder = tmp_path / "out"
    before = {n: (folder / n).read_bytes() for n in os.listdir(folder)}
    with Project.open(path) as p:
        p.reject(p.ids()[:3])
    real = os.replace
    log = str(folder / "clean.decisions.csv")

    def replace(src, dst, *a, **k):
        if os.fspath(dst) == log and "new-" in os.path.basename(src):  # the new log going in
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError) as info:
        export(path, out)
    monkeypatch.undo()
    assert log in str(info.value) and "left as it was" in str(info.value)
    assert {n: (folder / n).read_bytes() for n in os.listdir(folder)} == before


def test_after_a_kill_a_failing_export_still_leaves_the_previous_set(tmp_path, monkeypatch):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    export(path, out)
    folder = tmp_path / "out"
    before = {n: (folder / n).read_bytes() for n in os.listdir(folder)}
    with Project.open(path) as p:
        p.reject(p.ids()[:4])
    script = textwrap.dedent(f"""
        import os
        from ftcurate.core.io.export import export_project
        from ftcurate.core.project.store import Project
        real = os.replace
        def replace(src, dst, *a, **k):
            real(src, dst, *a, **k)
            if os.fspath(dst) == {str(out)!r}:
                os._exit(9)
        os.replace = replace
        with Project.open({path!r}) as p:
            export_project(p, {str(out)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert (folder / "clean.jsonl").read_bytes() != before["clean.jsonl"]  # killed half-way

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="disk full"):
        export(path, out)
    monkeypatch.undo()
    assert {n: (folder / n).read_bytes() for n in os.listdir(folder)} == before


def test_kill_while_writing_leaves_temp_files_the_next_run_removes(tmp_path):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    export(path, out)
    script = textwrap.dedent(f"""
        import os
        import ftcurate.core.io.formats as formats
        from ftcurate.core.io.export import export_project
        from ftcurate.core.project.store import Project
        def killed(*a, **k):
            os._exit(9)
        formats._write_json = killed
        with Project.open({path!r}) as p:
            export_project(p, {str(out)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    export(path, out)
    assert sorted(os.listdir(tmp_path / "out")) == ["clean.card.md", "clean.decisions.csv", "clean.jsonl"]


def test_a_second_export_to_the_same_path_fails_clearly_while_one_runs(tmp_path):
    path = make_project(tmp_path)
    other = make_project(tmp_path / "b")
    out = tmp_path / "out" / "clean.jsonl"
    started, release = threading.Event(), threading.Event()
    errors = []

    def hold(done, total, message):
        started.set()
        assert release.wait(30)

    def first():
        try:
            export(path, out, progress=hold)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=first)
    t.start()
    try:
        assert started.wait(30)
        with pytest.raises(OSError) as info:
            export(other, out)
        assert "another export" in str(info.value) and str(out) in str(info.value)
    finally:
        release.set()
        t.join(30)
    assert errors == []
    assert sorted(os.listdir(tmp_path / "out")) == ["clean.card.md", "clean.decisions.csv", "clean.jsonl"]
    # the lock is gone with the export: the next one runs
    export(other, out)


# -- 12 (export part): errors name the target -----------------------------------------------


def test_permission_denied_names_the_target_not_a_temp_file(tmp_path, monkeypatch):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    (tmp_path / "out").mkdir()
    real_open = os.open

    def deny(p, *a, **k):
        if any(part.startswith(".ftcurate") for part in pathlib.PurePath(os.fspath(p)).parts):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(p))
        return real_open(p, *a, **k)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(OSError) as info:
        export(path, out)
    monkeypatch.undo()
    msg = str(info.value)
    assert "ermission denied" in msg and str(out) in msg and ".ftcurate" not in msg
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_names_the_target(tmp_path):
    path = make_project(tmp_path)
    folder = tmp_path / "out"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OSError) as info:
            export(path, folder / "clean.jsonl")
    finally:
        folder.chmod(0o755)
    assert str(folder / "clean.jsonl") in str(info.value) and ".ftcurate" not in str(info.value)


def test_cli_export_error_is_one_line_without_traceback(tmp_path, capsys):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    (tmp_path / "out").mkdir()
    out.write_text("keep me\n")
    out.chmod(0o444)
    code = main(["export", path, "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "read-only" in err and str(out) in err
    assert out.read_text() == "keep me\n"


# -- 16: no credentials, no absolute paths unless asked ------------------------------------


def test_card_redacts_credentials_and_writes_no_absolute_paths(tmp_path, capsys):
    path = make_project(tmp_path)
    with Project.open(path) as p:
        p.save_scan("near_duplicates", {"lsh_storage": {"type": "redis", "basename": "ft",
                                                        "redis": {"host": "db.local", "port": 6379,
                                                                  "password": "hunter2"}},
                                        "other": "redis://ana:s3cret@db.local:6379/0?token=t0ken",
                                        "embedding_model": str(tmp_path / "proj" / "models" / "mini")},
                    {"pairs": []})
    out = tmp_path / "out" / "clean.jsonl"
    code = main(["export", path, "-o", str(out)])
    assert code == 0
    capsys.readouterr()
    card = (tmp_path / "out" / "clean.card.md").read_text()
    for secret in ("hunter2", "s3cret", "t0ken"):
        assert secret not in card
    assert "db.local" in card  # only the secret goes, not the setting
    assert str(tmp_path) not in card
    assert "p.ftcurate" in card and "data.jsonl" in card and "models/mini" in card
    # the full paths where the user asks for them; credentials still go
    code = main(["export", path, "-o", str(out), "--full-paths"])
    assert code == 0
    card = (tmp_path / "out" / "clean.card.md").read_text()
    assert str(tmp_path / "proj" / "data.jsonl") in card and "hunter2" not in card


def test_redact_helpers():
    from ftcurate.core.io.redact import display_path, public_settings, redact, redact_url

    assert redact_url("redis://user:pw@host:1/0") == "redis://user:***@host:1/0"
    assert redact_url("https://tok@host/x?api_key=abc&n=1") == "https://***@host/x?api_key=***&n=1"
    assert redact_url("not a url: pw@host") == "not a url: pw@host"
    assert redact({"Password": "x", "nested": [{"api_key": "y", "port": 1}], "token": None,
                   "url": "postgres://a:b@h/db"}) == {
        "Password": "***", "nested": [{"api_key": "***", "port": 1}], "token": None, "url": "postgres://a:***@h/db"}
    base = os.path.join(os.sep, "home", "ana", "proj")
    assert display_path(os.path.join(base, "data", "x.jsonl"), base) == os.path.join("data", "x.jsonl")
    assert display_path(os.path.join(os.sep, "srv", "x.jsonl"), base) == "x.jsonl"
    assert display_path(os.path.join(os.sep, "srv", "x.jsonl"), base, full=True) == os.path.join(os.sep, "srv", "x.jsonl")
    assert public_settings({"model": os.path.join(base, "m"), "secret": "s", "n": 3}, base) == {
        "model": "m", "secret": "***", "n": 3}


# -- 17: formulas and Markdown/HTML in user text ------------------------------------------


EVIL_REVIEWER = "ana\n# Pwned\n<script>alert(1)</script>"


def test_decision_log_neutralises_formulas(tmp_path):
    path = make_project(tmp_path, reviewer=EVIL_REVIEWER)
    with Project.open(path) as p:
        ids = p.ids()
        p.set_labels(ids[0], ['=HYPERLINK("http://evil","x")'])
        p.set_note(ids[1], "+1+cmd|' /C calc'!A0")
        p.set_note(ids[2], "@SUM(A1)")
        p.set_note(ids[3], "-2+3")
        p.set_note(ids[4], "\t=1")
    out = tmp_path / "out" / "clean.jsonl"
    result = export(path, out)
    with open(result.log, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    text_cells = [c for row in rows[1:] for c in (row[3], row[9], row[10]) if c]
    assert text_cells
    for cell in text_cells:
        assert cell[0] not in "=+-@\t\r", cell
    assert any(c.startswith("'=HYPERLINK") for c in text_cells)
    assert any(c == "'@SUM(A1)" for c in text_cells)


def test_card_escapes_markdown_and_html_from_user_text(tmp_path):
    path = make_project(tmp_path, reviewer=EVIL_REVIEWER, data_name="we|ird`name <b>.jsonl")
    with Project.open(path) as p:
        ids = p.ids()
        p.set_labels(ids[0], ["off topic\n## Injected"])
        p.set_note(ids[1], "<img src=x onerror=alert(1)> [link](http://evil)")
        p.reject(ids[:2])
    out = tmp_path / "out" / "clean.jsonl"
    export(path, out)
    card = (tmp_path / "out" / "clean.card.md").read_text()
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(card)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert "Pwned" not in " ".join(headings) and "Injected" not in " ".join(headings)
    html = md.render(card)
    assert "<script" not in html and "<img" not in html and "<b>" not in html and 'href="http://evil"' not in html
    # every row of each table has as many cells as its header
    rows, cells = [], 0
    for t in tokens:
        if t.type == "tr_open":
            cells = 0
        elif t.type in ("th_open", "td_open"):
            cells += 1
        elif t.type == "tr_close":
            rows.append(cells)
        elif t.type == "table_close":
            assert len(set(rows)) == 1, rows
            rows = []
    # the odd file name is shown whole
    inline = " ".join(t.content for t in tokens if t.type == "inline")
    assert "we|ird`name <b>.jsonl" in md.renderInline(inline).replace("&lt;", "<").replace("&gt;", ">") \
        .replace("<code>", "").replace("</code>", "")


def test_safe_text_helpers():
    from ftcurate.core.io.safe_text import csv_cell, html_text, md_code, md_text

    assert csv_cell("=1+1") == "'=1+1" and csv_cell("-1") == "-1" and csv_cell("-x") == "'-x"
    assert csv_cell(5) == 5 and csv_cell("plain") == "plain"
    assert html_text('<a href="x">&</a>') == "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
    md = MarkdownIt("commonmark").enable("table")
    for s in ["a|b", "x`y``z", "<script>", "# h\n- l", "*b* _i_ [l](u) \\ &amp;"]:
        assert md.renderInline(md_text(s)) == html_text(s.replace("\n", " "))
        rendered = md.renderInline(md_code(s))
        assert rendered == "<code>" + html_text(s.replace("\n", " ")) + "</code>", (s, rendered)


# -- 18: file modes -------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_new_export_files_follow_the_umask(tmp_path):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    old = os.umask(0o027)
    try:
        result = export(path, out, val_fraction=0.5)
    finally:
        os.umask(old)
    for f in [*result.files.values(), result.card, result.log]:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o640, f


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_an_existing_files_mode_is_kept(tmp_path):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    export(path, out)
    os.chmod(out, 0o664)
    os.chmod(tmp_path / "out" / "clean.card.md", 0o600)
    export(path, out)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o664
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "clean.card.md").st_mode) == 0o600


@pytest.mark.parametrize("member", ["clean.jsonl", "clean.card.md", "clean.decisions.csv"])
def test_a_read_only_target_is_refused(tmp_path, member):
    path = make_project(tmp_path)
    out = tmp_path / "out" / "clean.jsonl"
    export(path, out)
    with Project.open(path) as p:
        p.reject(p.ids()[0])
    folder = tmp_path / "out"
    before = {n: (folder / n).read_bytes() for n in os.listdir(folder)}
    os.chmod(folder / member, 0o444)
    with pytest.raises(OSError) as info:
        export(path, out)
    assert "read-only" in str(info.value) and str(folder / member) in str(info.value)
    assert {n: (folder / n).read_bytes() for n in os.listdir(folder)} == before


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_a_symlinked_target_is_written_through(tmp_path):
    path = make_project(tmp_path)
    real_dir = tmp_path / "shared"
    real_dir.mkdir()
    real = real_dir / "latest.jsonl"
    real.write_text("old\n")
    os.chmod(real, 0o664)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "clean.jsonl"
    os.symlink(real, out)
    result = export(path, out)
    assert os.path.islink(out) and os.readlink(out) == str(real)
    assert len(real.read_text().splitlines()) == 10
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o664
    assert result.counts["train"] == 10
    assert sorted(os.listdir(real_dir)) == ["latest.jsonl"]


def test_atomic_write_helper_keeps_mode_and_follows_links(tmp_path):
    from ftcurate.core.io.fileio import write_text_atomic

    target = tmp_path / "cfg.json"
    target.write_text("{}")
    os.chmod(target, 0o640)
    link = tmp_path / "link.json"
    os.symlink(target, link)
    write_text_atomic(str(link), '{"a": 1}')
    assert os.path.islink(link) and target.read_text() == '{"a": 1}'
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    os.chmod(target, 0o440)
    with pytest.raises(OSError, match="read-only"):
        write_text_atomic(str(target), "x")
    assert target.read_text() == '{"a": 1}'


# -- 19: strict JSON --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,name", [("openai-chat", "clean.jsonl"), ("alpaca", "clean.json"),
                                      ("csv", "clean.csv"), ("parquet", "clean.parquet")])
def test_nan_and_infinity_in_metadata_are_written_as_null(tmp_path, fmt, name):
    (tmp_path / "proj").mkdir()
    data = tmp_path / "proj" / "data.jsonl"
    data.write_text("".join(
        '{"messages": [{"role": "user", "content": "q%d"}, {"role": "assistant", "content": "a%d"}], '
        '"metadata": {"score": NaN, "hi": Infinity, "lo": [-Infinity, 1.5], "ok": %d}}\n' % (i, i, i)
        for i in range(3)))
    path = str(tmp_path / "proj" / "p.ftcurate")
    with Project.create(path) as p:
        import_dataset(p, str(data))
        p.approve(p.ids())
    out = tmp_path / "out" / name
    export(path, out, fmt=fmt)
    if fmt == "parquet":
        import pyarrow.parquet as pq
        metas = [strict_json(m)["metadata"] for m in pq.read_table(out).column("metadata").to_pylist()]
    elif fmt == "csv":
        with open(out, newline="", encoding="utf-8") as f:
            metas = [strict_json(r["metadata"])["metadata"] for r in csv.DictReader(f)]
    elif name.endswith(".json"):
        metas = [o.get("metadata", o) for o in strict_json(out.read_text())]
    else:
        metas = [strict_json(line)["metadata"] for line in out.read_text().splitlines()]
    assert len(metas) == 3
    for i, m in enumerate(metas):
        assert m["score"] is None and m["hi"] is None and m["lo"] == [None, 1.5] and m["ok"] == i
    card = (tmp_path / "out" / "clean.card.md").read_text()
    assert "NaN" in card and "null" in card
