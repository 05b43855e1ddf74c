# vmlab - the two entry points of the README, plus helpers.
#   make report   install what is missing, build, run the benchmarks, write report/out/
#   make report-quick   the same, fewer iterations and repetitions (a minute or two; CI)
#   make test     install what is missing, build, run the whole test suite (CI: .ci/run)
#   make grade LAB=N [SOLUTION=1] [STUDENT=dir]   grade a lab of the course kit (labs/README.md)
#   make handout LAB=N                            the student tarball of lab N (build/handout/)
.PHONY: all build report report-quick test deps clean grade handout fuzz-guests

all: build

deps:
	scripts/install-deps.sh all

build:
	scripts/install-deps.sh build
	cmake -S . -B build >/dev/null
	cmake --build build -j$$(nproc)

# The report (report/README.md): the benchmarks write report/out/ (created if missing), then
# scripts/check-report.sh checks that every page, data file and linked figure is there.
report report-quick:
	scripts/install-deps.sh report
	cmake -S . -B build >/dev/null
	cmake --build build -j$$(nproc)
	build/tools/vmlab/vmlab bench $(if $(filter report-quick,$@),--quick) --out report/out
	scripts/check-report.sh report/out

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

grade:
	@test -n "$(LAB)" || { echo "usage: make grade LAB=N [SOLUTION=1] [STUDENT=dir] (labs/README.md)"; exit 64; }
	scripts/install-deps.sh build
	labs/grade.sh $(LAB) $(if $(SOLUTION),--solution) $(if $(STUDENT),--student $(STUDENT)) \
	  $(if $(BUILD),--build $(BUILD)) $(if $(RESULT),--result $(RESULT))

handout:
	@test -n "$(LAB)" || { echo "usage: make handout LAB=N (or LAB=\"1 3\")"; exit 64; }
	labs/handout.sh $(LAB)

clean:
	rm -rf build build-asan build-fuzz build-lab build-lab-ci
