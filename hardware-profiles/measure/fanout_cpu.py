#!/usr/bin/env python3
"""Server CPU time per delivered message, for the profiles' capacity arithmetic.

Opens SUBS subscriber connections to ws://HOST:PORT/ws, subscribes each to one
channel, then PUBS publisher connections publish a DATA-byte JSON string at
RATE publishes/s in total for SECONDS. The server's CPU time (utime+stime from
/proc/PID/stat) over the publishing window, divided by the deliveries it made,
is the CPU cost of one delivered message. Deliveries are counted by the
server: the sum of `ringcast_deliveries_total` over its workers in GET
/metrics, read before and after the window (not publishes x subscribers,
which would count pushes the server dropped or never made); the product is
printed beside it as a check. Subscribers only count bytes, so the
client stays light; it still shares the box, so run it with the server pinned
elsewhere when you can.

With --extensions OFFER the subscribers offer it in their handshake (e.g.
"permessage-deflate" for compressed pushes); --chat publishes a chat
message (a JSON object of about 150 bytes) instead of DATA x's, which
compress unrealistically well. bytes_per_delivery is what the subscribers
read (frame headers included) per delivery the server counted.

Standard library only. Usage:
  fanout_cpu.py --port 8080 --pid PID [--subs 500] [--pubs 4] [--rate 200]
                [--seconds 10] [--data 64] [--chat] [--extensions OFFER]
"""
import argparse
import asyncio
import json
import os
import time
import urllib.request

MASK = b"\x1f\x2e\x3d\x4c"
HANDSHAKE = (
    "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


def masked_text(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    body = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return head + MASK + body


def deliveries_total(host: str, port: int) -> int:
    """Sum of ringcast_deliveries_total over the workers, from GET /metrics."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("ringcast_deliveries_total"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


CHAT = {
    "type": "message",
    "room": "general",
    "user": {"id": "u_48213", "name": "Maria Lopez"},
    "text": "Running ten minutes late, start without me and I will catch up",
    "ts": 1764806400123,
}


async def open_ws(host, port, extensions=None):
    reader, writer = await asyncio.open_connection(host, port)
    handshake = HANDSHAKE
    if extensions:
        handshake = handshake[:-2] + f"Sec-WebSocket-Extensions: {extensions}\r\n\r\n"
    writer.write(handshake.encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    if extensions:
        assert b"sec-websocket-extensions" in head.lower(), f"offer declined: {head!r}"
    return reader, writer


async def subscriber(host, port, channel, ready, counter, extensions):
    reader, writer = await open_ws(host, port, extensions)
    cmd = json.dumps({"id": 1, "op": "subscribe", "channel": channel}).encode()
    writer.write(masked_text(cmd))
    await reader.read(4096)  # the reply
    ready.release()
    while True:
        chunk = await reader.read(1 << 16)
        if not chunk:
            return
        counter[0] += len(chunk)


async def publisher(host, port, channel, rate, seconds, data, sent):
    reader, writer = await open_ws(host, port)
    frame = masked_text(
        json.dumps({"op": "publish", "channel": channel, "data": data}).encode()
    )
    drain = asyncio.create_task(reader.read(1 << 30))
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(frame)
        n += 1
    sent[0] += n
    await writer.drain()
    drain.cancel()
    writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--subs", type=int, default=500)
    ap.add_argument("--pubs", type=int, default=4)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--data", type=int, default=64)
    ap.add_argument("--chat", action="store_true")
    ap.add_argument("--extensions")
    a = ap.parse_args()
    channel = "bench"
    data = CHAT if a.chat else "x" * a.data
    ready = asyncio.Semaphore(0)
    counter = [0]
    subs = [
        asyncio.create_task(subscriber(a.host, a.port, channel, ready, counter, a.extensions))
        for _ in range(a.subs)
    ]
    for _ in range(a.subs):
        await ready.acquire()
    hz = os.sysconf("SC_CLK_TCK")
    delivered0 = deliveries_total(a.host, a.port)
    ticks0, t0 = cpu_ticks(a.pid), time.monotonic()
    read0 = counter[0]
    sent = [0]
    await asyncio.gather(
        *[
            publisher(a.host, a.port, channel, a.rate / a.pubs, a.seconds, data, sent)
            for _ in range(a.pubs)
        ]
    )
    # Let the last pushes drain to every subscriber.
    last = -1
    while last != counter[0]:
        last = counter[0]
        await asyncio.sleep(0.5)
    ticks1, t1 = cpu_ticks(a.pid), time.monotonic()
    deliveries = deliveries_total(a.host, a.port) - delivered0
    cpu_s = (ticks1 - ticks0) / hz
    push_len = len(
        json.dumps({"channel": channel, "offset": 1000, "epoch": "0" * 16, "data": data})
    )
    print(
        json.dumps(
            {
                "subscribers": a.subs,
                "publishes": sent[0],
                "deliveries": deliveries,
                "publishes_x_subscribers": sent[0] * a.subs,
                "bytes_read": counter[0],
                "bytes_per_delivery": round((counter[0] - read0) / max(deliveries, 1), 1),
                "approx_push_frame_bytes": push_len + 2,
                "window_s": round(t1 - t0, 2),
                "server_cpu_s": cpu_s,
                "server_cpu_us_per_delivery": round(cpu_s * 1e6 / max(deliveries, 1), 3),
                "deliveries_per_s": round(deliveries / (t1 - t0)),
            }
        )
    )
    for s in subs:
        s.cancel()


if __name__ == "__main__":
    asyncio.run(main())
