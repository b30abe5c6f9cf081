# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SAMPLE := $(firstword $(sort $(wildcard resources/sample/*.jsonl)))

.PHONY: run test venv clean benchmark

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first: 2.13.0 is a local CPU wheel here; a plain requirement would pull a CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@# Qt's X11 plugin needs a few system libraries: say which ones to install, if any are missing
	@$(PY) -m ftcurate.gui.qtlibs
	$(VENV)/bin/ftcurate-gui "$(SAMPLE)"

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -n 2 --dist loadgroup --max-worker-restart 0 -q tests

benchmark: $(STAMP)
	$(PY) benchmarks/bench_load.py

clean:
	rm -rf $(VENV) build dist *.egg-info
