# directory/ - libldap boundary, address generation, cn=config generation and recipient provisioning.
# (The replica/resolution library is in directory/dirlib.mk.)
DIRECTORY_SRCS := directory/ldap_util.c directory/addrgen.c
DIRECTORY_LIB := $(BUILD)/libdirectory.a

$(DIRECTORY_LIB): $(call objs,$(DIRECTORY_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

UNIT_TESTS += $(BUILD)/tests/unit/test_addrgen
$(BUILD)/tests/unit/test_addrgen: $(call objs,tests/unit/test_addrgen.c tests/unit/test.c) $(DIRECTORY_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDAP_LIBS)
