"""`ragstream migrate` through the real binaries: a store of the previous layout
("tenant-keys-v1") is written key by key from Python (python3-lmdb), the way the previous
DocumentStore wrote it (tests/unit/store_migration_test.cc WriteOldDocument): two tenants,
English and Hebrew documents, single- and multi-chunk, vectors in several shards, plus
conversations copied from a real worker's store (their layout did not change).

Then: a worker refuses that store (exit non-zero, log names old_store_layout and `ragstream
migrate`) without changing it; `ragstream migrate` converts it (exit 0, the document count);
mdb_stat -a passes and shows the new databases only; the stack starts on it and lists the
same ids, titles, creation times and sizes, returns the same texts, finds every chunk by its
own word with the same text (char offsets survive multi-byte text), keeps tenants apart,
keeps conversations, accepts new documents and deletes migrated ones; a second run has
nothing to do; a current store is left alone; a migration SIGKILLed midway resumes and
leaves every document exactly once."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness import Stack, uniq

lmdb = pytest.importorskip("lmdb", reason="python3-lmdb (scripts/install_deps.sh --test)")

SHARDS = 4  # lib/core/config.h vector_shards; the harness does not set RAGSTREAM_VECTOR_SHARDS
DIM = 384  # hash-v1
VEC_MAGIC = 0x31565352  # "RSV1"
BLOCK_MAGIC = 0x31425352  # "RSB1"
OLD_DBS = ["chunks", "lex_postings", "lex_df"] + [f"vec.{s}" for s in range(SHARDS)] \
    + [f"vec8.{s}" for s in range(SHARDS)]
# Databases of documents and the index (both layouts): not copied from the donor store.
INDEX_DBS = re.compile(r"^(documents|doc_text|doc_by_hash|doc_by_num|chunk_spans|index_meta|"
                       r"lex_.*|vectors\..*|vec8?\..*|chunks)$")
T0 = 1_700_000_000_000  # created_at of the first old document (epoch ms)


# --------------------------------------------------------------------------- helpers


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RAGSTREAM_", "OPENAI_"))}


def migrate(cli, data_dir: Path, timeout=120):
    p = subprocess.run([str(cli), "migrate", "--data-dir", str(data_dir)], capture_output=True,
                       text=True, env=clean_env(), timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def mdb_stat(data_dir: Path) -> tuple[int, str, set[str]]:
    p = subprocess.run(["mdb_stat", "-a", str(data_dir)], capture_output=True, text=True,
                       timeout=60)
    names = set(re.findall(r"^Status of (\S+)$", p.stdout, re.M))
    return p.returncode, p.stdout + p.stderr, names


class Client:
    def __init__(self, stack, key):
        self.stack, self.key = stack, key

    def req(self, method, path, body=None):
        return self.stack.request(method, path, body=body,
                                  headers={"Authorization": f"Bearer {self.key}"})

    def docs(self) -> dict:
        r = self.req("GET", "/api/documents")
        assert r.status == 200, r
        return {d["id"]: d for d in r.json["documents"]}

    def search(self, query, mode="lexical", **fields):
        r = self.req("POST", "/api/search", {"query": query, "mode": mode, "top_k": 5, **fields})
        assert r.status == 200, r
        return r.json["results"]


def doc_id() -> str:
    return "doc_" + os.urandom(12).hex()


def old_doc(tenant, title, chunks, created_at, shard) -> dict:
    return {"tenant": tenant, "id": doc_id(), "title": title, "chunks": chunks,
            "text": "".join(chunks), "created_at": created_at, "shard": shard}


def u32(v: int) -> bytes:
    return struct.pack("=I", v)


def u64(v: int) -> bytes:
    return struct.pack("=Q", v)


def terms_of(text: str) -> list[str]:
    # The old terms are re-derived by the migration; these only have to look plausible.
    return sorted({w.lower() for w in re.findall(r"\w+", text)})


def unit_vector(axis: int) -> bytes:
    v = [0.0] * DIM
    v[axis % DIM] = 1.0
    return struct.pack(f"<{DIM}f", *v)


def open_env(path: Path, readonly=False):
    return lmdb.open(str(path), max_dbs=128, map_size=256 << 20, subdir=True, readonly=readonly,
                     lock=not readonly)


def write_old_store(path: Path, docs: list[dict], donor: Path | None = None) -> None:
    """The previous DocumentStore's Add, key by key (WriteOldDocument), for every document;
    then the conversations of `donor` (a current store), database by database."""
    path.mkdir(parents=True, exist_ok=True)
    env = open_env(path)
    try:
        db = {n: env.open_db(n.encode()) for n in
              ["index_meta", "documents", "doc_text", "doc_by_hash"] + OLD_DBS}
        with env.begin(write=True) as txn:
            for k, v in {"layout": "tenant-keys-v1", "embedder": "hash-v1",
                         "dimension": str(DIM), "shards": str(SHARDS), "vector_format": "float",
                         "analyzer": "snowball+hunspell-v1"}.items():
                txn.put(k.encode(), v.encode(), db=db["index_meta"])
            counters: dict[str, int] = {}
            df: dict[bytes, int] = {}
            for d in docs:
                t, text = d["tenant"], d["text"]
                raw = text.encode()
                key = f"{t}/{d['id']}".encode()
                chash = hashlib.sha256(raw).hexdigest()
                record = {"id": d["id"], "title": d["title"], "content_hash": chash,
                          "bytes": len(raw), "chars": len(text), "chunk_count": len(d["chunks"]),
                          "created_at": d["created_at"]}
                txn.put(key, json.dumps(record, ensure_ascii=False).encode(), db=db["documents"])
                txn.put(key, raw, db=db["doc_text"])
                txn.put(f"{t}/{chash}".encode(), d["id"].encode(), db=db["doc_by_hash"])
                counters[f"doc_count/{t}"] = counters.get(f"doc_count/{t}", 0) + 1
                counters[f"lex_chunks/{t}"] = counters.get(f"lex_chunks/{t}", 0) + len(d["chunks"])
                vectors = struct.pack("<4I", VEC_MAGIC, len(d["chunks"]), DIM, 0)
                start = 0
                for i, chunk in enumerate(d["chunks"]):
                    terms = terms_of(chunk)
                    rec = {"index": i, "start_char": start, "end_char": start + len(chunk),
                           "text": chunk, "terms": terms, "length": len(terms)}
                    start += len(chunk)
                    txn.put(key + struct.pack(">I", i), json.dumps(rec, ensure_ascii=False).encode(),
                            db=db["chunks"])
                    for term in terms:
                        tk = f"{t}/{term}".encode()
                        txn.put(tk + b"\0" + d["id"].encode() + struct.pack(">I", i),
                                u32(1) + u32(len(terms)), db=db["lex_postings"])
                        df[tk] = df.get(tk, 0) + 1
                    row = unit_vector(hash((d["id"], i)))
                    d.setdefault("rows", []).append(row)
                    vectors += row
                txn.put(key, vectors, db=db[f"vec.{d['shard'] % SHARDS}"])
            for tk, n in df.items():
                txn.put(tk, u32(n), db=db["lex_df"])
            for k, n in counters.items():
                txn.put(k.encode(), u64(n), db=db["index_meta"])
        if donor is not None:
            copy_conversations(donor, env)
    finally:
        env.close()


def named_dbs(env) -> list[bytes]:
    with env.begin() as txn:
        return [k for k, _ in txn.cursor()]


def copy_conversations(donor: Path, env) -> None:
    src = open_env(donor, readonly=True)
    try:
        for name in named_dbs(src):
            if INDEX_DBS.match(name.decode()):
                continue
            sdb = src.open_db(name, create=False)
            ddb = env.open_db(name)
            with src.begin(db=sdb) as st, env.begin(write=True, db=ddb) as dt:
                for k, v in st.cursor():
                    dt.put(k, v)
    finally:
        src.close()


def meta(path: Path) -> dict:
    env = open_env(path, readonly=True)
    try:
        mdb = env.open_db(b"index_meta", create=False)
        with env.begin(db=mdb) as txn:
            return {k.decode(): v for k, v in txn.cursor()}
    finally:
        env.close()


def vector_rows(path: Path) -> list[bytes]:
    """Every vector row of the current layout, sorted: the pieces of vectors.N (16-byte
    header, then the rows) and the blocks of vblocks.N (48-byte header, rows, their ids)."""
    env = open_env(path, readonly=True)
    rows = []
    try:
        for name in named_dbs(env):
            block = re.fullmatch(rb"vblocks\.\d+", name)
            if not block and not re.fullmatch(rb"vectors\.\d+", name):
                continue
            header = 48 if block else 16
            with env.begin(db=env.open_db(name, create=False)) as txn:
                for _, v in txn.cursor():
                    magic, n, dim, _ = struct.unpack_from("<4I", v)
                    assert magic == (BLOCK_MAGIC if block else VEC_MAGIC) and dim == DIM, (magic, dim)
                    rows += [bytes(v[header + i * dim * 4:header + (i + 1) * dim * 4])
                             for i in range(n)]
    finally:
        env.close()
    return sorted(rows)


def worker_env(data_dir: Path, keyfile: Path) -> dict:
    env = clean_env()
    env.update(harness.BASE_ENV)
    env.update({k: v for k, v in harness.OFFLINE_ENV.items() if v is not None})
    for k in [k for k, v in harness.OFFLINE_ENV.items() if v is None]:
        env.pop(k, None)
    env.update({"RAGSTREAM_DATA_DIR": str(data_dir), "RAGSTREAM_API_KEYS_FILE": str(keyfile)})
    return env


def stack_on(workdir: Path, keyfile: Path, workers=2) -> Stack:
    """A stack whose data dir (workdir/data) already holds a store."""
    return Stack(workdir, "", workers=workers,
                 env={**harness.OFFLINE_ENV, "RAGSTREAM_API_KEYS_FILE": str(keyfile)})


# --------------------------------------------------------------------------- the corpus


def corpus() -> tuple[list[dict], dict]:
    """Old documents of tenants alpha and bravo, and for every chunk a word found only there
    ({word: (doc, chunk index)})."""
    m = uniq()
    words = {}

    def w(name, doc_index, chunk_index):
        word = f"{name}{m}"
        words[word] = (doc_index, chunk_index)
        return word

    docs = []
    docs.append(old_doc("alpha", "Lease terms", [
        f"The tenant must give ninety days notice to extend the lease {w('leasenotice', 0, 0)}. "
        "Rent is due on the first of each month.\n\n",
        f"Pets need the landlord's written consent {w('petconsent', 0, 1)}, and a late payment "
        "costs a fee of fifty euros.\n\n",
        f"The deposit is returned within thirty days {w('depositback', 0, 2)} after the keys "
        "are handed over."], T0 + 1000, 0))
    docs.append(old_doc("alpha", "Sourdough", [
        f"Sourdough rises with a starter of wild yeast {w('wildyeast', 1, 0)}. Feed the starter "
        "with flour and water, let the dough ferment overnight, then bake it in a hot oven."],
        T0 + 2000, 1))
    docs.append(old_doc("alpha", "ים המלח", [
        f"ים המלח הוא אגם מלוח בבקעת הירדן {w('yamhamelah', 2, 0)}. "
        "העומק המרבי של האגם הוא כ־300 מטרים.\n\n",
        f"מפלס המים יורד בכל שנה {w('mifals', 2, 1)} ✓ והחוף מתרחק."], T0 + 3000, 2))
    docs.append(old_doc("alpha", "Whales", [
        f"Humpback whales migrate between polar feeding grounds and tropical breeding grounds "
        f"{w('humpback', 3, 0)}. Blue whales feed on krill."], T0 + 4000, 3))
    docs.append(old_doc("bravo", "Bravo notes", [
        f"Bravo keeps its own notes about lighthouses {w('lighthouse', 4, 0)} and foghorns."],
        T0 + 5000, 2))
    docs.append(old_doc("bravo", "Bravo ledger", [
        f"The ledger of bravo lists copper kettles {w('kettle', 5, 0)} sold in spring."],
        T0 + 6000, 3))
    return docs, words


# --------------------------------------------------------------------------- the tests


def test_a_previous_layout_store_is_refused_then_migrated_and_served(cli, session_dir):
    work = session_dir / f"migration-{uniq()}"
    keyfile = work / "keys"
    work.mkdir()
    keys = harness.make_api_keys(keyfile, "alpha", "bravo")

    # Conversations, made by a real worker (their layout is the same in both versions).
    donor = stack_on(work / "donor", keyfile, workers=1)
    try:
        a = Client(donor, keys["alpha"])
        r = a.req("POST", "/api/chat/message", {"message": f"Hello before the migration {uniq()}"})
        assert r.status == 200, r
        conv_id = r.json["conversation_id"]
        conv_before = a.req("GET", f"/api/conversations/{conv_id}").json
    finally:
        donor.stop()

    docs, words = corpus()
    old_dir = work / "old" / "data"
    write_old_store(old_dir, docs, donor=work / "donor" / "data")
    rc, out, names = mdb_stat(old_dir)
    assert rc == 0 and {"chunks", "lex_postings", "vec.0", "conversations"} <= names, out

    # 1. A worker refuses the store, names the fix, and changes nothing of it.
    sock = work / "refused.sock"
    p = subprocess.run([str(harness.WORKER_BIN), "--listen", f"unix:{sock}"],
                       env=worker_env(old_dir, keyfile), capture_output=True, text=True,
                       timeout=30)
    log = p.stdout + p.stderr
    assert p.returncode != 0, log
    assert "ragstream migrate" in log, log
    assert meta(old_dir)["layout"] == b"tenant-keys-v1"

    # 2. The migration.
    rc, out, err = migrate(cli, old_dir)
    assert rc == 0, (out, err)
    assert re.search(rf"\b{len(docs)} documents\b", out), out
    assert re.search(rf"\b{sum(len(d['chunks']) for d in docs)} chunks\b", out), out
    assert "migrated" in err, err  # progress on stderr
    rc, stat_out, names = mdb_stat(old_dir)
    assert rc == 0, stat_out
    assert {"chunk_spans", "lex_blocks", "doc_by_num", "documents", "conversations"} <= names, \
        stat_out
    assert not names & set(OLD_DBS), sorted(names & set(OLD_DBS))
    # Every chunk's vector came along unchanged (not embedded again).
    assert vector_rows(old_dir) == sorted(r for d in docs for r in d["rows"])
    m = meta(old_dir)
    assert m["layout"] == b"dense-ids-v4" and "migrate_cursor" not in m, m
    assert not [k for k in m if k.startswith(("lex_chunks/", "lex_tokens/"))], m

    # 3. The stack serves the migrated store.
    s = stack_on(work / "old", keyfile)
    try:
        a, b = Client(s, keys["alpha"]), Client(s, keys["bravo"])
        for tenant, client in (("alpha", a), ("bravo", b)):
            want = {d["id"]: d for d in docs if d["tenant"] == tenant}
            got = client.docs()
            assert set(got) == set(want), (tenant, sorted(got), sorted(want))
            for i, d in want.items():
                g = got[i]
                assert (g["title"], g["created_at"], g["chunks"], g["chars"], g["bytes"]) == \
                    (d["title"], d["created_at"], len(d["chunks"]), len(d["text"]),
                     len(d["text"].encode())), (g, d["title"])
                assert g["content_hash"] == hashlib.sha256(d["text"].encode()).hexdigest()
                full = client.req("GET", f"/api/documents/{i}")
                assert full.status == 200 and full.json["text"] == d["text"], full
        # Newest first, as before.
        assert [d["id"] for d in a.req("GET", "/api/documents").json["documents"]] == \
            [d["id"] for d in sorted((d for d in docs if d["tenant"] == "alpha"),
                                     key=lambda d: -d["created_at"])]

        # Every chunk's own word finds that chunk first, with the text the old store held.
        for word, (di, ci) in words.items():
            d = docs[di]
            client = a if d["tenant"] == "alpha" else b
            other = b if d["tenant"] == "alpha" else a
            res = client.search(word)
            assert res and res[0]["document_id"] == d["id"], (word, res)
            assert res[0]["title"] == d["title"]
            assert res[0]["text"].strip() == d["chunks"][ci].strip(), (word, res[0], ci)
            # Restricted to its document; and the other tenant finds nothing of it.
            assert [r["document_id"] for r in client.search(word, document_ids=[d["id"]])][:1] \
                == [d["id"]]
            assert not other.search(word), (word, "leaked")
            assert other.req("GET", f"/api/documents/{d['id']}").status == 404
        # Vector and hybrid searches run on the migrated vectors, within the tenant. (The
        # vectors written here are not the embedder's, so only hybrid must find something.)
        for mode in ("vector", "hybrid"):
            ids = {r["document_id"] for r in a.search("humpback whales and krill", mode=mode)}
            assert ids <= {d["id"] for d in docs if d["tenant"] == "alpha"}, (mode, ids)
            assert ids or mode == "vector", mode

        # The conversation is still there, unchanged, for its tenant only.
        r = a.req("GET", f"/api/conversations/{conv_id}")
        assert r.status == 200 and r.json == conv_before, r
        assert b.req("GET", f"/api/conversations/{conv_id}").status == 404

        # New documents get ids beside the migrated ones; both stay findable.
        nw = f"newafter{uniq()}"
        r = a.req("POST", "/api/documents", {"title": "After", "text": f"Written after {nw}."})
        assert r.status == 201, r
        new_id = r.json["id"]
        assert [x["document_id"] for x in a.search(nw)][:1] == [new_id]
        word0 = next(w for w, (di, _) in words.items() if di == 1)
        assert [x["document_id"] for x in a.search(word0)][:1] == [docs[1]["id"]]

        # Deleting a migrated document removes it from the list and from every search.
        victim = docs[0]
        r = a.req("DELETE", f"/api/documents/{victim['id']}")
        assert r.status in (200, 204), r
        assert victim["id"] not in a.docs()
        assert a.req("GET", f"/api/documents/{victim['id']}").status == 404
        for word, (di, _) in words.items():
            if di == 0:
                assert not a.search(word), (word, "found after delete")
        for mode in ("vector", "hybrid"):
            assert victim["id"] not in {r["document_id"]
                                        for r in a.search("lease notice pets", mode=mode)}
        assert docs[2]["id"] in {r["document_id"] for r in a.search(
            next(w for w, (di, _) in words.items() if di == 2))}
    finally:
        codes = s.stop()
    assert all(c == 0 for c in codes.values()), codes

    # 4. A second run has nothing to do.
    rc, out, err = migrate(cli, old_dir)
    assert rc == 0 and "nothing to do" in out, (out, err)
    rc, stat_out, names = mdb_stat(old_dir)
    assert rc == 0, stat_out


def test_the_refusal_names_its_error_code(session_dir):
    """The worker's log record of the refusal carries the error code (old_store_layout), so
    an operator or a log alert can match it, not just the message."""
    work = session_dir / f"migration-code-{uniq()}"
    keyfile = work / "keys"
    work.mkdir()
    harness.make_api_keys(keyfile, "alpha")
    docs, _ = corpus()
    write_old_store(work / "data", docs[:1])
    p = subprocess.run([str(harness.WORKER_BIN), "--listen", f"unix:{work / 'w.sock'}"],
                       env=worker_env(work / "data", keyfile), capture_output=True, text=True,
                       timeout=30)
    log = p.stdout + p.stderr
    assert p.returncode != 0, log
    assert "ragstream migrate" in log, log
    assert "old_store_layout" in log, log


def test_a_current_store_is_left_alone(cli, session_dir):
    work = session_dir / f"migration-current-{uniq()}"
    keyfile = work / "keys"
    work.mkdir()
    keys = harness.make_api_keys(keyfile, "alpha")
    s = stack_on(work / "cur", keyfile, workers=1)
    try:
        a = Client(s, keys["alpha"])
        word = f"current{uniq()}"
        r = a.req("POST", "/api/documents", {"title": "Current", "text": f"Already current {word}."})
        assert r.status == 201, r
        doc = r.json["id"]
    finally:
        s.stop()
    data = work / "cur" / "data"
    _, _, names_before = mdb_stat(data)
    meta_before = meta(data)
    rc, out, err = migrate(cli, data)
    assert rc == 0 and "nothing to do" in out, (out, err)
    rc, stat_out, names_after = mdb_stat(data)
    assert rc == 0, stat_out
    assert meta(data) == meta_before
    assert names_after == names_before, ("databases added to a current store",
                                         sorted(names_after - names_before))
    s = stack_on(work / "cur", keyfile, workers=1)
    try:
        a = Client(s, keys["alpha"])
        assert list(a.docs()) == [doc]
        assert [x["document_id"] for x in a.search(word)] == [doc]
    finally:
        s.stop()


def test_a_migration_killed_midway_resumes(cli, session_dir):
    work = session_dir / f"migration-kill-{uniq()}"
    keyfile = work / "keys"
    work.mkdir()
    keys = harness.make_api_keys(keyfile, "alpha", "bravo")
    m = uniq()
    docs = []
    filler = " ".join(f"filler{j} word{j % 37}" for j in range(40))
    for i in range(1200):
        tenant = "alpha" if i < 900 else "bravo"
        docs.append(old_doc(tenant, f"Bulk {i}", [f"Bulk document {i} tag{i}x{m}. {filler}"],
                            T0 + i, i))
    data = work / "kill" / "data"
    write_old_store(data, docs)

    proc = subprocess.Popen([str(cli), "migrate", "--data-dir", str(data)], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=harness._die_with_parent)
    try:
        first = proc.stderr.readline()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert first.startswith("migrated "), first
    mid = meta(data)
    killed_midway = mid.get("layout") == b"tenant-keys-v1"
    if killed_midway:
        assert "migrate_cursor" in mid, mid
    rc, stat_out, _ = mdb_stat(data)
    assert rc == 0, stat_out
    # A worker still refuses a half-migrated store.
    if killed_midway:
        p = subprocess.run([str(harness.WORKER_BIN), "--listen", f"unix:{work / 'w.sock'}"],
                           env=worker_env(data, keyfile), capture_output=True, text=True,
                           timeout=30)
        assert p.returncode != 0 and "ragstream migrate" in p.stdout + p.stderr

    rc, out, err = migrate(cli, data, timeout=300)
    assert rc == 0, (out, err)
    if killed_midway:
        done = int(re.search(r"(\d+) documents", out).group(1))
        assert 0 < done < len(docs), out  # the rest only
    assert meta(data)["layout"] == b"dense-ids-v4"
    s = stack_on(work / "kill", keyfile)
    try:
        for tenant in ("alpha", "bravo"):
            c = Client(s, keys[tenant])
            want = [d for d in docs if d["tenant"] == tenant]
            r = c.req("GET", "/api/documents")
            assert r.status == 200, r
            got = [d["id"] for d in r.json["documents"]]
            assert len(got) == len(set(got)) and set(got) == {d["id"] for d in want}, \
                (tenant, len(got), len(want))
            for d in want[::97] + want[-1:]:
                i = int(d["title"].split()[1])
                res = c.search(f"tag{i}x{m}")
                assert [x["document_id"] for x in res][:1] == [d["id"]], (d["title"], res)
        print(f"killed midway: {killed_midway}; first progress line: {first.strip()}")
    finally:
        s.stop()
