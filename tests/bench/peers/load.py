#!/usr/bin/env python3
"""N concurrent streaming chat questions; relay delay per token. One client for both servers.

The measurement is tests/bench/stream_load.py's (the fake upstream stamps each token with its
send time, `stamp_content`; delay = arrival - send), with three additions this benchmark
needs: the questions come from a JSONL file (data/eval/questions.jsonl, cycled), the client
reports its own CPU time (it shares the 2 cores with the servers), and it counts the streams
open at once. Loopback only. Prints one JSON line.

  load.py --port P --streams 100 --questions data/eval/questions.jsonl   # a ragstream-shaped API
  load.py --port F --direct ...                                            # the fake upstream itself
"""
import argparse
import asyncio
import json
import resource
import statistics
import time


def build_request(args, i, question):
    directive = f"[[fake: tokens={args.tokens}, gap_ms={args.gap_ms}, stamp_content]]"
    if args.direct:
        body = json.dumps({"model": "fake-model", "stream": True,
                           "messages": [{"role": "user", "content": f"{question} {directive}"}]})
        path = "/v1/chat/completions"
    else:
        body = json.dumps({"message": f"{question} {directive}"})
        path = "/api/chat/message/stream"
    data = body.encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
    return head.encode() + data


def token_stamp(data):
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if "choices" in obj:
        choices = obj.get("choices") or [{}]
        content = (choices[0].get("delta") or {}).get("content") or ""
    else:
        content = obj.get("token") or ""
    if content.startswith("|") and content.endswith("|"):
        return float(content.strip("|"))
    return None


class Stats:
    def __init__(self):
        self.delays = []
        self.ttft = []      # request sent -> first token arrived (ms), per stream
        self.duration = []  # request sent -> stream closed (ms), per stream
        self.outcome = {"complete": 0, "incomplete": 0, "timeout": 0, "connect_failed": 0,
                        "http_error": 0}
        self.open_now = 0
        self.open_max = 0


async def one_stream(args, i, question, st):
    sent_at = time.monotonic()  # time to first token counts the connect too
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    except OSError:
        st.outcome["connect_failed"] += 1
        return
    st.open_now += 1
    st.open_max = max(st.open_max, st.open_now)
    writer.write(build_request(args, i, question))
    buf = b""
    tokens = 0
    first = None
    done = False
    status_ok = None
    try:
        await writer.drain()
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=args.timeout)
            if not chunk:
                break
            now = time.time()
            buf += chunk
            if status_ok is None and b"\r\n" in buf:
                status_ok = buf.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"]
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
                    st.delays.append((now - sent) * 1000.0)
                    tokens += 1
                    if first is None:
                        first = time.monotonic()
                        st.ttft.append((first - sent_at) * 1000.0)
    except asyncio.TimeoutError:
        st.outcome["timeout"] += 1
    except OSError:
        pass
    finally:
        st.open_now -= 1
        writer.close()
    if first is not None:
        st.duration.append((time.monotonic() - sent_at) * 1000.0)
    if status_ok is False:
        st.outcome["http_error"] += 1
    if done and tokens == args.tokens:
        st.outcome["complete"] += 1
    else:
        st.outcome["incomplete"] += 1


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--tokens", type=int, default=30)
    ap.add_argument("--gap-ms", type=int, default=100)
    ap.add_argument("--ramp-ms", type=int, default=2000, help="spread stream starts over this time")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--questions", help="JSONL with a 'question' per line (cycled)")
    ap.add_argument("--direct", action="store_true", help="talk to the fake upstream itself")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    questions = ["load question"]
    if args.questions:
        with open(args.questions, encoding="utf-8") as f:
            questions = [json.loads(line)["question"] for line in f if line.strip()]

    st = Stats()
    started = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)

    async def delayed(i):
        await asyncio.sleep(args.ramp_ms / 1000.0 * i / max(1, args.streams))
        await one_stream(args, i, questions[i % len(questions)], st)

    await asyncio.gather(*(delayed(i) for i in range(args.streams)))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.monotonic() - started
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    d = st.delays
    print(json.dumps({
        "mode": "direct" if args.direct else "server",
        "streams": args.streams, "tokens_per_stream": args.tokens, "gap_ms": args.gap_ms,
        **st.outcome, "open_max": st.open_max, "tokens_measured": len(d),
        "delay_ms_p50": round(pct(d, 50), 3) if d else None,
        "delay_ms_p99": round(pct(d, 99), 3) if d else None,
        "delay_ms_max": round(max(d), 3) if d else None,
        "delay_ms_mean": round(statistics.fmean(d), 3) if d else None,
        "ttft_ms_p50": round(pct(st.ttft, 50), 1) if st.ttft else None,
        "ttft_ms_p99": round(pct(st.ttft, 99), 1) if st.ttft else None,
        "duration_ms_p50": round(pct(st.duration, 50), 1) if st.duration else None,
        "duration_ms_p99": round(pct(st.duration, 99), 1) if st.duration else None,
        "elapsed_s": round(elapsed, 2),
        "client_cpu_s": round(cpu, 3),
        "client_cpu_share": round(cpu / elapsed, 3) if elapsed else None,
    }), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
