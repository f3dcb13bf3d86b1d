#!/usr/bin/env bash
# bench/soak.sh: issue 4's reload soak (also `SOAK=1 bash bench/run.sh`).
#
# For this plugin (apps.tcpproxy) and for caddy-l4's proxy handler, side by
# side: Caddy serves three loopback ports; a connection storm (workers
# opening short echo connections in a loop, plus long-lived streams that
# verify an echoed byte pattern) runs while the admin API reloads it
# RELOADS times (POST /load), alternating between two configs that change
# the target list ({b1,b2} and {b2,b3}). Prints refused / reset / failed
# connections per 1000 reloads and writes them to bench/results/.
#
# Settings (environment): RELOADS (1000), SOAK_SYSTEMS ("plugin l4proxy"),
# STORM_WORKERS (4), STREAMS (4), SOAK_MAX (240: seconds of reloads per
# system at most), BENCH_REV (as in run.sh).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for f in lib configs systems; do
	# shellcheck source=/dev/null
	source "$REPO/bench/$f.sh"
done
: "${RELOADS:=1000}" "${SOAK_SYSTEMS:=plugin l4proxy}" "${STORM_WORKERS:=4}" "${STREAMS:=4}" "${SOAK_MAX:=240}"

# soak_system SYS: one soak; appends a table row to ROWS.
soak_system() {
	local sys=$1 dir=$WORK/run/$1 admin addrs pid spid out rl
	local -a p
	read -r -a p <<<"$(free_ports 4)"
	admin=127.0.0.1:${p[3]}
	mkdir -p "$dir"
	"${sys}_json" "$admin" "${p[*]:0:3}" "${BACKENDS[0]} ${BACKENDS[1]}" >"$dir/a.json"
	"${sys}_json" "$admin" "${p[*]:0:3}" "${BACKENDS[1]} ${BACKENDS[2]}" >"$dir/b.json"
	addrs=$(join , '127.0.0.1:%s' "${p[@]:0:3}")

	log "$sys: starting Caddy on $addrs (admin $admin)"
	spawn "$dir/caddy.log" caddy_env "$BIN/caddy" run --config "$dir/a.json"
	pid=$SPAWNED
	timeout 20 "$BIN/loadgen" probe -addr "$addrs" -timeout 15s >/dev/null || die "$sys did not start: $(tail -n 5 "$dir/caddy.log")"

	spawn "$dir/storm.out" "$BIN/loadgen" storm -addr "$addrs" -workers "$STORM_WORKERS" \
		-streams "$STREAMS" -dur $((SOAK_MAX + 60))s -ready "$dir/storm.ready"
	spid=$SPAWNED
	wait_file "$dir/storm.ready" 20 || die "storm did not start"
	sleep 1
	log "$sys: $RELOADS reloads under the storm"
	rl=$(timeout $((SOAK_MAX + 60)) "$BIN/reloader" -admin "$admin" -configs "$dir/b.json,$dir/a.json" \
		-n "$RELOADS" -dur "${SOAK_MAX}s" 2>"$dir/reloader.err") || rl=""
	sleep 1
	kill -TERM "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	forget "$spid"
	out=$(grep attempts= "$dir/storm.out" || true)
	stop_pid "$pid"
	forget "$pid"
	[ -n "$rl" ] || die "$sys: reloader failed: $(cat "$dir/reloader.err")"
	log "$sys: $rl"
	log "$sys: $out"
	grep -v '^loadgen: stream' "$dir/storm.out" | grep -v attempts= | head -n 5 >&2 || true

	local n refused reset other failed
	n=$(kv reloads "$rl")
	refused=$(kv refused "$out")
	reset=$(kv reset "$out")
	failed=$(kv errors "$out")
	other=$((failed - refused - reset))
	local panics
	panics=$(grep -c '"level":"error".*panic' "$dir/caddy.log" || true)
	ROWS+=("| $sys | $n ($(kv failed "$rl") failed, $(kv admin_retries "$rl") admin retries) | ${panics:-0} | $(kv p50ms "$rl") / $(kv p99ms "$rl") | $(kv attempts "$out") | $refused | $reset | $other | $(per1k "$refused" "$n") / $(per1k "$reset" "$n") / $(per1k "$failed" "$n") | $(kv stream_bytes "$out") B, $(kv stream_failures "$out") cut or corrupted |")
}

# per1k COUNT RELOADS: COUNT per 1000 reloads.
per1k() { awk -v c="$1" -v n="$2" 'BEGIN { printf "%.1f", n ? c * 1000 / n : 0 }'; }

main() {
	local t_start=$SECONDS stem sys
	setup_work
	build
	BIN=$WORK/bin
	read -r -a BACKENDS <<<"$(free_ports 3)"
	BACKENDS=("${BACKENDS[@]/#/127.0.0.1:}")
	spawn "$WORK/backend.log" "$BIN/backend" -listen "$(join , '%s' "${BACKENDS[@]}")" -mode auto
	timeout 20 "$BIN/loadgen" probe -addr "$(join , '%s' "${BACKENDS[@]}")" >/dev/null || die "backend did not start"

	ROWS=()
	for sys in $SOAK_SYSTEMS; do
		case $sys in plugin | l4proxy) soak_system "$sys" ;; *) log "soak: unknown system $sys" ;; esac
	done

	mkdir -p "$REPO/bench/results"
	stem=$REPO/bench/results/soak-$(date +%Y%m%d-%H%M%S)
	{
		echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit measured: $COMMIT"
		echo "- machine: $(nproc) CPUs, kernel $(uname -r), net.ipv4.tcp_migrate_req=$(cat /proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null || echo ?)"
		echo "- settings: RELOADS=$RELOADS STORM_WORKERS=$STORM_WORKERS STREAMS=$STREAMS SOAK_MAX=${SOAK_MAX}s; duration $((SECONDS - t_start)) s"
		echo "- command: SOAK=1 bash bench/run.sh"
		echo
		echo "| system | reloads | panics logged | reload p50 / p99 ms | conns attempted | refused | reset | other failed | per 1000 reloads: refused / reset / all failed | long-lived streams: verified, cut |"
		echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
		printf '%s\n' "${ROWS[@]}"
	} >"$stem.md"
	echo
	cat "$stem.md"
	log "results: $stem.md"
}

main "$@"
