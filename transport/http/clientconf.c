/* clientconf.c - the client configuration texts of clientconf.h: Thunderbird autoconfig, Outlook Autodiscover,
 * Apple profiles and the MTA-STS policy, each written from the same struct clientconf. */
#include "transport/http/clientconf.h"
#include "common/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool clientconf_address(const char *address, const char **domain_r)
{
	size_t len = strlen(address);
	const char *at = strrchr(address, '@');
	if (len > CLIENTCONF_ADDRESS_MAX || at == NULL || at == address || !config_domain_valid(at + 1))
		return false;
	for (const char *p = address; p < at; p++) {
		if (*p <= ' ' || *p >= 127 || strchr("<>\"&@", *p) != NULL)
			return false;
	}
	if (domain_r != NULL)
		*domain_r = at + 1;
	return true;
}

static const char *display_name(const struct clientconf *cc)
{
	return cc->org != NULL && cc->org[0] != '\0' ? cc->org : cc->domain;
}

/* One <incomingServer> or <outgoingServer> of Thunderbird's format. */
static void tb_server(struct buf *out, const char *element, const char *type, const char *host, unsigned port,
		      bool implicit_tls)
{
	if (port == 0)
		return;
	buf_printf(out, "    <%s type=\"%s\">\n      <hostname>", element, type);
	buf_append_xml(out, host);
	buf_printf(out,
		   "</hostname>\n      <port>%u</port>\n      <socketType>%s</socketType>\n"
		   "      <authentication>password-cleartext</authentication>\n"
		   "      <username>%%EMAILADDRESS%%</username>\n    </%s>\n",
		   port, implicit_tls ? "SSL" : "STARTTLS", element);
}

void clientconf_thunderbird(const struct clientconf *cc, struct buf *out)
{
	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n"
			    "  <emailProvider id=\"");
	buf_append_xml(out, cc->domain);
	buf_append_str(out, "\">\n    <domain>");
	buf_append_xml(out, cc->domain);
	buf_append_str(out, "</domain>\n    <displayName>");
	buf_append_xml(out, display_name(cc));
	buf_append_str(out, "</displayName>\n    <displayShortName>");
	buf_append_xml(out, display_name(cc));
	buf_append_str(out, "</displayShortName>\n");
	tb_server(out, "incomingServer", "imap", cc->hostname, cc->imaps, true);
	tb_server(out, "incomingServer", "imap", cc->hostname, cc->imap, false);
	tb_server(out, "incomingServer", "pop3", cc->hostname, cc->pop3s, true);
	tb_server(out, "incomingServer", "pop3", cc->hostname, cc->pop3, false);
	tb_server(out, "outgoingServer", "smtp", cc->hostname, cc->submissions, true);
	tb_server(out, "outgoingServer", "smtp", cc->hostname, cc->submission, false);
	buf_append_str(out, "  </emailProvider>\n</clientConfig>\n");
}

/* Finds the content of the first element named name (with or without a namespace prefix) in body. */
static bool element_text(const char *body, size_t len, const char *name, const char **start_r, size_t *len_r)
{
	size_t nlen = strlen(name);
	for (size_t i = 0; i < len; i++) {
		if (body[i] != '<' || (i + 1 < len && (body[i + 1] == '/' || body[i + 1] == '?' || body[i + 1] == '!')))
			continue;
		size_t j = i + 1, tag = j;
		while (j < len && body[j] != '>' && body[j] != ' ' && body[j] != '/' && body[j] != '\t' &&
		       body[j] != '\r' && body[j] != '\n')
			j++;
		/* the local name: after the last ':' of the tag name */
		for (size_t k = tag; k < j; k++) {
			if (body[k] == ':')
				tag = k + 1;
		}
		if (j - tag != nlen || strncasecmp(body + tag, name, nlen) != 0)
			continue;
		while (j < len && body[j] != '>')
			j++;
		if (j >= len || body[j - 1] == '/')
			return false;
		const char *start = body + j + 1;
		const char *end = memchr(start, '<', len - (size_t)(start - body));
		if (end == NULL)
			return false;
		*start_r = start;
		*len_r = (size_t)(end - start);
		return true;
	}
	return false;
}

bool clientconf_autodiscover_request(const char *body, size_t len, struct buf *address_r)
{
	const char *text;
	size_t n;
	if (!element_text(body, len, "EMailAddress", &text, &n))
		return false;
	while (n > 0 && (*text == ' ' || *text == '\t' || *text == '\r' || *text == '\n'))
		text++, n--;
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\r' || text[n - 1] == '\n'))
		n--;
	if (n == 0 || n > CLIENTCONF_ADDRESS_MAX || memchr(text, '\0', n) != NULL)
		return false;
	buf_reset(address_r);
	buf_append(address_r, text, n);
	return clientconf_address(buf_cstr(address_r), NULL);
}

/* One <Protocol> of the Autodiscover answer. */
static void ad_protocol(struct buf *out, const char *type, const char *host, unsigned port, bool implicit_tls,
			const char *address)
{
	if (port == 0)
		return;
	buf_printf(out, "      <Protocol>\n        <Type>%s</Type>\n        <Server>", type);
	buf_append_xml(out, host);
	buf_printf(out, "</Server>\n        <Port>%u</Port>\n        <DomainRequired>off</DomainRequired>\n", port);
	buf_append_str(out, "        <LoginName>");
	buf_append_xml(out, address);
	buf_printf(out,
		   "</LoginName>\n        <SPA>off</SPA>\n        <SSL>on</SSL>\n        <Encryption>%s</Encryption>\n"
		   "        <AuthRequired>on</AuthRequired>\n",
		   implicit_tls ? "SSL" : "TLS");
	if (strcmp(type, "SMTP") == 0)
		buf_append_str(out, "        <UsePOPAuth>off</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>\n");
	buf_append_str(out, "      </Protocol>\n");
}

#define AD_RESPONSE_NS "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
#define AD_OUTLOOK_NS "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

void clientconf_autodiscover(const struct clientconf *cc, const char *address, struct buf *out)
{
	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"" AD_RESPONSE_NS "\">\n"
			    "  <Response xmlns=\"" AD_OUTLOOK_NS "\">\n    <User>\n      <DisplayName>");
	buf_append_xml(out, address);
	buf_append_str(out, "</DisplayName>\n    </User>\n    <Account>\n      <AccountType>email</AccountType>\n"
			    "      <Action>settings</Action>\n");
	ad_protocol(out, "IMAP", cc->hostname, cc->imaps != 0 ? cc->imaps : cc->imap, cc->imaps != 0, address);
	ad_protocol(out, "POP3", cc->hostname, cc->pop3s != 0 ? cc->pop3s : cc->pop3, cc->pop3s != 0, address);
	ad_protocol(out, "SMTP", cc->hostname, cc->submissions != 0 ? cc->submissions : cc->submission,
		    cc->submissions != 0, address);
	buf_append_str(out, "    </Account>\n  </Response>\n</Autodiscover>\n");
}

void clientconf_autodiscover_error(unsigned code, const char *message, struct buf *out)
{
	buf_printf(out,
		   "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"" AD_RESPONSE_NS "\">\n"
		   "  <Response>\n    <Error Id=\"0\">\n      <ErrorCode>%u</ErrorCode>\n      <Message>",
		   code);
	buf_append_xml(out, message);
	buf_append_str(out, "</Message>\n      <DebugData />\n    </Error>\n  </Response>\n</Autodiscover>\n");
}

/* FNV-1a, 64 bits: identifiers that follow their input (not a security measure). */
static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* A UUID-shaped identifier from seed and the two strings. */
static void derived_uuid(const char *seed, const char *a, const char *b, char out[37])
{
	uint64_t h1 = fnv1a(fnv1a(fnv1a(14695981039346656037ULL, seed), a), b);
	uint64_t h2 = fnv1a(fnv1a(fnv1a(h1 ^ 0x9e3779b97f4a7c15ULL, b), seed), a);
	snprintf(out, 37, "%08X-%04X-4%03X-8%03X-%012llX", (unsigned)(h1 >> 32), (unsigned)(h1 >> 16) & 0xffffu,
		 (unsigned)h1 & 0xfffu, (unsigned)(h2 >> 48) & 0xfffu, (unsigned long long)(h2 & 0xffffffffffffULL));
}

/* Property-list entries indented by depth tabs: the account's dict is three deep, the profile's keys one. */
static void plist_key(struct buf *out, int depth, const char *key)
{
	buf_printf(out, "%.*s<key>%s</key>\n%.*s", depth, "\t\t\t", key, depth, "\t\t\t");
}

static void plist_string(struct buf *out, int depth, const char *key, const char *value)
{
	plist_key(out, depth, key);
	buf_append_str(out, "<string>");
	buf_append_xml(out, value);
	buf_append_str(out, "</string>\n");
}

static void plist_integer(struct buf *out, int depth, const char *key, unsigned value)
{
	plist_key(out, depth, key);
	buf_printf(out, "<integer>%u</integer>\n", value);
}

static void plist_bool(struct buf *out, int depth, const char *key, bool value)
{
	plist_key(out, depth, key);
	buf_printf(out, "<%s/>\n", value ? "true" : "false");
}

void clientconf_mobileconfig(const struct clientconf *cc, const char *address, struct buf *out)
{
	char account_uuid[37], profile_uuid[37];
	derived_uuid("account", cc->hostname, address, account_uuid);
	derived_uuid("profile", cc->hostname, address, profile_uuid);
	/* reverse-DNS identifiers from the host name (letters, digits, '-' and '.') */
	struct buf rev = BUF_INIT;
	for (const char *end = cc->hostname + strlen(cc->hostname), *p = end; p >= cc->hostname; p--) {
		if (p == cc->hostname || p[-1] == '.') {
			buf_printf(&rev, "%s%.*s", rev.len ? "." : "", (int)(end - p), p);
			end = p - 1;
		}
	}
	char *account_id = xasprintf("%s.mail.%s", buf_cstr(&rev), account_uuid);
	char *profile_id = xasprintf("%s.profile.%s", buf_cstr(&rev), profile_uuid);
	unsigned in_port = cc->imaps != 0 ? cc->imaps : cc->imap;
	unsigned out_port = cc->submissions != 0 ? cc->submissions : cc->submission;
	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
			    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
			    "<plist version=\"1.0\">\n<dict>\n\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n");
	plist_string(out, 3, "EmailAccountDescription", display_name(cc));
	plist_string(out, 3, "EmailAccountName", address);
	plist_string(out, 3, "EmailAccountType", "EmailTypeIMAP");
	plist_string(out, 3, "EmailAddress", address);
	plist_string(out, 3, "IncomingMailServerAuthentication", "EmailAuthPassword");
	plist_string(out, 3, "IncomingMailServerHostName", cc->hostname);
	plist_integer(out, 3, "IncomingMailServerPortNumber", in_port);
	plist_bool(out, 3, "IncomingMailServerUseSSL", cc->imaps != 0);
	plist_string(out, 3, "IncomingMailServerUsername", address);
	plist_string(out, 3, "OutgoingMailServerAuthentication", "EmailAuthPassword");
	plist_string(out, 3, "OutgoingMailServerHostName", cc->hostname);
	plist_integer(out, 3, "OutgoingMailServerPortNumber", out_port);
	plist_bool(out, 3, "OutgoingMailServerUseSSL", cc->submissions != 0);
	plist_string(out, 3, "OutgoingMailServerUsername", address);
	plist_bool(out, 3, "OutgoingPasswordSameAsIncomingPassword", true);
	plist_string(out, 3, "PayloadDescription", "E-mail account");
	plist_string(out, 3, "PayloadDisplayName", address);
	plist_string(out, 3, "PayloadIdentifier", account_id);
	plist_string(out, 3, "PayloadType", "com.apple.mail.managed");
	plist_string(out, 3, "PayloadUUID", account_uuid);
	plist_integer(out, 3, "PayloadVersion", 1);
	buf_append_str(out, "\t\t</dict>\n\t</array>\n");
	plist_string(out, 1, "PayloadDescription", "The mail account of this address on its Interchange server");
	plist_string(out, 1, "PayloadDisplayName", display_name(cc));
	plist_string(out, 1, "PayloadIdentifier", profile_id);
	plist_string(out, 1, "PayloadOrganization", display_name(cc));
	plist_bool(out, 1, "PayloadRemovalDisallowed", false);
	plist_string(out, 1, "PayloadType", "Configuration");
	plist_string(out, 1, "PayloadUUID", profile_uuid);
	plist_integer(out, 1, "PayloadVersion", 1);
	buf_append_str(out, "</dict>\n</plist>\n");
	free(account_id);
	free(profile_id);
	buf_free(&rev);
}

void clientconf_mta_sts(const struct clientconf *cc, struct buf *out, char *id)
{
	size_t start = out->len;
	buf_append_str(out, "version: STSv1\nmode: testing\n");
	for (size_t i = 0; cc->mx != NULL && cc->mx[i] != NULL; i++)
		buf_printf(out, "mx: %s\n", cc->mx[i]);
	buf_printf(out, "max_age: %u\n", CLIENTCONF_MTA_STS_MAX_AGE);
	snprintf(id, 17, "%016llx", (unsigned long long)fnv1a(14695981039346656037ULL, out->data + start));
}
