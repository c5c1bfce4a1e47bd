# ktls - kernel-TLS offload control plane.
#
#   make run      install what is missing, build, run the main job
#   make test     install what is missing, build, run host suites, then vmtest
#   make          build everything into build/
#   make check    host suites only (no installs, no guest)
#   make vmtest   kTLS suites in real kernels under QEMU (6.12 and newest)
#   make asan     host suites under ASan+UBSan (build/asan/)
#   make soak     ktlsd under mixed load for SOAK_SECONDS (300), and every
#                 allocation of a connection failed in turn; vmsoak: in a guest
#   make fuzz     libFuzzer harnesses, FUZZ_SECONDS each (tests/fuzz/README.md)
#   make install PREFIX=/usr/local [DESTDIR=...]

BUILD   ?= build
PREFIX  ?= /usr/local
MANDIR  ?= $(PREFIX)/share/man
CC      ?= cc
V       ?= 0
OBJCOPY ?= objcopy

PKGS      := openssl liburing libnl-3.0 libnl-genl-3.0 json-c
TEST_PKGS := criterion
# ktlsd alone: sd_notify for Type=notify units (the library stays free of it)
DAEMON_PKGS := libsystemd

# Debian packages: what building and running needs, and what tests add.
DEB_BUILD := gcc make pkg-config libc6-dev libssl-dev liburing-dev libnl-3-dev \
             libnl-genl-3-dev libjson-c-dev libsystemd-dev openssl ca-certificates
DEB_TEST  := libcriterion-dev gnutls-bin python3 python3-cryptography curl iproute2 qemu-system-x86 \
             busybox-static cpio kmod xz-utils procps nginx gnuplot-nox clang libclang-rt-14-dev \
             strace mandoc python3-yaml libelf1

PKG_CFLAGS  := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
DAEMON_LIBS := $(shell pkg-config --libs $(DAEMON_PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
HARDEN  := -D_FORTIFY_SOURCE=2 -fstack-protector-strong
OPT     ?= -O2 -g
SAN     ?=
CFLAGS_ALL := -std=gnu11 $(WARN) $(OPT) $(HARDEN) $(SAN) -D_GNU_SOURCE \
              -Ilib/include $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(SAN) -Wl,-z,relro,-z,now $(LDFLAGS)

ifeq ($(V),0)
Q := @
else
Q :=
endif

LIB_SRC     := $(wildcard lib/src/*.c)
LIB_OBJ     := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_HDR     := lib/include/ktls.h lib/include/ktls_uring.h lib/include/ktls_ctl.h
KTLSD_SRC   := $(wildcard daemon/ktlsd/*.c)
KTLSD_OBJ   := $(KTLSD_SRC:%.c=$(BUILD)/obj/%.o)
KTLSCTL_SRC := $(wildcard daemon/ktlsctl/*.c)
KTLSCTL_OBJ := $(KTLSCTL_SRC:%.c=$(BUILD)/obj/%.o)
BENCH_SRC   := $(wildcard bench/*.c)
BENCH_OBJ   := $(BENCH_SRC:%.c=$(BUILD)/obj/%.o)
TCOMMON_SRC := $(wildcard tests/common/*.c)
TCOMMON_OBJ := $(TCOMMON_SRC:%.c=$(BUILD)/obj/%.o)
THOST_SRC   := $(wildcard tests/host/*.c)
THOST_BIN   := $(THOST_SRC:tests/host/%.c=$(BUILD)/tests/host/%)
TGUEST_SRC  := $(wildcard tests/guest/*.c)
# Suites whose one source in tests/host is also the guest suite: they look
# at KTLS_TEST_EXPECT_KTLS at run time.
TSHARED     := agent_x509 ktlsd_serve uring_xfer wire_diff session_resume sni
TGUEST_BIN  := $(TGUEST_SRC:tests/guest/%.c=$(BUILD)/tests/guest/%) \
               $(TSHARED:%=$(BUILD)/tests/guest/%)

# libktls.a and libktls.so export only ktls_*; tests link the internal
# archive, the same objects with their hidden symbols still global.
LIBA  := $(BUILD)/libktls.a
LIBSO := $(BUILD)/libktls.so
LIBI  := $(BUILD)/libktls-internal.a
BINS  := $(BUILD)/ktlsd $(BUILD)/ktlsctl $(BUILD)/ktls-bench
VERSION := 0.1.0

.PHONY: all run test check vmtest vmtest-all asan soak vmsoak install deps deps-build tests clean
.DEFAULT_GOAL := all
.SECONDARY:

all: $(LIBA) $(LIBSO) $(LIBSO).0 $(BUILD)/ktls.pc $(BINS)
tests: $(THOST_BIN) $(TGUEST_BIN)

# --- library -----------------------------------------------------------
$(BUILD)/obj/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_ALL) -fPIC -fvisibility=hidden -Ilib/src -MMD -MP -c -o $@ $<

# One relocatable object with every hidden symbol made local: what a
# program linking the archive can see is exactly what libktls.so exports.
# Linked by the compiler driver (cross and LTO toolchains), written under a
# temporary name so that an interrupted build never leaves it unlocalised.
$(BUILD)/obj/libktls.o: $(LIB_OBJ)
	@echo "  LD -r   $@"
	$(Q)$(CC) -r -nostdlib -o $@.tmp $^ && $(OBJCOPY) --localize-hidden $@.tmp && mv $@.tmp $@

$(LIBA): $(BUILD)/obj/libktls.o
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBI): $(LIB_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

# The real file carries the soname, the bare name is the link-time symlink,
# as installed: programs linked against build/ then start with
# LD_LIBRARY_PATH=build.
$(LIBSO).0: $(LIB_OBJ) lib/libktls.map
	@echo "  LD      $@"
	$(Q)$(CC) -shared -Wl,-soname,libktls.so.0 -Wl,--version-script=lib/libktls.map \
		$(LDFLAGS_ALL) -o $@ $(LIB_OBJ) $(PKG_LIBS)

$(LIBSO): $(LIBSO).0
	$(Q)ln -sf libktls.so.0 $@

$(BUILD)/ktls.pc: lib/ktls.pc.in Makefile
	@mkdir -p $(@D)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# --- programs ----------------------------------------------------------
# Programs see the public headers only, like any user of the library.
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_ALL) -fPIE -MMD -MP -c -o $@ $<

# ktlsd minus main.c: an internal archive that ktlsd and the tests link,
# so that tests reach the daemon's code without including its sources.
KTLSD_MAIN := $(BUILD)/obj/daemon/ktlsd/main.o
KTLSD_LIB  := $(BUILD)/libktlsd.a
$(KTLSD_LIB): $(filter-out $(KTLSD_MAIN),$(KTLSD_OBJ))
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/ktlsd: $(KTLSD_MAIN) $(KTLSD_LIB) $(LIBA)
	@echo "  LD      $@"
	$(Q)$(CC) -pie $(LDFLAGS_ALL) -o $@ $(KTLSD_MAIN) $(KTLSD_LIB) $(LIBA) \
		$(PKG_LIBS) $(DAEMON_LIBS) -lpthread

$(BUILD)/ktlsctl: $(KTLSCTL_OBJ) $(LIBA)
	@echo "  LD      $@"
	$(Q)$(CC) -pie $(LDFLAGS_ALL) -o $@ $(KTLSCTL_OBJ) $(LIBA) $(PKG_LIBS)

$(BUILD)/ktls-bench: $(BENCH_OBJ) $(LIBA)
	@echo "  LD      $@"
	$(Q)$(CC) -pie $(LDFLAGS_ALL) -o $@ $(BENCH_OBJ) $(LIBA) $(PKG_LIBS) -lpthread

# --- tests -------------------------------------------------------------
# Tests reach into the library (seams, parsers, key schedule): they see its
# internal headers and link the internal archive.  Only they get
# Criterion's flags.
$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_ALL) -fPIE -Ilib/src $(TEST_CFLAGS) -MMD -MP -c -o $@ $<

# tests/common/*.c as an archive: a suite links only the helpers it calls
# (and so only the parts of libktls those helpers need).
TCOMMON_LIB := $(BUILD)/libktlstest.a
$(TCOMMON_LIB): $(TCOMMON_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

define link_test
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) -pie $(LDFLAGS_ALL) -o $@ $< $(TCOMMON_LIB) $(KTLSD_LIB) $(LIBI) $(PKG_LIBS) \
		$(DAEMON_LIBS) $(TEST_LIBS) -lpthread
endef
$(BUILD)/tests/host/%: $(BUILD)/obj/tests/host/%.o $(TCOMMON_LIB) $(KTLSD_LIB) $(LIBI)
	$(link_test)
$(BUILD)/tests/guest/%: $(BUILD)/obj/tests/guest/%.o $(TCOMMON_LIB) $(KTLSD_LIB) $(LIBI)
	$(link_test)
$(TSHARED:%=$(BUILD)/tests/guest/%): $(BUILD)/tests/guest/%: $(BUILD)/obj/tests/host/%.o \
		$(TCOMMON_LIB) $(KTLSD_LIB) $(LIBI)
	$(link_test)

# ThreadSanitizer: a setter racing ktls_conn_new.  A plain program (Criterion
# forks and is not TSan-clean) built from the library's sources.
TSAN_BIN := $(BUILD)/tsan/ctx_freeze_race
$(TSAN_BIN): tests/tsan/ctx_freeze_race.c $(LIB_SRC) $(wildcard lib/src/*.h) $(LIB_HDR)
	@mkdir -p $(@D)
	@echo "  TSAN    $@"
	$(Q)$(CC) -std=gnu11 $(WARN) -O1 -g -fsanitize=thread -D_GNU_SOURCE -Ilib/include -Ilib/src \
		$(PKG_CFLAGS) -o $@ $< $(LIB_SRC) $(PKG_LIBS) -lpthread

# Host suites: what runs on any kernel, kTLS or not (kTLS paths assert their
# fallback here).  tests/run-suites prints one closing "N passed, N failed".
check: all tests $(BUILD)/tests/certs/.done $(TSAN_BIN)
	$(Q)BUILD=$(BUILD) tests/run-suites $(THOST_BIN)
	$(Q)TSAN_OPTIONS="halt_on_error=1 exitcode=66" $(TSAN_BIN)
	$(Q)BUILD=$(BUILD) tests/fuzz/run-replay $(FUZZ_NAMES)

$(BUILD)/tests/certs/.done: tests/certs/make-certs.sh
	@echo "  CERTS   $(@D)"
	$(Q)rm -rf $(@D) && tests/certs/make-certs.sh $(@D)

# Guest suites inside real kernels.  KTLS_VM_KERNEL picks one; vmtest runs
# the default pair, vmtest-all adds Debian 12's 6.1.
vmtest: all tests $(BUILD)/tests/certs/.done
	$(Q)BUILD=$(BUILD) tests/vm/suite 6.12 latest
vmtest-all: all tests $(BUILD)/tests/certs/.done
	$(Q)BUILD=$(BUILD) tests/vm/suite 6.1 6.12 latest

# Long runs (issue 12): the soak for SOAK_SECONDS and every allocation of
# a connection failed in turn; vmsoak runs the soak inside the newest
# kernel with kTLS.  make check runs both briefly (20 s, every 23rd).
SOAK_SECONDS ?= 300
ABS_BUILD = $(abspath $(BUILD))
soak: all tests $(BUILD)/tests/certs/.done
	$(Q)SOAK_SECONDS=$(SOAK_SECONDS) KTLS_TEST_CERTS=$(ABS_BUILD)/tests/certs \
		$(BUILD)/tests/host/ktlsd_serve --filter='ktlsd_ops/soak'
	$(Q)FAULT_STRIDE=1 KTLS_TEST_CERTS=$(ABS_BUILD)/tests/certs $(BUILD)/tests/host/fault_inject
vmsoak: all tests $(BUILD)/tests/certs/.done
	$(Q)KTLS_VM_KERNEL=$${KTLS_VM_KERNEL:-latest} KTLS_VM_TIMEOUT=$$(( $(SOAK_SECONDS) + 600 )) \
		KTLS_TEST_EXPECT_KTLS=1 KTLS_TEST_CERTS=$(ABS_BUILD)/tests/certs \
		KTLS_TEST_BUILD=$(ABS_BUILD) SOAK_SECONDS=$(SOAK_SECONDS) \
		tests/vm/run $(BUILD)/tests/guest/ktlsd_serve --filter='ktlsd_ops/soak'

asan:
	$(Q)LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $(MAKE) --no-print-directory BUILD=build/asan OPT="-O2 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" check

# libFuzzer harnesses (make fuzz, make fuzz-smoke) and their replay in check.
include tests/fuzz/fuzz.mk

# --- bench ---------------------------------------------------------------
# make bench: the default set on this machine (configurations the kernel
# cannot run are skipped with the reason); table, JSON and PNGs in
# $(BENCH_OUT).  make vmbench: all configurations inside the rig's guest,
# with its TLS-offload test NIC for row 6 (QEMU TCG: checks the machinery,
# not performance figures).
.PHONY: bench vmbench
BENCH_OUT   ?= $(BUILD)/bench
BENCH_ARGS  ?=
VMBENCH_ARGS ?= --sizes 16K,256K,1M --seconds 2 --conns 2
bench: all
	$(Q)mkdir -p $(BENCH_OUT)
	$(Q)$(BUILD)/ktls-bench all --json $(BENCH_OUT)/bench.json --plot $(BENCH_OUT) \
		$(BENCH_ARGS) > $(BENCH_OUT)/bench.txt; rc=$$?; cat $(BENCH_OUT)/bench.txt; exit $$rc
vmbench: all
	$(Q)mkdir -p $(BENCH_OUT)/vm
	$(Q)KTLS_VM_NICSIM=1 tests/vm/run -- $(BUILD)/ktls-bench all --json $(BENCH_OUT)/vm/bench.json \
		--plot $(BENCH_OUT)/vm $(VMBENCH_ARGS)

# --- the two commands ----------------------------------------------------
# make run: what this kernel offers, then ktlsd serving build/demo (made on
# first use) in the foreground until Ctrl-C.
run: deps-build
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(BUILD)/ktlsctl probe
	$(Q)exec $(BUILD)/ktlsd demo --dir $(BUILD)/demo

test: deps
	$(Q)$(MAKE) --no-print-directory check
	$(Q)$(MAKE) --no-print-directory fuzz-smoke
	$(Q)$(MAKE) --no-print-directory vmtest

# Install missing Debian packages (as root), or print the line to run and
# stop.  The package lists are refreshed first when older than a day.
define DEPS_SH
missing=$$(for p in $$DEB_PKGS; do
  dpkg-query -W -f='$${db:Status-Abbrev}' "$$p" 2>/dev/null | grep -q '^ii' || echo "$$p"
done | tr '\n' ' ')
[ -z "$$missing" ] && exit 0
if [ "$$(id -u)" != 0 ]; then
  echo "ktls: missing Debian packages; run as root:" >&2
  echo "  apt-get install -y --no-install-recommends $$missing" >&2
  exit 1
fi
echo "ktls: installing $$missing"
if [ -z "$$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
  apt-get update -qq || exit 1
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1
endef
export DEPS_SH

deps-build:
	$(Q)DEB_PKGS="$(DEB_BUILD)" sh -c "$$DEPS_SH"
deps:
	$(Q)DEB_PKGS="$(DEB_BUILD) $(DEB_TEST)" sh -c "$$DEPS_SH"

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBSO).0 $(DESTDIR)$(PREFIX)/lib/libktls.so.0
	ln -sf libktls.so.0 $(DESTDIR)$(PREFIX)/lib/libktls.so
	install -m 644 $(LIB_HDR) $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/ktls.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man8
	install -m 644 bench/ktls-bench.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 lib/libktls.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 644 daemon/ktlsd.8 daemon/ktlsctl.8 $(DESTDIR)$(MANDIR)/man8/

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
