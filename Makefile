# jalapeno: every target bootstraps what it needs (scripts/setup.sh) on first use.
#   make demo                      INT8 GEMM on the simulated array (default preset), report
#   make test [SEED=n]             the regression (models + both simulators), < 30 min on 2 cores
#   make smoke                     the quick tier (tiny preset, fewer random trials)
#   make sim [SIM=icarus|verilator] [TESTS=<pytest -k expr>] [SEED=n] [WAVES=1] [TIER=full]
#   make nightly                   long tier (more random trials per test)
#   make bench [BENCH=systolic]    cycle counts from the RTL -> build/bench/*.json + tables
#   make verilog [CONFIG=default]  Verilog of each top-level block -> build/verilog/<CONFIG>/
#   make lint [CONFIG=default]     verilator --lint-only -Wall, warning count per block
#   make waves TEST=[<module>::]<cocotb test> [SIM=icarus] [CONFIG=tiny]   FST + GTKWave save file
SHELL := /bin/bash
PY := .venv/bin/python
RUN := PYTHONPATH=$(CURDIR) $(PY)
STAMP := .venv/.setup-done
JOBS ?= auto
SIM ?= all
TIER ?= full
CONFIG ?= default
SEED ?=
TESTS ?=
WAVES ?=

PYTEST_SIM_ARGS := --sim $(SIM) --tier $(TIER) $(if $(SEED),--seed $(SEED)) \
	$(if $(WAVES),--waves) $(if $(TESTS),-k "$(TESTS)")

.PHONY: setup demo test smoke sim nightly bench verilog lint waves clean

$(STAMP): requirements.txt scripts/setup.sh
	@bash scripts/setup.sh
	@touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(RUN) scripts/demo.py --config $(CONFIG)

test: $(STAMP)
	$(RUN) -m pytest tests -m "not nightly" -n $(JOBS) --tier $(TIER) --sim $(SIM) \
		$(if $(SEED),--seed $(SEED)) --junitxml=build/reports/junit.xml

smoke: $(STAMP)
	$(RUN) -m pytest tests -m "smoke or not sim" -n $(JOBS) --tier smoke \
		--junitxml=build/reports/junit-smoke.xml

sim: $(STAMP)
	$(RUN) -m pytest tests/sim -m "not nightly" -n $(JOBS) $(PYTEST_SIM_ARGS) \
		--junitxml=build/reports/junit.xml

nightly: $(STAMP)
	$(RUN) -m pytest tests -n $(JOBS) --tier nightly --sim $(SIM) \
		--junitxml=build/reports/junit-nightly.xml

bench: $(STAMP)
	$(RUN) scripts/bench.py $(if $(BENCH),--only $(BENCH))

verilog: $(STAMP)
	$(RUN) scripts/gen_verilog.py --config $(CONFIG)

lint: $(STAMP)
	$(RUN) scripts/lint.py --config $(CONFIG)

waves: $(STAMP)
	@test -n "$(TEST)" || { echo "usage: make waves TEST=<cocotb test name> [SIM=icarus|verilator] [CONFIG=tiny]"; exit 2; }
	$(RUN) scripts/waves.py --test $(TEST) --sim $(if $(filter all,$(SIM)),icarus,$(SIM)) \
		--config $(if $(filter command line,$(origin CONFIG)),$(CONFIG),tiny) $(if $(SEED),--seed $(SEED))

clean:
	rm -rf build
