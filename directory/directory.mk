# directory/ - libldap boundary, address generation, running slapd (cn=config generation, start, stop) and
# recipient provisioning. (The replica/resolution library is in directory/dirlib.mk.) A program that provisions
# (provision.c, whose user photos need libjpeg: prov_photo.c) links $(JPEG_LIBS) too.
DIRECTORY_SRCS := directory/ldap_util.c directory/addrgen.c directory/slapd.c directory/provision.c directory/prov_person.c \
	directory/prov_posix.c directory/prov_photo.c directory/prov_search.c directory/prov_role.c directory/prov_connector.c directory/prov_sieve.c directory/bindlog.c directory/signin_config.c \
	directory/secrets.c
DIRECTORY_LIB := $(BUILD)/libdirectory.a
DIRECTORY_LDLIBS := $(LDAP_LIBS) $(SSL_LIBS)

# The schema is data (schema/interchange.ldif); init writes it into the data folder from this embedded copy.
$(BUILD)/gen/schema_ldif.c: schema/interchange.ldif
	$(call embed,schema_interchange_ldif)

$(BUILD)/gen/schema_ldif.o: $(BUILD)/gen/schema_ldif.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(DIRECTORY_LIB): $(call objs,$(DIRECTORY_SRCS)) $(BUILD)/gen/schema_ldif.o
	$(archive)

UNIT_TESTS += $(BUILD)/tests/unit/test_addrgen
$(BUILD)/tests/unit/test_addrgen: $(call objs,tests/unit/test_addrgen.c tests/unit/test.c) $(DIRECTORY_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DIRECTORY_LDLIBS)
# passwords and guessing: ppolicy lockout, hashes on every path, the password policy (tests/e2e/test_passwords.py)
E2E_TESTS += tests/e2e/test_passwords.py
# SCRAM and app passwords with cyrus-clients, curl, swaks (tests/e2e/test_scram.py)
E2E_TESTS += tests/e2e/test_scram.py

# The slapd module that gives cn, name and uid an ordering rule (directory/ixordering.c); init copies it from beside
# interchange into the data folder. It runs inside slapd: built without sanitizers, whatever this build uses.
PROGRAMS += $(BUILD)/ixordering.so
$(BUILD)/ixordering.so: directory/ixordering.c
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -O2 -g -std=c11 $(WARN) -fPIC -shared -o $@ $<
# The slapd module that lets the unique and dynlist overlays answer the administrator only where they would reveal a
# hidden recipient (directory/ixgate.c), copied beside slapd's data at every start and loaded after both overlays'
# modules; like the one above it runs inside slapd.
PROGRAMS += $(BUILD)/ixgate.so
$(BUILD)/ixgate.so: directory/ixgate.c directory/slapd_module.h
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -I. -O2 -g -std=c11 $(WARN) -fPIC -shared -o $@ $<
# The slapd module that keeps sssvlv from refusing the next page of a sorted browse as busy (directory/ixbrowse.c),
# copied beside slapd's data at every start and loaded after sssvlv's module; like the ones above it runs inside slapd.
PROGRAMS += $(BUILD)/ixbrowse.so
$(BUILD)/ixbrowse.so: directory/ixbrowse.c directory/slapd_module.h
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -I. -O2 -g -std=c11 $(WARN) -fPIC -shared -pthread -o $@ $<
# Our Cyrus SASL PLAIN plugin for slapd (directory/ixplain.c), copied beside slapd's data at every start; like the
# module above it runs inside slapd.
PROGRAMS += $(BUILD)/libixplain.so
$(BUILD)/libixplain.so: directory/ixplain.c directory/slapd_plugin.h
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -I. -O2 -g -std=c11 $(WARN) -fPIC -shared -o $@ $< -lldap
# Our SCRAM plugin for slapd (directory/ixscram.c), copied beside PLAIN's, with the code it shares with the services
# compiled again for a shared object (our libraries are built as PIE); only its entry point is visible to slapd.
IXSCRAM_SRCS := directory/ixscram.c directory/secrets.c common/scram.c common/base64.c common/buf.c common/util.c \
	common/log.c common/err.c
PROGRAMS += $(BUILD)/libixscram.so
$(BUILD)/libixscram.so: $(IXSCRAM_SRCS) $(wildcard directory/*.h common/*.h)
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -I. -O2 -g -std=c11 $(WARN) -fPIC -shared -fvisibility=hidden -o $@ $(IXSCRAM_SRCS) \
		-lldap -lcrypto
E2E_TESTS += tests/e2e/test_addressbook.py
# POSIX accounts and groups as sssd looks them up (docs/directory.md "POSIX accounts and groups")
E2E_TESTS += tests/e2e/test_posix.py
# sync sources (directory/sync.mk): a second slapd as the organisation's directory, its users and groups synced
E2E_TESTS += tests/e2e/test_sync.py tests/e2e/test_sync_ad.py tests/e2e/test_sync_scale.py tests/e2e/test_sync_passthrough.py
# make bench: sorted, paged browsing of a 10,000-entry address book as a user, beside a plain slapd on the same data
BENCHES += $(BUILD)/bench-addressbook
$(BUILD)/bench-addressbook: directory/bench_addressbook.py
	$(py_bench)
