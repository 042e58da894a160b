# epochviz: two commands a newcomer needs.
#   make lab    set everything up (first time only), then open JupyterLab on the first notebook
#   make test   set everything up (first time only), then run every check CI runs
# Everything lives in ./.venv; delete it (make clean) to start from nothing.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# JupyterLab refuses to run as root unless told to (CI and containers run as root)
AS_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test pytest nbval-native nbval-default nbval-avx2 nbval-avx512 lint notebooks browser browser-report bench html present lock compat clean

# opens (and prints the address of) the first notebook, not the Launcher; no "get Jupyter news?" prompt.
# LAB_ARGS adds options, e.g. make lab LAB_ARGS="--no-browser --ServerApp.port=0"
LAB_ARGS ?=
lab: $(STAMP)
	mkdir -p $(VENV)/share/jupyter/lab/settings && cp tools/lab-overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 $(AS_ROOT) --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb \
	  $(LAB_ARGS)

# pytest over tests/ (browser tests included; the longest, so it starts first) beside strict nbval once per
# CPU kernel path this machine can run (epochviz.hardware.cpu_kernel_paths: default, avx2, avx512 where present),
# two passes at a time (one per core), each printing its report whole when it ends. nbval-native runs the
# best path (torch's own choice); every plainer one is forced with ATEN_CPU_CAPABILITY, so a saved output that
# only some paths reproduce fails here, not on the next machine. On AVX-512: pytest on one core; native, then
# avx2, then default on the other (the last moves to the first core when pytest ends first).
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
NBVAL := $(PYTEST) notebooks --nbval --nbval-current-env --nbval-sanitize-with tests/nbval-sanitize.cfg
# every path but the best, plainest last (expanded when `test` runs, after .venv exists): "avx2 default"
PLAINER_PATHS = $(shell $(BIN)/python -c "from epochviz.hardware import cpu_kernel_paths; print(*cpu_kernel_paths()[-2::-1])")

test: $(STAMP) browser
	$(MAKE) --no-print-directory -j2 --output-sync=target pytest nbval-native $(PLAINER_PATHS:%=nbval-%)

pytest: $(STAMP)
	$(PYTEST) tests

nbval-native: $(STAMP)
	$(NBVAL)

# one forced kernel path each (`make test` runs only those this CPU has: a path it lacks would crash torch)
nbval-default nbval-avx2 nbval-avx512: nbval-%: $(STAMP)
	ATEN_CPU_CAPABILITY=$* $(NBVAL)

# the virtual environment, rebuilt only when the dependencies change
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $@

# the browser tests drive Debian's Chromium (Playwright cannot download its own here)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "make browser: could not install chromium; browser tests will be skipped"; \
	  else echo "make browser: no chromium and no root apt-get; browser tests will be skipped"; fi; }

# re-run the notebooks in place (after changing them or the package); nbval then checks they reproduce.
# Chromium draws each figure's static image (tools/figure_images.py); without it, a warning and no images
notebooks: $(STAMP) browser
	$(BIN)/python tools/execute_notebooks.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# the notebooks as apps for a class (Voilà): code hidden, widgets live, nothing fetched from the network;
# open the URL it prints (add ?size=large to a notebook's address for a projector). Each notebook is run
# ahead in a waiting kernel (preheat), so the first visit shows it at once; start it a minute before class.
# (Without Notebook 7's JupyterLab extension, which fails in Voilà's page; tests/browser/conftest.py says how.)
VOILA := JUPYTER_PATH=$(CURDIR)/tools/jupyter $(BIN)/voila --template=epochviz \
  --VoilaConfiguration.extension_denylist="['@jupyter-notebook/lab-extension']"
present: $(STAMP)
	$(VOILA) --no-browser --Voila.ip=127.0.0.1 --strip_sources=True --Voila.auto_token=True \
	  --preheat_kernel=True --pool_size=1 notebooks/

# every notebook as a self-contained page in site/ that opens from disk: no kernel, no internet
html: $(STAMP)
	$(BIN)/python tools/export_html.py --out site

# the browser tests, writing their screenshots over docs/images/ and their latencies to benchmarks/browser.md
browser-report: $(STAMP) browser
	EPOCHVIZ_UPDATE_DOCS=1 $(BIN)/python -m pytest tests/browser -q

# speed and memory, as ratios measured side by side; writes benchmarks/results.md (about a minute)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# epochviz on the versions Colab and Kaggle ship (tools/compat/*.txt), one environment each (.venv-compat-*):
# torch first (so nothing pulls a CUDA build), then the platform's versions, then epochviz; tests/compat checks
# that installing epochviz replaced none of them and that every figure and explorer works on them (the
# Python side; their browser side cannot run here). Not part of `make test`: the first run takes minutes.
PLATFORMS := colab kaggle
compat: $(PLATFORMS:%=.venv-compat-%/.installed)
	for platform in $(PLATFORMS); do echo "== $$platform"; \
	  EPOCHVIZ_PLATFORM=tools/compat/$$platform.txt .venv-compat-$$platform/bin/python -m pytest -p no:cacheprovider \
	    -W ignore::DeprecationWarning tests/compat -q || exit 1; done

.venv-compat-%/.installed: tools/compat/%.txt pyproject.toml
	test -x .venv-compat-$*/bin/python || $(PYTHON) -m venv .venv-compat-$*
	.venv-compat-$*/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	.venv-compat-$*/bin/python -m pip install --quiet --disable-pip-version-check -r tools/compat/$*.txt pytest
	.venv-compat-$*/bin/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

# re-pin constraints.txt from a fresh environment (after editing pyproject.toml)
lock:
	rm -rf /tmp/epochviz-lock && $(PYTHON) -m venv /tmp/epochviz-lock
	/tmp/epochviz-lock/bin/pip install --quiet torch==2.13.0 -e ".[dev]"
	{ sed -n '1,4p' constraints.txt; echo "torch==2.13.0"; \
	  /tmp/epochviz-lock/bin/pip freeze --exclude-editable | grep -v '^torch==' \
	  | sed 's/$$/ ; python_version == "3.11"/'; } > constraints.new && mv constraints.new constraints.txt

clean:
	rm -rf $(VENV) .venv-compat-* .pytest_cache .ruff_cache .hypothesis
