# Two set-up commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/ketamine-response
DEMO   := demo-out
# LightGBM's OpenMP threads spin-wait under load; passive waiting keeps CV loops fast on 2 cores.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	@mkdir -p $(DEMO)
	$(CLI) synth --describe | head -12
	$(CLI) synth --n 300 --seed 7 --out $(DEMO)/cohort.csv --oracle $(DEMO)/oracle.csv
	$(CLI) validate $(DEMO)/cohort.csv --problems $(DEMO)/problems.csv
	$(CLI) features $(DEMO)/cohort.csv --target response_24h --out $(DEMO)/features_response_24h.csv
	$(CLI) train $(DEMO)/cohort.csv --target response_24h
	$(CLI) runs
	@echo "--- a messy file: every problem by row and column (exit code 1 is expected) ---"
	$(CLI) validate data/examples/messy_cohort.csv --problems $(DEMO)/messy-problems.csv; test $$? -eq 1

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/synth_speed.py
	$(PY) benchmarks/synth_calibration.py
	$(PY) benchmarks/features_speed.py
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf $(VENV) $(DEMO) mlruns/[0-9]* mlflow.db
