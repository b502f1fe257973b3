"""Open-loop HTTP load for the API benchmarks, run in its own process.

Requests are sent on a fixed schedule (request i at start + i / rate) whether or not earlier ones
have answered, over a pool of keep-alive connections that grows when all are busy; each latency is
measured from the request's scheduled time to the end of its response, so a stalled server cannot
hide its queueing delay (no coordinated omission).

    python bench/api_load.py PORT RATE SECONDS < requests.jsonl > result.json

stdin: one JSON object per line, {"method", "path", "headers", "body"} (body a string or null),
sent in turn (cycled). stdout: {"sent", "ok", "errors", "latencies_ms": [...], "statuses": {...}}.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter

import orjson


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def send(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


def encode(req: dict, host: str) -> bytes:
    body = (req.get("body") or "").encode()
    headers = {"Host": host, "Connection": "keep-alive", **(req.get("headers") or {})}
    if body:
        headers["Content-Length"] = str(len(body))
        headers.setdefault("Content-Type", "application/json")
    lines = [f"{req['method']} {req['path']} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run(port: int, rate: float, seconds: float, requests: list[bytes]) -> dict:
    idle: list[Connection] = []
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0

    async def one(raw: bytes, scheduled: float) -> None:
        nonlocal errors
        reused = bool(idle)
        conn = idle.pop() if idle else Connection(*await asyncio.open_connection("127.0.0.1", port))
        try:
            status = await conn.send(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            conn.writer.close()
            if not reused:
                errors += 1
                return
            # The server closed a keep-alive connection that sat idle past its timeout (uvicorn: 5 s)
            # before this request reached it; as HTTP clients do, send it again on a new connection.
            conn = Connection(*await asyncio.open_connection("127.0.0.1", port))
            try:
                status = await conn.send(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                conn.writer.close()
                return
        latencies.append((time.perf_counter() - scheduled) * 1000)
        statuses[status] += 1
        idle.append(conn)

    # Open the connections a steady state needs before the clock starts.
    for _ in range(16):
        idle.append(Connection(*await asyncio.open_connection("127.0.0.1", port)))
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[i % len(requests)], scheduled)))
    await asyncio.gather(*tasks)
    return {"sent": total, "ok": sum(n for s, n in statuses.items() if s < 400), "errors": errors,
            "statuses": {str(k): v for k, v in statuses.items()}, "latencies_ms": latencies}


def main() -> None:
    port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    host = f"127.0.0.1:{port}"
    requests = [encode(orjson.loads(line), host) for line in sys.stdin.buffer if line.strip()]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(port, rate, seconds, requests))
    sys.stdout.buffer.write(orjson.dumps(result))


if __name__ == "__main__":
    main()
