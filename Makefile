# One command sets up, one runs the tests: `make setup`, `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup test test-fast lint lock bench clean train

setup: $(VENV)/.installed

# System packages first (a Java runtime, Fashion-MNIST): installed as root with apt-get, else the
# command that installs them is printed. SMGLUON_SYSTEM_PACKAGES=skip installs nothing.
$(VENV)/.installed: requirements/lock.txt setup.py
	sh requirements/system-packages.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements/lock.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation --use-pep517 -e .
	touch $@

# Two workers, a test file each at a time: most tests wait on model servers and jobs, so two workers
# keep two cores busy; a file's tests stay together (module fixtures train once).
PYTEST_WORKERS ?= -n 2 --dist loadfile

test: setup
	$(BIN)/python -m pytest $(PYTEST_WORKERS)

test-fast: setup
	$(BIN)/python -m pytest $(PYTEST_WORKERS) -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Re-resolve requirements/base.in into a fresh lock file.
lock:
	rm -rf /tmp/smgluon-lock && $(PYTHON) -m venv /tmp/smgluon-lock
	/tmp/smgluon-lock/bin/pip install -q -r requirements/base.in
	/tmp/smgluon-lock/bin/pip freeze --exclude-editable | grep -v "^smgluon" > requirements/lock.txt && printf "setuptools==65.5.0\nwheel==0.44.0\n" >> requirements/lock.txt

# Every benchmark, one after another, then bench/results.md (see bench/__main__.py; about an hour).
bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info lib/*.egg-info .pytest_cache

# The main job (README): fetch Fashion-MNIST, train fmnist_cnn as a local SageMaker training job,
# deploy it, classify test images through the endpoint, draw the learning curve. EPOCHS=N to change.
EPOCHS ?=
train: setup
	$(BIN)/smgluon quickstart $(if $(EPOCHS),--epochs $(EPOCHS))
