# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make ddpg   creates .venv, installs requirements.txt, trains DDPG on LunarLanderContinuous-v2
#   make test   the same set-up plus pytest, then runs the test suite
#   make sac    the same set-up, trains SAC on LunarLanderContinuous-v2
#   make lint   ruff (configured in pyproject.toml) over the whole repository, the notebook included
# Extra flags for the scripts go in ARGS, e.g. `make ddpg ARGS="--seed 1 --episodes 300"`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup ddpg evaluate-ddpg sac evaluate-sac test lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt benchmarks/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

ddpg: setup
	$(PY) DDPG/main_ddpg.py $(ARGS)

evaluate-ddpg: setup
	$(PY) DDPG/main_ddpg.py --evaluate 10 $(ARGS)

sac: setup
	$(PY) SAC/main_sac.py $(ARGS)

evaluate-sac: setup
	$(PY) SAC/main_sac.py --evaluate 10 $(ARGS)

test: setup
	$(PY) -m pytest -q tests $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache rlharness.egg-info
