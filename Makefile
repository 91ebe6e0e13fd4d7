# Flow models and implicit networks: set-up, course, tests.
#   make lab       create or reuse .venv, then start JupyterLab on the course
#   make test      create or reuse .venv, then run every test and execute every notebook
#                  (the browser tests too, where Chromium is installed)
#   make test-browser  only the browser tests: every lecture notebook in JupyterLab in Chromium
#   make test-offline  make test with the network cut (loopback only), as CI runs it
#   make lectures  regenerate the student notebooks in lectures/ from solutions/ (MODEL_ANSWERS=no
#                  leaves out the collapsed model answers under written questions, for
#                  instructors who grade those questions)
#   make bench     time every solution notebook and every flow layer; writes README's tables
#   make bench-peers  the course's flows beside zuko and normflows; writes README's peer tables
#   make grade SUBMISSIONS=dir   grade a class: run every student notebook, collect every check
#   make env       only create or update .venv (e.g. on a JupyterHub)
#   make site      the course as a static website, every student notebook executed (build/site/lectures/html)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
SITE_STAMP := $(VENV)/.installed-site
NOTEBOOKS := lectures solutions

.PHONY: env test-env test-browser test-offline lab test test-lib test-notebooks lectures bench bench-peers grade clean-venv site

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $(STAMP)

env: $(STAMP)

# Packages only the tests need (requirements-test.txt: playwright, which drives Chromium).
$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(BIN)/python -m pip install -r requirements-test.txt
	touch $(TEST_STAMP)

test-env: $(TEST_STAMP) $(SITE_STAMP)

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
# project's own environment. The browser tests (tests/test_browser.py) run where Chromium is
# installed and are skipped, with one line saying how to install it, where it is not.
# TEST_WORKERS processes share the work file by file; --dist loadgroup with the groups of the root
# conftest.py keeps a notebook's two runs (lectures/ then solutions/, each cell sharing one kernel)
# and tests/test_same_numbers.py's comparison of them in one process; TEST_WORKERS=0 runs
# everything in one process.
TEST_WORKERS ?= 2
test: $(TEST_STAMP) $(SITE_STAMP)
	$(BIN)/python -m pytest tests course_utils $(NOTEBOOKS) --doctest-modules --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=900 --durations=15 -n $(TEST_WORKERS) --dist loadgroup

test-lib: $(STAMP)
	$(BIN)/python -m pytest tests course_utils --doctest-modules

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest $(NOTEBOOKS) --nbval-lax --nbval-current-env --durations=0

test-browser: $(TEST_STAMP)
	$(BIN)/python -m pytest tests/test_browser.py tests/test_make_lab.py --durations=0

# The environment is brought up to date online first; then nothing may download.
test-offline: $(TEST_STAMP) $(SITE_STAMP)
	.ci/offline $(MAKE) test

MODEL_ANSWERS ?= yes
lectures: $(STAMP)
	$(BIN)/python -m course_utils.lectures solutions lectures $(if $(filter no,$(MODEL_ANSWERS)),--no-model-answers)

# make bench NOTEBOOKS_GLOB='0[01]*' times only those solution notebooks (no flow layers).
NOTEBOOKS_GLOB ?=
bench: $(STAMP)
	$(BIN)/python tests/bench_notebooks.py --readme README.md \
		$(if $(NOTEBOOKS_GLOB),$(foreach g,$(NOTEBOOKS_GLOB),'$(g)'),--flows)

# make bench-peers installs the peers (requirements-peers.txt: zuko, normflows; never needed by
# students or make test) and trains the course's models and the peers on the same data, loop and
# split, one after another on one thread, at equal steps and at equal time (tests/bench_peers.py);
# writes both tables into README.md. PEERS_ARGS='--seeds 3', '--only digits', '--steps-2d 500'.
PEERS_ARGS ?=
bench-peers: $(STAMP) requirements-peers.txt
	$(BIN)/python -m pip install -r requirements-peers.txt
	$(BIN)/python tests/bench_peers.py --readme README.md $(PEERS_ARGS)

# make grade SUBMISSIONS=folder runs every student notebook under it in a fresh kernel and writes
# grades.csv and summary.md (course_utils/grade.py); GRADE_ARGS='--timeout 900 --jobs 2 --out dir'.
grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=folder [GRADE_ARGS='--jobs 2 --cell-timeout 300'] (needs bubblewrap)" >&2; exit 2; }
	$(BIN)/python -m course_utils.grade "$(SUBMISSIONS)" $(GRADE_ARGS)

# make site builds the course's website into build/site/lectures/html (open index.html; it needs no
# network); make site SITE=solutions builds the instructors' version into build/site/solutions/html.
# Notebooks are executed with jupyter-cache (build/site/jupyter-cache): an unchanged notebook is not
# run again. SITE_JOBS notebooks run at a time (one torch thread each). The site's tools are pinned in
# requirements-site.txt, which make test-env installs too (make test builds and tests the site).
SITE ?= lectures
SITE_JOBS ?= 1
$(SITE_STAMP): $(STAMP) requirements-site.txt
	$(BIN)/python -m pip install -r requirements-site.txt
	touch $(SITE_STAMP)

site: $(SITE_STAMP)
	$(BIN)/python site/build.py --site $(SITE) --jobs $(SITE_JOBS)

clean-venv:
	rm -rf $(VENV)
