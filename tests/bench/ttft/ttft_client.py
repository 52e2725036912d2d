#!/usr/bin/env python3
"""Part 3 of scripts/bench.sh: sends questions one after another to ragstream (through nginx)
and joins, for each, three views of its time to first token:

  - the worker's request log line (handlers/main.cc): first_token_us from the request's
    arrival to its first token written out, and its phases (handler, store, language,
    retrieval, prompt, start, upstream_ttft);
  - the fake upstream's own time to first token: the first token's content is the time it
    was sent (scenario stamp_content), minus the time the fake received the request
    (/_fake/requests' received_at), both on the fake's clock;
  - the client's: from sending the request to reading the first token event.

ragstream's added time to first token = first_token_us - the upstream's own time to first
token. Writes one JSON line per question to --out.

  ttft_client.py --url http://127.0.0.1:PORT --fake http://127.0.0.1:FPORT --log WORKER_LOG
                 --questions FILE --out FILE.jsonl [--n 50] [--warmup 3] [--label 10000]
"""
import argparse
import http.client
import json
import sys
import time
import urllib.parse
import urllib.request


def fake_call(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def ask(url, question):
    """One streamed question: (client ttft seconds, first token text, message id)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    body = json.dumps({"message": question}).encode()
    t0 = time.perf_counter()
    conn.request("POST", "/api/chat/message/stream", body,
                 {"Content-Type": "application/json", "Accept": "text/event-stream"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    ttft = None
    first = None
    message_id = None
    done = None
    while True:
        line = resp.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        ev = json.loads(line[6:])
        if ev.get("done"):
            done = ev
            break
        if message_id is None and ev.get("message_id"):
            message_id = ev["message_id"]
        if ttft is None and ev.get("token"):
            ttft = time.perf_counter() - t0
            first = ev["token"]
    conn.close()
    if done is None or done.get("status") != "complete":
        raise RuntimeError(f"the answer did not complete: {done}")
    return ttft, first, message_id, len(done.get("sources") or [])


def read_log(path):
    lines = {}
    with open(path, errors="replace") as f:
        for line in f:
            if '"msg":"request"' not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("message_id"):
                lines[rec["message_id"]] = rec
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--offset", type=int, default=0, help="first question to ask")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    with open(a.questions) as f:
        questions = [q.strip() for q in f if q.strip()]
    # Three tokens, sent at once, each stamped with its send time.
    fake_call(a.fake, "/_fake/script", {"default": {"stamp_content": True, "tokens": 3,
                                                    "gap_ms": 0, "first_token_ms": 0}})
    for i in range(a.warmup):  # connections, caches
        ask(a.url, questions[(a.offset + a.n + i) % len(questions)])
    since = max([r["seq"] for r in fake_call(a.fake, "/_fake/requests")] or [0])
    runs = []
    for i in range(a.n):
        q = questions[(a.offset + i) % len(questions)]
        ttft, first, message_id, sources = ask(a.url, q)
        runs.append({"question": i, "client_ttft_s": ttft, "first": first,
                     "message_id": message_id, "sources": sources})
    records = [r for r in fake_call(a.fake, f"/_fake/requests?since={since}")
               if r["path"].endswith("/chat/completions")]
    time.sleep(0.2)  # the worker writes its log line after the done event
    log = read_log(a.log)
    if len(records) != len(runs):
        sys.exit(f"expected {len(runs)} upstream requests, the fake saw {len(records)}")
    with open(a.out, "a") as out:
        for run, rec in zip(runs, records):
            stamp = float(run["first"].strip("|"))
            line = log.get(run["message_id"])
            if line is None:
                sys.exit(f"no log line for {run['message_id']}")
            row = {"label": a.label, "question": run["question"], "sources": run["sources"],
                   "client_ttft_us": round(run["client_ttft_s"] * 1e6),
                   "upstream_own_ttft_us": round((stamp - rec["received_at"]) * 1e6)}
            for k in ("first_token_us", "handler_us", "store_us", "language_us", "retrieval_us",
                      "prompt_us", "start_us", "upstream_ttft_us", "store_wait_us"):
                row[k] = line.get(k, -1)
            row["added_us"] = row["first_token_us"] - row["upstream_own_ttft_us"]
            row["model_client_us"] = row["upstream_ttft_us"] - row["upstream_own_ttft_us"]
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
