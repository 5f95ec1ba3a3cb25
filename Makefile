# The two commands of the README: `make demo` and `make test`.
# Each creates .venv with the pinned dependencies first (constraints.txt pins
# every transitive package too).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
PROVENANCE_STAMP := $(VENV)/.installed-provenance

.PHONY: setup demo test test-fast lint bench bench-gateway clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The tests also run the Spark engine (the optional extra). Its Java 17+ runtime, like
# redis-server, is installed by the tests' fixtures with apt-get when missing (README:
# "What the commands install").
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	touch $(SPARK_STAMP)

# The provenance extra (transformers and torch, for the watermark's logits processor and
# the radioactivity tests): torch first and pinned, so pip takes the CPU build on disk
# instead of pulling a multi-GB CUDA one, then the rest with the constraints.
$(PROVENANCE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,provenance]'
	touch $(PROVENANCE_STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/distillguard demo

lint: setup
	$(BIN)/ruff check distillguard tests benchmarks

test: lint $(SPARK_STAMP) $(PROVENANCE_STAMP)
	$(BIN)/python -m pytest -q -n 2

# The inner loop: everything but the tests marked slow (whole simulations and
# scans, Spark, servers); `make test` stays the full suite.
test-fast: lint $(SPARK_STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

bench: setup
	$(BIN)/python benchmarks/ingest.py

# Gateway overhead against a direct call and LiteLLM (installs LiteLLM into its own
# venv under /tmp on first use).
bench-gateway: setup
	$(BIN)/python benchmarks/gateway.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache
