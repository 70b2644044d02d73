# Two commands for a fresh machine:  `make run` (set up + open the workbench) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
# Caches stay inside the project, never in the user's home (Hugging Face, datasets, torch extensions,
# built-in tiny models, trl schema).
CACHE  := $(CURDIR)/.cache
export HF_HOME              := $(CACHE)/huggingface
export HF_DATASETS_CACHE    := $(CACHE)/huggingface/datasets
export TORCH_EXTENSIONS_DIR := $(CACHE)/torch_extensions
export WORKBENCH_CACHE      := $(CACHE)/workbench
export TOKENIZERS_PARALLELISM := false

.PHONY: run test setup demo bench gpu-check clean assets

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt torch
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e '.[test,serve]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/workbench

demo: $(STAMP)
	$(VENV)/bin/workbench pipeline recipes/demo

# Built once after the install: the project's bytecode, the built-in models and DeepSpeed's CPU ops (compiled),
# so no test waits for them.
PREBUILT := $(CACHE)/.prebuilt
$(PREBUILT): $(STAMP) scripts/prebuild.py workbench/train/tiny_chat.py workbench/train/builtin.py
	HF_HUB_OFFLINE=1 $(PY) scripts/prebuild.py
	touch $(PREBUILT)

# Two pytest-xdist workers: the tests that start real trainers and the fault tests run one after another
# on one of them (one scope of the scheduler in tests/conftest.py), the light tests on the other. Most of
# the suite waits or uses one core: on 2 cores this takes about three quarters of a serial run.
# One file runs serially: `.venv/bin/pytest FILE`.
test: $(STAMP) $(PREBUILT)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n 2

bench: $(STAMP)
	$(PY) -m benchmarks

# On a GPU machine, under 8 minutes: SFT/GRPO tokens/s vs plain trl, vLLM colocate, QLoRA, ZeRO memory vs the
# estimate (benchmarks/gpu_check.py). Without a GPU it says so and exits at once.
gpu-check: $(STAMP)
	$(PY) -m benchmarks.gpu_check

assets:
	$(PYTHON) scripts/make_assets.py

clean:
	rm -rf $(VENV) $(CACHE) .pytest_cache
