#!/usr/bin/env bash
# bench/census.sh: where a proxied connection's time goes, side by side
# (see BENCHMARKS.md, "Per connection: system calls and CPU").
#
#   bash bench/census.sh                  every measure below, each system
#   MEASURES=conns bash bench/census.sh   one of: conns rr1 idle
#
# Systems (SYSTEMS): loop (this plugin, the default event-loop path),
# goroutine (this plugin with CADDY_TCPPROXY_DATAPATH=goroutine), haproxy,
# and with BASE_REV baseline (the plugin built from that revision).
# Measures:
#   conns  CONNS_WORKERS workers dial, echo 64 B and close for DUR s: the
#          proxy's CPU-s per 10k connections, and (with perf) its system
#          calls per connection, from perf stat's syscalls:sys_enter_*
#          tracepoints on the proxy's PID.
#   rr1    one persistent connection, 64 B requests back to back for DUR
#          s, a nice-19 busy loop per CPU (as bench/run.sh's rr): CPU-µs
#          and system calls per request.
#          Rates and CPU come from an untraced run; the system calls from
#          a second, traced run of the same length (tracing slows every
#          system call, so it would tax most whoever makes the most).
#   idle   IDLE_CONNS idle connections: RSS and fds per connection, and
#          for the plugin its live heap per connection (/debug/vars
#          after a GC), which the RSS delta understates once earlier
#          connections left free heap behind.
# Writes the report to bench/results/census-*.md too. Children are ended
# by PID on exit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for f in lib configs; do
	# shellcheck source=/dev/null
	source "$REPO/bench/$f.sh"
done
: "${SYSTEMS:=loop goroutine ${BASE_REV:+baseline }haproxy}" "${MEASURES:=conns rr1 idle}"
: "${DUR:=6}" "${CONNS_WORKERS:=16}" "${IDLE_CONNS:=5000}"

# calc EXPR: awk arithmetic, printed with 2 decimals.
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

# start SYSTEM: starts it on PORTS (admin on ADMIN for the plugin); sets
# PROXY_PID.
start() {
	local dir=$WORK/run/$1 bin=$BIN/caddy env=()
	mkdir -p "$dir"
	case $1 in
	haproxy)
		haproxy_cfg "$PORTS" "$TARGETS" >"$dir/haproxy.cfg"
		spawn "$dir/log" haproxy -db -f "$dir/haproxy.cfg"
		;;
	*)
		[ "$1" != baseline ] || bin=$BIN/caddy-base
		[ "$1" != goroutine ] || env=(CADDY_TCPPROXY_DATAPATH=goroutine)
		plugin_json "$ADMIN" "$PORTS" "$TARGETS" >"$dir/caddy.json"
		spawn "$dir/log" env "${env[@]}" HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home" \
			XDG_DATA_HOME="$WORK/home" "$bin" run --config "$dir/caddy.json"
		;;
	esac
	PROXY_PID=$SPAWNED
	timeout 20 "$BIN/loadgen" probe -addr "$ADDRS" -timeout 15s >/dev/null || die "$1 did not come up"
	timeout 20 "$BIN/loadgen" conns -addr "$ADDRS" -workers 4 -dur 1s >/dev/null # warm-up
}

# cpu: the proxy tree's CPU-seconds so far.
cpu() { "$BIN/procstat" cpu "$PROXY_PID" | cut -d' ' -f2; }

# syscalls PERFOUT UNITS: the system calls in a perf stat output, per unit,
# the total first, then each call made at least 0.02 times per unit.
syscalls() {
	awk -v n="$2" '/syscalls:sys_enter_/ { gsub(",", "", $1); if ($1 + 0 > 0) { c[$2] = $1; t += $1 } }
		END { printf "  - system calls: %.1f per unit:", t / n
			for (k in c) if (c[k] / n >= 0.02) { s = k; sub("syscalls:sys_enter_", "", s); printf " %s %.2f,", s, c[k] / n }
			print "" }' "$1" | sed 's/,$//'
}

# counted CMD...: runs CMD with perf stat counting the proxy's system
# calls meanwhile (into PERF_OUT; empty without perf).
counted() {
	PERF_OUT=""
	if command -v perf >/dev/null; then
		PERF_OUT=$WORK/perf.out
		spawn /dev/null perf stat -e 'syscalls:sys_enter_*' -p "$PROXY_PID" -o "$PERF_OUT"
		local perf=$SPAWNED
		sleep 0.3
		"$@"
		kill -INT "$perf" 2>/dev/null || true
		wait "$perf" 2>/dev/null || true
		forget "$perf"
	else
		"$@"
	fi
}

measure_conns() {
	local c0 c1 out n
	conns() { out=$("$BIN/loadgen" conns -addr "$ADDRS" -workers "$CONNS_WORKERS" -dur "${DUR}s"); }
	c0=$(cpu)
	conns
	c1=$(cpu)
	n=$(kv conns "$out")
	echo "- $1, conns: $(kv connps "$out") conns/s, $(calc "($c1 - $c0) / ($n / 10000)") CPU-s per 10k connections ($n connections, errors $(kv errors "$out"))"
	counted conns
	[ -z "$PERF_OUT" ] || syscalls "$PERF_OUT" "$(kv conns "$out")" | sed 's/per unit/per connection/'
}

measure_rr1() {
	local c0 c1 out n i awake=()
	for i in $(seq "$(nproc)"); do
		spawn /dev/null timeout $((2 * DUR + 30)) nice -n 19 sh -c 'while :; do :; done'
		awake+=("$SPAWNED")
	done
	rr1() { out=$("$BIN/loadgen" rr -addr "${ADDRS%%,*}" -conns 1 -dur "${DUR}s"); }
	c0=$(cpu)
	rr1
	c1=$(cpu)
	n=$(kv reqs "$out")
	echo "- $1, rr1: $(kv reqps "$out") req/s, p50 $(kv p50us "$out") µs, p99 $(kv p99us "$out") µs, $(calc "($c1 - $c0) * 1000000 / $n") CPU-µs per request"
	counted rr1
	for i in "${awake[@]}"; do
		stop_pid "$i"
		forget "$i"
	done
	[ -z "$PERF_OUT" ] || syscalls "$PERF_OUT" "$(kv reqs "$out")" | sed 's/per unit/per request/'
}

# heap: the plugin's live heap in bytes after a GC (admin endpoint), or 0.
heap() {
	[ "$1" != haproxy ] || { echo 0; return; }
	curl -fsS -o /dev/null "http://$ADMIN/debug/pprof/heap?gc=1" || { echo 0; return; }
	curl -fsS "http://$ADMIN/debug/vars" | grep -o '"HeapAlloc": *[0-9]*' | grep -o '[0-9]*$'
}

measure_idle() {
	local ready=$WORK/idle.ready lpid h0 h1 before after rss0 fds0 rss1 fds1 opened i prev cur
	rm -f "$ready"
	sleep 1
	h0=$(heap "$1")
	before=$("$BIN/procstat" mem "$PROXY_PID")
	spawn "$WORK/idle.out" timeout 300 "$BIN/loadgen" idle -addr "$ADDRS" -conns "$IDLE_CONNS" -ready "$ready" -hold 200s
	lpid=$SPAWNED
	wait_file "$ready" 150 || die "idle: connections not open after 150 s"
	prev=0 # RSS once it stops changing
	for i in $(seq 20); do
		sleep 1
		cur=$("$BIN/procstat" mem "$PROXY_PID" | cut -d' ' -f1)
		[ "$cur" != "$prev" ] || break
		prev=$cur
	done
	after=$("$BIN/procstat" mem "$PROXY_PID")
	h1=$(heap "$1")
	stop_pid "$lpid"
	forget "$lpid"
	opened=$(kv opened "$(cat "$ready")")
	read -r rss0 fds0 <<<"$before"
	read -r rss1 fds1 <<<"$after"
	echo "- $1, idle: $opened connections: $(calc "($rss1 - $rss0) / $opened") KiB RSS and $(calc "($fds1 - $fds0) / $opened") fds per connection$(
		[ "$h1" = 0 ] || echo ", live heap $(calc "($h1 - $h0) / $opened") bytes per connection")"
}

main() {
	setup_work
	build
	BIN=$WORK/bin
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	local -a p
	read -r -a p <<<"$(free_ports 6)"
	TARGETS="127.0.0.1:${p[0]} 127.0.0.1:${p[1]}"
	PORTS="${p[2]} ${p[3]} ${p[4]}"
	ADMIN=127.0.0.1:${p[5]}
	ADDRS=$(join , '127.0.0.1:%s' "${p[2]}" "${p[3]}" "${p[4]}")
	# shellcheck disable=SC2086 # TARGETS is a list
	spawn "$WORK/backend.log" "$BIN/backend" -listen "$(join , '%s' $TARGETS)" -mode auto
	mkdir -p "$REPO/bench/results"
	local out sys m
	out=$REPO/bench/results/census-$(date +%Y%m%d-%H%M%S).md
	{
		echo "- commit: $COMMIT${BASE_COMMIT:+ (baseline: $BASE_COMMIT)}; $(nproc) CPUs, kernel $(uname -r)"
		echo "- settings: DUR=${DUR}s CONNS_WORKERS=$CONNS_WORKERS IDLE_CONNS=$IDLE_CONNS; perf: $(command -v perf >/dev/null && echo yes || echo "no (no system call counts)")"
		for sys in $SYSTEMS; do
			[ "$sys" != baseline ] || [ -x "$BIN/caddy-base" ] || continue
			[ "$sys" != haproxy ] || command -v haproxy >/dev/null || continue
			log "census: $sys"
			start "$sys"
			for m in $MEASURES; do
				"measure_$m" "$sys"
			done
			stop_pid "$PROXY_PID"
			forget "$PROXY_PID"
		done
	} | tee "$out"
	log "results: $out"
}

main "$@"
