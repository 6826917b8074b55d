# The README's two commands are `make demo` and `make test`; both run `make setup` first.
VENV ?= .venv
PY := $(VENV)/bin/python
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= osmesa

.PHONY: setup test demo bench teleop
setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The trained policy with the shadow and the monitor (launch/demo.launch.xml; ARGS="driver:=expert"
# for the scripted expert). -v: the verdicts at the end (task, monitor session, shadow) are INFO logs.
demo: setup
	$(VENV)/bin/a2w -v launch launch/demo.launch.xml $(ARGS)

# VR teleop on the sim rig with the recorder: prints the page's address (docs: README "VR teleop")
teleop: setup
	$(VENV)/bin/a2w launch launch/teleop.launch.xml $(ARGS)

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
