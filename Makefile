# Flow models and implicit networks: set-up, course, tests.
#   make lab       create or reuse .venv, then start JupyterLab on the course
#   make test      create or reuse .venv, then run every test and execute every notebook
#   make lectures  regenerate the student notebooks in lectures/ from solutions/
#   make bench     time every flow layer (forward and inverse), CPU and CUDA if present
#   make env       only create or update .venv (e.g. on a JupyterHub)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := lectures solutions

.PHONY: env lab test test-lib test-notebooks lectures bench clean-venv

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $(STAMP)

env: $(STAMP)

# Jupyter refuses to run as root unless told; containers and some hubs run as root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

# LAB_ARGS go to JupyterLab (e.g. LAB_ARGS="--port=8890 --no-browser"); LAB_ROOT serves another
# copy of the course (the browser tests serve a temporary one).
LAB_ROOT ?= .
LAB_ARGS ?=

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=$(LAB_ROOT) $(ROOT_FLAG) $(LAB_ARGS) $(LAB_ROOT)/lectures/00_start_here.ipynb

# One pytest run: library tests in tests/, every docstring example in course_utils/
# (doctests), and every notebook in both folders, top to bottom, in the kernel of this
# project's own environment.
test: $(STAMP)
	$(BIN)/python -m pytest tests course_utils $(NOTEBOOKS) --doctest-modules --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=900 --durations=15

test-lib: $(STAMP)
	$(BIN)/python -m pytest tests course_utils --doctest-modules

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest $(NOTEBOOKS) --nbval-lax --nbval-current-env --durations=0

lectures: $(STAMP)
	$(BIN)/python -m course_utils.lectures solutions lectures

bench: $(STAMP)
	$(BIN)/python tests/bench_flows.py

clean-venv:
	rm -rf $(VENV)
