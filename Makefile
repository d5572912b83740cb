# Kiln: `make run` trains the default model on the best device; `make test` runs the whole suite.
# Each target first installs the Debian packages it needs (OpenBLAS, the OpenCL loader and headers,
# PoCL so that OpenCL runs on CPU-only machines, zlib for .gz data, OpenSSL's libcrypto for the
# program cache's SHA-256, and CLBlast for the benchmarks).

SWIFT ?= swift
PACKAGES = pkg-config ocl-icd-opencl-dev opencl-headers libopenblas-dev pocl-opencl-icd zlib1g-dev libssl-dev
BENCH_PACKAGES = $(PACKAGES) libclblast-dev
KILN = .build/release/kiln

.PHONY: run test bench build packages bench-packages oclgrind clean

packages:
	@./scripts/install-packages.sh $(PACKAGES)

bench-packages:
	@./scripts/install-packages.sh $(BENCH_PACKAGES)

build: packages
	$(SWIFT) build -c release --product kiln

run: build
	$(KILN) devices
	$(KILN) train --task digits --model mlp --out runs/digits-mlp

test: packages
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build

# The backend suite with oclgrind as the OpenCL device: out-of-bounds accesses, API misuse and data
# races in every kernel (scripts/oclgrind.sh).
oclgrind: packages
	@./scripts/install-packages.sh oclgrind
	$(SWIFT) build -c release --build-tests
	./scripts/oclgrind.sh

bench: bench-packages
	$(SWIFT) build -c release --package-path bench
	bench/.build/release/kiln-bench matmul --json bench/results/matmul.json
	bench/.build/release/kiln-bench train-step --json bench/results/train-step.json

clean:
	rm -rf .build bench/.build
