#!/usr/bin/env python3
"""Opens N concurrent streaming chat requests and measures relay delay per token.

The fake upstream stamps each token's content with its send time (`stamp_content`); this
client records each token's arrival, so arrival - send is the delay added between the fake
upstream and the client (through nginx + ragstream, or directly against the fake upstream
as the reference). Loopback only. Prints one JSON line of results.

  stream_load.py --port 8080 --streams 100 --tokens 20 --gap-ms 100
  stream_load.py --port 9999 --direct ...      # read the fake upstream itself
"""
import argparse
import asyncio
import json
import resource
import statistics
import time


def build_request(args, i):
    directive = f"[[fake: tokens={args.tokens}, gap_ms={args.gap_ms}, stamp_content]]"
    if args.direct:
        body = json.dumps({"model": "fake-model", "stream": True,
                           "messages": [{"role": "user", "content": f"q{i} {directive}"}]})
        path = "/v1/chat/completions"
    else:
        body = json.dumps({"message": f"load question {i} {directive}"})
        path = "/api/chat/message/stream"
    data = body.encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
    return head.encode() + data


def token_stamp(data):
    """The send time stamped in a token event, or None."""
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if "choices" in obj:  # direct OpenAI chunk
        choices = obj.get("choices") or [{}]
        content = (choices[0].get("delta") or {}).get("content") or ""
    else:
        content = obj.get("token") or ""
    if content.startswith("|") and content.endswith("|"):
        return float(content.strip("|"))
    return None


async def one_stream(args, i, delays, outcome):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    except OSError:
        outcome["connect_failed"] += 1
        return
    writer.write(build_request(args, i))
    await writer.drain()
    buf = b""
    tokens = 0
    done = False
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=args.timeout)
            if not chunk:
                break
            now = time.time()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.rstrip(b"\r")
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].decode("utf-8", "replace")
                if data == "[DONE]" or '"done":true' in data:
                    done = True
                    continue
                sent = token_stamp(data)
                if sent is not None:
                    delays.append((now - sent) * 1000.0)
                    tokens += 1
    except asyncio.TimeoutError:
        outcome["timeout"] += 1
    finally:
        writer.close()
    if done and tokens == args.tokens:
        outcome["complete"] += 1
    else:
        outcome["incomplete"] += 1


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--gap-ms", type=int, default=100)
    ap.add_argument("--ramp-ms", type=int, default=2000, help="spread stream starts over this time")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--direct", action="store_true", help="talk to the fake upstream itself")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    delays = []
    outcome = {"complete": 0, "incomplete": 0, "timeout": 0, "connect_failed": 0}
    started = time.monotonic()

    async def delayed(i):
        await asyncio.sleep(args.ramp_ms / 1000.0 * i / max(1, args.streams))
        await one_stream(args, i, delays, outcome)

    await asyncio.gather(*(delayed(i) for i in range(args.streams)))
    print(json.dumps({
        "mode": "direct" if args.direct else "ragstream",
        "streams": args.streams, "tokens_per_stream": args.tokens, "gap_ms": args.gap_ms,
        **outcome, "tokens_measured": len(delays),
        "delay_ms_p50": round(pct(delays, 50), 3) if delays else None,
        "delay_ms_p99": round(pct(delays, 99), 3) if delays else None,
        "delay_ms_max": round(max(delays), 3) if delays else None,
        "delay_ms_mean": round(statistics.fmean(delays), 3) if delays else None,
        "elapsed_s": round(time.monotonic() - started, 2),
    }))


if __name__ == "__main__":
    asyncio.run(main())
