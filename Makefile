# Kiln: `make run` trains the default model on the best device; `make test` runs the whole suite.
# Each target first installs the Debian packages it needs (OpenBLAS, the OpenCL loader and headers,
# PoCL so that OpenCL runs on CPU-only machines, zlib for .gz data, OpenSSL's libcrypto for the
# program cache's SHA-256, Open MPI for `mpirun -np N kiln train` and its tests (kiln loads libmpi.so.40 at
# run time only under mpirun, so it neither links nor needs it otherwise), and CLBlast for the benchmarks). `make fuzz` builds the libFuzzer targets in fuzz/
# and runs each for FUZZ_SECONDS; `make fuzz-asan` does the same with AddressSanitizer.
# `make bundle` builds dist/kiln-<VERSION>-linux-x86_64.tar.gz, a relocatable kiln and kiln-bench with the
# libraries a host may lack (scripts/make-bundle.sh); `make test` builds it first and tests it unpacked.
# `make gpu-payload` puts the bundle and the fla wheel in gpu-payload/ and writes the one device call that
# runs scripts/gpu-check.sh on a lent GPU (DEVELOPERS.md).

SWIFT ?= swift
PACKAGES = pkg-config ocl-icd-opencl-dev opencl-headers libopenblas-dev pocl-opencl-icd zlib1g-dev libssl-dev libopenmpi-dev openmpi-bin
BENCH_PACKAGES = $(PACKAGES) libclblast-dev
# The bundle holds kiln-bench (CLBlast) and strips its programs (binutils); the payload is packed with xz.
BUNDLE_PACKAGES = $(BENCH_PACKAGES) binutils
PAYLOAD_PACKAGES = $(BUNDLE_PACKAGES) xz-utils
KILN = .build/release/kiln
VERSION := $(shell cat VERSION)
BUNDLE = dist/kiln-$(VERSION)-linux-x86_64.tar.gz
# Seconds each fuzz target runs, the targets (all by default: see fuzz/Package.swift) and how many run at once.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
FUZZ_JOBS ?= 1

.PHONY: run test bench fuzz fuzz-asan build packages bench-packages bundle-packages bundle gpu-payload oclgrind clean

packages:
	@./scripts/install-packages.sh $(PACKAGES)

bench-packages:
	@./scripts/install-packages.sh $(BENCH_PACKAGES)

bundle-packages:
	@./scripts/install-packages.sh $(BUNDLE_PACKAGES)

build: packages
	$(SWIFT) build -c release --product kiln

run: build
	$(KILN) devices
	$(KILN) train --task digits --model mlp --out runs/digits-mlp

# The bundle test (Tests/KilnCLITests/BundleTests.swift) unpacks the archive that KILN_BUNDLE names.
test: bundle-packages
	$(SWIFT) build -c release --build-tests
	SWIFT=$(SWIFT) ./scripts/make-bundle.sh
	KILN_BUNDLE=$(CURDIR)/$(BUNDLE) $(SWIFT) test -c release --skip-build

bundle: bundle-packages
	SWIFT=$(SWIFT) ./scripts/make-bundle.sh

gpu-payload: bundle
	@./scripts/install-packages.sh $(PAYLOAD_PACKAGES)
	./scripts/gpu-payload.sh

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
	rm -rf .build bench/.build fuzz/.build fuzz/.build-asan .build-bundle dist gpu-payload
