#!/usr/bin/env bash
# bench/listener.sh: the cost of a proxied connection in each listener
# mode, from one run (see BENCHMARKS.md, "Listener modes").
#
#   sudo bash bench/listener.sh     about 1.5 minutes
#
# One Caddy (cmd/caddy) serves two apps in front of the same backend:
# "sockets" (one listening socket per port) on 127.0.0.1:20000-20999 and
# "steered" (listener sk_lookup: one socket for all its ports) on
# 127.0.0.1:30000-30999. loadgen conns (16 workers dial, echo 64 B, close)
# runs against each app in turn, spread over 16 of its ports, in the order
# AB BA AB ... so that both see the same machine; each run also reads the
# proxy's CPU time from /proc. It prints every run, the medians and the
# ratios sk_lookup / sockets.
#
# It runs itself in a private network namespace (unshare --net: root), as
# an sk_lookup program steals the ports it routes from every process of
# the namespace. Settings (environment): ROUNDS (default 5), DUR (seconds
# per run, 5), WORKERS (16), BENCH_REV (build Caddy from this revision).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=/dev/null
source "$REPO/bench/lib.sh"

if [ -z "${TCPPROXY_BENCH_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || die "needs root: it runs in a network namespace of its own (unshare --net)"
	exec unshare --net env TCPPROXY_BENCH_NETNS=1 bash "${BASH_SOURCE[0]}" "$@"
fi
ip link set lo up

: "${ROUNDS:=5}" "${DUR:=5}" "${WORKERS:=16}"
SOCKETS_LOW=20000 STEERED_LOW=30000 APP_PORTS=1000

# median: the median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# addrs LOW: 16 addresses spread over the app's ports from LOW on.
addrs() {
	local i out=""
	for ((i = 0; i < 16; i++)); do out+="${out:+,}127.0.0.1:$(($1 + i * APP_PORTS / 16))"; done
	printf '%s' "$out"
}

# app_json NAME LOW MODE: one app of APP_PORTS ports.
app_json() {
	printf '{"name": "%s", "ports": ["%d-%d"], "bind": ["127.0.0.1"], "targets": ["127.0.0.2:9000"], "listener": "%s", "health_checks": {"interval": "2s", "timeout": "1s"}}' \
		"$1" "$2" $(($2 + APP_PORTS - 1)) "$3"
}

# run APP LOW: one loadgen conns run against the app; appends a row
# "app connps cpu_s conns errors" to $WORK/rows.
run() {
	local app=$1 low=$2 c0 c1 out
	c0=$("$WORK/bin/procstat" cpu "$PROXY_PID" | cut -d' ' -f2)
	out=$(timeout $((DUR + 60)) "$WORK/bin/loadgen" conns -addr "$(addrs "$low")" -workers "$WORKERS" -dur "${DUR}s")
	c1=$("$WORK/bin/procstat" cpu "$PROXY_PID" | cut -d' ' -f2)
	printf '%s %s %s %s %s\n' "$app" "$(kv connps "$out")" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')" \
		"$(kv conns "$out")" "$(kv errors "$out")" | tee -a "$WORK/rows" >&2
}

main() {
	setup_work
	build
	mkdir -p "$WORK/home"
	spawn "$WORK/backend.log" "$WORK/bin/backend" -listen 127.0.0.2:9000 -mode echo
	timeout 20 "$WORK/bin/loadgen" probe -addr 127.0.0.2:9000 >/dev/null || die "backend did not start"
	cat >"$WORK/caddy.json" <<EOF
{ "admin": {"disabled": true, "config": {"persist": false}},
  "logging": {"logs": {"default": {"level": "WARN"}}},
  "apps": {"tcpproxy": {"grace_period": "2s", "apps": [
    $(app_json sockets $SOCKETS_LOW sockets),
    $(app_json steered $STEERED_LOW sk_lookup)
  ]}}}
EOF
	spawn "$WORK/caddy.log" env HOME="$WORK/home" "$WORK/bin/caddy" run --config "$WORK/caddy.json"
	PROXY_PID=$SPAWNED
	timeout 20 "$WORK/bin/loadgen" probe -addr "$(addrs $SOCKETS_LOW),$(addrs $STEERED_LOW)" -timeout 15s >/dev/null ||
		{ tail -n 5 "$WORK/caddy.log" >&2; die "caddy did not serve both apps"; }
	log "warm-up"
	timeout 30 "$WORK/bin/loadgen" conns -addr "$(addrs $SOCKETS_LOW),$(addrs $STEERED_LOW)" -workers 4 -dur 1s >/dev/null
	: >"$WORK/rows"
	local round
	for ((round = 1; round <= ROUNDS; round++)); do
		log "round $round of $ROUNDS"
		if ((round % 2)); then
			run sockets $SOCKETS_LOW
			run steered $STEERED_LOW
		else
			run steered $STEERED_LOW
			run sockets $SOCKETS_LOW
		fi
	done

	local app rate cpu s_rate t_rate s_cpu t_cpu
	echo
	echo "commit $COMMIT, $(nproc) CPUs, Linux $(uname -r), $ROUNDS rounds of ${DUR}s, $WORKERS workers"
	echo
	echo "| app | conns/s (median) | proxy CPU-s per 10k conns (median) | errors |"
	echo "| --- | --- | --- | --- |"
	for app in sockets steered; do
		rate=$(awk -v a="$app" '$1 == a { print $2 }' "$WORK/rows" | median)
		cpu=$(awk -v a="$app" '$1 == a && $4 > 0 { print $3 / ($4 / 10000) }' "$WORK/rows" | median)
		echo "| $app | $rate | $(printf '%.2f' "$cpu") | $(awk -v a="$app" '$1 == a { print $5 }' "$WORK/rows" | paste -sd' ') |"
		if [ "$app" = sockets ]; then s_rate=$rate s_cpu=$cpu; else t_rate=$rate t_cpu=$cpu; fi
	done
	echo
	echo "sk_lookup / sockets: conns/s $(awk -v a="$t_rate" -v b="$s_rate" 'BEGIN { printf "%.2f", a / b }')x," \
		"CPU per connection $(awk -v a="$t_cpu" -v b="$s_cpu" 'BEGIN { printf "%.2f", a / b }')x"
}

main "$@"
