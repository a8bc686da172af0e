# faultline: see README.md. `make run` and `make test` are the two commands a
# new user needs; both install what is missing and build what is needed.

CC       ?= cc
CLANG    ?= clang
CFLAGS   ?= -O2 -g
# Messages and decoded values live in fixed buffers and are cut on purpose
# when long, so GCC's guess that a snprintf "may be truncated" is not a bug.
WARN     := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-format-truncation
INCS     := -Iinclude -I/usr/include/libdwarf $(shell pkg-config --cflags capstone 2>/dev/null)
LIBS     := -ldwarf -lelf -lz -lcapstone -lexpat -ljansson
ALLCFLAGS = $(WARN) $(INCS) $(CFLAGS)

B        := build
HDRS     := $(wildcard include/faultline/*.h) $(wildcard src/*.h)
TEST_HDRS:= $(wildcard tests/*.h)
# The command line (src/main.c, src/cli*.c, src/cmd_*.c) is not library code:
# it owns the terminal and the signals. Its objects go to a second archive
# that bin/faultline, the unit tests and the fuzzers link before the library.
CLI_SRCS := $(wildcard src/cli*.c src/cmd_*.c)
LIB_SRCS := $(filter-out src/main.c $(CLI_SRCS),$(wildcard src/*.c))
LIB_OBJS := $(LIB_SRCS:src/%.c=$(B)/obj/%.o)
ASAN_OBJS:= $(LIB_SRCS:src/%.c=$(B)/asan/%.o)
CLI_OBJS := $(CLI_SRCS:src/%.c=$(B)/obj/%.o)
CLI_ASAN_OBJS:=$(CLI_SRCS:src/%.c=$(B)/asan/%.o)
UNIT_SRCS:= $(wildcard tests/unit/test_*.c)
UNIT_BINS:= $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
ASAN_BINS:= $(UNIT_SRCS:tests/unit/%.c=$(B)/tests-asan/%)
ITEST_SRCS:=$(wildcard tests/integration/itest_*.c)
ITEST_BINS:=$(ITEST_SRCS:tests/integration/%.c=$(B)/tests/%)
FUZZ_SRCS:= $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS:= $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/fuzz/%)
# Small ELF files with known DWARF that the unit tests read (kernel layer).
FIX_SRCS := $(wildcard tests/fixtures/*.c)
FIX_BINS := $(FIX_SRCS:tests/fixtures/%.c=$(B)/fixtures/%)
# Static guest programs with known faults that the integration tests run.
PROG_SRCS:= $(wildcard tests/programs/*.c)
PROG_BINS:= $(PROG_SRCS:tests/programs/%.c=$(B)/programs/%)
BENCH_SRCS:=$(wildcard bench/bench_*.c)
BENCH_BINS:=$(BENCH_SRCS:bench/%.c=$(B)/bench/%)
ASAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all deps vm run test unit asan fuzz integration bench clean golden
all: bin/faultline

deps:
	@scripts/install-deps.sh

$(B)/obj/%.o: src/%.c $(HDRS) | $(B)/obj
	$(CC) $(ALLCFLAGS) -c $< -o $@
$(B)/asan/%.o: src/%.c $(HDRS) | $(B)/asan
	$(CC) $(ALLCFLAGS) $(ASAN) -O1 -c $< -o $@
$(B)/libfaultline.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^
$(B)/libfaultline-asan.a: $(ASAN_OBJS)
	rm -f $@ && ar rcs $@ $^
$(B)/libfaultline-cli.a: $(CLI_OBJS)
	rm -f $@ && ar rcs $@ $^
$(B)/libfaultline-cli-asan.a: $(CLI_ASAN_OBJS)
	rm -f $@ && ar rcs $@ $^
bin/faultline: src/main.c $(B)/libfaultline-cli.a $(B)/libfaultline.a | bin
	$(CC) $(ALLCFLAGS) -DFAULTLINE_SRCDIR='"$(CURDIR)"' $< $(B)/libfaultline-cli.a $(B)/libfaultline.a $(LIBS) -o $@
$(B)/tests/%: tests/unit/%.c $(TEST_HDRS) $(B)/libfaultline-cli.a $(B)/libfaultline.a | $(B)/tests
	$(CC) $(ALLCFLAGS) -Itests $< $(B)/libfaultline-cli.a $(B)/libfaultline.a $(LIBS) -lpthread -o $@
$(B)/tests/itest_%: tests/integration/itest_%.c $(TEST_HDRS) $(B)/libfaultline.a | $(B)/tests
	$(CC) $(ALLCFLAGS) -Itests $< $(B)/libfaultline.a $(LIBS) -lpthread -o $@
$(B)/tests-asan/%: tests/unit/%.c $(TEST_HDRS) $(B)/libfaultline-cli-asan.a $(B)/libfaultline-asan.a | $(B)/tests-asan
	$(CC) $(ALLCFLAGS) $(ASAN) -O1 -Itests $< $(B)/libfaultline-cli-asan.a $(B)/libfaultline-asan.a $(LIBS) -lpthread -o $@
# libFuzzer targets: the library and command-line sources are compiled once
# by clang with the fuzzer's coverage (fuzzer-no-link) into one archive that
# every target links, instead of once per target.
FUZZ_CFLAGS := $(filter-out -Wno-format-truncation,$(WARN)) $(INCS) -g -O1
FUZZ_OBJS := $(LIB_SRCS:src/%.c=$(B)/fuzzobj/%.o) $(CLI_SRCS:src/%.c=$(B)/fuzzobj/%.o)
$(B)/fuzzobj/%.o: src/%.c $(HDRS) | $(B)/fuzzobj
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
$(B)/libfaultline-fuzz.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^
$(B)/fuzz/%: tests/fuzz/%.c $(B)/libfaultline-fuzz.a $(HDRS) $(TEST_HDRS) | $(B)/fuzz
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $< $(B)/libfaultline-fuzz.a $(LIBS) -o $@
$(B)/fixtures/%: tests/fixtures/%.c | $(B)/fixtures
	$(CC) -g -gdwarf-5 -O2 -fno-pie -no-pie $< -o $@
$(B)/bench/%: bench/%.c $(wildcard bench/*.h) $(TEST_HDRS) $(B)/libfaultline.a | $(B)/bench
	$(CC) $(ALLCFLAGS) $< $(B)/libfaultline.a $(LIBS) -o $@

$(B)/obj $(B)/asan $(B)/tests $(B)/tests-asan $(B)/fuzz $(B)/fuzzobj $(B)/bench $(B)/fixtures bin:
	mkdir -p $@

# The guest: kernel (cached outside the clone, see scripts/build-kernel.sh)
# and the initramfs with busybox and the trigger programs.
vm: deps
	@scripts/build-vm.sh $(B)/vm

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/build-vm.sh $(B)/vm
	bin/faultline run --scenario write

unit: $(UNIT_BINS) $(FIX_BINS)
	@tests/run.sh unit $(UNIT_BINS)
asan: $(ASAN_BINS) $(FIX_BINS)
	@tests/run.sh asan $(ASAN_BINS)
fuzz: $(FUZZ_BINS)
	@tests/run.sh fuzz $(FUZZ_BINS)
integration: all $(ITEST_BINS)
	@scripts/build-vm.sh $(B)/vm
	@tests/run.sh integration $(ITEST_BINS) $(wildcard tests/integration/test_*.sh)

# Builds in parallel on every core (the tests themselves run one at a time).
test: deps
	@$(MAKE) --no-print-directory -j$(shell nproc 2>/dev/null || echo 2) all $(FIX_BINS) $(UNIT_BINS) $(ASAN_BINS) $(FUZZ_BINS) $(ITEST_BINS) $(BENCH_BINS)
	@scripts/build-vm.sh $(B)/vm
	@tests/run.sh all $(UNIT_BINS) $(ASAN_BINS) $(FUZZ_BINS) $(ITEST_BINS) $(wildcard tests/integration/test_*.sh)

# Rewrite the golden files (tests/golden, docs/ci.md) after a deliberate
# change of the guest: kernel, initramfs (vm/), QEMU or the reproducible mode.
GOLDEN := write read all
golden: all
	@scripts/build-vm.sh $(B)/vm
	@for s in $(GOLDEN); do bin/faultline run --scenario $$s --expect tests/golden/$$s.jsonl --update-expect || exit 1; done

bench: all $(BENCH_BINS)
	@scripts/build-vm.sh $(B)/vm
	@for b in $(BENCH_BINS) $(wildcard bench/*.sh); do echo "== $$b"; $$b || exit 1; done

clean:
	rm -rf $(B) bin

# The integration tests run the static guest programs of tests/programs.
test integration: $(PROG_BINS)
$(B)/programs/%: tests/programs/%.c
	@mkdir -p $(@D)
	$(CC) -static -O1 -g $< -o $@

# make install / uninstall / lib (shared library, pkg-config): see docs/install.md
include scripts/install.mk
