/* test_attendant.c - unit tests for the attendant's pure parts: the metrics endpoint's request parser and
 * the monitoring renderers. */
#include "tests/unit/test.h"
#include "attendant/maintenance.h"
#include "attendant/metrics.h"
#include "attendant/monitor.h"

#include <string.h>

static enum metrics_request req(const char *line, int *head)
{
	return metrics_parse_request_line(line, strlen(line), head);
}

static void parses_request_lines(void)
{
	int head;
	test_assert(req("GET /metrics HTTP/1.1", &head) == METRICS_REQ_METRICS && !head);
	test_assert(req("HEAD /metrics HTTP/1.0", &head) == METRICS_REQ_METRICS && head);
	test_assert(req("GET /metrics?name[]=x HTTP/1.1", &head) == METRICS_REQ_METRICS);
	test_assert(req("GET / HTTP/1.1", &head) == METRICS_REQ_ROOT);
	test_assert(req("GET /metricsx HTTP/1.1", &head) == METRICS_REQ_NOT_FOUND);
	test_assert(req("POST /metrics HTTP/1.1", &head) == METRICS_REQ_BAD_METHOD);
	test_assert(req("GET /metrics HTTP/2.0", &head) == METRICS_REQ_BAD);
	test_assert(req("GET /metrics", &head) == METRICS_REQ_BAD);
	test_assert(req("GET  HTTP/1.1", &head) == METRICS_REQ_BAD);
	test_assert(req("", &head) == METRICS_REQ_BAD);
	test_assert(req("GET /met\x01rics HTTP/1.1", &head) == METRICS_REQ_BAD);
	test_assert(metrics_parse_request_line("GET /metrics HTTP/1.1\0x", 23, &head) == METRICS_REQ_BAD);
}

static void renders_facts(void)
{
	struct monitor_facts f;
	memset(&f, 0, sizeof(f));
	f.services[0] = (struct monitor_service){ "slapd", "running", 42, 10, 1, "", 0, 0, -1 };
	f.services[1] = (struct monitor_service){ "smtpd", "backoff", 0, 0, 5, "killed by signal 9 (Killed)", 4, 2, 8 };
	f.service_count = 2;
	f.disk_total = 100ULL << 30;
	f.disk_free = 50ULL << 30;
	f.cert_days_left = 3;
	strcpy(f.cert_not_after, "2030-01-01T00:00:00Z");
	f.replica_connected = 1;
	monitor_warnings(&f);
	test_assert(f.warning_count == 2);
	test_assert(strstr(f.warnings[0], "smtpd is restarting in 8s (4 failures in a row; last: killed by signal 9") !=
		    NULL);
	test_assert(strstr(f.warnings[1], "expires in 3 days") != NULL);
	struct buf b = BUF_INIT;
	monitor_json(&f, &b);
	test_assert(strstr(b.data, "\"name\": \"smtpd\", \"state\": \"backoff\", \"pid\": 0") != NULL);
	test_assert(strstr(b.data, "\"failures\": 4, \"dependency_exits\": 2, \"next_try\": 8}") != NULL);
	test_assert(strstr(b.data, "\"warnings\": [\"smtpd is restarting") != NULL);
	buf_reset(&b);
	monitor_prometheus(&f, &b);
	test_assert(strstr(b.data, "interchange_service_up{service=\"smtpd\",state=\"backoff\"} 0\n") != NULL);
	test_assert(strstr(b.data, "interchange_service_failures{service=\"smtpd\"} 4\n") != NULL);
	test_assert(strstr(b.data, "interchange_service_dependency_exits_total{service=\"smtpd\"} 2\n") != NULL);
	test_assert(strstr(b.data, "interchange_service_next_try_seconds{service=\"slapd\"} -1\n") != NULL);
	test_assert(strstr(b.data, "interchange_certificate_days_left 3\n") != NULL);
	buf_reset(&b);
	monitor_json_string(&b, "a\"b\\c\n");
	test_assert_str(buf_cstr(&b), "\"a\\\"b\\\\c\\u000a\"");
	buf_free(&b);
}

static void quota_message_is_a_valid_message(void)
{
	struct buf b = BUF_INIT;
	maintenance_quota_message("example.com", "Amy Pond", "amy.pond@example.com", 950 * 1024, 1000 * 1024,
				  1795744715, &b);
	test_assert(strncmp(b.data, "From: System Attendant <postmaster@example.com>\r\n", 49) == 0);
	test_assert(strstr(b.data, "\r\nTo: Amy Pond <amy.pond@example.com>\r\n") != NULL);
	test_assert(strstr(b.data, "\r\nDate: ") != NULL && strstr(b.data, "\r\nMessage-ID: <quota.") != NULL);
	test_assert(strstr(b.data, "\r\nAuto-Submitted: auto-generated\r\n\r\n") != NULL);
	test_assert(strstr(b.data, "950 KB of its 1000 KB limit (95%)") != NULL);
	/* every line ends in CRLF */
	for (size_t i = 0; i < b.len; i++)
		test_assert(b.data[i] != '\n' || (i > 0 && b.data[i - 1] == '\r'));
	buf_free(&b);
}

TEST_MAIN("attendant", TEST_CASE(quota_message_is_a_valid_message), TEST_CASE(parses_request_lines),
	  TEST_CASE(renders_facts))
