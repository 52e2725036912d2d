"""The approximate vector index (IVF) through the HTTP API, on a real worker and LMDB store:
a tenant past RAGSTREAM_IVF_MIN_CHUNKS gets one built in the background (its log says so);
/api/search then reports `vector_search.index: "ivf"` with nlist and nprobe, `"exact": true`
forces the exact scan, probing every list returns what the exact scan returns, a narrow
`document_ids` filter is searched exactly, a deleted document never comes back, another
tenant is unaffected, bad `exact`/`nprobe` values are clear 4xx errors that change nothing,
and without RAGSTREAM_IVF_NPROBE the probe is learnt from questions checked against the
exact scan."""

from __future__ import annotations

import json
import random
import time

import pytest

import harness
from harness import Stack, assert_json_error

BATCH = "/api/documents/batch"
MIN_CHUNKS = 120
NLIST = 8
TOPICS = ["harbour crane cargo vessel dock", "violin sonata orchestra concert",
          "glacier moraine erosion valley ice", "compiler parser token grammar",
          "bread dough yeast oven crust", "comet orbit telescope nebula"]


def _documents(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)].split()
        paragraphs = []
        for _ in range(4):
            words = [rng.choice(topic) if rng.random() < 0.5 else f"w{rng.randrange(5000)}"
                     for _ in range(110)]
            paragraphs.append(" ".join(words) + ".")
        docs.append({"title": f"doc {seed}-{i}", "text": "\n\n".join(paragraphs)})
    return docs


def _ingest(stack, docs, headers=None):
    body = "".join(json.dumps(d) + "\n" for d in docs).encode()
    h = {"Content-Type": "application/x-ndjson", **(headers or {})}
    r = stack.request("POST", BATCH, body=body, headers=h, timeout=120)
    assert r.status == 200, r
    return [d["id"] for d in r.json["documents"]]


def _search(stack, body, headers=None):
    r = stack.request("POST", "/api/search", body=json.dumps(body).encode(),
                      headers={"Content-Type": "application/json", **(headers or {})})
    assert r.status == 200, r
    return r.json


@pytest.fixture(scope="module")
def ivf_stack(session_dir):
    keys_file = session_dir / "ivf-keys"
    keys = harness.make_api_keys(keys_file, "acme", "other")
    s = Stack(session_dir / "stack-ivf", "", workers=2,
              env={**harness.OFFLINE_ENV, "RAGSTREAM_IVF_MIN_CHUNKS": str(MIN_CHUNKS),
                   "RAGSTREAM_IVF_NLIST": str(NLIST), "RAGSTREAM_IVF_NPROBE": "2",
                   "RAGSTREAM_API_KEYS_FILE": str(keys_file)})
    s.keys = keys
    try:
        yield s
    finally:
        s.stop()


def _auth(stack, tenant):
    return {"Authorization": "Bearer " + stack.keys[tenant]}


def _wait_for_index(stack, headers, deadline_s=30.0):
    end = time.time() + deadline_s
    while time.time() < end:
        r = _search(stack, {"query": "harbour crane", "mode": "vector"}, headers)
        if r["vector_search"]["index"] == "ivf":
            return r
        time.sleep(0.2)
    pytest.fail("no approximate index was built:\n" + stack.logs_text()[-3000:])


def test_small_tenants_search_exactly_and_report_took_us(ivf_stack):
    h = _auth(ivf_stack, "acme")
    _ingest(ivf_stack, _documents(6, seed=1), h)  # ~24 chunks: below the minimum
    r = _search(ivf_stack, {"query": "violin concert", "mode": "vector"}, h)
    assert r["vector_search"] == {"index": "exact"}
    # Hybrid with the hash embedder is BM25 alone: no vector search to report.
    assert "vector_search" not in _search(ivf_stack, {"query": "violin concert"}, h)
    assert isinstance(r["took_us"], int) and r["took_us"] > 0
    assert r["took_ms"] == r["took_us"] // 1000
    lexical = _search(ivf_stack, {"query": "violin concert", "mode": "lexical"}, h)
    assert "vector_search" not in lexical


def test_a_tenant_past_the_minimum_gets_an_index_built_in_the_background(ivf_stack):
    h = _auth(ivf_stack, "acme")
    ids = _ingest(ivf_stack, _documents(40, seed=2), h)  # ~160 more chunks
    assert len(ids) == 40
    r = _wait_for_index(ivf_stack, h)
    vs = r["vector_search"]
    assert vs["nlist"] == NLIST and vs["nprobe"] == 2 and 0 < vs["rows_scanned"] < 200
    assert vs["probe"] == "nprobe"  # RAGSTREAM_IVF_NPROBE
    records = [rec for rec in ivf_stack.log_records()
               if rec.get("component") == "ivf" and rec.get("msg") == "approximate vector index built"]
    assert len(records) == 1, records  # two workers, one build (the claim)
    assert records[0]["tenant"] == "acme" and records[0]["nlist"] == str(NLIST)


def test_exact_and_all_lists_agree_and_nprobe_is_reported(ivf_stack):
    h = _auth(ivf_stack, "acme")
    _wait_for_index(ivf_stack, h)
    for q in ["glacier erosion", "bread oven yeast", "comet telescope orbit", "parser grammar"]:
        exact = _search(ivf_stack, {"query": q, "mode": "vector", "exact": True, "top_k": 10}, h)
        assert exact["vector_search"] == {"index": "exact"}
        every = _search(ivf_stack, {"query": q, "mode": "vector", "nprobe": NLIST, "top_k": 10}, h)
        assert every["vector_search"]["index"] == "ivf"
        assert every["vector_search"]["nprobe"] == NLIST
        assert [x["chunk_id"] for x in every["results"]] == [x["chunk_id"] for x in exact["results"]]
        assert [x["score"] for x in every["results"]] == [x["score"] for x in exact["results"]]
        # nprobe above nlist is clamped to it.
        over = _search(ivf_stack, {"query": q, "mode": "vector", "nprobe": 999}, h)
        assert over["vector_search"]["nprobe"] == NLIST


def test_a_narrow_document_filter_is_searched_exactly(ivf_stack):
    h = _auth(ivf_stack, "acme")
    _wait_for_index(ivf_stack, h)
    found = _search(ivf_stack, {"query": "harbour cargo", "mode": "vector", "top_k": 10}, h)
    some = list(dict.fromkeys(x["document_id"] for x in found["results"]))[:3]
    assert len(some) == 3
    r = _search(ivf_stack, {"query": "harbour cargo", "mode": "vector", "document_ids": some}, h)
    assert r["vector_search"] == {"index": "exact"}
    assert r["results"] and all(x["document_id"] in some for x in r["results"])


def test_a_deleted_document_never_comes_back(ivf_stack):
    h = _auth(ivf_stack, "acme")
    _wait_for_index(ivf_stack, h)
    q = {"query": "violin sonata orchestra", "mode": "vector", "nprobe": NLIST, "top_k": 20}
    before = _search(ivf_stack, q, h)
    victim = before["results"][0]["document_id"]
    assert ivf_stack.request("DELETE", f"/api/documents/{victim}", headers=h).status == 200
    after = _search(ivf_stack, q, h)
    assert after["vector_search"]["index"] == "ivf"
    assert after["results"]
    assert victim not in {x["document_id"] for x in after["results"]}


def test_documents_added_after_the_build_are_searched_through_it(ivf_stack):
    h = _auth(ivf_stack, "acme")
    _wait_for_index(ivf_stack, h)
    [new_id] = _ingest(ivf_stack, [{"title": "late", "text": "zeppelin airship hangar " * 40}], h)
    r = _search(ivf_stack, {"query": "zeppelin airship hangar", "mode": "vector", "nprobe": NLIST}, h)
    assert r["vector_search"]["index"] == "ivf"
    assert r["results"][0]["document_id"] == new_id


def test_another_tenant_is_unaffected(ivf_stack):
    other = _auth(ivf_stack, "other")
    _ingest(ivf_stack, _documents(3, seed=9), other)
    r = _search(ivf_stack, {"query": "harbour crane", "mode": "vector"}, other)
    assert r["vector_search"] == {"index": "exact"}
    titles = {x["title"] for x in r["results"]}
    assert titles and all(t.startswith("doc 9-") for t in titles)


@pytest.mark.parametrize("body,status,code", [
    ({"nprobe": 0}, 422, "invalid_nprobe"),
    ({"nprobe": 65537}, 422, "invalid_nprobe"),
    ({"nprobe": "8"}, 400, "invalid_field"),
    ({"nprobe": 2.5}, 400, "invalid_field"),
    ({"exact": "yes"}, 400, "invalid_field"),
    ({"exact": 1}, 400, "invalid_field"),
])
def test_bad_exact_or_nprobe_is_a_clear_error(ivf_stack, body, status, code):
    h = _auth(ivf_stack, "acme")
    r = ivf_stack.request("POST", "/api/search",
                          body=json.dumps({"query": "harbour", **body}).encode(),
                          headers={"Content-Type": "application/json", **h})
    assert_json_error(r, status, code)


def test_the_probe_is_learnt_from_questions_checked_against_the_exact_scan(session_dir):
    # Every question checked, no pause between checks: the index learns within a few dozen.
    s = Stack(session_dir / "stack-ivf-learn", "", workers=1,
              env={**harness.OFFLINE_ENV, "RAGSTREAM_IVF_MIN_CHUNKS": str(MIN_CHUNKS),
                   "RAGSTREAM_IVF_NLIST": str(NLIST), "RAGSTREAM_IVF_CHECK_EVERY": "1",
                   "RAGSTREAM_IVF_CHECK_INTERVAL_MS": "0", "RAGSTREAM_IVF_RECALL": "0.9"})
    try:
        _ingest(s, _documents(50, seed=7))
        first = _wait_for_index(s, {})["vector_search"]
        # Before any question was checked: 0.4 of the lists, or the build's estimate if higher.
        assert first["probe"] in ("share", "estimated"), first
        assert first["nprobe"] >= 4  # ceil(0.4 x 8)
        rng = random.Random(3)
        learnt = None
        end = time.time() + 30
        while time.time() < end and learnt is None:
            topic = rng.choice(TOPICS).split()
            q = " ".join(rng.sample(topic, 2)) + f" w{rng.randrange(5000)}"
            vs = _search(s, {"query": q, "mode": "vector"})["vector_search"]
            if vs["probe"] == "learnt":
                learnt = vs
            time.sleep(0.02)
        assert learnt, "the probe was never learnt:\n" + s.logs_text()[-3000:]
        assert 1 <= learnt["nprobe"] <= NLIST
        # The log says so, with the share and the recall it found.
        said = []
        for _ in range(50):
            said = [r for r in s.log_records()
                    if r.get("msg") == "the approximate vector index learnt its probe"]
            if said:
                break
            time.sleep(0.1)
        assert said, s.logs_text()[-3000:]
        assert said[0]["nlist"] == str(NLIST) and 0 < float(said[0]["share"]) <= 1
        assert float(said[0]["recall"]) >= 0.9
        # A question asking for its own nprobe still gets it.
        own = _search(s, {"query": "comet orbit", "mode": "vector", "nprobe": 1})["vector_search"]
        assert own["probe"] == "nprobe" and own["nprobe"] == 1
        assert not [r for r in s.log_records() if r.get("level") in ("warn", "error")
                    and r.get("component") == "ivf"]
    finally:
        s.stop()
