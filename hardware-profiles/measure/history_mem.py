#!/usr/bin/env python3
"""Server memory per history entry, for the profiles' capacity arithmetic.

CONNS publisher connections to ws://HOST:PORT/ws each publish PER_CONN
DATA-byte messages round-robin over CHANNELS_PER_CONN channels of their own
(staying within the default command burst of 200), wait for every reply, then
the server's RSS growth (VmRSS of /proc/PID/status, read before and after) is
divided by the history entries the server holds: the publishes it
acknowledged (a reply with a result: a publish is acknowledged once it is in
history), at most HISTORY_SIZE per channel. The server's own count of the
bytes its histories keep (ringcast_history_bytes in GET /metrics, summed
over workers) is printed beside it, per entry. Run it against a fresh
server: an allocator keeps freed memory, so a used server under-reports.

Standard library only. Usage:
  history_mem.py --port 8080 --pid PID [--conns 200] [--per-conn 200]
                 [--channels-per-conn 2] [--data 64] [--history-size 100]
"""
import argparse
import asyncio
import json
import urllib.request

from fanout_cpu import masked_text, open_ws


def metric_sum(host, port, name):
    """Sum of NAME over the workers, from GET /metrics."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def publisher(host, port, index, per_conn, channels, data):
    reader, writer = await open_ws(host, port)
    for n in range(per_conn):
        channel = f"hist-{index}-{n % channels}"
        cmd = {"id": n, "op": "publish", "channel": channel, "data": data}
        writer.write(masked_text(json.dumps(cmd).encode()))
    await writer.drain()
    got = b""
    while got.count(b'"result"') + got.count(b'"error"') < per_conn:
        chunk = await reader.read(1 << 16)
        if not chunk:
            break
        got += chunk
    return reader, writer, got.count(b'"error"'), got.count(b'"result"')


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--conns", type=int, default=200)
    ap.add_argument("--per-conn", type=int, default=200)
    ap.add_argument("--channels-per-conn", type=int, default=2)
    ap.add_argument("--data", type=int, default=64)
    ap.add_argument("--history-size", type=int, default=100)
    a = ap.parse_args()
    data = "x" * a.data
    # Open every connection first so their cost is not counted as history.
    conns = [await open_ws(a.host, a.port) for _ in range(a.conns)]
    for _, w in conns:
        w.close()
    await asyncio.sleep(1)
    before = rss_kib(a.pid)
    history_before = metric_sum(a.host, a.port, "ringcast_history_bytes")
    results = await asyncio.gather(
        *[
            publisher(a.host, a.port, i, a.per_conn, a.channels_per_conn, data)
            for i in range(a.conns)
        ]
    )
    await asyncio.sleep(1)
    after = rss_kib(a.pid)
    history_bytes = metric_sum(a.host, a.port, "ringcast_history_bytes") - history_before
    errors = sum(r[2] for r in results)
    # Each connection publishes round-robin over its own channels, so its
    # acknowledged publishes spread evenly over them.
    ch = a.channels_per_conn
    entries = sum(min(r[3] // ch, a.history_size) * ch for r in results)
    print(
        json.dumps(
            {
                "channels": a.conns * a.channels_per_conn,
                "entries": entries,
                "errors": errors,
                "rss_before_kib": before,
                "rss_after_kib": after,
                "bytes_per_entry": round((after - before) * 1024 / max(entries, 1)),
                "server_history_bytes": history_bytes,
                "server_history_bytes_per_entry": round(history_bytes / max(entries, 1)),
            }
        )
    )
    for _, w, _, _ in results:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
