#!/bin/sh
# run.sh BUILD TEST... - runs unit test binaries and end-to-end scripts, counts their PASS/FAIL lines and prints
# the closing "N passed, N failed". A test program that exits non-zero without a FAIL line counts as one failure.
build=$1; shift
passed=0; failed=0
log=$(mktemp)
for t in "$@"; do
	case "$t" in
	*.py) cmd="python3 $t" ;;
	*) cmd="$t" ;;
	esac
	IX_BUILD=$build LDAPNOINIT=1 timeout 600 $cmd >"$log" 2>&1
	rc=$?
	cat "$log"
	p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $t: exited with status $rc"
		f=1
	fi
	passed=$((passed + p)); failed=$((failed + f))
done
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
