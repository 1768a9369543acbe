# The two commands of the README: `make demo` (the main job on the default dataset) and
# `make test`. Each installs what is missing first; on a prepared machine nothing is installed.
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= shoes
export HF_HUB_OFFLINE ?= 1
export FIFTYONE_DO_NOT_TRACK ?= true
# The shared copy of the shoes set beside this checkout, when there is one (see datasets/README.md).
SHARED_SHOES := $(abspath ../shared/datasets/shoes)
ifneq ($(wildcard $(SHARED_SHOES)/train),)
export CURATION_SHOES_DIR ?= $(SHARED_SHOES)
endif

.PHONY: install doctor demo test bench

install:
	VENV=$(VENV) bash scripts/install.sh

doctor: install
	$(PY) -m curation.doctor

demo: doctor
	$(PY) -m curation run $(DATA)

# The tests run in a network namespace with nothing but loopback: nothing they start can reach
# out, and the Ray tests' local cluster takes 127.0.0.1 as its node address (scripts/loopback_only.sh).
test: doctor
	bash scripts/loopback_only.sh $(PY) -m pytest -q

bench: doctor
	$(PY) bench/bench_scan.py
	$(PY) bench/bench_run.py
