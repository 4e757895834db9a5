# hepx: `make up` starts the whole stack on a local devnet; `make test` runs every test.
# Both install what they need first (a .venv from pyproject.toml, node_modules from package.json).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_PY   := $(VENV)/.installed
STAMP_NODE := node_modules/.installed
WHEELS     ?= $(HOME)/.cache/hepx/wheels
LLAMA_CPP_VERSION := 0.3.36

.PHONY: up test demo demo-workflow install compile check-artifacts bench lint clean images llama-wheel

up: install
	$(BIN)/hepx devnet up

test: install
	$(BIN)/pytest

demo: install
	bash scripts/demo.sh

# The dijet workflow (generate x4 seeds -> analyze -> merge) on a devnet: ~2-3 minutes.
demo-workflow: install
	bash scripts/demo-workflow.sh

install: $(STAMP_PY) $(STAMP_NODE)

$(STAMP_PY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(MAKE) llama-wheel
	$(BIN)/pip install --quiet --find-links $(WHEELS) -e '.[hep,dev,containers,llm]'
	touch $@

# llama-cpp-python ships only sources (~8 min to compile): build its wheel once per machine,
# portable (no -march=native), outside the repo; pip then installs it from $(WHEELS).
llama-wheel:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS=-DGGML_NATIVE=OFF $(BIN)/pip wheel --quiet --no-deps -w $(WHEELS) \
	    'llama-cpp-python==$(LLAMA_CPP_VERSION)'

$(STAMP_NODE): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# Local images for the container tests (no registry needed; cached): needs root and an engine
# (scripts/dockerd.sh starts one and prints the DOCKER_HOST to export).
images: install
	bash scripts/images.sh

# Recompile the contracts into hepx/artifacts (needs node_modules/solc and py-solc-x).
compile: install
	$(BIN)/python scripts/compile.py

check-artifacts: install
	$(BIN)/python scripts/compile.py --check

# Ape (issue 3): its own venv, since Ape pins web3 7 and the runtime uses web3 8 (~70 s, 390 MB).
# `make ape-check` compiles with Ape (same ABIs as hepx/artifacts), runs tests/ape, deploys.
APE_VENV := .venv-ape
.PHONY: ape-venv ape-check
ape-venv: $(APE_VENV)/.installed
$(APE_VENV)/.installed:
	test -x $(APE_VENV)/bin/python || $(PYTHON) -m venv $(APE_VENV)
	$(APE_VENV)/bin/pip install --quiet eth-ape==0.8.51 ape-foundry==0.8.12 ape-solidity==0.8.6
	touch $@
ape-check: ape-venv $(STAMP_NODE)
	bash scripts/ape_check.sh

bench: install
	$(BIN)/python bench/gas.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/llm.py

lint: install
	$(BIN)/ruff check hepx agent api scripts bench tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
