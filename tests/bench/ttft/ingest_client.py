#!/usr/bin/env python3
"""Part 5 of scripts/bench.sh, the HTTP path: POSTs documents (JSON lines {"title", "text"})
to ragstream's /api/documents through nginx from --concurrency connections, each one document
at a time (a document is durable when its POST returns), and prints one JSON object with the
MB/s of text stored.

  ingest_client.py --url http://127.0.0.1:PORT --docs FILE.jsonl [--concurrency 1]
"""
import argparse
import http.client
import json
import queue
import threading
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--docs", required=True)
    ap.add_argument("--concurrency", type=int, default=1)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    bodies = queue.Queue()
    total = 0
    with open(a.docs) as f:
        for line in f:
            doc = json.loads(line)
            total += len(doc["text"].encode())
            bodies.put(json.dumps(doc).encode())
    count = bodies.qsize()
    errors = []

    def worker():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        while True:
            try:
                body = bodies.get_nowait()
            except queue.Empty:
                break
            conn.request("POST", "/api/documents", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.status != 201:
                errors.append(f"HTTP {r.status}: {data[:200]!r}")
                break
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise SystemExit(errors[0])
    print(json.dumps({"concurrency": a.concurrency, "documents": count, "text_mb": total / 1e6,
                      "seconds": round(seconds, 3), "mb_per_s": round(total / 1e6 / seconds, 3),
                      "docs_per_s": round(count / seconds, 1)}))


if __name__ == "__main__":
    main()
