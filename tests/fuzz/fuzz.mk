# tests/fuzz/fuzz.mk - libFuzzer harnesses over the parsers of outside
# input (included by the top-level Makefile; see tests/fuzz/README.md).
#
#   make fuzz         each harness for FUZZ_SECONDS (60) from its corpus
#   make fuzz-smoke   the same for 10 s each
#   make check        replays tests/fuzz/corpus and tests/fuzz/regress with
#                     $(CC) (tests/fuzz/replay.c as main): no clang needed
#
# The fuzzers are built by clang with ASan + UBSan into $(BUILD)/fuzz/,
# compiling the parsers' sources themselves: nothing of the gcc build is
# reused.  They run one after another on one core each.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_ARGS    ?=
FUZZ_DIR     := tests/fuzz
FUZZ_NAMES   := $(sort $(basename $(notdir $(filter-out $(FUZZ_DIR)/replay.c, \
                  $(wildcard $(FUZZ_DIR)/*.c)))))
FUZZ_OUT     := $(BUILD)/fuzz
FUZZ_BIN     := $(FUZZ_NAMES:%=$(FUZZ_OUT)/%)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS  := -std=gnu11 $(WARN) -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) -D_GNU_SOURCE \
                -Ilib/include -Ilib/src $(PKG_CFLAGS)
# What the harnesses reach: the daemon's parsers and the library (the
# archive lets each link only what it calls).
FUZZ_SRC     := daemon/ktlsd/http.c daemon/ktlsd/path.c daemon/ktlsd/config.c \
                daemon/ktlsd/agent_conf.c daemon/ktlsd/agent_nl_msg.c $(LIB_SRC)
FUZZ_OBJ     := $(FUZZ_SRC:%.c=$(FUZZ_OUT)/obj/%.o)
FUZZ_LIB     := $(FUZZ_OUT)/libfuzzsrc.a

# The replay programs: each harness with replay.c, by $(CC) and the flags
# of the build they belong to (make asan: under ASan + UBSan).
FUZZ_REPLAY  := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/%)

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-replay

$(FUZZ_OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_OUT)/%: $(FUZZ_OUT)/obj/tests/fuzz/%.o $(FUZZ_LIB)
	@echo "  FUZZLD  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(PKG_LIBS) $(DAEMON_LIBS) -lpthread

$(FUZZ_OUT)/obj/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -c -o $@ $<

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	$(Q)BUILD=$(BUILD) tests/fuzz/run-fuzz $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-smoke:
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

$(BUILD)/tests/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay.o \
		$(KTLSD_LIB) $(LIBI)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) -pie $(LDFLAGS_ALL) -o $@ $< $(BUILD)/obj/tests/fuzz/replay.o $(KTLSD_LIB) \
		$(LIBI) $(PKG_LIBS) $(DAEMON_LIBS) -lpthread

tests: $(FUZZ_REPLAY)

fuzz-replay: $(FUZZ_REPLAY)
	$(Q)BUILD=$(BUILD) tests/fuzz/run-replay $(FUZZ_NAMES)

-include $(shell find $(FUZZ_OUT)/obj -name '*.d' 2>/dev/null)
