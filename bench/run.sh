#!/usr/bin/env bash
# bench/run.sh: the reproducible load benchmark (see BENCHMARKS.md).
#
#   bash bench/run.sh            full run: 3 rounds, under 15 minutes
#   QUICK=1 bash bench/run.sh    1 round with smaller sizes, about 3 minutes
#   SOAK=1 bash bench/run.sh     the reload soak instead (bench/soak.sh)
#
# Systems: direct (no proxy), plugin (this plugin's apps.tcpproxy), l4proxy
# (caddy-l4's layer4.handlers.proxy), haproxy, nginx (stream), each started
# as a child process on loopback with its own config on free ports, in
# rounds ordered ABCDE EDCBA ABCDE. Prints one table (medians over rounds)
# and writes it with the raw rows to bench/results/.
#
# Settings (environment): SYSTEMS, ROUNDS, BULK (bytes, K/M/G suffix), DUR
# (seconds per timed scenario), IDLE_CONNS, CONNS_WORKERS, RR_CONNS,
# OTHER_MAX, QUIET_MAX, QUIET_BUDGET, RETRIES and RUN_BUDGET (before a run,
# wait up to QUIET_MAX s, QUIET_BUDGET s in all, for other processes to use
# at most OTHER_MAX cores; repeat a run they disturbed up to RETRIES times
# while the benchmark is under RUN_BUDGET s), BENCH_REV (build Caddy from
# this git revision instead of the working tree), BASE_REV (add the system
# `baseline`: the plugin built from this revision, run beside the current
# one, for before/after ratios from one run), NO_INSTALL=1 (never run
# apt-get).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${SOAK:-}" ]; then
	exec bash "$REPO/bench/soak.sh"
fi
for f in lib configs systems scenarios; do
	# shellcheck source=/dev/null
	source "$REPO/bench/$f.sh"
done

if [ -n "${QUICK:-}" ]; then
	: "${ROUNDS:=1}" "${BULK:=1G}" "${DUR:=3}" "${IDLE_CONNS:=1500}" "${RETRIES:=1}"
	: "${QUIET_MAX:=5}" "${QUIET_BUDGET:=30}" "${RUN_BUDGET:=150}"
else
	: "${ROUNDS:=3}" "${BULK:=2G}" "${DUR:=7}" "${IDLE_CONNS:=3000}" "${RETRIES:=1}"
	: "${QUIET_MAX:=10}" "${QUIET_BUDGET:=120}" "${RUN_BUDGET:=660}"
fi
: "${SYSTEMS:=direct ${BASE_REV:+baseline }plugin l4proxy haproxy nginx}" "${CONNS_WORKERS:=16}" "${RR_CONNS:=32}"
: "${OTHER_MAX:=0.25}"

# install_peers: installs HAProxy and nginx's stream module from apt when
# missing. A system that is still missing afterwards is skipped.
install_peers() {
	local want=()
	command -v haproxy >/dev/null || want+=(haproxy)
	command -v nginx >/dev/null || want+=(nginx)
	[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || want+=(libnginx-mod-stream)
	[ ${#want[@]} -gt 0 ] || return 0
	if [ -n "${NO_INSTALL:-}" ]; then
		log "missing ${want[*]} (NO_INSTALL set): those systems are skipped"
		return 0
	fi
	local sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo -n"
	log "installing ${want[*]}"
	if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}"; } >&2; then
		log "installing ${want[*]} failed: the systems that need them are skipped"
	fi
}

# fd_budget: makes IDLE_CONNS fit the fd limit (a proxy may hold up to 6
# fds per idle connection: two sockets and two splice pipes).
fd_budget() {
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	local lim max
	lim=$(ulimit -n)
	max=$(((lim - 500) / 6))
	if [ "$IDLE_CONNS" -gt "$max" ]; then
		log "IDLE_CONNS $IDLE_CONNS lowered to $max to fit ulimit -n $lim"
		IDLE_CONNS=$max
	fi
}

# write_meta: the machine, versions and settings of this run.
write_meta() {
	local l4ver
	l4ver=$(cd "$REPO" && go list -m -f '{{.Version}}' github.com/mholt/caddy-l4 2>/dev/null || echo "?")
	{
		echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "- commit measured: $COMMIT${BASE_COMMIT:+ (baseline: $BASE_COMMIT)}"
		echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), ulimit -n $(ulimit -n)"
		echo "- go: $(go version | cut -d' ' -f3-)"
		echo "- caddy: $("$BIN/caddy" version | cut -d' ' -f1), caddy-l4: $l4ver"
		echo "- haproxy: $(haproxy -v 2>/dev/null | head -n1 | cut -d' ' -f3 || echo none)"
		echo "- nginx: $(nginx -v 2>&1 | cut -d/ -f2 || echo none)"
		echo "- settings: ROUNDS=$ROUNDS BULK=$BULK DUR=${DUR}s IDLE_CONNS=$IDLE_CONNS CONNS_WORKERS=$CONNS_WORKERS RR_CONNS=$RR_CONNS RETRIES=$RETRIES OTHER_MAX=$OTHER_MAX QUIET_MAX=$QUIET_MAX QUIET_BUDGET=$QUIET_BUDGET RUN_BUDGET=$RUN_BUDGET"
		echo "- command: ${QUICK:+QUICK=1 }bash bench/run.sh"
	} >"$1"
}

# run_system: every scenario against SYS, started fresh for this round.
run_system() {
	log "round $ROUND: $SYS"
	start_system "$SYS" || return 0
	scen_warmup
	[ "$SYS" = direct ] || scen_idle
	scen_bulk up
	scen_bulk down
	scen_conns
	scen_rr
	stop_system
}

main() {
	local t_start=$SECONDS sys order stem
	install_peers
	setup_work
	build
	BIN=$WORK/bin
	fd_budget

	local -a systems=()
	for sys in $SYSTEMS; do
		if available "$sys"; then systems+=("$sys"); else log "skipping $sys: not installed"; fi
	done

	local -a ports
	read -r -a ports <<<"$(free_ports $((2 + 3 * ${#systems[@]})))"
	TARGETS="127.0.0.1:${ports[0]} 127.0.0.1:${ports[1]}"
	local i=2
	for sys in "${systems[@]}"; do
		# shellcheck disable=SC2034,SC2004 # PORTS: an associative array of systems.sh
		PORTS[$sys]="${ports[*]:i:3}"
		i=$((i + 3))
	done
	# shellcheck disable=SC2086 # TARGETS is a list
	spawn "$WORK/backend.log" "$BIN/backend" -listen "$(join , '%s' $TARGETS)" -mode auto
	# shellcheck disable=SC2034 # BACKEND_PID is read in scenarios.sh
	BACKEND_PID=$SPAWNED
	# shellcheck disable=SC2086
	timeout 20 "$BIN/loadgen" probe -addr "$(join , '%s' $TARGETS)" >/dev/null || die "backend did not start"

	mkdir -p "$REPO/bench/results"
	stem=$REPO/bench/results/run-$(date +%Y%m%d-%H%M%S)${QUICK:+-quick}
	RESULTS=$stem.tsv
	: >"$RESULTS"
	write_meta "$stem.meta"

	for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
		order=("${systems[@]}")
		if ((ROUND % 2 == 0)); then
			order=()
			for ((i = ${#systems[@]} - 1; i >= 0; i--)); do order+=("${systems[$i]}"); done
		fi
		for SYS in "${order[@]}"; do
			run_system
		done
	done

	{
		cat "$stem.meta"
		echo "- duration: $((SECONDS - t_start)) s"
		echo
		"$BIN/report" "$RESULTS"
	} >"$stem.md"
	echo
	cat "$stem.md"
	log "results: $stem.md (raw rows: $stem.tsv)"
}

main "$@"
