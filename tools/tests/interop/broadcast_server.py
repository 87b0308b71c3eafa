"""Python `websockets` broadcast server for ringcast-load's interop test.

Prints `listening PORT` once bound to 127.0.0.1:0; every message a client
sends goes to every connected client (the sender too). Exits after
--lifetime seconds (default 60).
"""
import asyncio
import sys

from websockets.asyncio.server import broadcast, serve

CLIENTS = set()


async def handler(ws):
    CLIENTS.add(ws)
    try:
        async for message in ws:
            broadcast(CLIENTS, message)
    except Exception:
        pass
    finally:
        CLIENTS.discard(ws)


async def main():
    lifetime = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        await asyncio.sleep(lifetime)


asyncio.run(main())
