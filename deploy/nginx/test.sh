#!/usr/bin/env bash
# deploy/nginx/ringcast.conf, for real: nginx (Debian's package, installed if
# missing) on a loopback port in front of two `ringcast serve` instances on
# loopback, with the config generated from ringcast.conf by substituting the
# upstream addresses, the listen address and the access log path (nothing
# else: checked). The instances trust nginx's address
# (`admission.trusted_proxies`) and cap connections per client IP. Through
# nginx: /healthz, /metrics and /readyz not public, the per-IP cap counting
# the clients behind nginx (from 127.0.0.2.. source addresses), an echo
# round trip, a pub/sub round trip with offsets and a resume, the
# `hash $remote_addr` stickiness, then a SIGTERM drain of the instance the
# clients stick to (close 1001 through nginx, /readyz 503, new connections
# moved to the other instance by `proxy_next_upstream http_503`, exit 0).
# Last, the instances' JSON logs and nginx's access log: lifecycle lines,
# `forwarded` lines naming the clients behind nginx, and no `?token=` anywhere.
#
# Usage: bash deploy/nginx/test.sh   (as root when nginx must be installed)
# RINGCAST_BIN=path uses that binary instead of `cargo build --release -p
# ringcast` (a no-op when target/release is current).
# Prints one line per check; exits non-zero on the first failure. Everything
# it starts is stopped by PID on exit. Bounded: apt 300 s, pip 180 s, the
# checks themselves about 15 s.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$root/target/tmp/deploy/nginx
conf=$root/deploy/nginx/ringcast.conf
passed=0
pids=()
policy_created=

ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*"; exit 1; }

# `pids`: children not yet waited for (running, or zombies whose PID cannot
# be reused); `forget` drops one once `wait` has reaped it. On exit, SIGTERM
# first: nginx's master stops its workers on SIGTERM, while a SIGKILL would
# leave them running (holding the port and our stdout); a second SIGTERM
# ends a draining ringcast at once. SIGKILL what is left after 5 s.
cleanup() {
    local pid alive
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for _ in $(seq 50); do
        alive=
        for pid in "${pids[@]}"; do
            if running "$pid"; then alive=1; fi
        done
        [[ -n $alive ]] || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    if [[ -n $policy_created ]]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT
# running PID: alive and not a zombie (`kill -0` succeeds on zombies).
running() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}
forget() {
    local keep=() p
    for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    pids=("${keep[@]}")
}

rm -rf "$work"
mkdir -p "$work/nginx-tmp"

# --- nginx ---------------------------------------------------------------
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ! -x $nginx_bin ]]; then
    [[ $(id -u) == 0 ]] || fail "nginx is not installed and this is not root: apt-get install nginx"
    # The package must not start a system nginx on port 80 (policy-rc.d
    # exit 101 = "not allowed"; removed again on exit).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    { timeout 300 apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive timeout 300 \
            apt-get install -y -qq --no-install-recommends nginx; } >"$work/apt.log" 2>&1 ||
        { tail -20 "$work/apt.log"; fail "apt-get install nginx"; }
    if [[ -n $policy_created ]]; then rm -f /usr/sbin/policy-rc.d; policy_created=; fi
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
fi
ok "nginx: $("$nginx_bin" -v 2>&1)"

# --- Python client -------------------------------------------------------
# shellcheck source=../venv.sh
source "$root/deploy/venv.sh"
deploy_venv "$root" || fail "python venv (deploy/requirements.txt)"
ok "python client: $("$PY" -c 'import websockets; print("websockets", websockets.__version__)')"

# --- ringcast ------------------------------------------------------------
if [[ -n ${RINGCAST_BIN:-} ]]; then
    bin=$RINGCAST_BIN
else
    (cd "$root" && timeout 1200 cargo build --release -q -p ringcast) || fail "cargo build --release -p ringcast"
    bin=$root/target/release/ringcast
fi
[[ -x $bin ]] || fail "no ringcast binary at $bin"


declare -A addr pid
# start_ringcast NAME [VAR=VALUE...] -- [FLAG...]: one worker on an ephemeral
# loopback port, logs at debug, drain timeout 5 s; sets addr[NAME] and
# pid[NAME] from its `ringcast listening on` line.
start_ringcast() {
    local name=$1 line= vars=()
    shift
    while [[ $1 != -- ]]; do vars+=("$1"); shift; done
    shift
    env RINGCAST_LOG=debug "${vars[@]}" "$bin" serve --listen 127.0.0.1:0 --workers 1 \
        --no-pin --drain-timeout 5s "$@" >"$work/$name.out" 2>"$work/$name.log" &
    pid[$name]=$!
    pids+=("${pid[$name]}")
    for _ in $(seq 200); do
        line=$(head -n1 "$work/$name.out")
        [[ $line == "ringcast listening on "* ]] && break
        running "${pid[$name]}" || { cat "$work/$name.log"; fail "ringcast $name exited at start"; }
        sleep 0.05
    done
    [[ $line == "ringcast listening on "* ]] || fail "ringcast $name: no listening line in 10 s"
    addr[$name]=${line#ringcast listening on }
}
# One instance takes its settings from flags, the other from variables. Both
# trust nginx (loopback here) to say who the client is in X-Forwarded-For, so
# the per-IP cap counts clients, not nginx; the cap is small enough for
# roundtrip.py to check that, large enough for its 127.0.0.1 traffic.
per_ip=4
trusted='["127.0.0.1/32"]'
start_ringcast a -- --log-format json --set "admission.trusted_proxies=$trusted" \
    --set "limits.max_connections_per_ip=$per_ip"
start_ringcast b RINGCAST_LOG_FORMAT=json RINGCAST_ADMISSION__TRUSTED_PROXIES="$trusted" \
    RINGCAST_LIMITS__MAX_CONNECTIONS_PER_IP=$per_ip --
ok "ringcast a on ${addr[a]} (--log-format json), b on ${addr[b]} (RINGCAST_LOG_FORMAT=json); both trusted_proxies $trusted, max_connections_per_ip $per_ip"

# --- nginx config: ringcast.conf with 4 lines substituted ----------------
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
awk -v a="${addr[a]}" -v b="${addr[b]}" -v listen="127.0.0.1:$port" -v logpath="$work/access.log" '
    /^[ \t]*server[ \t]+[0-9.]+:[0-9]+[ \t;]/ {
        n++
        if (n > 2) { print "more than two upstream servers" > "/dev/stderr"; exit 3 }
        sub(/[0-9.]+:[0-9]+/, n == 1 ? a : b)
    }
    /^[ \t]*listen[ \t]+80;/ { l++; sub(/80;/, listen ";") }
    /^[ \t]*access_log[ \t]+\/var\/log\/nginx\/ringcast\.access\.log[ \t]/ {
        g++; sub(/\/var\/log\/nginx\/ringcast\.access\.log/, logpath)
    }
    { print }
    END { if (n != 2 || l != 1 || g != 1) { printf "found %d server, %d listen, %d access_log lines\n", n, l, g > "/dev/stderr"; exit 4 } }
' "$conf" >"$work/ringcast.conf" ||
    fail "ringcast.conf no longer has the shape test.sh substitutes (2 upstream servers, listen 80, access_log)"
changed=$(diff "$conf" "$work/ringcast.conf" | grep -c '^>' || true)
[[ $changed == 4 ]] || fail "generated config differs from ringcast.conf in $changed lines, not 4"
ok "nginx config = deploy/nginx/ringcast.conf with upstreams, listen 127.0.0.1:$port, access log substituted (4 lines)"
cat >"$work/nginx.conf" <<NGINX
# Main context for the test only; the http-level part is ringcast.conf.
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
nginx_args=(-p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log")
timeout 10 "$nginx_bin" -t -q "${nginx_args[@]}" 2>"$work/nginx-t.log" ||
    { cat "$work/nginx-t.log"; fail "nginx -t"; }
ok "nginx -t accepts it"
"$nginx_bin" "${nginx_args[@]}" &
pid[nginx]=$!
pids+=("${pid[nginx]}")
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
    running "${pid[nginx]}" || { cat "$work/nginx-error.log"; fail "nginx exited at start"; }
    sleep 0.1
done
ok "nginx on 127.0.0.1:$port"

# --- traffic through nginx ------------------------------------------------
instances=$(printf '[{"name":"a","addr":"%s","pid":%d},{"name":"b","addr":"%s","pid":%d}]' \
    "${addr[a]}" "${pid[a]}" "${addr[b]}" "${pid[b]}")
timeout 60 "$PY" "$root/deploy/nginx/roundtrip.py" traffic "127.0.0.1:$port" "$instances" "$per_ip" |
    tee "$work/traffic.out" || fail "traffic through nginx (server logs: $work/{a,b}.log)"
passed=$((passed + $(grep -c '^ok: ' "$work/traffic.out")))
home=$(sed -n 's/^home=//p' "$work/traffic.out")
token=$(sed -n 's/^token=//p' "$work/traffic.out")
[[ -n $home && -n $token ]] || fail "traffic: no home instance or token reported"

# wait_exit NAME SECONDS: sets $status to the instance's exit status (reaped
# here, so its PID is forgotten), or fails.
wait_exit() {
    local name=$1 limit=$2
    status=0
    for _ in $(seq $((limit * 20))); do
        running "${pid[$name]}" || break
        sleep 0.05
    done
    if running "${pid[$name]}"; then fail "$name still running $limit s after SIGTERM"; fi
    wait "${pid[$name]}" || status=$?
    forget "${pid[$name]}"
}
# The drain waits for the raw connection that never answers the close:
# close timeout 5 s, drain timeout 5 s, plus a margin.
wait_exit "$home" 12
[[ $status == 0 ]] || fail "drained instance $home exited with $status"
ok "drained instance $home exited 0 within 12 s of SIGTERM"
other=$([[ $home == a ]] && echo b || echo a)
kill -TERM "${pid[$other]}"
wait_exit "$other" 10
[[ $status == 0 ]] || fail "instance $other exited with $status after SIGTERM"
ok "instance $other exited 0 after SIGTERM"
kill -TERM "${pid[nginx]}"
wait "${pid[nginx]}" || true
forget "${pid[nginx]}"

# --- logs -------------------------------------------------------------------
timeout 30 "$PY" "$root/deploy/nginx/roundtrip.py" logs "$token" "$work/access.log" \
    "$work/a.log" "$work/b.log" | tee "$work/logs.out" || fail "logs"
passed=$((passed + $(grep -c '^ok: ' "$work/logs.out")))
echo "deploy/nginx: $passed passed, 0 failed"
