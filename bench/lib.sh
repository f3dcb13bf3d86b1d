# bench/lib.sh: helpers shared by bench/run.sh and bench/soak.sh (sourced,
# not run). Children are tracked by PID and all of them are ended on exit.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

CHILDREN=()

# spawn LOGFILE CMD...: starts CMD in the background with its output in
# LOGFILE and records its PID; the PID is left in SPAWNED.
spawn() {
	local logfile=$1
	shift
	"$@" >"$logfile" 2>&1 &
	SPAWNED=$!
	CHILDREN+=("$SPAWNED")
}

# forget PID: PID was stopped and reaped; cleanup must not signal it
# again (its number may belong to another process by then).
forget() {
	local i
	for i in "${!CHILDREN[@]}"; do
		[ "${CHILDREN[$i]}" != "$1" ] || unset 'CHILDREN[i]'
	done
	CHILDREN=("${CHILDREN[@]}")
}

# descendants PID: the PIDs of PID's children, grandchildren, ...
descendants() {
	local kid
	for kid in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$kid"
		descendants "$kid"
	done
}

# stop_pid PID: SIGTERM to PID, SIGKILL to it and what is left of its
# descendants after 5 s; reaps PID.
stop_pid() {
	local pid=$1 i kids
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kids=$(descendants "$pid")
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	for i in $kids; do kill -KILL "$i" 2>/dev/null || true; done
	wait "$pid" 2>/dev/null || true
}

# cleanup: ends every child that is still running (trap handler).
cleanup() {
	local i
	for ((i = ${#CHILDREN[@]} - 1; i >= 0; i--)); do
		stop_pid "${CHILDREN[$i]}"
	done
	CHILDREN=()
	if [ -n "${WORK:-}" ] && [ -z "${KEEP_WORK:-}" ]; then
		rm -rf "$WORK"
	fi
}

# setup_work: a private temporary directory in WORK and the exit trap.
setup_work() {
	WORK=$(mktemp -d /tmp/tcpproxy-bench.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$WORK/bin" "$WORK/run"
}

# build: builds the Caddy binary (the working tree, or BENCH_REV from git)
# and the bench programs into $WORK/bin, and sets COMMIT; with BASE_REV,
# also the baseline system's Caddy from that revision (BASE_COMMIT).
build() {
	local src=$REPO
	if [ -n "${BENCH_REV:-}" ]; then
		src=$WORK/src
		mkdir -p "$src"
		git -C "$REPO" archive "$BENCH_REV" | tar -x -C "$src"
		COMMIT=$(git -C "$REPO" rev-parse "$BENCH_REV")
	else
		COMMIT=$(git -C "$REPO" rev-parse HEAD)
		if ! git -C "$REPO" diff --quiet HEAD -- . ':!bench' ':!BENCHMARKS.md'; then
			COMMIT="$COMMIT+uncommitted"
		fi
	fi
	log "building caddy from $src ($COMMIT)"
	(cd "$src" && go build -o "$WORK/bin/caddy" ./cmd/caddy) ||
		die "building cmd/caddy failed (BENCH_REV=HEAD builds the last commit instead of the working tree)"
	if [ -n "${BASE_REV:-}" ]; then
		local base=$WORK/base-src
		mkdir -p "$base"
		git -C "$REPO" archive "$BASE_REV" | tar -x -C "$base"
		BASE_COMMIT=$(git -C "$REPO" rev-parse "$BASE_REV")
		log "building the baseline caddy from $BASE_REV ($BASE_COMMIT)"
		(cd "$base" && go build -o "$WORK/bin/caddy-base" ./cmd/caddy) || die "building the baseline ($BASE_REV) failed"
	fi
	(cd "$REPO" && go build -o "$WORK/bin/" ./bench/backend ./bench/loadgen ./bench/procstat \
		./bench/freeport ./bench/reloader ./bench/report) || die "building bench programs failed"
}

# kv KEY TEXT: the value of KEY=value in TEXT (empty if absent).
kv() { grep -o "\\b$1=[^ ]*" <<<"$2" | tail -n1 | cut -d= -f2 || true; }

# wait_file PATH SECONDS: waits for PATH to exist; fails after SECONDS.
wait_file() {
	local i
	for i in $(seq $(($2 * 10))); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# free_ports N: N free loopback ports, space-separated.
free_ports() { "$WORK/bin/freeport" "$1" | paste -sd' '; }
