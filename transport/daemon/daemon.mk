# transport/daemon/ - the shared start/run/stop of the service daemons (libdaemon.a).
# A daemon links $$(DAEMON_DEPS) and $(DAEMON_LDLIBS); use $$ (secondary expansion) because the libraries
# come from fragments that sort after this one.
DAEMON_LIB := $(BUILD)/libdaemon.a
DAEMON_DEPS = $(DAEMON_LIB) $(NET_LIB) $(DIR_LIB) $(DIRECTORY_LIB) $(STORE_LIB) $(MIME_LIB) $(COMMON_LIB)
DAEMON_LDLIBS = $(LDAP_LIBS) $(LMDB_LIBS) $(ICU_LIBS) $(SSL_LIBS) $(SASL_LIBS)

$(DAEMON_LIB): $(call objs,transport/daemon/daemon.c transport/daemon/signin.c)
	$(archive)
