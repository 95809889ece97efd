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
	$(PY) -m mypy stream export dfstream
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy stream export dfstream

demo: $(STAMP)
	@echo "The streaming demo arrives with the streaming detector; for now see 'dfstream --help'."
	$(VENV)/bin/dfstream --help

clean-venv:
	rm -rf $(VENV)
