# store/mime.mk - the MIME parser library (libmime.a), its unit tests and its fuzz target.
MIME_SRCS := store/mime.c store/mime_hdr.c store/mime_addr.c store/mime_serial.c store/mime_downgrade.c
MIME_LIB := $(BUILD)/libmime.a

$(MIME_LIB): $(call objs,$(MIME_SRCS))
	$(archive)

UNIT_TESTS += $(BUILD)/tests/unit/test_mime
$(BUILD)/tests/unit/test_mime: $(call objs,tests/unit/test_mime.c tests/unit/test.c) $(MIME_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lcrypto

FUZZ_TARGETS += mime
FUZZ_LIBS_mime := $(MIME_LIB)
FUZZ_LDLIBS_mime := -lcrypto

BENCHES += $(BUILD)/store/mime_bench
$(BUILD)/store/mime_bench: $(call objs,store/mime_bench.c) $(MIME_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lcrypto
