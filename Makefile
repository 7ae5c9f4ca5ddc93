# Interchange - top-level build. Each component adds its sources, programs and tests in its own module.mk.
#   make            build everything (warnings are errors)
#   make test       build and run every test; ends with "N passed, N failed, N skipped"
#   make asan       the same tests under AddressSanitizer + UBSan (separate build folder)
#   make run        build, create ./var on first use, run the whole system in the foreground
#   make bench      benchmarks (figures printed, nothing asserted)
#   make deps       install the Debian packages we need (as root), or print the command
#   make install    the command, daemons and data under PREFIX (DESTDIR, sbindir, libexecdir... below)
#   make deb        the Debian package (debian/) in BUILD/deb
#   make fuzz       libFuzzer targets (clang); FUZZ_SECONDS=N runs each for N seconds

BUILD ?= build
CC ?= gcc
ifeq ($(CC),cc)
CC := gcc
endif

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
	-Wimplicit-fallthrough -Werror
CPPFLAGS += -D_GNU_SOURCE -I.
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 $(WARN) -fstack-protector-strong -fPIE -pthread
LDFLAGS += -pie -Wl,-z,relro,-z,now -pthread

ifeq ($(FUZZ),1)
CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -Wno-unused-command-line-argument
LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
CPPFLAGS += -D_FORTIFY_SOURCE=2
endif

# Installation (make install; GNU names, any may be given on the command line). The programs find their daemons,
# slapd modules and data through these folders, compiled in (common/paths.h), unless they run from a build folder.
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
exec_prefix ?= $(prefix)
sbindir ?= $(exec_prefix)/sbin
libexecdir ?= $(exec_prefix)/libexec
datarootdir ?= $(prefix)/share
datadir ?= $(datarootdir)
sysconfdir ?= $(prefix)/etc
localstatedir ?= $(prefix)/var
mandir ?= $(datarootdir)/man
systemdunitdir ?= $(prefix)/lib/systemd/system
# Debian's slapd and where it keeps its modules (back_mdb, syncprov...).
SLAPD ?= /usr/sbin/slapd
SLAPADD ?= /usr/sbin/slapadd
SLAPCAT ?= /usr/sbin/slapcat
SLAPD_MODULEDIR ?= /usr/lib/ldap
SLAPD_SCHEMADIR ?= /etc/ldap/schema

LDAP_LIBS := -lldap -llber
LMDB_LIBS := -llmdb
SSL_LIBS := -lssl -lcrypto
JPEG_LIBS := -ljpeg
# ICU's common library (libicu-dev) for the i;unicode-casemap comparator, common/unicasemap.c, which the store's
# search and IMAP's SEARCH, SORT and THREAD use: every program linking the store or libimapparse.a links it
ICU_LIBS := -licuuc
# sign-in: Cyrus SASL, jansson for the bearer tokens of transport/net/oauth.c, MIT krb5 for the default realm
# (transport/daemon/signin.c)
SASL_LIBS := -lsasl2 -ljansson -lkrb5

.SECONDEXPANSION:
# objs: source files -> object files in the build folder
objs = $(patsubst %.c,$(BUILD)/%.o,$(1))
# archive: the recipe of a static library, made anew each time (ar would keep members whose sources moved away)
archive = @mkdir -p $(dir $@) && rm -f $@ && $(AR) rcs $@ $^
# embed: the recipe that writes the text file $< into the C file $@ as the string $(1) (data built into a program)
embed = @mkdir -p $(dir $@) && awk -v name=$(1) -v from=$< 'BEGIN { print "/* generated from " from " */"; \
	print "extern const char " name "[];"; print "const char " name "[] =" } \
	{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); print "\t\"" $$0 "\\n\"" } END { print ";" }' $< > $@
# py_bench: the recipe of a `make bench` program that runs the Python script it depends on with this build
define py_bench
@mkdir -p $(dir $@)
printf '#!/bin/sh\nIX_BUILD=$(BUILD) exec python3 $(CURDIR)/$< "$$@"\n' > $@
chmod +x $@
endef

PROGRAMS :=
UNIT_TESTS :=
E2E_TESTS :=
BENCHES :=
# Fuzz targets: tests/fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput; a fragment adds NAME to FUZZ_TARGETS and
# sets FUZZ_LIBS_NAME. Each target is built twice: as a libFuzzer program (make fuzz, clang) and as a replay
# program that runs its seed corpus tests/fuzz/corpus/NAME/ as part of make test (and under make asan).
FUZZ_TARGETS :=

.PHONY: all test asan run bench deps fuzz clean format lint install uninstall deb man
all: programs

# Component makefiles, one per library folder, by layer: common/ (everything links it), store/, directory/,
# transport/*/, attendant/, then the test fragments. Within a layer fragments go in name order; a fragment may use
# the := variables of fragments included before it (store/mime.mk before store/store.mk) and names the others'
# libraries with $$ in prerequisites (secondary expansion).
include common/module.mk
include $(sort $(wildcard store/*.mk))
include $(sort $(wildcard directory/*.mk))
include $(sort $(wildcard transport/*/*.mk))
include $(sort $(wildcard attendant/*.mk))
include $(sort $(wildcard tests/*.mk tests/*/*.mk))

FUZZ_REPLAYS = $(foreach t,$(FUZZ_TARGETS),$(BUILD)/fuzz/replay_$(t))

programs: $(PROGRAMS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Debian packages the build and the tests need, one a line so that changes merge cleanly.
DEB_PACKAGES :=
DEB_PACKAGES += slapd
DEB_PACKAGES += dns-root-data
DEB_PACKAGES += ldap-utils
DEB_PACKAGES += libldap2-dev
DEB_PACKAGES += libjpeg-dev
DEB_PACKAGES += libjpeg-turbo-progs
DEB_PACKAGES += libsasl2-dev
DEB_PACKAGES += libsasl2-modules
DEB_PACKAGES += sasl2-bin
DEB_PACKAGES += liblmdb-dev
DEB_PACKAGES += libicu-dev
DEB_PACKAGES += lmdb-utils
DEB_PACKAGES += libssl-dev
DEB_PACKAGES += libjansson-dev
DEB_PACKAGES += libkrb5-dev
DEB_PACKAGES += libsasl2-modules-gssapi-mit
DEB_PACKAGES += krb5-kdc
DEB_PACKAGES += krb5-admin-server
DEB_PACKAGES += krb5-user
DEB_PACKAGES += openssl
DEB_PACKAGES += zlib1g-dev
DEB_PACKAGES += python3
DEB_PACKAGES += python3-ldap3
DEB_PACKAGES += python3-cryptography
DEB_PACKAGES += python3-gssapi
DEB_PACKAGES += libsasl2-modules-kdexoauth2
DEB_PACKAGES += curl
DEB_PACKAGES += logrotate
DEB_PACKAGES += gcc
DEB_PACKAGES += make
DEB_PACKAGES += tcpdump
DEB_PACKAGES += iproute2
DEB_PACKAGES += clang-format
DEB_PACKAGES += swaks
DEB_PACKAGES += isync
DEB_PACKAGES += fetchmail
DEB_PACKAGES += cyrus-clients
DEB_PACKAGES += neomutt
DEB_PACKAGES += libmicrohttpd-dev
DEB_PACKAGES += libxml2-dev
DEB_PACKAGES += python3-vobject
DEB_PACKAGES += chromium
DEB_PACKAGES += chromium-driver
DEB_PACKAGES += python3-selenium
DEB_PACKAGES += libsystemd-dev
DEB_PACKAGES += debhelper
DEB_PACKAGES += dpkg-dev
DEB_PACKAGES += lintian
DEB_PACKAGES += systemd
DEB_PACKAGES += libgnutls28-dev
DEB_PACKAGES += certbot
DEB_PACKAGES += pebble
DEB_PACKAGES += dnsutils
DEB_PACKAGES += nsd
DEB_PACKAGES += rspamd
DEB_PACKAGES += ldnsutils
DEB_PACKAGES += libopendkim-dev
DEB_PACKAGES += python3-dkim
DEB_PACKAGES += python3-authres
DEB_PACKAGES += libspf2-dev
DEB_PACKAGES += libunbound-dev
DEB_PACKAGES += libopendmarc-dev
DEB_PACKAGES += publicsuffix
DEB_PACKAGES += dovecot-imapd
# tests/e2e/test_webmail.py: Roundcube served by PHP's built-in web server (php8.2-cgi satisfies the php package
# without a web server of the system's)
DEB_PACKAGES += php8.2-cli php8.2-cgi php8.2-sqlite3 php8.2-intl php8.2-mbstring roundcube-core roundcube-sqlite3
DEB_PACKAGES += sieve-connect
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing:$$missing"; \
	  mkdir -p /etc/ldap && touch /etc/ldap/noslapd; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  rcd=""; if [ ! -e /usr/sbin/policy-rc.d ]; then rcd=1; printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; \
	    chmod 755 /usr/sbin/policy-rc.d; fi; \
	  apt-get -o DPkg::Lock::Timeout=300 update -qq && \
	  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends$$missing; rc=$$?; \
	  if [ -n "$$rcd" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc; \
	else \
	  echo "missing Debian packages:$$missing"; \
	  echo "run: sudo apt-get install -y$$missing"; exit 1; \
	fi

test: deps
	@$(MAKE) --no-print-directory programs tests-build
	@tests/run.sh $(BUILD) tests/layers.py tests/format.py $(UNIT_TESTS) $(FUZZ_REPLAYS) $(E2E_TESTS)

tests-build: $(UNIT_TESTS) $(FUZZ_REPLAYS)

$(BUILD)/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $$(FUZZ_LIBS_$$*) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(FUZZ_LDLIBS_$*)

FUZZ_SECONDS ?= 30
fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang FUZZ=1 fuzz-build
	@for t in $(FUZZ_TARGETS); do echo "== fuzz $$t ($(FUZZ_SECONDS)s)"; mkdir -p build-fuzz/corpus/$$t; \
	  build-fuzz/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
	    build-fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>&1 | tail -3 || exit 1; done

fuzz-build: $(foreach t,$(FUZZ_TARGETS),$(BUILD)/fuzz/fuzz_$(t))

$(BUILD)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $$(FUZZ_LIBS_$$*) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LDLIBS_$*)

# use_sigaltstack=0: GCC 12's sanitizer runtime misreads glibc 2.36's dynamic alternate signal stack size when a
# thread exits and reports a stack-buffer-overflow inside sigaltstack itself (seen in test_mta's threads).
asan:
	@ASAN_OPTIONS=use_sigaltstack=0:detect_leaks=1 $(MAKE) --no-print-directory BUILD=build-asan SANITIZE=1 test

run: deps
	@$(MAKE) --no-print-directory programs
	@if [ ! -d var ]; then $(BUILD)/interchange init --data var --domain example.com --admin-password admin; fi
	@exec $(BUILD)/interchange start --data var --foreground

bench: deps
	@$(MAKE) --no-print-directory programs $(BENCHES)
	@python3 tests/bench/summary.py --run $(BENCHES)

# The daemons the attendant supervises and the modules slapd loads: LIBEXECDIR/interchange (common/paths.h).
INSTALL_DAEMONS := ix-mta ix-smtpd ix-imapd ix-pop3d ix-managesieved ix-httpd
INSTALL_MODULES := ixordering.so ixgate.so ixbrowse.so libixplain.so libixoauth.so libixscram.so
INSTALL ?= install
# The manual pages, made from the programs' --help texts (attendant/manpages.sh): interchange(8) and one per daemon.
VERSION ?= $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
MANPAGES := $(BUILD)/man/interchange.8 $(foreach d,$(INSTALL_DAEMONS),$(BUILD)/man/$(d).8)
man: $(MANPAGES)
$(MANPAGES) &: attendant/manpages.sh $(BUILD)/interchange $(addprefix $(BUILD)/,$(INSTALL_DAEMONS))
	sh attendant/manpages.sh $(BUILD) $(BUILD)/man $(VERSION)

install: programs man
	$(INSTALL) -d $(DESTDIR)$(sbindir) $(DESTDIR)$(libexecdir)/interchange $(DESTDIR)$(datadir)/interchange
	$(INSTALL) -m 0755 $(BUILD)/interchange $(DESTDIR)$(sbindir)/interchange
	$(INSTALL) -m 0755 $(addprefix $(BUILD)/,$(INSTALL_DAEMONS)) $(DESTDIR)$(libexecdir)/interchange/
	$(INSTALL) -m 0644 $(addprefix $(BUILD)/,$(INSTALL_MODULES)) $(DESTDIR)$(libexecdir)/interchange/
	$(INSTALL) -m 0644 schema/interchange.ldif schema/OIDS.md $(DESTDIR)$(datadir)/interchange/
	$(INSTALL) -d $(DESTDIR)$(mandir)/man8
	$(INSTALL) -m 0644 $(MANPAGES) $(DESTDIR)$(mandir)/man8/
	$(INSTALL) -d $(DESTDIR)$(systemdunitdir)
	$(INSTALL) -m 0644 $(BUILD)/interchange.service $(DESTDIR)$(systemdunitdir)/interchange.service
	$(INSTALL) -d $(DESTDIR)$(sysconfdir)/logrotate.d
	$(INSTALL) -m 0644 $(BUILD)/interchange.logrotate $(DESTDIR)$(sysconfdir)/logrotate.d/interchange

# The Debian package (debian/), built into the parent folder by dpkg-buildpackage and moved to $(BUILD)/deb.
deb:
	dpkg-buildpackage -us -uc -b
	@mkdir -p $(BUILD)/deb
	@v=$$(dpkg-parsechangelog -S Version); mv ../interchange_$${v}_*.deb ../interchange-dbgsym_$${v}_*.deb \
	  ../interchange_$${v}_*.changes ../interchange_$${v}_*.buildinfo $(BUILD)/deb/ && ls $(BUILD)/deb/*.deb

uninstall:
	rm -f $(DESTDIR)$(sbindir)/interchange
	rm -rf $(DESTDIR)$(libexecdir)/interchange $(DESTDIR)$(datadir)/interchange
	rm -f $(DESTDIR)$(systemdunitdir)/interchange.service $(DESTDIR)$(sysconfdir)/logrotate.d/interchange
	rm -f $(addprefix $(DESTDIR)$(mandir)/man8/,$(notdir $(MANPAGES)))

clean:
	rm -rf build build-asan build-fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	cppcheck --quiet --enable=warning,performance,portability --inline-suppr -D_GNU_SOURCE \
	  -I. common directory store transport attendant
