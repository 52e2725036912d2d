#!/usr/bin/env python3
"""Concurrency check for fake_openai.py: N simultaneous streaming chat requests.

Each request asks (via an inline directive) for --tokens tokens spaced --gap-ms
apart, so with everything concurrent the run takes about tokens*gap_ms. Every
response is decoded (HTTP chunked -> SSE) and must carry exactly --tokens content
tokens and end with [DONE]. Exits non-zero on any failure.

  python3 loadcheck.py                 # starts its own fake server
  python3 loadcheck.py --port 8099     # uses a running one
"""

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


async def one(host: str, port: int, tokens: int, gap_ms: float, key: str | None) -> tuple[float, float]:
    """Return (seconds to first content token, total seconds)."""
    body = json.dumps({
        "model": "fake-model",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": f"load test [[fake: tokens={tokens}, gap_ms={gap_ms}]]"}],
    }).encode()
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(req)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"bad status: {head[:40]!r}")
        # Decode chunk by chunk so time-to-first-token is measured as it arrives.
        buf = b""
        first = None
        content = 0
        done = False
        while not done:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            buf += await reader.readexactly(size)
            await reader.readexactly(2)
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                data = event.decode()[len("data: "):]
                if data == "[DONE]":
                    done = True
                    continue
                obj = json.loads(data)
                if obj["choices"] and obj["choices"][0]["delta"].get("content"):
                    content += 1
                    if first is None:
                        first = time.monotonic() - t0
        if not done or content != tokens:
            raise RuntimeError(f"done={done} content tokens={content}/{tokens}")
        return first or 0.0, time.monotonic() - t0
    finally:
        writer.close()


async def run(args, port: int) -> int:
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(one(args.host, port, args.tokens, args.gap_ms, args.key) for _ in range(args.n)),
        return_exceptions=True)
    elapsed = time.monotonic() - t0
    errors = [r for r in results if isinstance(r, BaseException)]
    ok = [r for r in results if not isinstance(r, BaseException)]
    ideal = (args.tokens - 1) * args.gap_ms / 1000
    print(f"loadcheck: {len(ok)}/{args.n} streams ok, {args.tokens} tokens x {args.gap_ms:g} ms gap "
          f"(ideal {ideal:.2f}s), elapsed {elapsed:.2f}s")
    if ok:
        firsts = sorted(r[0] for r in ok)
        totals = sorted(r[1] for r in ok)
        print(f"loadcheck: first token p50 {statistics.median(firsts) * 1000:.0f} ms, "
              f"max {firsts[-1] * 1000:.0f} ms; per-stream total p50 {statistics.median(totals):.2f}s, "
              f"max {totals[-1]:.2f}s")
    with contextlib.suppress(Exception):
        with urllib.request.urlopen(f"http://{args.host}:{port}/_fake/stats", timeout=5) as r:
            stats = json.load(r)
        print(f"loadcheck: server max_active_streams {stats['max_active_streams']}, "
              f"max_connections_open {stats['max_connections_open']}")
    for e in errors[:5]:
        print(f"loadcheck: error: {type(e).__name__}: {e}", file=sys.stderr)
    return 0 if not errors else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, help="port of a running fake server (default: start one)")
    p.add_argument("--key", help="API key to send, if the server requires one")
    p.add_argument("--n", type=int, default=1000, help="concurrent streams (default 1000)")
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--gap-ms", type=float, default=50)
    args = p.parse_args()
    raise_fd_limit()
    if args.port:
        return asyncio.run(run(args, args.port))
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        server = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_openai.py"), "--port", "0",
                                   "--host", args.host, "--port-file", port_file], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(port_file):
                if time.monotonic() > deadline or server.poll() is not None:
                    print("loadcheck: fake server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.05)
            with open(port_file) as f:
                port = int(f.read())
            return asyncio.run(run(args, port))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
