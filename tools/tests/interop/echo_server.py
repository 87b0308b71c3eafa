"""Python `websockets` echo server for ringcast-load's interop test.

Prints `listening PORT` once bound to 127.0.0.1:0. Every message is echoed
back as a fragmented message (two frames) when it is at least 2 bytes long,
and every connection is pinged every 50 ms, so the client must reassemble
fragments and answer pings. Exits after --lifetime seconds (default 60).
"""
import asyncio
import sys

from websockets.asyncio.server import serve


async def handler(ws):
    async def pinger():
        while True:
            await asyncio.sleep(0.05)
            try:
                await ws.ping()
            except Exception:
                return

    task = asyncio.create_task(pinger())
    try:
        async for message in ws:
            if len(message) >= 2:
                half = len(message) // 2
                await ws.send([message[:half], message[half:]])
            else:
                await ws.send(message)
    except Exception:
        pass
    finally:
        task.cancel()


async def main():
    lifetime = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    async with serve(handler, "127.0.0.1", 0, ping_interval=None, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        await asyncio.sleep(lifetime)


asyncio.run(main())
