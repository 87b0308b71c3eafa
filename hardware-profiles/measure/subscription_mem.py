#!/usr/bin/env python3
"""Server memory per subscription, for the capacity model (core/src/config/capacity.rs).

CONNS connections to ws://HOST:PORT/ws are opened and held first (their idle
cost is not counted), then each subscribes to the same SUBS channels
(`sub-0` .. `sub-{SUBS-1}`, so after the first connection no channel is
created: the figure is the cost of one more subscriber on an existing
channel). The server's RSS growth (VmRSS, read before and after) divided by
the subscriptions made is the cost of one. Run it against a fresh server: an
allocator keeps freed memory, so a used server under-reports.

Standard library only. Usage:
  subscription_mem.py --port 8080 --pid PID [--conns 400] [--subs 128]
"""
import argparse
import asyncio
import json

from fanout_cpu import masked_text, open_ws
from history_mem import rss_kib


async def subscribe_all(reader, writer, subs):
    for n in range(subs):
        cmd = {"id": n, "op": "subscribe", "channel": f"sub-{n}"}
        writer.write(masked_text(json.dumps(cmd).encode()))
    await writer.drain()
    got = b""
    while got.count(b'"result"') + got.count(b'"error"') < subs:
        chunk = await reader.read(1 << 16)
        if not chunk:
            break
        got += chunk
    return got.count(b'"error"')


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--conns", type=int, default=400)
    ap.add_argument("--subs", type=int, default=128)
    a = ap.parse_args()
    conns = [await open_ws(a.host, a.port) for _ in range(a.conns)]
    await asyncio.sleep(1)
    before = rss_kib(a.pid)
    errors = sum(
        await asyncio.gather(*[subscribe_all(r, w, a.subs) for r, w in conns])
    )
    await asyncio.sleep(1)
    after = rss_kib(a.pid)
    made = a.conns * a.subs - errors
    print(
        json.dumps(
            {
                "connections": a.conns,
                "subscriptions": made,
                "errors": errors,
                "rss_before_kib": before,
                "rss_after_kib": after,
                "bytes_per_subscription": round((after - before) * 1024 / max(made, 1)),
            }
        )
    )
    for _, w in conns:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
