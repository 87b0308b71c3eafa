"""kill -9 of a ringcast node behind nginx, on the Redis engine (run by
deploy/nginx/cluster.sh, which starts redis-server and nginx in front of two
node ports and passes everything here).

`cluster.py NGINX_ADDR BIN REDIS_URL PORT_A PORT_B WORKDIR TRIALS`

Each trial: both nodes running (started here on their fixed ports, so
nginx's upstream list stays true); a subscriber through nginx (its node,
"home", found from the nodes' upgrade counters); publishers on both nodes
at full speed, each publish waiting for its acknowledgement; after 100
pushes, SIGKILL to home. The subscriber sees its connection end, reconnects
through nginx (which moves it to the surviving node), resumes with `since`,
and must get every offset up to the highest acknowledged one exactly once,
in order: no acknowledged message lost.

One line per check; the first failure exits 1. Every network step has a
timeout.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

STEP = 5.0


def check(cond, what, detail=""):
    if not cond:
        print(f"FAIL: {what}{': ' + detail if detail else ''}", flush=True)
        sys.exit(1)


def upgrades(addr):
    try:
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=STEP) as r:
            body = r.read().decode()
    except OSError:
        return 0
    return int(sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines()
                   if l.startswith("ringcast_handshake_duration_seconds_count")))


class Node:
    def __init__(self, name, port, bin_path, redis_url, work):
        self.name, self.addr = name, f"127.0.0.1:{port}"
        self.cmd = [bin_path, "serve", "--listen", self.addr, "--workers", "1", "--no-pin",
                    "--set", "engine.kind=redis", "--set", f"engine.redis_url={redis_url}",
                    "--set", "limits.command_rate=0", "--set", "pubsub.history_size=10000",
                    "--set", 'admission.trusted_proxies=["127.0.0.1/32"]']
        self.work, self.proc, self.starts = work, None, 0

    def ensure(self):
        if self.proc and self.proc.poll() is None:
            return
        self.starts += 1
        log = open(os.path.join(self.work, f"{self.name}-{self.starts}.log"), "w")
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.proc.stdout.readline()
        check(line.startswith("ringcast listening on "), f"node {self.name} starts", line)

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STEP)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def ws(addr):
    return connect(f"ws://{addr}/ws", open_timeout=STEP, close_timeout=1, max_size=1 << 20)


async def call(conn, msg, pushes):
    await conn.send(json.dumps(msg))
    while True:
        reply = json.loads(await asyncio.wait_for(conn.recv(), STEP))
        if "id" not in reply:
            pushes.append(reply)
            continue
        return reply


async def publisher(addr, channel, limit, acked, stop):
    """Publishes until `limit` acks, `stop` is set, or the node goes away."""
    try:
        async with ws(addr) as conn:
            n = 0
            while n < limit and not stop.is_set():
                n += 1
                r = await call(conn, {"id": n, "op": "publish", "channel": channel,
                                      "data": {"n": n}}, [])
                check("result" in r, f"publish on {addr} acknowledged", str(r))
                acked.append(r["result"]["offset"])
    except (ConnectionClosed, OSError, asyncio.TimeoutError):
        pass


async def trial(k, nginx, nodes):
    for node in nodes:
        node.ensure()
    channel = f"cluster:kill:{k}:{os.urandom(3).hex()}"
    before = {n.name: upgrades(n.addr) for n in nodes}
    seen, pushes = [], []
    sub = await ws(nginx).__aenter__()
    r = await call(sub, {"id": 1, "op": "subscribe", "channel": channel}, pushes)
    check(r.get("result", {}).get("offset") == 0, f"trial {k}: subscribe through nginx", str(r))
    epoch = r["result"]["epoch"]
    moved = [n for n in nodes if upgrades(n.addr) > before[n.name]]
    check(len(moved) == 1, f"trial {k}: the subscriber is on one node", str(moved))
    home = moved[0]
    other = next(n for n in nodes if n is not home)
    acked_home, acked_other, stop = [], [], asyncio.Event()
    tasks = [asyncio.create_task(publisher(home.addr, channel, 10**9, acked_home, stop)),
             asyncio.create_task(publisher(other.addr, channel, 300, acked_other, stop))]

    async def next_push(conn):
        if pushes:
            return pushes.pop(0)
        return json.loads(await asyncio.wait_for(conn.recv(), STEP))

    while len(seen) < 100:
        seen.append((await next_push(sub))["offset"])
    home.kill9()
    try:
        while True:
            seen.append((await next_push(sub))["offset"])
    except ConnectionClosed:
        pass
    # Like a real client (the JS SDK): retry with a backoff. nginx may have
    # disabled the restarted node for `fail_timeout` after earlier trials'
    # refusals; then it answers 502 until the dead node is marked failed too.
    attempts, deadline = 0, time.monotonic() + 15
    while True:
        attempts += 1
        try:
            sub2 = await ws(nginx).__aenter__()
            break
        except Exception as e:  # InvalidStatus (502), refused: retry
            check(time.monotonic() < deadline, f"trial {k}: reconnect through nginx", repr(e))
            await asyncio.sleep(0.2)
    since = {"epoch": epoch, "offset": seen[-1]}
    r = await call(sub2, {"id": 1, "op": "subscribe", "channel": channel, "since": since}, pushes)
    check(r.get("result", {}).get("recovered") is True,
          f"trial {k}: resumed through nginx on node {other.name}", str(r))
    await tasks[1]
    stop.set()
    await asyncio.wait_for(tasks[0], STEP)
    top = max(acked_home + acked_other)
    while seen[-1] < top:
        seen.append((await next_push(sub2))["offset"])
    check(seen == list(range(1, len(seen) + 1)),
          f"trial {k}: every offset once, in order", str(seen[:5]) + "...")
    await sub2.close()
    print(f"ok: trial {k}: killed node {home.name} after {len(acked_home)} acks there; "
          f"{len(acked_home) + len(acked_other)} acknowledged, all {top} offsets delivered "
          f"once in order after the resume on node {other.name} "
          f"(reconnect attempt {attempts})", flush=True)


async def main():
    nginx, bin_path, redis_url, port_a, port_b, work, trials = sys.argv[1:8]
    nodes = [Node("a", port_a, bin_path, redis_url, work),
             Node("b", port_b, bin_path, redis_url, work)]
    try:
        for k in range(1, int(trials) + 1):
            await asyncio.wait_for(trial(k, nginx, nodes), 60)
    finally:
        for node in nodes:
            node.stop()


if __name__ == "__main__":
    asyncio.run(main())
