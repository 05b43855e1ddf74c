# vmlab - the two entry points of the README, plus helpers.
#   make report   install what is missing, build, run the benchmarks, write report/out/
#   make test     install what is missing, build, run the whole test suite (CI: .ci/run)
.PHONY: all build report report-quick test deps clean fuzz-guests

all: build

deps:
	scripts/install-deps.sh all

build:
	scripts/install-deps.sh build
	cmake -S . -B build >/dev/null
	cmake --build build -j$$(nproc)

report:
	scripts/install-deps.sh report
	cmake -S . -B build >/dev/null
	cmake --build build -j$$(nproc)
	build/tools/vmlab/vmlab bench --out report/out

report-quick:
	scripts/install-deps.sh report
	cmake -S . -B build >/dev/null
	cmake --build build -j$$(nproc)
	build/tools/vmlab/vmlab bench --quick --out report/out

test:
	scripts/install-deps.sh all
	scripts/run-tests.sh

# The whole-backend chaos test, long: make fuzz-guests N=100000 [SEED=S] [BACKENDS="trap_emulate dbt"]
# (default: 10000 guests, a fresh seed, every available backend; failing guests saved as ELF
# images in chaos-failures/). CI runs a bounded number per backend (ctest -L chaos).
fuzz-guests: build
	build/tests/chaos/vmlab_chaos --count $(or $(N),10000) $(if $(SEED),--seed $(SEED)) \
	  $(foreach b,$(BACKENDS),--backend $(b)) --known tests/chaos/known_failures.txt \
	  --save chaos-failures

clean:
	rm -rf build build-asan build-fuzz
