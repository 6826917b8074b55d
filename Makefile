# The README's two commands are `make demo` and `make test`; both run `make setup` first.
VENV ?= .venv
PY := $(VENV)/bin/python
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= osmesa

.PHONY: setup test demo bench
setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/a2w launch launch/sim.launch.xml $(ARGS)

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
