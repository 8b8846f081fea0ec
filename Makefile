# The two commands of the README: `make demo` and `make test`. Each sets up .venv on its own.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/aedfleet demo

test: $(STAMP)
	$(VENV)/bin/ruff check fleet device_agents alarm_core web tests tools
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/aedfleet bench readiness
	$(VENV)/bin/aedfleet bench import

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
