# transport/http/ - the embedded HTTP(S) server over libmicrohttpd (libhttp.a) and the ix-httpd daemon that serves
# ACME challenges and client configuration on the HTTP and HTTPS ports; their tests.
HTTP_SRCS := transport/http/http_server.c transport/http/clientconf.c transport/http/clientconf_fill.c \
	transport/http/dav.c transport/http/vcard.c transport/http/api.c transport/http/api_recipients.c \
	transport/http/api_admin.c transport/http/status_json.c transport/http/web.c
# The OpenAPI document of the REST API is data (transport/http/openapi.json), served from this embedded copy.
$(BUILD)/gen/openapi_json.c: transport/http/openapi.json
	$(call embed,api_openapi_json)

$(BUILD)/gen/openapi_json.o: $(BUILD)/gen/openapi_json.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

HTTP_LIB := $(BUILD)/libhttp.a
HTTP_LDLIBS := -lmicrohttpd -lgnutls -lxml2
# CardDAV reads its XML request bodies with libxml2 (Debian's libxml2-dev)
$(BUILD)/transport/http/dav.o: CPPFLAGS += -I/usr/include/libxml2

# The console's pages, style sheet and script (transport/http/web/), built into ix-httpd (web.h).
WEB_FILES := console.html console.css console.js recipients.js me.js graphs.js infra.js
define web_file
$$(BUILD)/gen/web_$(subst .,_,$(1)).c: transport/http/web/$(1)
	$$(call embed,web_$(subst .,_,$(1)))
endef
$(foreach f,$(WEB_FILES),$(eval $(call web_file,$(f))))
WEB_OBJS := $(patsubst %,$(BUILD)/gen/web_%.o,$(subst .,_,$(WEB_FILES)))

$(BUILD)/gen/web_%.o: $(BUILD)/gen/web_%.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(HTTP_LIB): $(call objs,$(HTTP_SRCS)) $(BUILD)/gen/openapi_json.o $(WEB_OBJS)
	$(archive)

PROGRAMS += $(BUILD)/ix-httpd
$(BUILD)/ix-httpd: $(call objs,transport/http/httpd.c) $(HTTP_LIB) $$(MTA_LIB) $$(SIEVE_LIB) $$(SYNC_LIB) \
		$$(REPLICATION_LIB) $$(DAEMON_DEPS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS) $(HTTP_LDLIBS) $(JPEG_LIBS)

UNIT_TESTS += $(BUILD)/tests/unit/test_http
$(BUILD)/tests/unit/test_http: $(call objs,tests/unit/test_http.c tests/unit/test.c) $(HTTP_LIB) $$(NET_LIB) \
		$(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(HTTP_LDLIBS) $(SSL_LIBS)

E2E_TESTS += tests/e2e/test_http.py
E2E_TESTS += tests/e2e/test_autoconfig.py
E2E_TESTS += tests/e2e/test_carddav.py
E2E_TESTS += tests/e2e/test_console.py
E2E_TESTS += tests/e2e/test_console_admin.py
E2E_TESTS += tests/e2e/test_api.py
E2E_TESTS += tests/e2e/test_api_recipients.py
E2E_TESTS += tests/e2e/test_api_admin.py

# the Autodiscover request reader (tests/fuzz/fuzz_autodiscover.c)
FUZZ_TARGETS += autodiscover
FUZZ_LIBS_autodiscover := $(BUILD)/transport/http/clientconf.o

UNIT_TESTS += $(BUILD)/tests/unit/test_vcard
$(BUILD)/tests/unit/test_vcard: $(call objs,tests/unit/test_vcard.c tests/unit/test.c) $(HTTP_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(SSL_LIBS)
