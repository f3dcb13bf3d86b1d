# bench/configs.sh: the configuration of each system under test (sourced).
# Every proxy listens on three loopback ports and round-robins over the
# targets with active health checks every 2 s (nginx OSS: passive only).
# PORTS and TARGETS arguments are space-separated lists.

# join SEP FORMAT ITEMS...: printf FORMAT for each item, joined by SEP.
join() {
	local sep=$1 fmt=$2 out="" x
	shift 2
	for x in "$@"; do
		# shellcheck disable=SC2059
		out+="${out:+$sep}$(printf "$fmt" "$x")"
	done
	printf '%s' "$out"
}

# caddy_common ADMIN: the admin and logging part of a Caddy JSON config;
# ADMIN is a listen address, or empty for no admin endpoint.
caddy_common() {
	if [ -n "$1" ]; then
		printf '"admin": {"listen": "%s", "config": {"persist": false}},' "$1"
	else
		printf '"admin": {"disabled": true, "config": {"persist": false}},'
	fi
	printf '"logging": {"logs": {"default": {"level": "WARN"}}},'
}

# plugin_json ADMIN PORTS TARGETS: this plugin, one tcpproxy app.
plugin_json() {
	# shellcheck disable=SC2086
	cat <<EOF
{ $(caddy_common "$1")
  "apps": {"tcpproxy": {"grace_period": "2s", "apps": [{
    "name": "bench",
    "ports": [$(join , '%s' $2)],
    "bind": ["127.0.0.1"],
    "targets": [$(join , '"%s"' $3)],
    "lb_policy": "round_robin",
    "health_checks": {"interval": "2s", "timeout": "1s"}
  }]}}
}
EOF
}

# l4proxy_json ADMIN PORTS TARGETS: caddy-l4's own proxy handler, one
# layer4 server on the same ports.
l4proxy_json() {
	# shellcheck disable=SC2086
	cat <<EOF
{ $(caddy_common "$1")
  "apps": {"layer4": {"servers": {"bench": {
    "listen": [$(join , '"127.0.0.1:%s"' $2)],
    "routes": [{"handle": [{
      "handler": "proxy",
      "upstreams": [$(join , '{"dial": ["%s"]}' $3)],
      "health_checks": {"active": {"interval": "2s", "timeout": "1s"}},
      "load_balancing": {"selection": {"policy": "round_robin"}}
    }]}]
  }}}}
}
EOF
}

# haproxy_cfg PORTS TARGETS: HAProxy in TCP mode, threads = CPUs.
haproxy_cfg() {
	local p t i=0
	cat <<EOF
global
	maxconn 8000
defaults
	mode tcp
	timeout connect 2s
	timeout client 1h
	timeout server 1h
frontend fe
EOF
	for p in $1; do printf '\tbind 127.0.0.1:%s\n' "$p"; done
	printf '\tdefault_backend be\nbackend be\n\tbalance roundrobin\n'
	for t in $2; do
		i=$((i + 1))
		printf '\tserver b%d %s check inter 2s\n' "$i" "$t"
	done
}

# nginx_conf PREFIX PORTS TARGETS: nginx stream proxy, not daemonized,
# everything under PREFIX, workers = CPUs. proxy_half_close passes a
# client's half-close on (the bulk upload needs it; off by default).
nginx_conf() {
	local p t
	if [ -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
		echo "load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
	fi
	cat <<EOF
daemon off;
worker_processes auto;
worker_rlimit_nofile 19000;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 9000; }
stream {
	upstream be {
EOF
	for t in $3; do printf '\t\tserver %s;\n' "$t"; done
	printf '\t}\n\tserver {\n'
	for p in $2; do printf '\t\tlisten 127.0.0.1:%s;\n' "$p"; done
	printf '\t\tproxy_pass be;\n\t\tproxy_half_close on;\n\t\tproxy_connect_timeout 2s;\n\t\tproxy_timeout 1h;\n\t}\n}\n'
}
