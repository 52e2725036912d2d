"""POST /api/documents/batch through nginx: NDJSON and JSON-array batches (ids returned, the
documents listed, fetched and searchable), per-document errors beside stored documents, a
malformed line or element that stores nothing, 415, empty and over-count batches, duplicates
within and across batches, tenant isolation, the request log and metrics; then the clients
that use the route: `ragstream ingest` (batches of 64, per-file lines, the summary, a
fallback to one POST per file on an older server) and scripts/ingest.sh."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import harness
from harness import ROOT, Stack, assert_json_error, document_list, uniq

BATCH = "/api/documents/batch"
NDJSON = "application/x-ndjson"
CLI = Path(os.environ.get("RAGSTREAM_CLI_BIN", ROOT / "build" / "ragstream"))
INGEST_SH = ROOT / "scripts" / "ingest.sh"
# The stack's limits: documents up to 32 KiB (the ingester's own check); bodies of single
# requests up to 64 KiB (harness.BASE_ENV), which also bounds a document inside a batch.
MAX_DOC = 32768
DOC_FIELDS = {"index", "id", "title", "content_hash", "bytes", "chars", "chunks", "created_at",
              "duplicate"}


@pytest.fixture(scope="module")
def bstack(session_dir):
    s = Stack(session_dir / "stack-batch", "", workers=2,
              env={**harness.OFFLINE_ENV, "RAGSTREAM_MAX_DOCUMENT_BYTES": str(MAX_DOC)})
    try:
        yield s
    finally:
        s.stop()


def ndjson(docs) -> bytes:
    return "".join(json.dumps(d) + "\n" for d in docs).encode()


def post_batch(stack, body, ctype=NDJSON, headers=None):
    if isinstance(body, list):
        body = ndjson(body) if ctype == NDJSON else json.dumps(body).encode()
    h = {"Content-Type": ctype, **(headers or {})}
    return stack.request("POST", BATCH, body=body, headers=h, timeout=180)


def doc_ids(stack) -> set[str]:
    return {d["id"] for d in document_list(stack)}


def request_records(stack, route: str, method: str = "POST") -> list[dict]:
    return [r for r in stack.log_records()
            if r.get("msg") == "request" and r.get("route") == route and r.get("method") == method]


def search_ids(stack, query: str) -> list[str]:
    r = stack.post_json("/api/search", {"query": query, "mode": "lexical"})
    assert r.status == 200, r
    return [x["document_id"] for x in r.json["results"]]


# --------------------------------------------------------------------------- the route


def test_ndjson_batch_stores_every_document_in_order(bstack):
    m = uniq()
    docs = [{"title": f"Alpha {m}", "text": f"The alpha note {m} talks about zebras{m}."},
            {"text": f"# Beta heading {m}\n\nThe beta note {m} talks about walruses{m}."},
            {"title": None, "text": f"Gamma {m}: the third note mentions penguins{m}."}]
    before = doc_ids(bstack)
    r = post_batch(bstack, docs)
    assert r.status == 200, r
    body = r.json
    assert (body["created"], body["duplicates"], body["failed"]) == (3, 0, 0), body
    items = body["documents"]
    assert [it["index"] for it in items] == [0, 1, 2]
    for it in items:
        assert set(it) == DOC_FIELDS, it
        assert re.fullmatch(r"doc_[0-9a-f]{24}", it["id"]) and it["duplicate"] is False, it
    assert items[0]["title"] == f"Alpha {m}"
    assert items[1]["title"] == f"Beta heading {m}"  # no title: the first line
    assert items[2]["title"].startswith(f"Gamma {m}")
    ids = [it["id"] for it in items]
    assert len(set(ids)) == 3
    assert doc_ids(bstack) == before | set(ids)
    for it, d in zip(items, docs):
        got = bstack.get(f"/api/documents/{it['id']}")
        assert got.status == 200 and got.json["text"] == d["text"], got
        assert it["bytes"] == len(d["text"].encode())
    assert search_ids(bstack, f"walruses{m}")[:1] == [ids[1]]
    assert search_ids(bstack, f"penguins{m}")[:1] == [ids[2]]


def test_json_array_batch(bstack):
    m = uniq()
    docs = [{"title": f"Array one {m}", "text": f"First array document {m} about otters{m}."},
            {"title": f"Array two {m}", "text": f"Second array document {m} about lynxes{m}."}]
    r = post_batch(bstack, docs, ctype="application/json; charset=utf-8")
    assert r.status == 200, r
    assert (r.json["created"], r.json["failed"]) == (2, 0), r.json
    ids = [it["id"] for it in r.json["documents"]]
    titles = {d["id"]: d["title"] for d in document_list(bstack)}
    assert [titles.get(i) for i in ids] == [f"Array one {m}", f"Array two {m}"]
    assert search_ids(bstack, f"lynxes{m}")[:1] == [ids[1]]


def test_per_document_errors_do_not_fail_the_batch(bstack):
    m = uniq()
    good1 = {"title": f"Good one {m}", "text": f"A good document {m} about herons{m}."}
    too_large = {"title": f"Too large {m}", "text": ("x" * 99 + " ") * (MAX_DOC // 100 + 10)}
    over_body = {"title": f"Over body {m}", "text": "y " * 40000}  # 80 KB: over the 64 KiB body
    empty = {"title": f"Empty {m}", "text": "  \n\n "}
    binary = {"title": f"Binary {m}", "text": "\u0000\u0001\u0002" * 50}
    good2 = {"text": f"Another good document {m} about ibises{m}."}
    before = doc_ids(bstack)
    r = post_batch(bstack, [good1, too_large, empty, good2, binary, over_body])
    assert r.status == 200, r
    body = r.json
    assert (body["created"], body["duplicates"], body["failed"]) == (2, 0, 4), body
    items = body["documents"]
    assert [it["index"] for it in items] == list(range(6))
    assert "id" in items[0] and "id" in items[3]
    expected = {1: (413, "document_too_large"), 2: (400, "empty_document"),
                4: (415, "binary_content"), 5: (413, "document_too_large")}
    for idx, (status, code) in expected.items():
        it = items[idx]
        assert set(it) == {"index", "error", "status"}, it
        assert (it["status"], it["error"]["code"]) == (status, code), it
        assert it["error"]["message"], it
    assert str(MAX_DOC) in items[1]["error"]["message"]
    assert "RAGSTREAM_MAX_BODY_BYTES" in items[5]["error"]["message"]
    assert doc_ids(bstack) == before | {items[0]["id"], items[3]["id"]}
    titles = {d["title"] for d in document_list(bstack)}
    assert not any(t.endswith(m) and t.split()[0] in ("Too", "Empty", "Binary", "Over")
                   for t in titles), titles


@pytest.mark.parametrize("body,ctype,code,names", [
    (b'{"text":"fine one"}\n\n{"text": "fine two"\n{"text":"three"}\n', NDJSON, "invalid_json",
     "line 3"),
    (b'{"text":"fine one"}\n[1, 2]\n', NDJSON, "invalid_json", "line 2"),
    (b'{"text":"fine one"}\n{"text":"fine two"}\n{"title":"no text"}\n', NDJSON, "missing_field",
     "line 3"),
    (b'{"text": 42}\n', NDJSON, "invalid_field", "line 1"),
    (b'{"text":"fine"}\n{"text":"ok","title":{"a":1}}\n', NDJSON, "invalid_field", "line 2"),
    (b'[{"text":"fine one"}, "just a string"]', "application/json", "invalid_json", "index 1"),
    (b'[{"text":"fine one"}, {"title":"t"}]', "application/json", "missing_field", "index 1"),
    (b'{"text":"an object, not an array"}', "application/json", "invalid_json", None),
])
def test_a_malformed_batch_stores_nothing(bstack, body, ctype, code, names):
    before = doc_ids(bstack)
    marker = uniq()
    body = body.replace(b"fine", f"fine {marker}".encode())
    r = post_batch(bstack, body, ctype=ctype)
    err = assert_json_error(r, 400, code)
    if names:
        assert err["message"].startswith(names + ":"), err
    assert doc_ids(bstack) == before
    assert search_ids(bstack, marker) == []


def test_wrong_media_type_is_415(bstack):
    before = doc_ids(bstack)
    for ctype in ("text/plain", "text/markdown", "application/x-www-form-urlencoded"):
        r = post_batch(bstack, b'{"text":"a document"}\n', ctype=ctype)
        err = assert_json_error(r, 415, "unsupported_media_type")
        assert "application/x-ndjson" in err["message"] and "application/json" in err["message"]
    r = bstack.request("POST", BATCH, body=b'{"text":"no type"}\n')
    assert_json_error(r, 415, "unsupported_media_type")
    assert doc_ids(bstack) == before


def test_empty_batches_are_400(bstack):
    for body, ctype in ((b"", NDJSON), (b"\n\n  \n", NDJSON), (b"[]", "application/json")):
        r = post_batch(bstack, body, ctype=ctype)
        err = assert_json_error(r, 400, "empty_batch")
        assert "no documents" in err["message"]


def test_more_than_1000_documents_is_413_and_stores_nothing(bstack):
    before = doc_ids(bstack)
    m = uniq()
    docs = [{"text": f"tiny {m} {i}"} for i in range(1001)]
    r = post_batch(bstack, docs)
    err = assert_json_error(r, 413, "too_many_documents")
    assert "1000" in err["message"], err
    r = post_batch(bstack, docs, ctype="application/json")
    assert_json_error(r, 413, "too_many_documents")
    assert doc_ids(bstack) == before
    # 1000 is allowed.
    r = post_batch(bstack, docs[:1000])
    assert r.status == 200 and r.json["created"] == 1000, r
    assert len(doc_ids(bstack) - before) == 1000


def test_duplicates_within_and_across_batches(bstack):
    m = uniq()
    a = {"title": f"Dup A {m}", "text": f"Duplicate content {m} about kestrels."}
    b = {"title": f"Dup B {m}", "text": f"Other content {m} about falcons."}
    r = post_batch(bstack, [a, b, dict(a, title=f"Dup A again {m}")])
    assert r.status == 200, r
    items = r.json["documents"]
    assert [it["duplicate"] for it in items] == [False, False, True], items
    assert items[2]["id"] == items[0]["id"]
    assert (r.json["created"], r.json["duplicates"], r.json["failed"]) == (2, 1, 0)
    before = doc_ids(bstack)
    r = post_batch(bstack, [b, {"text": f"New content {m} about owls."}],
                   ctype="application/json")
    assert r.status == 200, r
    items2 = r.json["documents"]
    assert items2[0]["duplicate"] is True and items2[0]["id"] == items[1]["id"]
    assert items2[1]["duplicate"] is False
    assert (r.json["created"], r.json["duplicates"]) == (1, 1)
    assert doc_ids(bstack) == before | {items2[1]["id"]}
    # The single route agrees: the content is already there.
    single = bstack.post_json("/api/documents", a)
    assert single.status == 200 and single.json["duplicate"] is True
    assert single.json["id"] == items[0]["id"]


def test_request_log_and_metrics_name_the_batch_route(bstack):
    def count(text):
        total = 0.0
        for line in text.splitlines():
            if line.startswith('ragstream_requests_total{route="/api/documents/batch",status="200"}'):
                total += float(line.rsplit(" ", 1)[1])
        return total
    before_metric = count(bstack.get("/metrics").body.decode())
    r = post_batch(bstack, [{"text": f"Logged batch {uniq()}."}])
    assert r.status == 200, r
    assert count(bstack.get("/metrics").body.decode()) == before_metric + 1
    assert log_record(bstack, r)["outcome"] == "batch"
    r = post_batch(bstack, b"not json\n")
    assert r.status == 400
    assert log_record(bstack, r)["outcome"] == "rejected"


def log_record(stack, r) -> dict:
    """The worker's log line of the request that got response `r` (by X-Request-Id)."""
    rid = r.header("X-Request-Id")
    assert rid, r.headers
    recs = harness.wait_until(
        lambda: [x for x in request_records(stack, BATCH) if x.get("request_id") == rid], 5,
        what=f"the log line of request {rid}")
    assert len(recs) == 1 and recs[0]["status"] == r.status, recs
    return recs[0]


def test_other_methods_on_the_batch_path(bstack):
    """The path is a resource of its own, not a document id of /api/documents/{id}."""
    r = bstack.request("PUT", BATCH, body=b"[]", headers={"Content-Type": "application/json"})
    assert_json_error(r, 405, "method_not_allowed")
    assert r.header("Allow") == "POST"
    for method in ("GET", "DELETE"):
        r = bstack.request(method, BATCH)
        assert_json_error(r, 405, "method_not_allowed")
        assert r.header("Allow") == "POST"
    assert_json_error(bstack.get("/api/documents/doc_" + "0" * 24), 404, "not_found")


# --------------------------------------------------------------------------- tenants


def test_a_batch_belongs_to_its_tenant(stack_factory, tmp_path):
    keyfile = tmp_path / "keys"
    keys = harness.make_api_keys(keyfile, "alpha", "bravo")
    s = stack_factory(workers=1, offline=True, env={"RAGSTREAM_API_KEYS_FILE": str(keyfile)})

    def auth(t):
        return {"Authorization": f"Bearer {keys[t]}"}
    m = uniq()
    docs = [{"title": f"Alpha secret {m}", "text": f"Alpha's canary {m} is a crimson heron."},
            {"text": f"Alpha's second canary {m}."}]
    assert_json_error(post_batch(s, docs), 401, "unauthorized")
    r = post_batch(s, docs, headers=auth("alpha"))
    assert r.status == 200 and r.json["created"] == 2, r
    ids = [it["id"] for it in r.json["documents"]]
    listed = s.request("GET", "/api/documents", headers=auth("alpha"))
    assert {d["id"] for d in listed.json["documents"]} == set(ids)
    other = s.request("GET", "/api/documents", headers=auth("bravo"))
    assert other.status == 200 and other.json["documents"] == [], other
    for i in ids:
        assert s.request("GET", f"/api/documents/{i}", headers=auth("bravo")).status == 404
    found = s.request("POST", "/api/search", body={"query": f"canary {m}"}, headers=auth("bravo"))
    assert found.status == 200 and found.json["results"] == [], found
    # The same content under bravo is bravo's own document, not a duplicate of alpha's.
    r = post_batch(s, docs[:1], headers=auth("bravo"))
    assert r.status == 200 and r.json["documents"][0]["duplicate"] is False, r
    assert r.json["documents"][0]["id"] not in ids


# --------------------------------------------------------------------------- clients


def run_cli(stack_or_url, *args, timeout=120):
    url = stack_or_url if isinstance(stack_or_url, str) else f"http://127.0.0.1:{stack_or_url.port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGSTREAM_")}
    p = subprocess.run([str(CLI), "--url", url, "ingest", *map(str, args)], capture_output=True,
                       env=env, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_cli_ingest_sends_batches_of_64(bstack, tmp_path):
    assert CLI.exists(), f"{CLI} is missing: run scripts/build.sh"
    m = uniq()
    for i in range(70):
        (tmp_path / f"note{i:03d}.md").write_text(f"# Note {i} {m}\n\nPuffin fact {i} {m}.\n")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "large.txt").write_text("word " * 20000)  # over the 64 KiB body limit
    batch_before = len(request_records(bstack, BATCH))
    single_before = len(request_records(bstack, "/api/documents"))
    before = doc_ids(bstack)
    rc, out, err = run_cli(bstack, tmp_path)
    assert rc == 1, (out, err)  # two files failed
    assert out.startswith("stored 70, unchanged 0 (already stored), failed 2, "), out
    stored = re.findall(r"^stored +(\S+) \((doc_[0-9a-f]{24}), ", err, re.M)
    assert len(stored) == 70, err
    # Lines come in file order (large.txt, note000.md ... note069.md, empty.txt is first).
    names = [Path(p).name for p, _ in stored]
    assert names == sorted(names), names
    assert re.search(r"failed +\S*empty\.txt: empty_document: ", err), err
    assert re.search(r"failed +\S*large\.txt: document_too_large: .*limit", err), err
    # 72 files: one batch of 64 and one of the other 8; no single POSTs.
    batches = request_records(bstack, BATCH)[batch_before:]
    assert len(batches) == 2, batches
    assert len(request_records(bstack, "/api/documents")[single_before:]) == 0
    assert doc_ids(bstack) - before == {i for _, i in stored}
    titles = {d["id"]: d["title"] for d in document_list(bstack)}
    assert titles[stored[0][1]] == f"Note 0 {m}"

    rc, out, err = run_cli(bstack, *sorted(tmp_path.glob("note00*.md")))
    assert rc == 0, (out, err)
    assert out.startswith("stored 0, unchanged 10 (already stored), failed 0, 0 bytes"), out
    assert err.count("already stored") == 10


class _OldServer(BaseHTTPRequestHandler):
    """A server from before the batch route: POST /api/documents/batch is 405 (the path
    matches /api/documents/{id}, which takes GET and DELETE)."""
    posts: list[str] = []

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _OldServer.posts.append(self.path)
        if self.path.startswith("/api/documents/batch"):
            body, status = b'{"error":{"code":"method_not_allowed","message":"use GET, DELETE"}}', 405
        else:
            n = len(_OldServer.posts)
            body = json.dumps({"id": "doc_" + f"{n:024x}", "title": "t", "duplicate": False,
                               "content_hash": "0" * 64, "bytes": 1, "chars": 1, "chunks": 1,
                               "created_at": 1}).encode()
            status = 201
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_cli_falls_back_to_single_posts_on_an_older_server(tmp_path):
    for i in range(3):
        (tmp_path / f"old{i}.txt").write_text(f"Old server note {i}.\n")
    _OldServer.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OldServer)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        rc, out, err = run_cli(f"http://127.0.0.1:{server.server_address[1]}", tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 0, (out, err)
    assert out.startswith("stored 3, unchanged 0 (already stored), failed 0"), out
    # One batch attempt, then one POST per file (titles from the file names, as before).
    assert _OldServer.posts[0] == BATCH
    assert _OldServer.posts[1:] == [f"/api/documents?title=old{i}" for i in range(3)]


def test_ingest_sh_on_a_directory(bstack, tmp_path):
    m = uniq()
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    texts = {"a.md": f"# Script note A {m}\n\nAbout cormorants{m}.\n",
             "sub/b.txt": f"Script note B {m} about gannets{m}.\n",
             "sub/c.markdown": f"# Script note C {m}\n\nAbout shags{m}.\n"}
    for rel, text in texts.items():
        (root / rel).write_text(text)
    (root / "empty.md").write_text("\n\n")
    (root / "latin1.txt").write_bytes(b"caf\xe9 au lait " + m.encode())  # not UTF-8
    (root / "skip.json").write_text("{}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGSTREAM_")}
    env["RAGSTREAM_URL"] = f"http://127.0.0.1:{bstack.port}"
    batch_before = len(request_records(bstack, BATCH))
    before = doc_ids(bstack)
    p = subprocess.run([str(INGEST_SH), str(root)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 1, (p.stdout, p.stderr)  # empty.md and latin1.txt failed
    total_bytes = sum(len(t.encode()) for t in texts.values())
    assert p.stdout.strip().splitlines()[-1] == (
        f"ingested 3 new ({total_bytes} bytes), 0 already stored, 2 failed, of 5 files"), (p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert re.search(r"^\[1/5\] stored    \S+/a\.md \(1 chunks\)$", p.stdout, re.M), p.stdout
    assert sum(1 for ln in lines if " stored " in ln) == 3, p.stdout
    assert re.search(r"^\[2/5\] FAILED    \S+/empty\.md: HTTP 400 the document has no text$",
                     p.stderr, re.M), p.stderr
    assert re.search(r"^\[3/5\] FAILED    \S+/latin1\.txt: HTTP 400 .*UTF-8", p.stderr,
                     re.M), p.stderr
    # a.md and empty.md went in one batch, latin1.txt alone, then sub/b.txt and sub/c.markdown.
    assert len(request_records(bstack, BATCH)[batch_before:]) == 2
    new = doc_ids(bstack) - before
    assert len(new) == 3
    titles = {d["title"] for d in document_list(bstack) if d["id"] in new}
    assert titles == {f"Script note A {m}", f"Script note B {m} about gannets{m}.",
                      f"Script note C {m}"}, titles

    p = subprocess.run([str(INGEST_SH), str(root / "a.md"), str(root / "sub")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p
    assert p.stdout.splitlines()[-1] == "ingested 0 new (0 bytes), 3 already stored, 0 failed, of 3 files"
    assert p.stdout.count("unchanged") == 3
