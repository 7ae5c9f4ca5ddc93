# tests/fuzz/fuzz.mk - fuzz targets for parsers of untrusted input that have no owner's target: SASL messages, bearer
# tokens and key sets (JWT, JWKS), the bootstrap configuration file, per-server settings values, the metrics
# endpoint's HTTP request line and the connection line reader every protocol uses.
FUZZ_TARGETS += sasl config settings metrics
FUZZ_LIBS_sasl := $(NET_LIB)
FUZZ_LDLIBS_sasl := $(SSL_LIBS) $(SASL_LIBS)
FUZZ_LIBS_config :=
FUZZ_LIBS_settings :=
FUZZ_LIBS_metrics := $(BUILD)/attendant/metrics.o $(NET_LIB)
FUZZ_LDLIBS_metrics := $(SSL_LIBS) $(SASL_LIBS)
FUZZ_TARGETS += jwt
FUZZ_LIBS_jwt := $(NET_LIB)
FUZZ_LDLIBS_jwt := $(SSL_LIBS) $(SASL_LIBS)
FUZZ_TARGETS += conn_lines
FUZZ_LIBS_conn_lines := $(NET_LIB)
FUZZ_LDLIBS_conn_lines := $(SSL_LIBS) $(SASL_LIBS)
