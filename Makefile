# DeepSPIO-Lab. `make quickstart` and `make test` are the two set-up commands of the README.
SWIFT ?= swift
SHELL := /bin/bash
DEBIAN_PACKAGES := libopenblas-dev libfftw3-dev libsqlite3-dev libpng-dev zlib1g-dev pkg-config sqlite3 gnuplot-nox fonts-dejavu-core mricron-data
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build release test test-all fuzz format lint quickstart studies bench clean

## deps: install the Debian packages the build needs (only those missing)
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else echo "System libraries present."; fi

## build: debug build of the spio tool and libraries
build: deps
	$(SWIFT) build

## release: optimised build (benchmarks, studies)
release: deps
	$(SWIFT) build -c release

## test: the whole test suite; it ends with the tests that skipped (their Python packages or Slurm missing) and a count
test: deps
	$(SWIFT) build --build-tests
	@set -o pipefail; $(SWIFT) test --skip-build --disable-swift-testing 2>&1 | tee .build/test.log; \
	  status=$$?; scripts/test-summary.sh .build/test.log; exit $$status

## test-all: make test with nothing skipped: PyTorch, safetensors, NumPy and MLflow in .venv, and a local one-node Slurm
test-all: deps
	scripts/test-deps.sh .venv
	PATH="$(CURDIR)/.venv/bin:$$PATH" $(MAKE) test

## fuzz: the seeded fuzz suite: 3,000 generated cases per input kind and 60 workspace faults instead of make test's 150 and 13 (about 10 minutes)
fuzz: deps
	$(SWIFT) build --build-tests
	SPIO_FUZZ_CASES=3000 $(SWIFT) test --skip-build --disable-swift-testing --filter FuzzTests

## format: reformat Sources and Tests with the toolchain's swift-format (.swift-format: 120 columns, 4 spaces)
format:
	swift-format format -i -r --parallel Sources Tests

## lint: fail if any Swift file differs from `make format`'s layout (run by .ci/run)
lint:
	swift-format lint --strict -r --parallel Sources Tests

## quickstart: build, then run experiments/quickstart.yaml (simulate, train, evaluate) and write reports/quickstart/
quickstart: release
	.build/release/spio run experiments/quickstart.yaml

## studies: run every paper study of experiments/ at the committed CPU scale (128 x 128, 3 seeds for the headline studies) and write reports/ (about 2 hours)
studies: release
	scripts/run-studies.sh

## bench: engine and simulator benchmarks (release build); writes bench/engine.md, bench/engine-tiny128.md, bench/engine-paper-inference.md, bench/simulate.md
bench: release
	.build/release/spio bench engine --out bench/engine.md
	.build/release/spio bench engine --preset tiny --input-size 128 --out bench/engine-tiny128.md
	.build/release/spio bench engine --preset paper --batch 1 --pass inference --rounds 5 --repeats 9 --out bench/engine-paper-inference.md
	.build/release/spio bench simulate --out bench/simulate.md

clean:
	rm -rf .build spio-runs
