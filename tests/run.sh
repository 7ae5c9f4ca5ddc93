#!/bin/bash
# run.sh BUILD TEST... - runs unit test binaries, fuzz replays and end-to-end scripts, counts their PASS/FAIL/SKIP
# lines and prints the closing "N passed, N failed, N skipped". A test program that exits non-zero without a FAIL
# line counts as one failure. Programs and non-e2e scripts run one after another; the end-to-end files (*/e2e/*.py:
# each starts its own systems on its own ports in its own folder) then run $IX_TEST_JOBS (default 3) at a time, each
# file's output printed whole when it ends, the slowest of the last run (BUILD/e2e-times) first. Every file has a
# 600 s limit; its time is printed after its output.
build=$1; shift
jobs=${IX_TEST_JOBS:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
times=$build/e2e-times

# run_one TEST N: runs TEST into $out/N.log, then prints the log, a FAIL line for a silent non-zero exit and the
# time under a lock (so parallel files never interleave), and leaves "passed failed skipped" in $out/N.count.
run_one() {
	local t=$1 n=$2 cmd rc p f s t0 t1
	case "$t" in
	*.py) cmd="python3 $t" ;;
	*) cmd="$t" ;;
	esac
	t0=$(date +%s%N)
	IX_BUILD=$build LDAPNOINIT=1 timeout 600 $cmd >"$out/$n.log" 2>&1
	rc=$?
	t1=$(date +%s%N)
	p=$(grep -c '^PASS ' "$out/$n.log"); f=$(grep -c '^FAIL ' "$out/$n.log"); s=$(grep -c '^SKIP ' "$out/$n.log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		if [ "$rc" -eq 124 ]; then
			echo "FAIL $t: timed out after 600 s" >>"$out/$n.log"
		else
			echo "FAIL $t: exited with status $rc" >>"$out/$n.log"
		fi
		f=1
	fi
	printf '# %s: %d.%02d s\n' "$t" $(((t1 - t0) / 1000000000)) $(((t1 - t0) / 10000000 % 100)) >>"$out/$n.log"
	echo "$(((t1 - t0) / 1000000)) $t" >"$out/$n.time"
	echo "$p $f $s" >"$out/$n.count"
	flock "$out" cat "$out/$n.log"
}

n=0
for t in "$@"; do
	case "$t" in */e2e/*.py) continue ;; esac
	n=$((n + 1))
	run_one "$t" $n
done
# the end-to-end files, longest first by the last run's times (a new file first of all)
e2e=$(for t in "$@"; do
	case "$t" in */e2e/*.py) ;; *) continue ;; esac
	ms=$(awk -v t="$t" '$2 == t { print $1 }' "$times" 2>/dev/null)
	echo "${ms:-999999999} $t"
done | sort -rn | cut -d' ' -f2)
for t in $e2e; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n
	done
	n=$((n + 1))
	run_one "$t" $n &
done
wait
{ cat "$out"/*.time; cat "$times"; } 2>/dev/null | awk '!seen[$2]++' | sort -rn >"$times.new" && mv "$times.new" "$times"

passed=0; failed=0; skipped=0
for c in "$out"/*.count; do
	read -r p f s <"$c"
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
