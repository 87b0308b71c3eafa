"""Interop client for ringcast's `/echo` endpoint, written with Python `websockets`.

Run by `core/tests/interop.rs` (which installs the pinned `websockets` from
requirements.txt into target/tmp/interop/venv); can also be run by hand:

    python client.py ws://127.0.0.1:PORT/echo [--max-message 65536] [--shutdown-check]

Prints one line per check (`PASS name: detail` or `FAIL name: detail`) and exits
0 only when every check passed. Every check has its own timeout, so a silent
server fails the check instead of hanging the run.

Checks on the first connection: text echo (ASCII, multibyte UTF-8), binary echo
(bytes 0..255, empty), a 60 KiB message, a text message sent as 3 fragments and
echoed whole, ping -> pong with the same payload, then a close handshake started
by the client (1000 + reason) that the server must answer with 1000.
With --max-message N: an N-byte message echoes, and on a second connection a
message of N+1 bytes makes the server close with 1009 (server-side close).
With --shutdown-check: a last connection prints `READY shutdown-check` and
waits for the server to close it with 1001 (the harness sends SIGTERM then).
With --deflate: the server must have accepted permessage-deflate (which
`websockets` offers by default), and compressible JSON (small and 48 KiB)
must echo; the N+1-byte message is then sent compressed, so the 1009 comes
from the inflated size.
"""
import argparse
import asyncio
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

CHECK_TIMEOUT = 10.0
results = []  # (name, ok)


def line(text):
    print(text, flush=True)


async def check(name, coro):
    """Runs one check under a timeout; records and prints its outcome."""
    try:
        detail = await asyncio.wait_for(coro, CHECK_TIMEOUT)
        results.append((name, True))
        line("PASS %s: %s" % (name, detail))
    except asyncio.TimeoutError:
        results.append((name, False))
        line("FAIL %s: no answer within %.0f s" % (name, CHECK_TIMEOUT))
    except Exception as e:  # an assertion or a connection error: report it, go on
        results.append((name, False))
        line("FAIL %s: %s: %s" % (name, type(e).__name__, e))


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def describe(msg):
    if isinstance(msg, str):
        return "text of %d chars (%d UTF-8 bytes)" % (len(msg), len(msg.encode()))
    return "binary of %d bytes" % len(msg)


async def echo(ws, msg):
    await ws.send(msg)
    got = await ws.recv()
    expect(type(got) is type(msg), "sent %s, got %s" % (describe(msg), describe(got)))
    expect(got == msg, "sent %s, got different %s" % (describe(msg), describe(got)))
    return "echoed %s" % describe(msg)


async def negotiated(ext):
    expect(ext is not None and "permessage-deflate" in ext,
           "server answered extensions %r, expected permessage-deflate" % ext)
    return "server accepted %r" % ext


def chat_json(i):
    return ('{"channel":"room:lobby","offset":%d,"data":{"user":"user-%d","text":'
            '"on my way, see you at the station in ten minutes","ts":%d}}' % (1000 + i, i % 7, 1733000000 + i))


async def fragmented(ws):
    parts = ["frag-one|", "fragment two é|", "three 🦀"]
    await ws.send(parts)  # an iterable of str: one text message in 3 frames
    got = await ws.recv()
    whole = "".join(parts)
    expect(isinstance(got, str), "expected text, got %s" % describe(got))
    expect(got == whole, "expected %r, got %r" % (whole, got[:80]))
    return "3 text fragments echoed as one message of %d chars" % len(whole)


async def ping(ws):
    payload = b"interop-ping"
    started = time.monotonic()
    waiter = await ws.ping(payload)  # resolves only on a pong with this payload
    await waiter
    return "pong for %r after %.1f ms" % (payload, (time.monotonic() - started) * 1e3)


async def client_close(ws):
    started = time.monotonic()
    await ws.close(code=1000, reason="interop bye")
    rcvd = ws.protocol.close_rcvd
    expect(rcvd is not None, "server sent no close frame (connection state %s)" % ws.protocol.state)
    expect(rcvd.code == 1000, "server answered close with code %d (%r), expected 1000" % (rcvd.code, rcvd.reason))
    expect(ws.protocol.close_sent is not None and ws.protocol.close_sent.code == 1000, "client close not sent")
    return "server echoed close %d %r; closed in %.1f ms" % (rcvd.code, rcvd.reason, (time.monotonic() - started) * 1e3)


async def oversize(url, limit):
    async with connect(url, max_size=None, close_timeout=5, open_timeout=5) as ws:
        started = time.monotonic()
        await ws.send(b"x" * (limit + 1))
        try:
            got = await ws.recv()
        except ConnectionClosed as e:
            rcvd = e.rcvd
            expect(rcvd is not None, "connection dropped without a close frame: %s" % e)
            expect(rcvd.code == 1009, "server closed with %d (%r), expected 1009" % (rcvd.code, rcvd.reason))
            return "message of %d bytes -> server close %d %r after %.1f ms" % (
                limit + 1, rcvd.code, rcvd.reason, (time.monotonic() - started) * 1e3)
        raise AssertionError("server echoed %s instead of closing with 1009" % describe(got))


async def shutdown(url):
    async with connect(url, close_timeout=5, open_timeout=5, ping_interval=None) as ws:
        line("READY shutdown-check")
        try:
            got = await ws.recv()
        except ConnectionClosed as e:
            rcvd = e.rcvd
            expect(rcvd is not None, "connection dropped without a close frame: %s" % e)
            expect(rcvd.code == 1001, "server closed with %d (%r), expected 1001" % (rcvd.code, rcvd.reason))
            return "server closed with %d %r" % (rcvd.code, rcvd.reason)
        raise AssertionError("expected a close frame, got %s" % describe(got))


async def main():
    global CHECK_TIMEOUT
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--max-message", type=int, default=None)
    parser.add_argument("--shutdown-check", action="store_true")
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args()

    import websockets
    line("client: python websockets %s -> %s" % (websockets.version.version, args.url))

    ws = await asyncio.wait_for(connect(args.url, max_size=None, close_timeout=5, open_timeout=5, ping_interval=None), CHECK_TIMEOUT)
    ext = ws.response.headers.get("Sec-WebSocket-Extensions")
    line("connected: status %d, extensions %s" % (ws.response.status_code, ext or "none"))
    if args.deflate:
        await check("deflate-negotiated", negotiated(ext))
        await check("json-chat-compressed", echo(ws, chat_json(3)))
        await check("json-48KiB-compressed", echo(ws, "[" + ",".join(chat_json(i) for i in range(200))[: 48 * 1024] + "]"))
    await check("text-ascii", echo(ws, "hello, ringcast"))
    await check("text-utf8", echo(ws, "héllo wörld — ünïcode 😀 日本語"))
    await check("binary-0-255", echo(ws, bytes(range(256))))
    await check("binary-empty", echo(ws, b""))
    await check("binary-60KiB", echo(ws, bytes(i % 251 for i in range(60 * 1024))))
    await check("text-60KiB", echo(ws, "ab\u00e9\u20ac" * (60 * 1024 // 8)))
    if args.max_message is not None:
        await check("binary-at-limit", echo(ws, bytes(i % 253 for i in range(args.max_message))))
    await check("text-3-fragments", fragmented(ws))
    await check("ping-pong", ping(ws))
    await check("client-close-1000", client_close(ws))
    if args.max_message is not None:
        await check("server-close-1009", oversize(args.url, args.max_message))
    if args.shutdown_check:
        # Generous: the harness sends SIGTERM only once it reads READY.
        CHECK_TIMEOUT = 20.0
        await check("server-close-1001-on-sigterm", shutdown(args.url))

    failed = [name for name, ok in results if not ok]
    line("%d/%d checks ok%s" % (len(results) - len(failed), len(results),
                                "; failed: " + ", ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
