# Two set-up commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/ketamine-response
DEMO   := demo-out
# the model version the demo's train registered (read from its output)
DEMO_MODEL = $$(sed -n 's\#.*registered: \([^ ]*\) version \([0-9]*\).*\#models:/\1/\2\#p' $(DEMO)/train.txt)
# pipefail: a failing step piped into tee must still stop the demo
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# LightGBM's OpenMP threads spin-wait under load; passive waiting keeps CV loops fast on 2 cores.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: demo demo-real test lint bench clean browser system server-demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,spark,server]'
	touch $@

demo: $(VENV)/.installed
	@mkdir -p $(DEMO)
	$(CLI) synth --describe | head -12
	$(CLI) synth --n 300 --seed 7 --out $(DEMO)/cohort.csv --oracle $(DEMO)/oracle.csv
	$(CLI) validate $(DEMO)/cohort.csv --problems $(DEMO)/problems.csv
	$(CLI) features $(DEMO)/cohort.csv --target response_24h --out $(DEMO)/features_response_24h.csv
	$(CLI) train $(DEMO)/cohort.csv --target response_24h | tee $(DEMO)/train.txt
	$(CLI) runs
	$(CLI) report $$(sed -n 's/^MLflow run: \([0-9a-f]*\).*/\1/p' $(DEMO)/train.txt) --out $(DEMO)/report
	@# 300 courses are below the minimum sample size, so the version has no alias: name it by number
	$(CLI) explain $(DEMO)/cohort.csv --model $(DEMO_MODEL) \
	  --patient $$(sed -n '2s/,.*//p' $(DEMO)/cohort.csv) --out $(DEMO)/explain.png
	@echo "--- a messy file: every problem by row and column (exit code 1 is expected) ---"
	$(CLI) validate data/examples/messy_cohort.csv --problems $(DEMO)/messy-problems.csv; test $$? -eq 1
	@echo "--- scoring it: valid rows scored, the rest quarantined with their reasons ---"
	$(CLI) score data/examples/messy_cohort.csv --out $(DEMO)/messy-scores.csv --explain 3 \
	  --model $(DEMO_MODEL)
	@echo "--- real patients: OpenNeuro ds005917 ---"
	$(MAKE) --no-print-directory demo-real

# The pipeline on real patients: OpenNeuro ds005917 (NIMH ketamine crossover, CC0), shipped in data/public/.
demo-real: $(VENV)/.installed
	@mkdir -p $(DEMO)
	$(CLI) ingest bids data/public/openneuro-ds005917 --out $(DEMO)/ds005917.csv
	$(CLI) validate $(DEMO)/ds005917.csv
	$(CLI) train $(DEMO)/ds005917.csv --target response_day2 --config train_small \
	  --experiment ds005917 | tee $(DEMO)/ds005917-train.txt
	$(CLI) train $(DEMO)/ds005917.csv --target pct_change_day2 --config train_small \
	  --experiment ds005917 | tee $(DEMO)/ds005917-pct-train.txt

# A team tracking server on PostgreSQL (a throwaway cluster), two members training at once, compared with `runs`.
server-demo: $(VENV)/.installed system
	CLI=$(abspath $(CLI)) bash scripts/server_demo.sh

# The report test renders HTML in a real headless browser: Debian's chromium (installed when missing, as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: run 'sudo apt-get install chromium' (the browser test is skipped outside CI)"; fi; }

# Lint, type and import-contract checks first: seconds, and they fail the run on any error.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Spark needs Java; the team-server tests need PostgreSQL. Installed when missing (as root), as chromium is.
system:
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; \
	  else echo "java missing: run 'sudo apt-get install default-jre-headless' (Spark tests are skipped outside CI)"; fi; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "PostgreSQL missing: run 'sudo apt-get install postgresql' (server tests are skipped outside CI)"; fi; }

# Two workers (pytest-xdist): tests that share a trained model or a module's fixtures run in one (tests/conftest.py)
test: $(VENV)/.installed browser system lint
	$(PY) -m pytest -q -n 2

bench: $(VENV)/.installed
	$(PY) benchmarks/synth_speed.py
	$(PY) benchmarks/synth_calibration.py
	$(PY) benchmarks/features_speed.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/shap_speed.py
	$(PY) benchmarks/null_default.py
	$(PY) benchmarks/auroc_coverage.py 30 400
	$(PY) benchmarks/interval_coverage.py 2000
	$(PY) benchmarks/permutation_type1.py 243 --old 100
	$(PY) benchmarks/benefit_accuracy.py 5 --speed
	$(PY) benchmarks/durability_calibration.py
	$(PY) benchmarks/durability_targets.py 1500

clean:
	rm -rf $(VENV) $(DEMO) mlruns/mlflow.db mlruns/artifacts
