# vmlab - the two entry points of the README, plus helpers.
#   make report   install what is missing, build, run the benchmarks, write report/out/
#   make test     install what is missing, build, run the whole test suite (CI: .ci/run)
.PHONY: all build report report-quick test deps clean

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

clean:
	rm -rf build build-asan build-fuzz
