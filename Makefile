# The README's two commands are `make demo` and `make test`; both set up whatever is missing.
PY := .venv/bin/python
NODES ?= 32

.PHONY: demo test setup up down status seed molecule lint bench-inventory bench-jobs bench-bios bench-image bench-fabric bench-placement bench-schedulers

demo: setup
	$(PY) -m lab demo --nodes $(NODES)

# Services and the test fleet come up before pytest, so a first run's NetBox migration (minutes) is not counted
# against any test's timeout. pytest runs in TEST_WORKERS parallel workers (pytest-xdist), each on a lab of its own
# (lab/workers.py), each test file on one worker, the longest first (tests/conftest.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3

test: setup
	$(PY) -m lab seed --nodes 32
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder)

setup:
	@bin/setup

up: setup
	$(PY) -m lab up

down:
	@$(PY) -m lab down

status:
	@$(PY) -m lab status

seed: setup
	$(PY) -m lab seed --nodes $(NODES)

molecule: setup  # every role's Molecule scenario, including those whose triplet CI runs in pytest
	GPUCLOUD_MOLECULE=all $(PY) -m pytest tests/test_molecule.py

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ansible-lint --offline -p playbooks roles

bench-inventory: setup
	$(PY) bench/inventory.py

bench-jobs: setup
	$(PY) bench/jobs.py

bench-bios: setup
	$(PY) bench/bios.py

bench-image: setup
	$(PY) bench/image.py

bench-fabric: setup
	$(PY) bench/fabric.py

bench-placement: setup
	$(PY) bench/placement.py

bench-schedulers: setup
	$(PY) bench/schedulers.py
