# The README's two commands, plus the developer targets.
#   make demo   install what is missing, build, run the bad-deploy scenario
#   make test   install what is missing, build with ASan+UBSan, run every test
#   make bench  benchmarks against nginx and HAProxy (prints ratios)
#   make fuzz   the libFuzzer targets, longer than the smoke run in `make test`

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME  ?= 60

.PHONY: all bootstrap build build-asan build-fuzz demo test bench fuzz check-src format clean

all: build

bootstrap:
	@scripts/bootstrap

# The release build does not turn warnings into errors: a new compiler's new
# warning must not stop a user's `make demo`. The test build (-Werror) does.
$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release -Dwerror=false

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined \
	    -Db_lundef=false

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debugoptimized -Dfuzz=true \
	    -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=false

build: bootstrap $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: bootstrap $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

build-fuzz: bootstrap $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)

demo: build
	scripts/demo $(BUILD)/firebreak

test: build-asan build-fuzz
	scripts/test-all $(ASAN_BUILD) $(FUZZ_BUILD)

bench: build
	@scripts/bootstrap bench
	bench/run $(BUILD)/firebreak

fuzz: build-fuzz
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_TIME)

check-src:
	scripts/check-src

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
