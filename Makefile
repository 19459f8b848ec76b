# Two commands do all the set-up on a fresh machine (Python 3.10 to 3.13; PYTHON=python3.13 picks one):
#   make ddpg     creates .venv, installs requirements-dev.txt (requirements.txt, plus pytest, the notebook's
#                 kernel, ruff and Stable-Baselines3 for the benchmarks' tests), trains DDPG on LunarLanderContinuous-v2
#   make test     the same set-up, then runs the test suite
#   make sac      the same set-up, trains SAC on LunarLanderContinuous-v2
#   make lint     ruff (configured in pyproject.toml) over the whole repository, the notebook included
#   make test-gym the lecture's gym 0.26.2 stack (requirements-gym.txt, Python 3.10 to 3.12) in .venv-gym, with
#                 gymnasium beside it as on Colab and RLHARNESS_GYM=gym choosing gym: a smoke set (both agents'
#                 equations, a few episodes, --evaluate, --resume, the legacy checkpoints, the envs)
# Extra flags for the scripts go in ARGS, e.g. `make ddpg ARGS="--seed 1 --episodes 300"`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GYM_VENV := .venv-gym
GYM_SMOKE := tests/test_ddpg.py tests/test_sac.py tests/test_envs.py tests/test_legacy.py \
	tests/test_main.py::test_script_from_inside_its_folder_writes_checkpoint_plot_and_csv \
	tests/test_run.py::test_resume_with_saved_buffer_gives_the_scores_of_an_uninterrupted_run

.PHONY: setup ddpg evaluate-ddpg sac evaluate-sac test test-gym lint clean

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

$(GYM_VENV)/.installed: requirements-gym.txt pyproject.toml
	$(PYTHON) -m venv $(GYM_VENV)
	$(GYM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(GYM_VENV)/bin/python -m pip install --quiet -r requirements-gym.txt pytest==9.0.3 gymnasium==1.4.0
	touch $@

test-gym: $(GYM_VENV)/.installed
	RLHARNESS_GYM=gym $(GYM_VENV)/bin/python -m pytest -q $(GYM_SMOKE) $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(GYM_VENV) .pytest_cache .ruff_cache rlharness.egg-info
