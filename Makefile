# tenflower — top-level entry points. The build itself is CMake + Ninja (build/).
#   make demo      set up, build, fetch MNIST and train the demo CNN (examples/mnist.c)
#   make gpt       fetch Moby-Dick and train the character-level GPT (examples/char_gpt.c)
#   make tour      a short tour of the tensor engine (examples/tour.c)
#   make test      build and run the test suite (CI runs this, then make check)
#   make test-all  every test, including the slow suites
#   make check     ASan + UBSan build running the C tests
#   make bench     side-by-side benchmarks against PyTorch -> bench/results.json
#   make fuzz      build the libFuzzer targets and run each for FUZZ_SECONDS
#   make install   install to PREFIX (default /usr/local)
PY ?= /usr/bin/python3
PREFIX ?= /usr/local
BUILD ?= build
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 30
CMAKE_FLAGS ?=

.PHONY: all deps build demo gpt tour test test-all check bench fuzz install clean docs

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@echo "== MNIST: fetching the data (cached under ~/.cache/tenflower/mnist)"
	@dir="$$(bash scripts/fetch_mnist.sh)" && TFW_MNIST_DIR="$$dir" ./$(BUILD)/example_mnist --run-dir $(BUILD)/runs/mnist

gpt: build
	@echo "== char GPT: fetching the text (cached under ~/.cache/tenflower/moby-dick)"
	@f="$$(bash scripts/fetch_text.sh)" && TFW_TEXT_FILE="$$f" ./$(BUILD)/example_char_gpt --run-dir $(BUILD)/runs/char_gpt

tour: build
	./$(BUILD)/example_tour

test: build
	ctest --test-dir $(BUILD) -L fast --output-on-failure -j 2
	bash tests/install_test.sh $(BUILD)

test-all: build
	@bash scripts/deps.sh --all
	ctest --test-dir $(BUILD) --output-on-failure -j 2
	bash tests/install_test.sh $(BUILD)

check: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTFW_SANITIZE=ON -DTFW_BUILD_BENCH=OFF
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-asan -L fast --output-on-failure -j 2

bench: build
	$(PY) bench/run.py --build $(BUILD)

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTFW_FUZZ=ON \
	  -DTFW_BUILD_TESTS=OFF -DTFW_BUILD_BENCH=OFF -DTFW_BUILD_EXAMPLES=OFF
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

docs: build
	./$(BUILD)/tfw_gen_docs > docs/ops.md

clean:
	rm -rf $(BUILD) build-asan build-fuzz
