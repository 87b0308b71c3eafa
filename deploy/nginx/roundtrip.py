"""Round trips through nginx in front of two ringcast instances (run by
deploy/nginx/test.sh, which starts everything and passes the addresses).

`roundtrip.py traffic NGINX_ADDR INSTANCES_JSON PER_IP`: plain HTTP, the
per-IP cap counting the clients behind nginx (the instances run with
`admission.trusted_proxies = ["127.0.0.1/32"]` and
`limits.max_connections_per_ip = PER_IP`), echo, pub/sub, resume, stickiness,
then a drain of the instance the clients stick to
(SIGTERM to its pid) seen through nginx. INSTANCES_JSON is
`[{"name": "a", "addr": "127.0.0.1:P", "pid": N}, ...]`; the instances are
also reached directly, for their /metrics and /readyz.

`roundtrip.py logs TOKEN ACCESS_LOG RINGCAST_LOG...`: the instances' stderr is
JSON lines with one debug line per connection event, the `forwarded` lines
name the clients behind nginx, and the token sent in `?token=` is in no log.

One line per check; the first failure exits 1. Every network step has a
timeout.
"""

import asyncio
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

STEP = 5.0  # seconds for any one network step
TOKEN = "tok-" + os.urandom(8).hex()
GOING_AWAY = "server shutting down: reconnect and resume"

passed = 0


def ok(what):
    global passed
    passed += 1
    print(f"ok: {what}", flush=True)


def check(cond, what, detail=""):
    if not cond:
        print(f"FAIL: {what}{': ' + detail if detail else ''}", flush=True)
        sys.exit(1)
    ok(what)


def http_get(addr, path):
    """(status, body) of a plain GET."""
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=STEP) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def upgrades(addr):
    """WebSocket upgrades this instance has done (all workers)."""
    _, body = http_get(addr, "/metrics")
    total = 0.0
    for line in body.splitlines():
        if line.startswith("ringcast_handshake_duration_seconds_count"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def recv_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), STEP))


async def command(ws, msg):
    """Sends a command and returns its reply (pushes are not expected here)."""
    await ws.send(json.dumps(msg))
    reply = await recv_json(ws)
    if reply.get("id") != msg["id"] or "result" not in reply:
        print(f"FAIL: reply to {msg}: {reply}", flush=True)
        sys.exit(1)
    return reply["result"]


def ws_connect(nginx, path):
    return connect(f"ws://{nginx}{path}?token={TOKEN}", open_timeout=STEP,
                   close_timeout=STEP, max_size=1 << 20)


def raw_upgrade(nginx, path, source="127.0.0.1"):
    """A WebSocket opened by hand from `source` (any 127/8 address), which
    will never answer a close frame."""
    s = socket.create_connection(tuple_addr(nginx), timeout=STEP,
                                 source_address=(source, 0))
    s.sendall((f"GET {path}?token={TOKEN} HTTP/1.1\r\nHost: {nginx}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return s, head.split(b"\r\n", 1)[0].decode()


def tuple_addr(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def per_ip(nginx, instances, cap):
    """2 × cap + 1 clients from as many loopback addresses, all open at once:
    every one gets in with no 503 anywhere, which only holds if the per-IP cap
    counts the client nginx forwards (`X-Forwarded-For`), not nginx itself
    (one address holding at most 2 × cap slots on two instances). No 503
    reaches nginx, so no instance is marked failed for the checks after."""
    sources = [f"127.0.0.{n}" for n in range(2, 2 * cap + 3)]
    refused_before = sum(refusals_503(i["addr"]) for i in instances)
    held, statuses = [], []
    try:
        for source in sources:
            s, status_line = raw_upgrade(nginx, "/echo", source)
            held.append(s)
            statuses.append(status_line)
    finally:
        for s in held:
            s.close()
    admitted = sum(" 101 " in line for line in statuses)
    check(admitted == len(sources),
          f"per-IP cap {cap} behind nginx: {len(sources)} clients from "
          f"{sources[0]}..{sources[-1]} all upgraded at once (trusted_proxies)",
          "; ".join(f"{src}: {line}" for src, line in zip(sources, statuses)))
    refused = sum(refusals_503(i["addr"]) for i in instances) - refused_before
    check(refused == 0, "no instance refused any of them (503s: 0)", str(refused))


def refusals_503(addr):
    """Handshakes this instance refused with 503 (all workers)."""
    _, body = http_get(addr, "/metrics")
    total = 0.0
    for line in body.splitlines():
        if line.startswith("ringcast_handshakes_refused_total") and 'status="503"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def traffic(nginx, instances, cap):
    by_name = {i["name"]: i for i in instances}

    # Plain HTTP through nginx: health yes, per-instance endpoints no.
    status, body = http_get(nginx, "/healthz")
    check(status == 200 and body == "ok\n", "GET /healthz through nginx: 200 ok",
          f"{status} {body!r}")
    for path in ("/metrics", "/readyz"):
        status, _ = http_get(nginx, path)
        check(status == 404, f"GET {path} through nginx: 404 (not public)", str(status))
    for i in instances:
        status, body = http_get(i["addr"], "/readyz")
        check(status == 200, f"instance {i['name']} /readyz direct: 200", f"{status} {body!r}")
    per_ip(nginx, instances, cap)
    before = {i["name"]: upgrades(i["addr"]) for i in instances}

    # Echo: text (multibyte), binary (every byte value), a 60 KiB message.
    async with ws_connect(nginx, "/echo") as ws:
        for msg in ["héllo through nginx ✓", bytes(range(256)), "x" * (60 * 1024)]:
            await ws.send(msg)
            back = await asyncio.wait_for(ws.recv(), STEP)
            kind = "text" if isinstance(msg, str) else "binary"
            check(back == msg and type(back) is type(msg),
                  f"echo through nginx: {kind} {len(msg)} {'chars' if kind == 'text' else 'bytes'} back verbatim")

    # Pub/sub: subscribe, publish 3, pushes with offsets 1..3; then resume.
    channel = "deploy:nginx:" + os.urandom(4).hex()
    async with ws_connect(nginx, "/ws") as sub, ws_connect(nginx, "/ws") as pub:
        r = await command(sub, {"id": 1, "op": "subscribe", "channel": channel})
        check(r.get("offset") == 0 and r.get("recovered") is False and r.get("epoch"),
              f"subscribe {channel} through nginx: offset 0", str(r))
        epoch = r["epoch"]
        for n in range(1, 4):
            r = await command(pub, {"id": 10 + n, "op": "publish", "channel": channel,
                                    "data": {"n": n, "text": "ünïcode"}})
            check(r == {"offset": n}, f"publish #{n} acknowledged with offset {n}", str(r))
        for n in range(1, 4):
            push = await recv_json(sub)
            want = {"channel": channel, "offset": n, "epoch": epoch,
                    "data": {"n": n, "text": "ünïcode"}}
            check(push == want, f"push offset {n} delivered through nginx", str(push))
    async with ws_connect(nginx, "/ws") as again:
        r = await command(again, {"id": 2, "op": "subscribe", "channel": channel,
                                  "since": {"epoch": epoch, "offset": 1}})
        check(r.get("recovered") is True and r.get("offset") == 3,
              "resume since offset 1 through nginx: recovered", str(r))
        replay = [(await recv_json(again))["offset"] for _ in range(2)]
        check(replay == [2, 3], "resume replays offsets 2, 3 in order", str(replay))

    # Stickiness: every upgrade from 127.0.0.1 went to one instance.
    after = {i["name"]: upgrades(i["addr"]) for i in instances}
    delta = {n: after[n] - before[n] for n in after}
    sticky = [n for n, d in delta.items() if d > 0]
    check(len(sticky) == 1 and delta[sticky[0]] == 4,
          f"hash $remote_addr: all 4 upgrades on instance {sticky[0] if sticky else '?'}",
          str(delta))
    home = by_name[sticky[0]]
    other = next(i for i in instances if i is not home)

    # Drain of the home instance, seen through nginx.
    watch = await ws_connect(nginx, "/echo")
    holder, status_line = raw_upgrade(nginx, "/echo")
    check(" 101 " in status_line, "raw upgrade through nginx (will not answer the close)",
          status_line)
    os.kill(home["pid"], signal.SIGTERM)
    try:
        await asyncio.wait_for(watch.recv(), STEP)
        check(False, "close 1001 through nginx on SIGTERM", "got a message instead")
    except ConnectionClosed as e:
        rcvd = e.rcvd
        check(rcvd is not None and rcvd.code == 1001 and rcvd.reason == GOING_AWAY,
              f"close 1001 \"{GOING_AWAY}\" through nginx on SIGTERM", str(rcvd))
    deadline = time.monotonic() + STEP
    while True:
        status, _ = http_get(home["addr"], "/readyz")
        if status == 503 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    check(status == 503, f"instance {home['name']} /readyz direct while draining: 503", str(status))
    before_other = upgrades(other["addr"])
    async with ws_connect(nginx, "/echo") as ws:
        await ws.send("after the drain began")
        back = await asyncio.wait_for(ws.recv(), STEP)
        check(back == "after the drain began",
              "new connection during the drain: echo through nginx")
    check(upgrades(other["addr"]) == before_other + 1,
          f"nginx moved it to instance {other['name']} (503 -> next upstream)")
    async with ws_connect(nginx, "/ws") as ws:
        r = await command(ws, {"id": 3, "op": "subscribe", "channel": channel,
                               "since": {"epoch": epoch, "offset": 3}})
        check(r.get("recovered") is False and r.get("epoch") != epoch,
              f"resume on instance {other['name']}: recovered=false, new epoch "
              "(history is per instance until a shared broker exists)", str(r))
    holder.close()
    print(f"home={home['name']}", flush=True)


def logs(token, access_log, files):
    events = {"accepted": 0, "upgraded": 0, "closed": 0}
    reasons = set()
    forwarded = set()
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        check(token not in text, f"{os.path.basename(path)}: no token")
        lines = [line for line in text.splitlines() if line.strip()]
        bad = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                bad.append(line)
                continue
            if not {"timestamp", "level", "message", "target"} <= event.keys():
                bad.append(line)
                continue
            name = event["message"]
            if name in events:
                if "worker" not in event or "conn" not in event:
                    bad.append(line)
                events[name] += 1
            if name == "closed":
                reasons.add(event.get("reason"))
            if name == "forwarded" and event.get("peer") == "127.0.0.1":
                forwarded.add(event.get("client"))
        check(lines and not bad, f"{os.path.basename(path)}: {len(lines)} lines, all JSON "
              "with timestamp, level, message, target", "\n".join(bad[:3]))
    check(all(n > 0 for n in events.values()),
          "lifecycle lines: " + ", ".join(f"{k} {v}" for k, v in events.items()))
    check({"normal", "drained", "http"} <= reasons,
          "closed lines carry the reason: " + ", ".join(sorted(r for r in reasons if r)))
    check("127.0.0.2" in forwarded and "127.0.0.1" not in forwarded,
          f"forwarded lines name the {len(forwarded)} clients behind nginx (peer 127.0.0.1)",
          str(sorted(forwarded)))
    with open(access_log, encoding="utf-8") as f:
        text = f.read()
    check(token not in text and "?" not in text, "nginx access log: no query string")
    check('"GET /ws HTTP/1.1" 101' in text and '"GET /echo HTTP/1.1" 101' in text,
          "nginx access log: /ws and /echo upgrades (101)")


def main():
    if sys.argv[1] == "traffic":
        asyncio.run(traffic(sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])))
        print(f"token={TOKEN}", flush=True)
    elif sys.argv[1] == "logs":
        logs(sys.argv[2], sys.argv[3], sys.argv[4:])
    print(f"roundtrip {sys.argv[1]}: {passed} checks passed", flush=True)


if __name__ == "__main__":
    main()
