"""Answers while a large ingest runs (docs/operations.md, "Ingesting while answering"), through
nginx and two workers sharing one store: every worker has its slot in the store's write gate
(the shared file through which a question's write goes before ingestion's commits), and
streamed answers complete, stored, while batches are committed, with every document of the
batches stored once."""

from __future__ import annotations

import json
import struct
import threading

import pytest

import harness
from harness import Stack, document_list, uniq

SLOTS = 128  # WriteGate::kSlots: an int32 pid per slot at the start of the file


@pytest.fixture(scope="module")
def gstack(session_dir):
    s = Stack(session_dir / "stack-gate", "", workers=2, env=dict(harness.OFFLINE_ENV))
    try:
        yield s
    finally:
        s.stop()


def gate_pids(stack) -> set[int]:
    raw = (stack.data_dir / "write_gate").read_bytes()
    return {p for p in struct.unpack_from(f"<{SLOTS}i", raw) if p}


def test_every_worker_has_a_slot_in_the_write_gate(gstack):
    pids = gate_pids(gstack)
    for w in gstack.workers:
        assert w.pid in pids, (w.pid, pids)
    assert not [r for r in gstack.log_records() if r.get("msg", "").startswith("no write gate")]


def test_answers_complete_while_batches_are_committed(gstack):
    tag = uniq("gate")
    before = {d["id"] for d in document_list(gstack)}
    batches = [[{"title": f"{tag} {b}-{i}",
                 "text": f"Report {tag} {b}-{i}. " + " ".join(f"word{(b * 64 + i) * 7 + k}" for k in range(600))}
                for i in range(32)] for b in range(8)]
    stored: list[str] = []
    failures: list[str] = []

    def ingest():
        for docs in batches:
            body = "".join(json.dumps(d) + "\n" for d in docs).encode()
            r = gstack.request("POST", "/api/documents/batch", body=body,
                               headers={"Content-Type": "application/x-ndjson"}, timeout=300)
            if r.status != 200:
                failures.append(repr(r))
                continue
            for item in r.json["documents"]:
                if "id" in item:
                    stored.append(item["id"])
                else:
                    failures.append(repr(item))

    t = threading.Thread(target=ingest)
    t.start()
    answers = []
    while t.is_alive() or len(answers) < 3:
        r = gstack.stream({"message": f"What does report {tag} say about word7?"}, timeout=60)
        answers.append(r)
        if len(answers) >= 40:
            break
    t.join()
    assert not failures, failures[:3]
    assert len(stored) == sum(len(b) for b in batches) == len(set(stored))
    after = {d["id"] for d in document_list(gstack)}
    assert set(stored) <= after and len(after - before) == len(stored)
    for r in answers:
        assert r.done is not None, r
        conv = gstack.conversation(r.first["conversation_id"])
        assert conv["messages"][-1]["status"] == "complete", conv["messages"][-1]
