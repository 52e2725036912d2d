"""Faults a hostile or broken peer can cause, each of which once stopped a worker: a client
that connects to a worker's socket and sends nothing, a stray SIGUSR1 (libfcgi treats it as
shutdown), and text that blew up the tokenizer."""
import json
import os
import signal
import socket
import time

import harness


def test_an_idle_peer_does_not_block_other_requests(stack_factory):
    stack = stack_factory(workers=1, offline=True)
    sock = stack.sock_dir / "worker-1.sock"
    idle = []
    for _ in range(3):  # a few connections that send one byte of a FastCGI header, then stall
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(sock))
        s.send(b"\x01")
        idle.append(s)
    try:
        t0 = time.monotonic()
        for _ in range(5):
            r = stack.get("/api/health", timeout=5)
            assert r.status == 200, r
        elapsed = time.monotonic() - t0
        assert elapsed < 3, f"health took {elapsed:.1f}s behind idle peers"
    finally:
        for s in idle:
            s.close()


def test_sigusr1_does_not_stop_the_worker(stack_factory):
    stack = stack_factory(workers=1, offline=True)
    stack.workers[0].send_signal(signal.SIGUSR1)
    time.sleep(0.5)
    for _ in range(5):
        assert stack.get("/api/health", timeout=5).status == 200
    assert stack.workers[0].poll() is None
    # It still drains and exits 0 on SIGTERM.
    assert harness.stop_process(stack.workers[0], signal.SIGTERM, timeout=20) == 0


def test_a_character_with_thousands_of_marks(stack_factory):
    stack = stack_factory(workers=1, offline=True)
    hostile = "中" + "\u0301" * 900 + "文"  # under the test stacks' 1000-character limit
    r = stack.post_json("/api/documents", {"title": "marks", "text": hostile + " ordinary words"})
    assert r.status == 201, r
    for path, body in (("/api/search", {"query": hostile}),
                       ("/api/chat/message", {"message": hostile})):
        r = stack.post_json(path, body)
        assert r.status == 200, (path, r)
    assert stack.get("/api/health").status == 200
    assert stack.workers[0].poll() is None, "the worker died"
