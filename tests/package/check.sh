#!/bin/bash
# check.sh DEB - the Debian package end to end, as root on a machine where nothing holds the standard ports: install
# it, lintian without errors, init --standard-ports and start, every port answered by a real client (curl for SMTP,
# submission, IMAP, POP3 and HTTP, ldapsearch for LDAP and LDAPS, sieve-connect for ManageSieve, openssl s_client on
# each TLS port and STARTTLS), the logs in /var/log/interchange with logrotate's rules for them, stop, remove (the
# data and logs stay), purge (they go). Run by .ci/run after `make deb`; prints one line per check, exits non-zero at
# the first that fails.
set -euo pipefail
deb=$(realpath "$1")
DATA=/var/lib/interchange
LOGS=/var/log/interchange
PW=Package-Check-Pw-1
fail() { echo "FAIL package: $*"; exit 1; }
ok() { echo "PASS package: $*"; }
cleanup() {
	interchange stop >/dev/null 2>&1 || true
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -qq interchange >/dev/null 2>&1 || true
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "needs root (it installs the package)"
if ss -ltnH | awk '{print $4}' | grep -Eq ':(25|80|110|143|389|443|465|587|636|993|995|4190)$'; then
	fail "a standard port is taken on this machine: $(ss -ltnH | awk '{print $4}' | tr '\n' ' ')"
fi
[ ! -e $DATA ] && [ ! -e $LOGS ] || fail "$DATA or $LOGS exists already: this check installs a fresh package"

out=$(lintian "$deb" 2>&1 || true)
if echo "$out" | grep -q '^E:'; then fail "lintian errors: $out"; fi
ok "lintian reports no errors ($(echo "$out" | grep -c '^W:' || true) warnings)"

DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$deb" >/dev/null
getent passwd interchange >/dev/null || fail "postinst made no interchange user"
[ -x /usr/sbin/interchange ] && [ -x /usr/lib/interchange/ix-smtpd ] || fail "files missing"
systemd-analyze verify /lib/systemd/system/interchange.service || fail "systemd-analyze verify"
ok "installed: /usr/sbin/interchange, /usr/lib/interchange, the unit verifies"

interchange init --standard-ports --domain example.com --hostname mail.example.com --admin-password "$PW" \
	>/dev/null
[ -f $DATA/interchange.conf ] || fail "init did not use $DATA by default"
interchange start
interchange user add alice --given Alice --surname Archer --password Quiet-Orchard-58 >/dev/null
ok "init --standard-ports and start with the default data folder $DATA"

# wait for the replica to know alice before logging in
for _ in $(seq 50); do
	curl -s --max-time 5 -u alice:Quiet-Orchard-58 imap://127.0.0.1:143/ --ssl-reqd -k >/dev/null 2>&1 && break
	sleep 0.2
done
msg=$(printf 'From: alice.archer@example.com\r\nTo: alice.archer@example.com\r\nSubject: package check\r\n\r\nhello\r\n')
curl -s --max-time 20 smtp://127.0.0.1:25 --mail-from friend@outside.org --mail-rcpt alice.archer@example.com \
	--upload-file <(echo "$msg") || fail "SMTP on 25"
ok "SMTP on 25 (curl)"
curl -s --max-time 20 --ssl-reqd -k -u alice:Quiet-Orchard-58 smtp://127.0.0.1:587 --mail-from alice.archer@example.com \
	--mail-rcpt alice.archer@example.com --upload-file <(echo "$msg") || fail "submission on 587"
ok "submission with STARTTLS on 587 (curl)"
curl -s --max-time 20 -k -u alice:Quiet-Orchard-58 smtps://127.0.0.1:465 --mail-from alice.archer@example.com \
	--mail-rcpt alice.archer@example.com --upload-file <(echo "$msg") || fail "submissions on 465"
ok "submission over TLS on 465 (curl)"
for _ in $(seq 50); do
	n=$(curl -s --max-time 10 --ssl-reqd -k -u alice:Quiet-Orchard-58 'imap://127.0.0.1:143/INBOX' -X 'SEARCH ALL' |
		tr ' ' '\n' | grep -c '^[0-9]' || true)
	[ "$n" -ge 3 ] && break
	sleep 0.2
done
[ "$n" -ge 3 ] || fail "IMAP on 143 shows $n messages, not 3"
ok "IMAP with STARTTLS on 143 (curl): the 3 messages"
curl -s --max-time 10 -k -u alice:Quiet-Orchard-58 'imaps://127.0.0.1:993/INBOX;UID=1' | grep -q 'package check' ||
	fail "IMAPS on 993"
ok "IMAP over TLS on 993 (curl)"
curl -s --max-time 10 --ssl-reqd -k -u alice:Quiet-Orchard-58 pop3://127.0.0.1:110/ | grep -q '^1 ' || fail "POP3 on 110"
ok "POP3 with STLS on 110 (curl)"
curl -s --max-time 10 -k -u alice:Quiet-Orchard-58 pop3s://127.0.0.1:995/1 | grep -q 'package check' || fail "POP3S on 995"
ok "POP3 over TLS on 995 (curl)"
ldapsearch -LLL -x -H ldap://127.0.0.1:389 -D "cn=admin,dc=example,dc=com" -w "$PW" -b dc=example,dc=com \
	'(uid=alice)' mail | grep -q 'mail: alice.archer@example.com' || fail "LDAP on 389"
ok "LDAP on 389 (ldapsearch)"
LDAPTLS_REQCERT=never ldapsearch -LLL -ZZ -x -H ldap://127.0.0.1:389 -D "cn=admin,dc=example,dc=com" -w "$PW" \
	-b dc=example,dc=com '(uid=alice)' uid | grep -q 'uid: alice' || fail "LDAP StartTLS on 389"
ok "LDAP with StartTLS on 389 (ldapsearch -ZZ)"
curl -s --max-time 10 -H 'Host: autoconfig.example.com' http://127.0.0.1/mail/config-v1.1.xml |
	grep -q '<port>993</port>' || fail "HTTP on 80"
ok "HTTP on 80 (curl: Thunderbird autoconfig names port 993)"
curl -s --max-time 10 -k https://127.0.0.1/ | grep -q 'Interchange' || fail "HTTPS on 443"
ok "HTTPS on 443 (curl)"
interchange cert show --pem >/tmp/ix-package-ca.pem
LDAPTLS_CACERT=/tmp/ix-package-ca.pem LDAPTLS_REQCERT=demand ldapsearch -LLL -x -H ldaps://localhost:636 \
	-D "cn=admin,dc=example,dc=com" -w "$PW" -b dc=example,dc=com '(uid=alice)' uid | grep -q 'uid: alice' ||
	fail "LDAPS on 636"
ok "LDAPS on 636 (ldapsearch verifying the certificate)"
if command -v sieve-connect >/dev/null; then
	printf 'require "fileinto";\nif header :contains "subject" "package" { fileinto "Checks"; }\n' >/tmp/ix-package.sieve
	sieve_connect() {
		sieve-connect -s 127.0.0.1 -p 4190 --tlshostname mail.example.com --tlscafile /tmp/ix-package-ca.pem \
			--noclearauth -u alice --passwordfd 3 "$@" 3<<<"Quiet-Orchard-58"
	}
	sieve_connect --upload --localsieve /tmp/ix-package.sieve --remotesieve checks >/dev/null 2>&1 &&
		sieve_connect --list 2>/dev/null | grep -q '"checks"' || fail "ManageSieve on 4190"
	ok "ManageSieve with STARTTLS on 4190 (sieve-connect verifying the certificate: a script uploaded and listed)"
fi
for spec in 993: 995: 465: 636: 443: 25:smtp 587:smtp 143:imap 110:pop3 389:ldap 4190:sieve; do
	port=${spec%%:*} starttls=${spec#*:}
	echo | openssl s_client -connect 127.0.0.1:"$port" ${starttls:+-starttls $starttls} -CAfile /tmp/ix-package-ca.pem \
		-verify_hostname mail.example.com -verify_return_error >/dev/null 2>&1 ||
		fail "openssl s_client on $port ${starttls:-(TLS)}"
done
ok "openssl s_client verifies the certificate on 993, 995, 465, 636, 443 and STARTTLS on 25, 587, 143, 110, 389, 4190"
grep -q 'smtpd started' $LOGS/attendant.log && [ -s $LOGS/smtpd.log ] && [ ! -e $DATA/log/smtpd.log ] ||
	fail "the service logs are not in $LOGS"
interchange logs smtpd | cmp -s - $LOGS/smtpd.log || fail "interchange logs does not read $LOGS"
grep -q "^$LOGS/\*.log {" /etc/logrotate.d/interchange && logrotate -d /etc/logrotate.d/interchange >/dev/null 2>&1 ||
	fail "logrotate's rules for $LOGS"
ok "the logs in $LOGS (interchange logs reads them; /etc/logrotate.d/interchange rotates them)"
interchange stop >/dev/null

DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 remove -y -qq interchange >/dev/null
[ ! -e /usr/sbin/interchange ] && [ -f $DATA/interchange.conf ] && [ -f $LOGS/attendant.log ] ||
	fail "remove: the program stays or the data or logs went"
ok "remove keeps $DATA and $LOGS"
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -qq interchange >/dev/null
[ ! -e $DATA ] && [ ! -e $LOGS ] || fail "purge left $DATA or $LOGS"
ok "purge removes $DATA and $LOGS"
