# lorad: `make run` starts lorad on the default model, `make test` runs the whole suite.
# Both install what they need (apt packages as root, the model from PyPI) before building.
# One build configuration for everything (release with testing enabled), so that CI compiles once:
# unoptimised Swift runs the model tens of times slower.

SWIFT ?= swift
BUILD_FLAGS := -c release -Xswiftc -enable-testing
MODEL ?= models/SmolLM2-135M-Instruct.Q4_1.gguf
BIN := .build/release/lorad

.PHONY: all deps model build run test clean

all: build

deps:
	@scripts/install-deps

model: deps
	@scripts/fetch-model

build: deps
	$(SWIFT) build $(BUILD_FLAGS) --product lorad

run: model build
	$(BIN) chat --model $(MODEL)

# --disable-xctest: the suites use Swift Testing only.
test: model
	$(SWIFT) build $(BUILD_FLAGS) --build-tests
	LORAD_TEST_MODEL=$(CURDIR)/$(MODEL) LORAD_BIN=$(CURDIR)/$(BIN) \
	  $(SWIFT) test $(BUILD_FLAGS) --skip-build --disable-xctest

clean:
	rm -rf .build
