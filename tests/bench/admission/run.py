#!/usr/bin/python3
"""Admission control under overload: a worker whose every request thread is busy must answer
a new request within a second (503 `overloaded`, Retry-After: 1), and every stream it accepted
must complete.

One nginx + N workers (harness.Stack) with RAGSTREAM_THREADS threads each and the fake
upstream streaming long answers; CLIENTS clients (4x the threads by default) each send
streaming questions back to back for SECONDS seconds, retrying a 503 after its Retry-After.
Reports: the largest and p99 time any client waited for its first response byte, 503s per
second, accepted streams and how many of them completed.

    /usr/bin/python3 tests/bench/admission/run.py [--workers 1] [--threads 8] [--clients 32]
        [--seconds 20] [--json OUT]
"""
import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))
import harness  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--clients", type=int, default=0, help="default: 4 x workers x threads")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--json")
    args = ap.parse_args()
    clients = args.clients or 4 * args.workers * args.threads
    with tempfile.TemporaryDirectory(prefix="ragstream-admission-") as d:
        fake = harness.FakeUpstream(Path(d))
        stack = harness.Stack(Path(d) / "stack", fake.base_url, workers=args.workers,
                              env={"RAGSTREAM_THREADS": str(args.threads)})
        lock = threading.Lock()
        waits, rejected, accepted, completed, other = [], 0, 0, 0, []
        deadline = time.monotonic() + args.seconds

        def client():
            nonlocal rejected, accepted, completed
            while time.monotonic() < deadline:
                first = {}

                def stop(result, item, first=first):
                    first.setdefault("t", time.monotonic())
                    return False
                t0 = time.monotonic()
                r = stack.stream({"message": f"load {harness.uniq()} [[fake: tokens=40, gap_ms=50]]"},
                                 stop=stop, timeout=120)
                got = first.get("t", time.monotonic())
                with lock:
                    waits.append(got - t0)
                    if r.status == 503:
                        rejected += 1
                    elif r.status == 200:
                        accepted += 1
                        completed += bool(r.done and r.done.get("status") == "complete")
                    else:
                        other.append(r.status)
                if r.status == 503:
                    time.sleep(float(r.header("Retry-After") or 1))
        started = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        stack.stop()
        fake.stop()
        harness.stop_all_started()
    waits.sort()
    out = {"workers": args.workers, "threads": args.threads, "clients": clients,
           "seconds": round(elapsed, 1), "requests": len(waits),
           "max_wait_s": round(waits[-1], 3) if waits else None,
           "p99_wait_s": round(waits[int(0.99 * (len(waits) - 1))], 3) if waits else None,
           "rejected_503": rejected, "rejected_per_s": round(rejected / elapsed, 1),
           "accepted_streams": accepted, "completed_streams": completed, "other_statuses": other}
    print(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out) + "\n")
    return 0 if completed == accepted and not other else 1


if __name__ == "__main__":
    sys.exit(main())
