# relais — build, test, demo, benchmark.
#
#   make                      binaries in bin/
#   make test                 unit and end-to-end tests
#   make test-commit          the end-to-end tests with durability = commit
#   make model-long           the randomized model-based test, 20 seeds x 20000 events
#   make SANITIZE=address,undefined test
#   make demo | bench | bench-peers | fuzz | deps
#   make powercut             the long power-cut test (a short one is in test)
#
# Objects go in build/<variant>/ so sanitized and plain builds never mix.

CC       ?= cc
PKGS     := libzmq msgpack libuv lmdb libsodium jansson inih
SANITIZE ?=
comma    := ,

ifeq ($(SANITIZE),)
VARIANT  := default
BINDIR   := bin
SANFLAGS :=
else
VARIANT  := san-$(subst $(comma),-,$(SANITIZE))
BINDIR   := build/$(VARIANT)/bin
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
OBJDIR   := build/$(VARIANT)

# Recursive (=), not simple (:=): `make deps demo` installs the packages
# before these are first expanded, on a machine that had none of them.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# CFLAGS and LDFLAGS are the caller's (`make CFLAGS=-O0`): what the build
# needs is kept apart, so that setting them never drops the language
# standard, the include paths, the warnings or the dependency files.
CFLAGS   ?= -O2 -g
REQ_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
            -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
            -Iproto -Ibroker -Iagents -Idashboard -MMD -MP $(PKG_CFLAGS) $(SANFLAGS)
REQ_LDFLAGS = $(SANFLAGS)
LDLIBS   += $(PKG_LIBS) -lm

# The dashboard (in the relais command) serves pages with libmicrohttpd;
# only the command links it.
DASH_CFLAGS = $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
DASH_LIBS   = $(shell pkg-config --libs libmicrohttpd 2>/dev/null) -lpthread

PROTO_SRC  := $(wildcard proto/*.c)
BROKER_SRC := $(filter-out broker/main.c,$(wildcard broker/*.c))
# The command-line agent: its command table, and one file per larger command.
CLI_SRC    := agents/relais_cli.c $(wildcard agents/cli_*.c)
DASH_SRC   := $(wildcard dashboard/*.c)
DASH_WWW   := $(sort $(wildcard dashboard/www/*))
CLIENT_SRC := $(filter-out $(CLI_SRC),$(wildcard agents/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_LIB   := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
E2E_SRC    := $(wildcard tests/e2e/test_*.c)
E2E_LIB    := $(filter-out $(E2E_SRC),$(wildcard tests/e2e/*.c))

obj = $(patsubst %.c,$(OBJDIR)/%.o,$(1))

PROTO_OBJ  := $(call obj,$(PROTO_SRC))
BROKER_OBJ := $(call obj,$(BROKER_SRC))
CLIENT_OBJ := $(call obj,$(CLIENT_SRC))
E2E_LIBOBJ := $(call obj,$(E2E_LIB))
UNIT_LIBOBJ := $(call obj,$(UNIT_LIB))

# Static archives: a program pulls in only the modules it uses.
PROTO_LIB  := $(OBJDIR)/libproto.a
BROKER_LIB := $(OBJDIR)/libbroker.a
CLIENT_LIB := $(OBJDIR)/librelais.a

UNIT_BIN   := $(patsubst tests/unit/%.c,$(BINDIR)/tests/%,$(UNIT_SRC))
E2E_BIN    := $(patsubst tests/e2e/%.c,$(BINDIR)/tests/%,$(E2E_SRC))
PROGRAMS   := $(BINDIR)/relaisd $(BINDIR)/relais $(BINDIR)/relais-bench

.PHONY: all test test-commit unit e2e model-long demo bench bench-peers powercut fuzz fuzz-run deps clean
# Objects reached through pattern rules are kept, not deleted as intermediates.
.SECONDARY:
all: $(PROGRAMS)

$(OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(REQ_CFLAGS) $(CFLAGS) -c -o $@ $<

$(PROTO_LIB): $(PROTO_OBJ)
$(BROKER_LIB): $(BROKER_OBJ)
$(CLIENT_LIB): $(CLIENT_OBJ)
$(OBJDIR)/%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BINDIR)/relaisd: $(call obj,broker/main.c) $(BROKER_LIB) $(PROTO_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(REQ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/relais: $(call obj,$(CLI_SRC) $(DASH_SRC)) $(OBJDIR)/dashboard_assets.o \
    $(CLIENT_LIB) $(PROTO_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(REQ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(DASH_LIBS)

# The page's files, compiled in: the dashboard works offline.
$(OBJDIR)/dashboard_assets.c: $(DASH_WWW) dashboard/embed.sh
	@mkdir -p $(dir $@)
	sh dashboard/embed.sh $@ $(DASH_WWW)
$(OBJDIR)/dashboard_assets.o: $(OBJDIR)/dashboard_assets.c
	$(CC) $(REQ_CFLAGS) $(CFLAGS) $(DASH_CFLAGS) -c -o $@ $<
$(call obj,$(DASH_SRC)): REQ_CFLAGS += $(DASH_CFLAGS)

$(BINDIR)/relais-bench: $(call obj,tests/bench/relais_bench.c) $(CLIENT_LIB) $(PROTO_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(REQ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The Redis peer of `make bench-peers` (hiredis, from Debian's libhiredis-dev,
# which `make deps` installs).  `make test` checks its argument handling only
# when hiredis is there: nothing else in the tests needs Redis.
HAVE_HIREDIS = $(shell pkg-config --exists hiredis 2>/dev/null && echo yes)
PEER_TESTS   = $(if $(HAVE_HIREDIS),$(BINDIR)/redis-peer)
$(BINDIR)/redis-peer: $(call obj,tests/bench/redis_peer.c)
	@mkdir -p $(dir $@)
	$(CC) $(REQ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs hiredis 2>/dev/null) -lpthread

# The power-cut test's LD_PRELOAD shim (tests/powercut/): loaded only by
# tests/e2e/test_e2e_powercut.c, never sanitized (it runs under any relaisd).
SHIM := $(BINDIR)/tests/libpowercut.so
$(SHIM): tests/powercut/powercut_shim.c tests/powercut/journal.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow \
	    -Wmissing-prototypes -fPIC -shared -o $@ $< -ldl -lpthread

# Unit tests link the broker's and the client's modules directly.
$(BINDIR)/tests/test_%: $(OBJDIR)/tests/unit/test_%.o $(UNIT_LIBOBJ) $(BROKER_LIB) $(CLIENT_LIB) $(PROTO_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(REQ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# End-to-end tests drive the real binaries through the client library.
$(BINDIR)/tests/test_e2e_%: $(OBJDIR)/tests/e2e/test_e2e_%.o $(E2E_LIBOBJ) $(CLIENT_LIB) $(PROTO_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(REQ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

test: $(PROGRAMS) $(UNIT_BIN) $(E2E_BIN) $(SHIM) $(PEER_TESTS)
	@[ -n "$(PEER_TESTS)" ] || echo "note: hiredis is not installed (make deps):" \
	    "redis-peer's argument test is not run"
	RELAIS_BIN=$(abspath $(BINDIR)) tests/run.sh tests/store_writes.sh tests/build_flags.sh \
	    $(UNIT_BIN) $(E2E_BIN) $(if $(PEER_TESTS),tests/bench/redis_peer_args.sh)

unit: $(UNIT_BIN)
	RELAIS_BIN=$(abspath $(BINDIR)) tests/run.sh $(UNIT_BIN)

e2e: $(PROGRAMS) $(E2E_BIN) $(SHIM)
	RELAIS_BIN=$(abspath $(BINDIR)) tests/run.sh $(E2E_BIN)

# Every end-to-end test again with durability = commit (one LMDB commit per
# pass) in each broker's config, unless the test chooses its durability.
test-commit: $(PROGRAMS) $(E2E_BIN) $(SHIM)
	RELAIS_BIN=$(abspath $(BINDIR)) E2E_DURABILITY=commit tests/run.sh $(E2E_BIN)

# The randomized model-based test, long: MODEL_SEEDS seeds (1, 2, ...) of
# MODEL_LONG_EVENTS events each; stops at the first failing seed.
MODEL_SEEDS       ?= 20
MODEL_LONG_EVENTS ?= 20000
model-long: $(PROGRAMS) $(BINDIR)/tests/test_e2e_model
	@for s in $$(seq 1 $(MODEL_SEEDS)); do \
	    echo "=== MODEL_SEED=$$s MODEL_EVENTS=$(MODEL_LONG_EVENTS)"; \
	    RELAIS_BIN=$(abspath $(BINDIR)) MODEL_SEED=$$s MODEL_EVENTS=$(MODEL_LONG_EVENTS) \
	        $(BINDIR)/tests/test_e2e_model || exit 1; \
	done

# The power-cut test at length: 200 cuts of each durability (make test runs 10).
POWERCUT_RUNS ?= 200
powercut: $(PROGRAMS) $(BINDIR)/tests/test_e2e_powercut $(SHIM)
	RELAIS_BIN=$(abspath $(BINDIR)) POWERCUT_RUNS=$(POWERCUT_RUNS) \
	    RELAIS_TEST_TIMEOUT=7200 tests/run.sh $(BINDIR)/tests/test_e2e_powercut

demo: $(PROGRAMS)
	RELAIS_BIN=$(abspath $(BINDIR)) ./demo.sh

bench: $(PROGRAMS)
	RELAIS_BIN=$(abspath $(BINDIR)) $(BINDIR)/relais-bench $(BENCH_ARGS)

# relais against Redis peers doing the same job, interleaved (not part of
# test: it takes minutes, and its figures mean something only on a quiet
# machine).  ROUNDS, RUN_SECONDS and SHAPES tune it (tests/bench/bench_peers.sh).
bench-peers: $(PROGRAMS) $(BINDIR)/redis-peer
	RELAIS_BIN=$(abspath $(BINDIR)) tests/bench/bench_peers.sh

# libFuzzer targets (need clang): the protocol decoder, and event sequences
# through ingest and the store (the broker's modules without its loop).
fuzz: build/fuzz/fuzz_decode build/fuzz/fuzz_ingest
build/fuzz/fuzz_ingest: tests/fuzz/fuzz_ingest.c $(BROKER_SRC) $(PROTO_SRC)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Iproto -Ibroker -fsanitize=fuzzer,address,undefined \
	    -o $@ $^ $(shell pkg-config --cflags --libs $(PKGS)) -lm
build/fuzz/fuzz_decode: tests/fuzz/fuzz_decode.c proto/codes.c proto/event.c proto/codec.c proto/utf8.c proto/calendar.c \
    proto/mpview.c
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Iproto -Ibroker -fsanitize=fuzzer,address,undefined \
	    -o $@ $^ $(shell pkg-config --cflags --libs msgpack)

# What a fresh Debian machine needs: compilers, the libraries, the test
# framework, clang for the fuzzer, jq to read the logs, mdb_dump (lmdb-utils)
# for the tests that look inside the store, libmicrohttpd for
# the dashboard, headless Chromium driven by Selenium for its tests; Redis
# and hiredis only for the peers of `make bench-peers`.
DEBIAN_PKGS := build-essential pkg-config libzmq3-dev libmsgpack-dev liblmdb-dev \
               libuv1-dev libsodium-dev libinih-dev libjansson-dev libcmocka-dev \
               clang libclang-rt-14-dev jq lmdb-utils libmicrohttpd-dev \
               chromium chromium-driver python3-selenium redis-server libhiredis-dev
deps:
	@missing=$$(for p in $(DEBIAN_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# A short fuzzing run of each target, as CI does it.
FUZZ_SECONDS ?= 30
fuzz-run: build/fuzz/fuzz_decode build/fuzz/fuzz_ingest
	@mkdir -p build/fuzz/corpus
	build/fuzz/fuzz_decode -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -print_final_stats=1 build/fuzz/corpus tests/fuzz/corpus/decode
	@mkdir -p build/fuzz/corpus-ingest
	build/fuzz/fuzz_ingest -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -print_final_stats=1 build/fuzz/corpus-ingest tests/fuzz/corpus/decode

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
