#!/bin/sh
# manpages.sh BUILD OUT VERSION - the manual pages, made from the programs' own --help texts (one source, so the page
# and the program cannot disagree): OUT/interchange.8 with every command of `interchange --help`, and one page per
# daemon (OUT/ix-NAME.8). Run by the Makefile's man target.
set -eu
build=$1 out=$2 version=$3
daemons="ix-mta ix-smtpd ix-imapd ix-pop3d ix-managesieved ix-httpd"
mkdir -p "$out"
# roff: backslashes escaped, and a line that starts with . or ' is not taken as a request
roff() { sed -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/' -e 's/-/\\-/g'; }
see_also() {
	for p in interchange $daemons; do [ "$p" = "$1" ] || printf '.BR %s (8)\n' "$p"; done
	printf '.BR slapd (8)\n'
}
{
	printf '.TH INTERCHANGE 8 "" "Interchange %s" "System Administration"\n' "$version"
	printf '.SH NAME\ninterchange \\- the command of the Interchange mail and directory server\n'
	printf '.SH SYNOPSIS\n.nf\n'
	"$build/interchange" --help | roff
	printf '.fi\n.SH COMMANDS\n'
	for cmd in $("$build/interchange" --help | awk '/^commands:/ { on = 1; next } on && NF { print $1 }'); do
		printf '.SS %s\n.nf\n' "$cmd"
		"$build/interchange" --data /nonexistent "$cmd" --help | roff
		printf '.fi\n'
	done
	printf '.SH FILES\n.TP\n.I /var/lib/interchange\nthe data folder of an installed interchange (./var from a build folder)\n'
	printf '.SH SEE ALSO\n'
	see_also interchange
} > "$out/interchange.8"
for d in $daemons; do
	upper=$(echo "$d" | tr a-z A-Z)
	{
		printf '.TH %s 8 "" "Interchange %s" "System Administration"\n' "$upper" "$version"
		printf '.SH NAME\n%s \\- %s\n' "$d" "$("$build/$d" --help | sed -n 3p | sed 's/^The //; s/:.*//; s/\\/\\e/g')"
		printf '.SH SYNOPSIS\n.B %s\n.BI \\-\\-data " DIR"\n' "$d"
		printf '.SH DESCRIPTION\n'
		"$build/$d" --help | tail -n +3 | roff
		printf '.PP\nIt is started and supervised by the attendant (\\fBinterchange start\\fP), never by hand.\n'
		printf '.SH SEE ALSO\n'
		see_also "$d"
	} > "$out/$d.8"
done
