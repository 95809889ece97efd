# The two commands a newcomer types: `make demo` and `make test`.
# ORT_BUILD=gpu installs onnxruntime-gpu instead of onnxruntime (never both: they share a folder).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
ORT_BUILD ?= cpu
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(ORT_BUILD)

.PHONY: test lint typecheck check demo clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(PY)
	@if [ "$(ORT_BUILD)" = "gpu" ]; then $(PY) -m pip uninstall --yes --quiet onnxruntime; \
	else $(PY) -m pip uninstall --yes --quiet onnxruntime-gpu; fi
	$(PY) -m pip install --quiet -e ".[$(ORT_BUILD),train,dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(MAKE) --no-print-directory typecheck
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

# mypy cannot follow setuptools' package-dir mapping (dfstream.stream -> stream/), so it checks a
# tree of symlinks laid out as the installed package is; without it every dfstream import is Any.
MYPY_ROOT := build/typecheck
DFSTREAM_MODULES := $(filter-out __init__,$(basename $(notdir $(wildcard dfstream/*.py))))
typecheck: $(STAMP)
	@rm -rf $(MYPY_ROOT) && mkdir -p $(MYPY_ROOT)/dfstream
	@ln -s $(CURDIR)/dfstream/*.py $(MYPY_ROOT)/dfstream/
	@for d in stream export models benchmarks; do ln -s $(CURDIR)/$$d $(MYPY_ROOT)/dfstream/$$d; done
	cd $(MYPY_ROOT) && $(CURDIR)/$(PY) -m mypy --config-file $(CURDIR)/pyproject.toml \
		-p dfstream.stream -p dfstream.export -p dfstream.benchmarks -m dfstream $(patsubst %,-m dfstream.%,$(DFSTREAM_MODULES))

# The demo needs only the runtime (no TensorFlow, no torch), in its own environment.
DEMO_VENV ?= .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed-$(ORT_BUILD)

$(DEMO_STAMP): pyproject.toml
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	@if [ "$(ORT_BUILD)" = "gpu" ]; then $(DEMO_VENV)/bin/python -m pip uninstall --yes --quiet onnxruntime; \
	else $(DEMO_VENV)/bin/python -m pip uninstall --yes --quiet onnxruntime-gpu; fi
	$(DEMO_VENV)/bin/python -m pip install --quiet -e ".[$(ORT_BUILD)]"
	@rm -f $(DEMO_VENV)/.installed-*
	@touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	@mkdir -p out
	$(DEMO_VENV)/bin/dfstream run --out out/demo.jsonl --video out/demo.mp4 --summary-json out/demo-summary.json
	@echo "wrote out/demo.jsonl, out/demo.mp4 and out/demo-summary.json"

clean-venv:
	rm -rf $(VENV) $(DEMO_VENV)
