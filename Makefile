# Interchange - top-level build. Each component adds its sources, programs and tests in its own module.mk.
#   make            build everything (warnings are errors)
#   make test       build and run every test; ends with "N passed, N failed"
#   make asan       the same tests under AddressSanitizer + UBSan (separate build folder)
#   make run        build, create ./var on first use, run the whole system in the foreground
#   make bench      benchmarks (figures printed, nothing asserted)
#   make deps       install the Debian packages we need (as root), or print the command
#   make fuzz       libFuzzer targets (clang); FUZZ_SECONDS=N runs each for N seconds

BUILD ?= build
CC ?= gcc
ifeq ($(CC),cc)
CC := gcc
endif

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
	-Wimplicit-fallthrough -Werror
CPPFLAGS += -D_GNU_SOURCE -I. -Icommon -Idirectory -Istore -Itransport -Iattendant
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 $(WARN) -fstack-protector-strong -fPIE -pthread
LDFLAGS += -pie -Wl,-z,relro,-z,now -pthread

ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
CPPFLAGS += -D_FORTIFY_SOURCE=2
endif

LDAP_LIBS := -lldap -llber
LMDB_LIBS := -llmdb
SSL_LIBS := -lssl -lcrypto
SASL_LIBS := -lsasl2

# objs: source files -> object files in the build folder
objs = $(patsubst %.c,$(BUILD)/%.o,$(1))

PROGRAMS :=
UNIT_TESTS :=
E2E_TESTS :=
BENCHES :=
FUZZERS :=

.PHONY: all test asan run bench deps fuzz clean format lint
all: programs

include common/module.mk
include directory/module.mk
include store/module.mk
include transport/module.mk
include attendant/module.mk
include tests/module.mk

programs: $(PROGRAMS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

DEB_PACKAGES := slapd ldap-utils libldap2-dev libsasl2-dev libsasl2-modules sasl2-bin liblmdb-dev lmdb-utils \
	libssl-dev openssl python3 gcc make
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing:$$missing"; \
	  mkdir -p /etc/ldap && touch /etc/ldap/noslapd; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get -o DPkg::Lock::Timeout=300 update -qq && \
	  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends$$missing; \
	else \
	  echo "missing Debian packages:$$missing"; \
	  echo "run: sudo apt-get install -y$$missing"; exit 1; \
	fi

test: deps
	@$(MAKE) --no-print-directory programs tests-build
	@tests/run.sh $(BUILD) $(UNIT_TESTS) $(E2E_TESTS)

tests-build: $(UNIT_TESTS)

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE=1 test

run: deps
	@$(MAKE) --no-print-directory programs
	@if [ ! -d var ]; then $(BUILD)/interchange init --data var --domain example.com --admin-password admin; fi
	@exec $(BUILD)/interchange start --data var --foreground

bench: deps
	@$(MAKE) --no-print-directory programs $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

clean:
	rm -rf build build-asan build-fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	cppcheck --quiet --enable=warning,performance,portability --inline-suppr -D_GNU_SOURCE \
	  -Icommon -Idirectory -Istore -Itransport -Iattendant common directory store transport attendant
