# Kiln: `make run` trains the default model on the best device; `make test` runs the whole suite.
# Each target first installs the Debian packages it needs (OpenBLAS, the OpenCL loader and headers,
# PoCL so that OpenCL runs on CPU-only machines, zlib for .gz data, OpenSSL's libcrypto for the
# program cache's SHA-256, Open MPI for `mpirun -np N kiln train` and its tests (kiln loads libmpi.so.40 at
# run time only under mpirun, so it neither links nor needs it otherwise), and CLBlast for the benchmarks). `make fuzz` builds the libFuzzer targets in fuzz/
# and runs each for FUZZ_SECONDS; `make fuzz-asan` does the same with AddressSanitizer.

SWIFT ?= swift
PACKAGES = pkg-config ocl-icd-opencl-dev opencl-headers libopenblas-dev pocl-opencl-icd zlib1g-dev libssl-dev libopenmpi-dev openmpi-bin
BENCH_PACKAGES = $(PACKAGES) libclblast-dev
KILN = .build/release/kiln
# Seconds each fuzz target runs, the targets (all by default: see fuzz/Package.swift) and how many run at once.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
FUZZ_JOBS ?= 1

.PHONY: run test bench fuzz fuzz-asan build packages bench-packages oclgrind clean

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

# The fuzz targets link Kiln, so they need its packages; libFuzzer and AddressSanitizer come with Swift's clang.
fuzz: packages
	SWIFT=$(SWIFT) ./fuzz/run.sh --jobs $(FUZZ_JOBS) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-asan: packages
	SWIFT=$(SWIFT) ./fuzz/run.sh --address --jobs $(FUZZ_JOBS) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf .build bench/.build fuzz/.build fuzz/.build-asan
