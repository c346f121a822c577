# jalapeno: every target bootstraps what it needs (scripts/setup.sh) on first use.
#   make demo                      the chip (default preset) runs a GEMM + attention from HBM, report
#   make test [SEED=n]             the regression (models + both simulators), < 30 min on 2 cores
#                                  (every simulator run has a wall-clock limit: WALL_LIMIT=<s>,
#                                  default per tier in tb/common/timing.py; .ci/run caps the total)
#   make report                    build/reports/regression.md from the last run: failures with
#                                  reproduce commands, every cocotb test with its seed, wall
#                                  times, coverage, formal, test plan (make test runs it)
#   make smoke                     the quick tier (tiny preset, fewer random trials)
#   make sim [SIM=icarus|verilator] [TESTS=<pytest -k expr>] [SEED=n] [WAVES=1] [TIER=full]
#            [TEST=[<module>::]<cocotb test>] [CONFIG=<preset>] [WALL_LIMIT=<s>]
#                                  TEST runs exactly that cocotb test (only the entries that
#                                  run its module, only that test in them); CONFIG given on
#                                  the command line keeps only that preset's simulations;
#                                  TIER=nightly also runs the nightly entries. Every failure
#                                  prints the one `make sim ...` command that re-runs it.
#   make nightly [SEEDS=100]       long tier (20x random trials, long runs), then make seeds
#   make seeds [SEEDS=100] [SIM=..] [ENTRIES=dma,noc] [BUDGET_MIN=480] [FRESH=1]
#                                  every tests/sim entry under SEEDS seeds per simulator (tiny,
#                                  smoke tier), parallel, resumable; failures with their
#                                  reproduce commands -> build/reports/seeds.md
#   make bench [BENCH=systolic]    cycle counts from the RTL -> build/bench/*.json + tables
#   make verilog [CONFIG=default] [BLOCKS=a,b]  Verilog of each top-level block (or BLOCKS)
#                                  -> build/verilog/<CONFIG>/ + manifest.json (docs/verilog.md)
#   make synth [CONFIG=tiny] [BLOCKS=a,b] [FORCE=1]   yosys area + ECP5-85k fmax per block
#                                  -> build/synth/synth.{json,md,png} (docs/implementation.md)
#   make lint [CONFIG=tiny,default] [BLOCKS=a,b]  verilator -Wall at zero warnings (waivers
#                                  scoped per file and rule) + Icarus X check, per block; exits
#                                  non-zero on any warning or X (docs/lint.md)
#   make regs [CONFIG=default]     register header/docs/TB model from rtl/regs/jalapeno.rdl -> build/
#   make testplan [BLOCK=name]    each block's testpoints (tb/**/testplan*.yml) with their status
#                                  from the last make test / make sim -> build/reports/testplan.md
#   make waves TEST=[<module>::]<cocotb test> [SIM=icarus] [CONFIG=tiny]   FST + GTKWave save file
#   make formal [ONLY=name[,name]] SymbiYosys proofs of rtl/**/*_formal.py -> build/reports/formal.json (docs/formal.md)
#   make coverage [BLOCKS=a,b] [SEEDS=2]  Verilator line/toggle + merged functional coverage per block (tiny) -> build/reports/coverage.{json,md} (docs/coverage.md)
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
TEST ?=
WAVES ?=
WALL_LIMIT ?=
# CONFIG narrows `make sim` only when given on the command line (its default is for demo/verilog)
SIM_PRESET := $(if $(filter command line,$(origin CONFIG)),$(CONFIG))

LIMIT_ARGS := $(if $(WALL_LIMIT),--wall-limit $(WALL_LIMIT))
PYTEST_SIM_ARGS := --sim $(SIM) --tier $(TIER) $(if $(SEED),--seed $(SEED)) \
	$(if $(WAVES),--waves) $(if $(TESTS),-k "$(TESTS)") $(if $(TEST),--test "$(TEST)") \
	$(if $(SIM_PRESET),--preset $(SIM_PRESET)) $(LIMIT_ARGS)

.PHONY: setup demo test smoke sim nightly bench verilog lint waves clean

$(STAMP): requirements.txt scripts/setup.sh
	@bash scripts/setup.sh
	@touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(RUN) scripts/demo.py --config $(CONFIG)

test: $(STAMP)
	@$(RUN) -m pytest tests -m "not nightly" -n $(JOBS) --maxschedchunk 1 --tier $(TIER) --sim $(SIM) \
		$(if $(SEED),--seed $(SEED)) $(LIMIT_ARGS) --junitxml=build/reports/junit.xml; \
		rc=$$?; $(RUN) scripts/report.py --title "make test" || true; exit $$rc

.PHONY: report
report: $(STAMP)
	$(RUN) scripts/report.py

smoke: $(STAMP)
	$(RUN) -m pytest tests -m "smoke or not sim" -n $(JOBS) --maxschedchunk 1 --tier smoke $(LIMIT_ARGS) \
		--junitxml=build/reports/junit-smoke.xml

sim: $(STAMP)
	$(RUN) -m pytest tests/sim $(if $(filter nightly,$(TIER)),,-m "not nightly") -n $(JOBS) --maxschedchunk 1 \
		$(PYTEST_SIM_ARGS) --junitxml=build/reports/junit.xml

# nightly: the nightly tier (long runs, 20x trials), then the seed sweep (resumable)
SEEDS ?= 100
SEED_ARGS = --seeds $(SEEDS) $(if $(filter all,$(SIM)),,--sim $(SIM)) $(if $(ENTRIES),--entries $(ENTRIES)) \
	$(if $(BUDGET_MIN),--budget-min $(BUDGET_MIN)) $(if $(FRESH),--fresh)
nightly: $(STAMP)
	@$(RUN) -m pytest tests -n $(JOBS) --maxschedchunk 1 --tier nightly --sim $(SIM) $(LIMIT_ARGS) \
		--junitxml=build/reports/junit-nightly.xml; rc=$$?; \
		$(RUN) scripts/report.py --junit junit-nightly.xml --title "make nightly" || true; \
		$(RUN) scripts/seeds.py $(SEED_ARGS) || rc=1; exit $$rc

.PHONY: seeds
seeds: $(STAMP)
	$(RUN) scripts/seeds.py $(SEED_ARGS)

bench: $(STAMP)
	$(RUN) scripts/bench.py $(if $(BENCH),--only $(BENCH))

verilog: $(STAMP)
	$(RUN) scripts/gen_verilog.py --config $(CONFIG) $(if $(BLOCKS),--blocks "$(BLOCKS)")

comma := ,
# lint covers tiny and default unless CONFIG is given on the command line
LINT_CONFIGS := $(if $(filter command line,$(origin CONFIG)),$(CONFIG),tiny$(comma)default)
lint: $(STAMP)
	$(RUN) scripts/lint.py --config $(LINT_CONFIGS) $(if $(BLOCKS),--blocks "$(BLOCKS)") $(LINT_ARGS)

.PHONY: formal
formal: $(STAMP)
	$(RUN) scripts/formal.py $(if $(ONLY),--only $(ONLY))

# synth defaults to the tiny preset (the blocks that fit an ECP5-85k); CONFIG=... overrides
.PHONY: synth
synth: $(STAMP)
	$(RUN) scripts/synth.py $(if $(filter command line,$(origin CONFIG)),--config $(CONFIG)) \
		$(if $(BLOCKS),--blocks $(BLOCKS)) $(if $(FORCE),--force) \
		$(if $(SYNTH_TIMEOUT),--timeout $(SYNTH_TIMEOUT))

.PHONY: headers
headers: $(STAMP)
	$(RUN) scripts/gen_headers.py

.PHONY: regs
regs: $(STAMP)
	$(RUN) scripts/gen_regs.py --config $(CONFIG)

.PHONY: testplan
testplan: $(STAMP)
	$(RUN) scripts/testplan.py $(if $(BLOCK),--block $(BLOCK))

waves: $(STAMP)
	@test -n "$(TEST)" || { echo "usage: make waves TEST=<cocotb test name> [SIM=icarus|verilator] [CONFIG=tiny]"; exit 2; }
	$(RUN) scripts/waves.py --test $(TEST) --sim $(if $(filter all,$(SIM)),icarus,$(SIM)) \
		--config $(if $(filter command line,$(origin CONFIG)),$(CONFIG),tiny) $(if $(SEED),--seed $(SEED))

.PHONY: coverage
coverage: $(STAMP)
	$(RUN) scripts/coverage.py $(if $(BLOCKS),--blocks $(BLOCKS)) $(if $(SEEDS),--seeds $(SEEDS))

clean:
	rm -rf build
