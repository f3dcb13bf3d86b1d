# bench/systems.sh: starting and stopping the systems under test (sourced).
# Needs WORK, BIN, the backend's TARGETS and each system's PORTS[sys].

declare -A PORTS

# available SYSTEM: whether SYSTEM can run on this machine.
available() {
	case $1 in
	direct | plugin | l4proxy) return 0 ;;
	baseline) [ -x "$BIN/caddy-base" ] ;;
	haproxy) command -v haproxy >/dev/null ;;
	nginx)
		command -v nginx >/dev/null || return 1
		[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || nginx -V 2>&1 | grep -q -- '--with-stream\b'
		;;
	*) return 1 ;;
	esac
}

# caddy_env CMD...: runs CMD with Caddy's home, config and data dirs in WORK.
caddy_env() {
	env HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/config" XDG_DATA_HOME="$WORK/home/data" "$@"
}

# start_system SYSTEM: starts it on its ports; sets PROXY_PID (0 for
# direct) and ADDRS (the comma-separated addresses clients use). Fails if
# it does not proxy an echo on every port within 15 s.
start_system() {
	local sys=$1 dir=$WORK/run/$1
	mkdir -p "$dir"
	if [ "$sys" = direct ]; then
		PROXY_PID=0
		# shellcheck disable=SC2086 # TARGETS is a list
		ADDRS=$(join , '%s' $TARGETS)
		return 0
	fi
	case $sys in
	plugin | baseline)
		local bin=$BIN/caddy
		[ "$sys" = plugin ] || bin=$BIN/caddy-base
		plugin_json "" "${PORTS[$sys]}" "$TARGETS" >"$dir/caddy.json"
		spawn "$dir/log" caddy_env "$bin" run --config "$dir/caddy.json"
		;;
	l4proxy)
		l4proxy_json "" "${PORTS[$sys]}" "$TARGETS" >"$dir/caddy.json"
		spawn "$dir/log" caddy_env "$BIN/caddy" run --config "$dir/caddy.json"
		;;
	haproxy)
		haproxy_cfg "${PORTS[$sys]}" "$TARGETS" >"$dir/haproxy.cfg"
		spawn "$dir/log" haproxy -db -f "$dir/haproxy.cfg"
		;;
	nginx)
		nginx_conf "$dir" "${PORTS[$sys]}" "$TARGETS" >"$dir/nginx.conf"
		spawn "$dir/log" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
		;;
	esac
	PROXY_PID=$SPAWNED
	# shellcheck disable=SC2086
	ADDRS=$(join , '127.0.0.1:%s' ${PORTS[$sys]})
	if ! timeout 20 "$BIN/loadgen" probe -addr "$ADDRS" -timeout 15s >/dev/null 2>"$dir/probe.err"; then
		log "$sys did not come up: $(cat "$dir/probe.err")"
		tail -n 5 "$dir/log" "$dir/error.log" 2>/dev/null >&2 || true
		stop_system
		return 1
	fi
}

# stop_system: stops the running system and waits for it to exit.
stop_system() {
	if [ "${PROXY_PID:-0}" != 0 ]; then
		stop_pid "$PROXY_PID"
		forget "$PROXY_PID"
	fi
	PROXY_PID=0
}
