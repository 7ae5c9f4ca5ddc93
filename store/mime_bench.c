/* mime_bench.c - how long the delivery-time MIME parse costs, and what the cache record weighs: parse,
 * serialize and deserialize timings for a few message shapes. Prints figures; asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/mime.h"
#include "common/util.h"

#define BENCH_MIN_USEC 300000ULL /* run each shape for at least this long */

static void header(struct buf *b, const char *ctype)
{
	buf_append_str(
		b,
		"Return-Path: <alice@example.org>\r\n"
		"Received: from mx.example.org (mx.example.org [192.0.2.1]) by mail.example.com with ESMTPS id "
		"abc123 for <bob@example.com>; Tue, 03 Mar 2020 10:15:01 +0100\r\n"
		"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=sel; h=from:to:subject:date;\r\n"
		" bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZQ==\r\n"
		"Date: Tue, 03 Mar 2020 10:15:00 +0100\r\n"
		"From: \"Alice Liddell\" <alice@example.org>\r\n"
		"To: Bob <bob@example.com>, carol@example.net, \"Dave, the admin\" <dave@example.com>\r\n"
		"Subject: =?utf-8?q?Caf=C3=A9?= meeting notes and the quarterly figures\r\n"
		"Message-ID: <abc123@mail.example.org>\r\nMIME-Version: 1.0\r\n");
	buf_printf(b, "Content-Type: %s\r\n\r\n", ctype);
}

static void text_lines(struct buf *b, size_t bytes)
{
	static const char line[] = "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\r\n";
	for (size_t n = 0; n < bytes; n += sizeof(line) - 1)
		buf_append_str(b, line);
}

static void run(const char *name, const struct buf *msg)
{
	struct mime_info *info;
	unsigned long long start = now_usec(), end;
	unsigned long runs = 0;
	do {
		if (mime_parse(msg->data, msg->len, NULL, &info, NULL) != IX_OK)
			fatal("bench %s: parse failed", name);
		mime_info_destroy(&info);
		runs++;
	} while ((end = now_usec()) - start < BENCH_MIN_USEC);
	double parse_us = (double)(end - start) / (double)runs;

	if (mime_parse(msg->data, msg->len, NULL, &info, NULL) != IX_OK)
		fatal("bench %s: parse failed", name);
	struct buf blob = BUF_INIT;
	mime_info_serialize(info, &blob);
	unsigned long druns = 0;
	start = now_usec();
	do {
		struct mime_info *back;
		if (mime_info_deserialize(blob.data, blob.len, &back) != IX_OK)
			fatal("bench %s: deserialize failed", name);
		mime_info_destroy(&back);
		druns++;
	} while ((end = now_usec()) - start < BENCH_MIN_USEC);
	double deser_us = (double)(end - start) / (double)druns;
	printf("%-22s %8zu bytes %5zu parts  parse %9.1f us (%7.1f MB/s)  cache %6zu bytes  load %6.2f us\n", name,
	       msg->len, info->part_count, parse_us, (double)msg->len / parse_us, blob.len, deser_us);
	buf_free(&blob);
	mime_info_destroy(&info);
}

int main(void)
{
	struct buf m = BUF_INIT;

	header(&m, "text/plain; charset=us-ascii");
	text_lines(&m, 2000);
	run("plain 2 KB", &m);

	buf_reset(&m);
	header(&m, "multipart/alternative; boundary=\"alt\"");
	buf_append_str(
		&m,
		"--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
	text_lines(&m, 8000);
	buf_append_str(&m, "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n");
	text_lines(&m, 16000);
	buf_append_str(&m, "</body></html>\r\n--alt--\r\n");
	run("alternative 25 KB", &m);

	buf_reset(&m);
	header(&m, "multipart/mixed; boundary=\"mix\"");
	buf_append_str(
		&m,
		"--mix\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--mix\r\n"
		"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
		"Content-Disposition: attachment; filename=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
	for (int i = 0; i < 13800; i++)
		buf_append_str(&m, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n");
	buf_append_str(&m, "--mix--\r\n");
	run("attachment 1 MB", &m);

	buf_reset(&m);
	header(&m, "multipart/mixed; boundary=\"many\"");
	for (int i = 0; i < 500; i++)
		buf_printf(&m, "--many\r\nContent-Type: text/plain; name=\"part%d.txt\"\r\n\r\npart %d\r\n", i, i);
	buf_append_str(&m, "--many--\r\n");
	run("500 parts", &m);

	buf_reset(&m);
	header(&m, "multipart/mixed; boundary=\"fwd\"");
	buf_append_str(
		&m,
		"--fwd\r\nContent-Type: text/plain\r\n\r\nForwarded.\r\n--fwd\r\nContent-Type: message/rfc822\r\n\r\n");
	header(&m, "multipart/alternative; boundary=\"in\"");
	buf_append_str(&m, "--in\r\nContent-Type: text/plain\r\n\r\n");
	text_lines(&m, 3000);
	buf_append_str(&m, "--in\r\nContent-Type: text/html\r\n\r\n");
	text_lines(&m, 6000);
	buf_append_str(&m, "--in--\r\n--fwd--\r\n");
	run("forwarded 10 KB", &m);

	buf_free(&m);
	return 0;
}
