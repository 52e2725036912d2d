"""The `ragstream` command-line client (cli/) against a real offline stack: help and usage
errors, ingest of a folder (counts, failures, duplicates, progress bar on a terminal), ask
(streamed answer, sources, JSON lines, a server that is down, a stream cut off or ending in
an error), conversations list/show/export, documents list/delete, backup of the live store
(verified with mdb_stat), stats, and the API key never appearing in any output."""

from __future__ import annotations

import json
import os
import stat
import pty
import re
import select
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import harness
from harness import free_port, uniq

API_KEY = "cli-SECRET-canary-" + uniq()
# Every stdout/stderr the client produced in this module, for the API-key check at the end.
OUTPUTS: list[str] = []

COMMAND_OPTIONS = {
    "ingest": [],
    "ask": ["--conversation", "--top-k", "--mode", "--json"],
    "conversations list": ["--limit", "--all"],
    "conversations show": [],
    "conversations export": ["--format"],
    "documents list": [],
    "documents delete": [],
    "backup": ["--data-dir"],
    "stats": [],
}
GLOBAL_OPTIONS = ["--url", "--api-key", "--help"]


# --------------------------------------------------------------------------- helpers


def _env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGSTREAM_")}
    env.update(extra or {})
    return env


def run(cli, *args, url=None, key=True, env=None, timeout=30, cwd=None):
    argv = [str(cli)]
    if url is not None:
        argv += ["--url", url]
    if key:
        argv += ["--api-key", API_KEY]
    argv += [str(a) for a in args]
    p = subprocess.run(argv, capture_output=True, env=_env(env), timeout=timeout, cwd=cwd)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    OUTPUTS.extend([out, err])
    return p.returncode, out, err


def url_of(stack) -> str:
    return f"http://127.0.0.1:{stack.port}"


def conv_id_from(err: str) -> str:
    m = re.search(r"conversation: (conv_[0-9a-f]{24})", err)
    assert m, err
    return m.group(1)


def ask(cli, stack, question, *extra):
    rc, out, err = run(cli, "ask", question, *extra, url=url_of(stack))
    assert rc == 0, (out, err)
    return out, err, conv_id_from(err)


def write_corpus(root: Path) -> dict:
    """3 Markdown files (one in a sub-folder), a .txt, a binary .md, an unreadable .md, plus
    files the walk must pass over (another type, a hidden file)."""
    m = uniq()
    docs = {
        "lmdb.md": f"# Backing up the store {m}\n\nRun mdb_copy with the compact flag to take a "
                   f"consistent snapshot of the LMDB environment {m} while workers serve.\n",
        "sub/nginx.md": f"# Streaming through nginx {m}\n\nTurn off proxy buffering so that "
                        f"server-sent events {m} reach the browser one token at a time.\n",
        "sub/deeper/quota.markdown": f"# Map size quota {m}\n\nWhen the LMDB map is full the "
                                     f"server answers 507 store_full {m}.\n",
        "release-notes.txt": f"Version zero point one {m} adds a command-line client that "
                             f"streams answers.\n",
    }
    for rel, text in docs.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    (root / "blob.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    unreadable = root / "unreadable.md"
    if os.geteuid() == 0:  # root reads any mode: a dangling symlink cannot be read by anyone
        unreadable.symlink_to(root / "does-not-exist.md")
    else:
        unreadable.write_text("secret", encoding="utf-8")
        unreadable.chmod(0)
    (root / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / ".hidden.md").write_text("# hidden\n\nnot ingested\n", encoding="utf-8")
    return {"marker": m, "docs": docs,
            "bytes": sum(len(t.encode("utf-8")) for t in docs.values())}


@pytest.fixture(scope="module")
def corpus(cli, offline_stack, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-corpus")
    info = write_corpus(root)
    rc, out, err = run(cli, "ingest", root, url=url_of(offline_stack))
    info.update(root=root, rc=rc, out=out, err=err)
    return info


# --------------------------------------------------------------------------- help and usage


def test_help_of_every_command_names_its_options(cli):
    rc, out, _ = run(cli, "--help", key=False)
    assert rc == 0
    for command in COMMAND_OPTIONS:
        assert command in out
    for command, options in COMMAND_OPTIONS.items():
        rc, out, err = run(cli, *command.split(), "--help", key=False)
        assert rc == 0, (command, err)
        assert out.startswith(f"Usage: ragstream {command}"), out
        for opt in options + GLOBAL_OPTIONS:
            assert opt in out, (command, opt, out)
    for group in ("conversations", "documents"):
        rc, out, _ = run(cli, group, "--help", key=False)
        assert rc == 0 and f"Usage: ragstream {group} COMMAND" in out
    rc, out, _ = run(cli, "backup", "-h", key=False)
    assert rc == 0 and "host that has the store" in out
    rc, out, _ = run(cli, "--version", key=False)
    assert rc == 0 and re.match(r"ragstream \d+\.\d+\.\d+", out)


@pytest.mark.parametrize("args", [
    [], ["bogus"], ["conversations"], ["conversations", "bogus"], ["ask"], ["ask", "a", "b"],
    ["ask", "q", "--top-k", "0"], ["ask", "q", "--top-k", "x"], ["ask", "q", "--mode", "fuzzy"],
    ["ask", "q", "--bogus"], ["ask", "  "], ["ingest"], ["conversations", "list", "--limit", "0"],
    ["conversations", "list", "--limit", "2", "--all"], ["conversations", "show"],
    ["conversations", "export", "conv_x", "--format", "pdf"], ["documents", "delete"],
    ["backup"], ["stats", "extra"], ["ask", "q", "--url"], ["stats", "--json"],
])
def test_bad_usage_exits_2(cli, args):
    rc, out, err = run(cli, *args, url="http://127.0.0.1:1")
    assert rc == 2, (args, out, err)
    assert "ragstream:" in err and "--help" in err, err
    assert out == ""


# --------------------------------------------------------------------------- ingest


def test_the_default_url_follows_ragstream_port(cli, offline_stack):
    """Without --url or RAGSTREAM_URL the CLI talks to RAGSTREAM_PORT on loopback, as the
    scripts do (run.sh prints its commands with RAGSTREAM_PORT=... on another port)."""
    rc, out, err = run(cli, "documents", "list", key=False,
                       env={"RAGSTREAM_PORT": str(offline_stack.port)})
    assert rc == 0, (out, err)
    rc, out, err = run(cli, "documents", "list", key=False,
                       env={"RAGSTREAM_PORT": str(harness.free_port())})
    assert rc != 0 and "127.0.0.1" in err, (out, err)


def test_ingest_folder_counts_failures_and_lists(cli, offline_stack, corpus):
    assert corpus["rc"] == 1, corpus  # two files failed
    summary = corpus["out"].strip().splitlines()[0]
    assert summary.startswith(f"stored 4, unchanged 0 (already stored), failed 2, "
                              f"{corpus['bytes']} bytes"), summary
    assert "ignored 1" in summary  # picture.png; .hidden.md is skipped without a count
    err = corpus["err"]
    assert re.search(r"failed +\S*blob\.md: not text", err), err
    assert re.search(r"failed +\S*unreadable\.md: cannot read", err), err
    assert err.count("stored ") == 4 and "hidden" not in err, err

    rc, out, err = run(cli, "documents", "list", url=url_of(offline_stack))
    assert rc == 0, err
    m = corpus["marker"]
    # Markdown with a heading: the server's title (the first line); .txt: the file name.
    for title in (f"Backing up the store {m}", f"Streaming through nginx {m}",
                  f"Map size quota {m}", "release-notes"):
        assert title in out, (title, out)
    api = {d["title"]: d for d in harness.document_list(offline_stack)}
    assert api["release-notes"]["id"] in out
    assert out.splitlines()[0].split() == ["ID", "CREATED", "CHUNKS", "BYTES", "TITLE"]


def test_reingest_reports_unchanged(cli, offline_stack, corpus):
    rc, out, err = run(cli, "ingest", corpus["root"], url=url_of(offline_stack))
    assert rc == 1  # the same two failures
    assert out.startswith("stored 0, unchanged 4 (already stored), failed 2, 0 bytes"), out
    assert err.count("already stored") == 4, err
    good = [corpus["root"] / rel for rel in corpus["docs"]]
    rc, out, err = run(cli, "ingest", *good, url=url_of(offline_stack))
    assert rc == 0, err
    assert out.startswith("stored 0, unchanged 4 (already stored), failed 0, 0 bytes"), out


def test_ingest_explicit_bad_paths(cli, offline_stack, tmp_path):
    (tmp_path / "data.json").write_text("{}")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "large.txt").write_text("word " * 20000)  # over the stack's 64 KiB body limit
    rc, out, err = run(cli, "ingest", tmp_path / "missing.md", tmp_path / "data.json",
                       tmp_path / "empty.txt", tmp_path / "large.txt", url=url_of(offline_stack))
    assert rc == 1
    assert out.startswith("stored 0, unchanged 0 (already stored), failed 4, 0 bytes"), out
    assert "no such file" in err and "not a .txt, .md or .markdown file" in err
    assert "empty.txt: empty_document: " in err, err  # the server's error code: message
    assert re.search(r"large\.txt: \w+: .*(large|limit)", err), err


def test_ingest_progress_bar_on_a_terminal(cli, offline_stack, tmp_path):
    for i in range(3):
        (tmp_path / f"note{i}.md").write_text(f"# Note {i} {uniq()}\n\nSome text {i}.\n")
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([str(cli), "--url", url_of(offline_stack), "--api-key", API_KEY,
                              "ingest", str(tmp_path)], stdout=subprocess.PIPE, stderr=slave,
                             env=_env())
        os.close(slave)
        slave = -1
        tty = b""
        while True:
            r, _, _ = select.select([master], [], [], 20)
            if not r:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            tty += chunk
        out = p.stdout.read().decode()
        assert p.wait(20) == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    text = tty.decode("utf-8", "replace")
    OUTPUTS.extend([text, out])
    assert re.search(r"\[ +\] 1/3 note0\.md.*\[#+ +\] 2/3 note1\.md", text), text
    assert "[" + "#" * 20 + "] 3/3" in text, text
    assert "stored    " not in text  # per-file lines only when stderr is not a terminal
    assert out.startswith("stored 3, unchanged 0"), out


# --------------------------------------------------------------------------- ask


def test_ask_streams_answer_and_sources(cli, offline_stack, corpus):
    m = corpus["marker"]
    out, err, conv = ask(cli, offline_stack, f"How do I take a consistent snapshot of the LMDB "
                                             f"environment {m}?")
    assert "[1]" in out, out
    assert "mdb_copy" in out, out
    assert "Sources:" in err and re.search(r"\[1\] .+ — .+", err), err
    assert f"Backing up the store {m}" in err, err
    api = offline_stack.conversation(conv)
    answer = api["messages"][-1]
    assert answer["status"] == "complete"
    assert answer["content"].strip() == out.strip()

    # A follow-up in the same conversation, retrieval options passed through.
    out2, err2, conv2 = ask(cli, offline_stack, f"And where does proxy buffering matter {m}?",
                            "--conversation", conv, "--top-k", "2", "--mode", "lexical")
    assert conv2 == conv
    assert len(offline_stack.conversation(conv)["messages"]) == 4
    assert err2.count("\n  [") <= 2, err2


def test_ask_json_lines(cli, offline_stack, corpus):
    rc, out, err = run(cli, "ask", f"What does the map size quota answer {corpus['marker']}?",
                       "--json", url=url_of(offline_stack))
    assert rc == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["done"] is False and events[0]["conversation_id"].startswith("conv_")
    assert events[-1]["done"] is True and events[-1]["status"] == "complete"
    assert events[-1]["sources"], events[-1]
    assert all(e["done"] is False for e in events[:-1])
    text = "".join(e["token"] for e in events[1:-1])
    assert "[1]" in text
    assert "Sources:" not in err


def test_ask_unknown_conversation_prints_server_error(cli, offline_stack):
    rc, out, err = run(cli, "ask", "hello", "--conversation", "conv_" + "0" * 24,
                       url=url_of(offline_stack))
    assert rc == 1 and out == ""
    assert re.search(r"ragstream: not_found: .+", err), err


def test_ask_streams_incrementally(cli, stack_factory):
    s = stack_factory(workers=1, offline=True,
                      env={"RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS": "40"})
    r = s.post_json("/api/documents", {"title": "Pacing", "text": (
        "The relay flushes every event. Each word of the extract is a separate token. "
        "Clients see the answer grow while it is written. Nginx must not buffer it.")})
    assert r.status == 201, r
    p = subprocess.Popen([str(cli), "--url", url_of(s), "ask", "How is the answer relayed?"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    t0 = time.monotonic()
    first = os.read(p.stdout.fileno(), 65536)
    t_first = time.monotonic() - t0
    rest = p.stdout.read()
    err = p.stderr.read().decode()
    assert p.wait(30) == 0, err
    t_end = time.monotonic() - t0
    OUTPUTS.extend([(first + rest).decode(), err])
    assert first and rest, "the answer arrived in one piece"
    assert t_end - t_first > 0.3, (t_first, t_end)


def test_ask_server_down(cli):
    port = free_port()
    rc, out, err = run(cli, "ask", "anyone there?", url=f"http://127.0.0.1:{port}")
    assert rc == 1 and out == ""
    assert f"cannot reach http://127.0.0.1:{port}" in err, err


class _ScriptedServer:
    """A tiny HTTP server that answers the stream route the way a test says: a stream cut
    before its done event, a stream ending in an error event, or a proxy's HTML error page.
    Records the Authorization header of every request."""

    def __init__(self):
        self.mode = "cut"
        self.auth: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def do_POST(self):
                outer.auth.append(self.headers.get("Authorization"))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.mode == "html":
                    body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                    self.send_response(502)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                events = [{"token": "", "done": False, "conversation_id": "conv_" + "a" * 24,
                           "message_id": "msg_" + "b" * 24},
                          {"token": "Half an ", "done": False},
                          {"token": "answer", "done": False}]
                if outer.mode == "error":
                    events.append({"token": None, "done": True, "status": "error",
                                   "conversation_id": "conv_" + "a" * 24,
                                   "error": {"code": "upstream_error",
                                             "message": "the model failed"}})
                for i, e in enumerate(events):
                    self.wfile.write(f"id: {i}\ndata: {json.dumps(e)}\n\n".encode())
                    self.wfile.flush()
                # HTTP/1.0 without a length: closing the connection ends the body.

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    s = _ScriptedServer()
    try:
        yield s
    finally:
        s.close()


def test_ask_cut_off_error_event_and_proxy_page(cli, scripted):
    rc, out, err = run(cli, "ask", "q", url=scripted.url)
    assert rc == 1
    assert out == "Half an answer\n"
    assert "the answer was cut off" in err and "conv_" + "a" * 24 in err, err
    assert scripted.auth[-1] == f"Bearer {API_KEY}"

    scripted.mode = "error"
    rc, out, err = run(cli, "ask", "q", url=scripted.url)
    assert rc == 1 and out == "Half an answer\n"
    assert "ragstream: upstream_error: the model failed" in err, err

    scripted.mode = "html"
    rc, out, err = run(cli, "ask", "q", url=scripted.url + "/", key=False)
    assert rc == 1 and out == ""
    assert "http_502: 502 Bad Gateway" in err, err
    assert scripted.auth[-1] is None


# --------------------------------------------------------------------------- conversations


def test_conversations_list_show_export(cli, offline_stack, corpus):
    question = f"Why turn off proxy buffering for server-sent events {corpus['marker']}?"
    out, err, conv = ask(cli, offline_stack, question)
    answer = out.strip()
    url = url_of(offline_stack)

    rc, listing, err = run(cli, "conversations", "list", url=url)
    assert rc == 0, err
    lines = listing.splitlines()
    assert lines[0].split() == ["ID", "UPDATED", "MESSAGES", "TITLE"]
    assert lines[1].startswith(conv)  # newest first
    rc, one, _ = run(cli, "conversations", "list", "--limit", "1", url=url)
    assert rc == 0 and len(one.splitlines()) == 2 and conv in one

    rc, shown, err = run(cli, "conversations", "show", conv, url=url)
    assert rc == 0, err
    assert "[user] complete" in shown and "[assistant] complete" in shown
    assert question in shown and "Sources:" in shown and "[1] " in shown

    rc, exported, err = run(cli, "conversations", "export", conv, "--format", "json", url=url)
    assert rc == 0, err
    assert json.loads(exported) == offline_stack.conversation(conv)

    rc, md, err = run(cli, "conversations", "export", conv, "--format", "markdown", url=url)
    assert rc == 0, err
    assert md.startswith("# ")
    assert f"**User:** {question}" in md
    assert f"**Assistant:** {answer}" in md
    assert "\nSources:\n\n1. **" in md

    rc, out, err = run(cli, "conversations", "show", "conv_" + "0" * 24, url=url)
    assert rc == 1 and re.search(r"ragstream: not_found: ", err), err


def test_conversations_list_all_follows_cursor(cli, stack_factory):
    s = stack_factory(workers=1, offline=True)
    ids = set()
    for i in range(103):  # more than one page of 100
        r = s.post_json("/api/chat/message", {"message": f"question number {i}"})
        assert r.status == 200, r
        ids.add(r.json["conversation_id"])
    rc, out, err = run(cli, "conversations", "list", "--all", url=url_of(s))
    assert rc == 0, err
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert len(listed) == 103 and set(listed) == ids
    rc, out, err = run(cli, "conversations", "list", "--limit", "101", url=url_of(s))
    assert rc == 0 and len(out.splitlines()) == 102
    assert "--all" in err  # says there are more


# --------------------------------------------------------------------------- documents


def test_documents_delete_then_list(cli, offline_stack, tmp_path):
    p = tmp_path / "doomed.txt"
    p.write_text(f"A document that is about to be deleted {uniq()}.\n")
    rc, out, err = run(cli, "ingest", p, url=url_of(offline_stack))
    assert rc == 0 and out.startswith("stored 1,"), (out, err)
    doc_id = re.search(r"(doc_[0-9a-f]{24})", err).group(1)
    rc, out, _ = run(cli, "documents", "list", url=url_of(offline_stack))
    assert doc_id in out and "doomed" in out
    rc, out, err = run(cli, "documents", "delete", doc_id, url=url_of(offline_stack))
    assert rc == 0 and out.strip() == f"deleted {doc_id}", (out, err)
    rc, out, _ = run(cli, "documents", "list", url=url_of(offline_stack))
    assert rc == 0 and doc_id not in out
    rc, out, err = run(cli, "documents", "delete", doc_id, url=url_of(offline_stack))
    assert rc == 1 and "not_found" in err


# --------------------------------------------------------------------------- backup, stats


def _mdb_entries(env_dir: Path, db: str) -> int:
    p = subprocess.run(["mdb_stat", "-s", db, str(env_dir)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    return int(re.search(r"Entries: (\d+)", p.stdout).group(1))


def test_backup_of_the_live_store(cli, offline_stack, corpus, tmp_path):
    ask(cli, offline_stack, f"What is in the release notes {corpus['marker']}?")
    conversations = offline_stack.conversation_ids(limit=100)
    documents = harness.document_list(offline_stack)
    target = tmp_path / "backup" / "today"
    old_umask = os.umask(0o022)  # a usual umask: files 0644 unless the command protects them
    try:
        rc, out, err = run(cli, "backup", target, "--data-dir", offline_stack.data_dir)
    finally:
        os.umask(old_umask)
    assert rc == 0, err
    # Every tenant's data: owner-only (before: data.mdb 0644 under umask 022).
    assert stat.S_IMODE(target.stat().st_mode) == 0o700, oct(target.stat().st_mode)
    assert stat.S_IMODE((target / "data.mdb").stat().st_mode) == 0o600
    assert "verified with mdb_stat" in out and "bytes" in out, out
    assert sorted(os.listdir(target)) == ["data.mdb"]
    assert f"data.mdb {(target / 'data.mdb').stat().st_size} bytes" in out

    copy_bytes = (target / "data.mdb").read_bytes()
    check = subprocess.run(["mdb_stat", "-a", str(target)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert _mdb_entries(target, "conversations") == len(conversations)
    assert _mdb_entries(target, "documents") == len(documents)
    offline_stack.assert_alive()

    # The environment variable names the data dir too; a non-empty target is refused.
    rc, out, err = run(cli, "backup", target,
                       env={"RAGSTREAM_DATA_DIR": str(offline_stack.data_dir)})
    assert rc == 1 and "not empty" in err, err
    assert (target / "data.mdb").read_bytes() == copy_bytes
    rc, out, err = run(cli, "backup", tmp_path / "other", "--data-dir", tmp_path / "nothing")
    assert rc == 1 and "no LMDB store" in err and not (tmp_path / "other").exists(), err


def test_stats(cli, offline_stack, corpus):
    rc, out, err = run(cli, "stats", url=url_of(offline_stack))
    assert rc == 0, err
    count = len(harness.document_list(offline_stack))
    assert re.search(rf"^documents +{count}$", out, re.M), out
    assert re.search(r"^map use +\d+\.\d%", out, re.M), out
    assert re.search(r"^chat model +extractive", out, re.M), out
    assert re.search(r"^embedder +hash", out, re.M), out
    assert re.search(r"^workers +2$", out, re.M), out
    assert re.search(r"^active streams +\d+$", out, re.M), out
    assert re.search(r"^requests +[1-9]\d* total", out, re.M), out
    assert re.search(r"^tokens relayed +[1-9]\d*$", out, re.M), out

    rc, out, err = run(cli, "stats", url=f"http://127.0.0.1:{free_port()}")
    assert rc == 1 and "cannot reach" in err


def test_zz_api_key_never_printed(cli):
    if not OUTPUTS:
        pytest.skip("no client output collected (run the whole module)")
    leaks = [o for o in OUTPUTS if API_KEY in o]
    assert not leaks, leaks[:1]
