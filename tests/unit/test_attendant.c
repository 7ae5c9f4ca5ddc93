/* test_attendant.c - unit tests for the attendant's pure parts: the metrics endpoint's request parser and
 * the monitoring renderers; and the IMAP client of user move and import against a hostile server. */
#include "tests/unit/test.h"
#include "transport/imap/imap_client.h"
#include "attendant/maintenance.h"
#include "attendant/history.h"
#include "attendant/metrics.h"
#include "attendant/monitor.h"
#include "attendant/dmarc_report.h"
#include "common/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* A server on a loopback port of its own (port_r) in a child process: greets, reads one command, answers with
 * answer, then (forever) repeats again until the client goes away. */
static pid_t hostile_server(const char *answer, const char *again, unsigned *port_r)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	*port_r = ntohs(sa.sin_port);
	pid_t pid = fork();
	if (pid != 0) {
		close(l);
		return pid;
	}
	signal(SIGPIPE, SIG_IGN);
	int fd = accept(l, NULL, NULL);
	char cmd[256];
	if (fd < 0 || write(fd, "* OK hostile\r\n", 14) != 14 || read(fd, cmd, sizeof(cmd)) <= 0)
		_exit(1);
	if (write(fd, answer, strlen(answer)) < 0)
		_exit(1);
	while (again != NULL && write(fd, again, strlen(again)) > 0)
		;
	_exit(0);
}

/* What imc_cmd answers a NOOP that server answers; error_r gets the client's words. */
static int noop_against(const char *answer, const char *again, size_t literal_max, struct buf *error_r)
{
	unsigned port;
	pid_t pid = hostile_server(answer, again, &port);
	if (pid < 0)
		return -1;
	struct imc c = { .literal_max = literal_max };
	int ret = imc_connect_tcp(&c, "127.0.0.1", port, 10000, error_r);
	if (ret == 0)
		ret = imc_greeting(&c, NULL, error_r);
	if (ret == 0) {
		struct buf cmd = BUF_INIT;
		buf_append_str(&cmd, "NOOP");
		ret = imc_cmd(&c, &cmd, NULL, NULL, error_r);
		buf_free(&cmd);
	}
	close(c.fd); /* not imc_close: no LOGOUT to a server that may never read it */
	c.fd = -1;
	imc_close(&c);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return ret;
}

static void imap_client_refuses_responses_past_its_limits(void)
{
	struct buf err = BUF_INIT;
	/* an ordinary answer with a literal */
	test_assert(noop_against("* 1 FETCH (BODY[] {5}\r\nhello)\r\nm1 OK done\r\n", NULL, 1000, &err) == 0);
	/* a literal larger than allowed */
	test_assert(noop_against("* 1 FETCH (BODY[] {1001}\r\n", NULL, 1000, &err) == IX_EINVAL);
	test_assert(strstr(buf_cstr(&err), "past our limits") != NULL);
	/* a line that never ends */
	buf_reset(&err);
	test_assert(noop_against("* OK ", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 1000, &err) == IX_EINVAL);
	/* one response that goes on with literal after literal, each within the limit */
	buf_reset(&err);
	test_assert(noop_against("* 1 FETCH (X {10}\r\n", "0123456789 X {10}\r\n", 1000, &err) == IX_EINVAL);
	test_assert(strstr(buf_cstr(&err), "past our limits") != NULL);
	buf_free(&err);
}

/* The mail flow's history from tracking log lines: counts per interval, latency from reception to delivery. */
static void history_counts_the_flow(void)
{
	struct history *h = xmalloc(sizeof(*h));
	history_init(h);
	static const char *lines[] = {
		"2026-12-07T10:00:00Z\treceived\tq1\t<m1>\ta@x\t-\thost\tpeer",
		"2026-12-07T10:00:03Z\tdelivered\tq1\t<m1>\ta@x\tb@y\thost\tok",
		"2026-12-07T10:00:04Z\treceived\tq2\t<m2>\ta@x\t-\thost\tpeer",
		"2026-12-07T10:00:05Z\tdeferred\tq2\t<m2>\ta@x\tc@z\thost\t451",
		"2026-12-07T10:00:10Z\trelayed\tq2\t<m2>\ta@x\tc@z\thost\t250",
		"2026-12-07T10:00:11Z\tbounced\tq3\t<m3>\ta@x\td@z\thost\t550",
		"2026-12-07T10:00:12Z\tdelivered\tq9\t<m9>\ta@x\te@z\thost\tok", /* its reception not seen */
		"garbage",
		"2026-12-07T10:00:12Z\tdelivered",
	};
	for (size_t i = 0; i < IX_ARRAY_LEN(lines); i++)
		history_feed(h, lines[i], strlen(lines[i]));
	test_assert(h->cur.received == 2 && h->cur.delivered == 3 && h->cur.deferred == 1 && h->cur.bounced == 1);
	test_assert(h->cur.latency_count == 2 && h->cur.latency_sum == 3 + 6 && h->cur.latency_max == 6);
	history_sample(h, 1000, 1, 2);
	test_assert(h->count == 1 && h->ring[0].delivered == 3 && h->ring[0].queued == 2 && h->cur.delivered == 0);
	for (long long t = 1; t <= HISTORY_SAMPLES + 5; t++)
		history_sample(h, 1000 + t * HISTORY_INTERVAL_S, 0, 0);
	test_assert(h->count == HISTORY_SAMPLES && h->ring[h->head].time == 1000 + 6 * HISTORY_INTERVAL_S);
	struct buf out = BUF_INIT;
	history_json(h, 99999, &out);
	test_assert(strstr(buf_cstr(&out), "\"totals\":{\"received\":2,\"delivered\":3,\"deferred\":1,\"bounced\":1}"));
	test_assert(strstr(buf_cstr(&out), "\"time\":99999") != NULL);
	buf_free(&out);
	history_free(h);
	free(h);
}

/* The DMARC aggregate report's XML: the policy published from the last evaluation, one row per source and outcome
 * with its count, names escaped; and which rua addresses need the external destination verification. */
static void dmarc_report_xml_rows(void)
{
	struct dmarcrpt_eval e[3];
	memset(e, 0, sizeof(e));
	for (int i = 0; i < 3; i++) {
		e[i].time = 1796601600 + i;
		snprintf(e[i].domain, sizeof(e[i].domain), "sender.test");
		snprintf(e[i].header_from, sizeof(e[i].header_from), "sender.test");
		snprintf(e[i].envelope_from, sizeof(e[i].envelope_from), "sender.test");
		snprintf(e[i].ip, sizeof(e[i].ip), "198.51.100.7");
		snprintf(e[i].p, sizeof(e[i].p), i < 2 ? "none" : "reject");
		snprintf(e[i].sp, sizeof(e[i].sp), "reject");
		snprintf(e[i].adkim, sizeof(e[i].adkim), "r");
		snprintf(e[i].aspf, sizeof(e[i].aspf), "s");
		snprintf(e[i].pct, sizeof(e[i].pct), "100");
		snprintf(e[i].disposition, sizeof(e[i].disposition), "none");
		snprintf(e[i].dkim, sizeof(e[i].dkim), "pass");
		snprintf(e[i].spf, sizeof(e[i].spf), "pass");
		snprintf(e[i].dkim_auth, sizeof(e[i].dkim_auth), "sender.test rsa1 pass|sender.test - fail");
		snprintf(e[i].spf_domain, sizeof(e[i].spf_domain), "sender.test");
		snprintf(e[i].spf_scope, sizeof(e[i].spf_scope), "mfrom");
		snprintf(e[i].spf_result, sizeof(e[i].spf_result), "pass");
	}
	snprintf(e[1].ip, sizeof(e[1].ip), "192.0.2.9");
	const struct dmarc_report_meta meta = { "Smith & Sons <Mail>", "dmarc@example.com", "R1@mx.example.com",
						1796601600, 1796688000 };
	struct buf x = BUF_INIT;
	dmarc_report_xml(&meta, "sender.test", e, 3, &x);
	const char *xml = buf_cstr(&x);
	test_assert(strncmp(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>", 49) == 0);
	test_assert(strstr(xml, "<org_name>Smith &amp; Sons &lt;Mail&gt;</org_name>") != NULL);
	test_assert(strstr(xml, "<date_range><begin>1796601600</begin><end>1796688000</end></date_range>") != NULL);
	test_assert(strstr(xml, "<policy_published><domain>sender.test</domain><adkim>r</adkim><aspf>s</aspf><p>reject"
				"</p><sp>reject</sp><pct>100</pct></policy_published>") != NULL);
	const char *first = strstr(xml, "<row><source_ip>198.51.100.7</source_ip><count>2</count>");
	test_assert(first != NULL && strstr(xml, "<row><source_ip>192.0.2.9</source_ip><count>1</count>") > first);
	test_assert(strstr(xml, "<auth_results><dkim><domain>sender.test</domain><selector>rsa1</selector><result>pass"
				"</result></dkim><dkim><domain>sender.test</domain><result>fail</result></dkim><spf>"
				"<domain>sender.test</domain><scope>mfrom</scope><result>pass</result></spf>"
				"</auth_results>") != NULL);
	test_assert(strstr(xml, "<reason>") == NULL && strcmp(xml + x.len - 12, "</feedback>\n") == 0);
	buf_free(&x);

	test_assert(dmarc_report_same_org("sender.test", "SENDER.test"));
	test_assert(dmarc_report_same_org("mail.sender.test", "reports.sender.test"));
	test_assert(!dmarc_report_same_org("sender.test", "example.com"));
	test_assert(!dmarc_report_same_org("sender.test", "notsender.test"));
	test_assert(!dmarc_report_same_org("a.test", "test")); /* a bare suffix is no organisation */
}

TEST_MAIN("attendant", TEST_CASE(imap_client_refuses_responses_past_its_limits), TEST_CASE(history_counts_the_flow),
	  TEST_CASE(quota_message_is_a_valid_message), TEST_CASE(parses_request_lines), TEST_CASE(renders_facts),
	  TEST_CASE(dmarc_report_xml_rows))
