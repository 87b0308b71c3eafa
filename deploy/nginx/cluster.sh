#!/usr/bin/env bash
# A ringcast cluster behind the real nginx of deploy/nginx/ringcast.conf:
# redis-server and two nodes with `engine.kind = "redis"` on loopback, nginx
# in front (the config generated from ringcast.conf as in test.sh: the two
# upstream addresses, the listen address and the access log substituted).
# cluster.py then runs TRIALS (default 10) trials of `kill -9` of the node a
# subscriber is on, while both nodes publish at full speed: the subscriber
# reconnects through nginx, resumes on the other node, and must get every
# acknowledged offset exactly once, in order.
#
# Usage: bash deploy/nginx/cluster.sh [TRIALS]
# Needs nginx, redis-server and python3 (the venv of deploy/venv.sh);
# RINGCAST_BIN=path uses that binary instead of `cargo build --release -p
# ringcast`. Everything started is stopped by PID on exit. Bounded: each
# trial 60 s.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$root/target/tmp/deploy/nginx-cluster
conf=$root/deploy/nginx/ringcast.conf
trials=${1:-10}
pids=()
fail() { echo "FAIL: $*"; exit 1; }
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
rm -rf "$work" && mkdir -p "$work/nginx-tmp"

nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx_bin ]] || fail "nginx is not installed (deploy/nginx/test.sh installs it)"
command -v redis-server >/dev/null || fail "redis-server is not installed"
# shellcheck source=../venv.sh
source "$root/deploy/venv.sh"
deploy_venv "$root" || fail "python venv (deploy/requirements.txt)"
if [[ -n ${RINGCAST_BIN:-} ]]; then
    bin=$RINGCAST_BIN
else
    (cd "$root" && timeout 1200 cargo build --release -q -p ringcast) || fail "cargo build --release -p ringcast"
    bin=$root/target/release/ringcast
fi

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=$(free_port) port_a=$(free_port) port_b=$(free_port) port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
echo "ok: redis-server on 127.0.0.1:$redis_port"

awk -v a="127.0.0.1:$port_a" -v b="127.0.0.1:$port_b" -v listen="127.0.0.1:$port" -v logpath="$work/access.log" '
    /^[ \t]*server[ \t]+[0-9.]+:[0-9]+[ \t;]/ { n++; sub(/[0-9.]+:[0-9]+/, n == 1 ? a : b) }
    /^[ \t]*listen[ \t]+80;/ { sub(/80;/, listen ";") }
    /^[ \t]*access_log[ \t]+\/var\/log\/nginx\/ringcast\.access\.log[ \t]/ {
        sub(/\/var\/log\/nginx\/ringcast\.access\.log/, logpath)
    }
    { print }
' "$conf" >"$work/ringcast.conf"
cat >"$work/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log info;
events { worker_connections 256; }
http {
    client_body_temp_path $work/nginx-tmp/body;
    proxy_temp_path $work/nginx-tmp/proxy;
    fastcgi_temp_path $work/nginx-tmp/fastcgi;
    uwsgi_temp_path $work/nginx-tmp/uwsgi;
    scgi_temp_path $work/nginx-tmp/scgi;
    include $work/ringcast.conf;
}
NGINX
"$nginx_bin" -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
done
echo "ok: nginx on 127.0.0.1:$port in front of 127.0.0.1:$port_a and :$port_b"

timeout $((60 * trials + 30)) "$PY" "$root/deploy/nginx/cluster.py" "127.0.0.1:$port" "$bin" \
    "redis://127.0.0.1:$redis_port/0" "$port_a" "$port_b" "$work" "$trials" |
    tee "$work/cluster.out" || fail "cluster trials (node logs: $work/)"
echo "deploy/nginx cluster: $(grep -c '^ok: ' "$work/cluster.out") trials passed"
