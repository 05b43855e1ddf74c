# vmlab - the two entry points of the README, plus helpers.
#   make report   install what is missing, build, run the benchmarks, write report/out/
#   make test     install what is missing, build, run the whole test suite (CI: .ci/run)
#   make grade LAB=N [SOLUTION=1] [STUDENT=dir]   grade a lab of the course kit (labs/README.md)
#   make handout LAB=N                            the student tarball of lab N (build/handout/)
.PHONY: all build report report-quick test deps clean grade handout

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

grade:
	@test -n "$(LAB)" || { echo "usage: make grade LAB=N [SOLUTION=1] [STUDENT=dir] (labs/README.md)"; exit 64; }
	scripts/install-deps.sh build
	labs/grade.sh $(LAB) $(if $(SOLUTION),--solution) $(if $(STUDENT),--student $(STUDENT)) \
	  $(if $(BUILD),--build $(BUILD)) $(if $(RESULT),--result $(RESULT))

handout:
	@test -n "$(LAB)" || { echo "usage: make handout LAB=N (or LAB=\"1 3\")"; exit 64; }
	labs/handout.sh $(LAB)

clean:
	rm -rf build build-asan build-fuzz build-lab
