"""Process management and HTTP/SSE clients for the ragstream integration tests.

Standard library only. Everything binds to 127.0.0.1 on ephemeral ports and lives in
temporary directories; every process started here is stopped by its own pid.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKER_BIN = Path(os.environ.get("RAGSTREAM_BIN", ROOT / "build" / "ragstream-worker"))
FAKE_SCRIPT = ROOT / "tests" / "fake_openai" / "fake_openai.py"
RENDER_SCRIPT = ROOT / "scripts" / "render_nginx_conf.sh"

API_KEY = "sk-test-SECRET-canary"

# Every response body seen by any client helper, for the API-key canary check.
SEEN_BODIES: list[bytes] = []
SEEN_LOCK = threading.Lock()
# Every log file of the product (workers, nginx) started in this session.
PRODUCT_LOG_FILES: list[Path] = []

# Every process started in this session, so an interpreter exit cannot leave any behind.
_STARTED: list[subprocess.Popen] = []


def _remember_body(b: bytes) -> None:
    with SEEN_LOCK:
        SEEN_BODIES.append(bytes(b))


def _die_with_parent() -> None:
    """preexec_fn: have the kernel SIGKILL the child if this (pytest) process dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def start_process(args, *, env=None, stdout=None, stderr=None, cwd=None) -> subprocess.Popen:
    # Only from the main thread: PDEATHSIG fires when the *thread* that forked exits.
    assert threading.current_thread() is threading.main_thread()
    p = subprocess.Popen(args, env=env, stdout=stdout, stderr=stderr, cwd=cwd,
                         stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    _STARTED.append(p)
    return p


def stop_process(p: subprocess.Popen, sig=signal.SIGTERM, timeout=10.0) -> int | None:
    """Stops one process we started, by its pid; returns its exit code."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    if p in _STARTED:
        _STARTED.remove(p)
    return p.returncode


def stop_all_started() -> None:
    for p in list(_STARTED):
        stop_process(p, timeout=5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_api_keys(path: Path, *tenants: str) -> dict[str, str]:
    """A key for each tenant, made by the shipped helper (scripts/make_api_key.sh) and
    appended to the key file `path`: the file gets its hash, the caller the key."""
    keys = {}
    for t in tenants:
        out = subprocess.run([str(ROOT / "scripts" / "make_api_key.sh"), t, "--append", str(path)],
                             capture_output=True, text=True, check=True, timeout=10)
        keys[t] = out.stdout.strip()
        assert keys[t].startswith("rsk_") and keys[t] not in path.read_text()
    return keys


def uniq(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:10]


def socket_accepts(path: Path) -> bool:
    """True when a unix stream connection to `path` succeeds (the kernel queues it in the
    listen backlog; the worker accepts it, sees no request, and loops)."""
    if not path.exists():
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def tcp_accepts(port: int, host: str = "127.0.0.1") -> bool:
    """True when a TCP connection to host:port succeeds (something listens there)."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_until(pred, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- plain HTTP


@dataclass
class Response:
    status: int
    reason: str
    headers: list  # [(name, value)]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @property
    def json(self):
        return json.loads(self.body)

    def json_or_none(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:300]!r}>"


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict | None = None, timeout: float = 30.0) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Connection": "close"}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        _remember_body(data)
        return Response(r.status, r.reason, r.getheaders(), data)
    finally:
        conn.close()


# --------------------------------------------------------------------------- SSE


@dataclass
class SseItem:
    kind: str  # "event", "comment", "retry"
    t: float  # time.monotonic() when the bytes completing it arrived
    text: str = ""  # comment text / retry value / event data
    id: str | None = None
    data_lines: int = 0
    fields: list = field(default_factory=list)  # [(name, value)] in order
    json: object = None


class SseParser:
    """Incremental parser following the WHATWG event-stream rules (lines end in CRLF, LF or
    CR; ':' starts a comment; a blank line dispatches the event)."""

    def __init__(self):
        self.buf = b""
        self.items: list[SseItem] = []
        self._fields: list = []
        self._data: list[str] = []
        self._id = None

    def feed(self, data: bytes, t: float) -> list[SseItem]:
        new: list[SseItem] = []
        self.buf += data
        while True:
            i_n = self.buf.find(b"\n")
            i_r = self.buf.find(b"\r")
            if i_n < 0 and i_r < 0:
                break
            if i_r >= 0 and (i_n < 0 or i_r < i_n):
                if i_r == len(self.buf) - 1:
                    break  # a CR at the end: wait to see whether LF follows
                end, skip = i_r, 2 if self.buf[i_r + 1:i_r + 2] == b"\n" else 1
            else:
                end, skip = i_n, 1
            line = self.buf[:end].decode("utf-8", errors="replace")
            self.buf = self.buf[end + skip:]
            item = self._line(line, t)
            if item is not None:
                self.items.append(item)
                new.append(item)
        return new

    def _line(self, line: str, t: float):
        if line == "":
            if not self._data:
                self._fields = []
                return None
            text = "\n".join(self._data)
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            item = SseItem("event", t, text=text, id=self._id, data_lines=len(self._data),
                           fields=self._fields, json=obj)
            self._fields, self._data, self._id = [], [], None
            return item
        if line.startswith(":"):
            return SseItem("comment", t, text=line[1:].lstrip(" "))
        name, sep, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "retry":
            return SseItem("retry", t, text=value)
        self._fields.append((name, value))
        if name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None


class ChunkedDecoder:
    """Incremental HTTP/1.1 chunked transfer decoding."""

    def __init__(self):
        self.buf = b""
        self.remaining = None  # None: expecting a size line; 0: expecting the chunk's CRLF
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = b""
        while not self.done:
            if self.remaining is None:
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                size = int(self.buf[:i].split(b";")[0].strip() or b"0", 16)
                self.buf = self.buf[i + 2:]
                if size == 0:
                    self.done = True
                    break
                self.remaining = size
            elif self.remaining > 0:
                take = self.buf[:self.remaining]
                if not take:
                    break
                out += take
                self.buf = self.buf[len(take):]
                self.remaining -= len(take)
            else:  # remaining == 0: the CRLF after the chunk data
                if len(self.buf) < 2:
                    break
                self.buf = self.buf[2:]
                self.remaining = None
        return out


@dataclass
class StreamResult:
    status: int = 0
    reason: str = ""
    headers: list = field(default_factory=list)
    raw: bytes = b""  # the de-chunked body
    items: list = field(default_factory=list)
    t_sent: float = 0.0
    t_headers: float = 0.0
    t_end: float = 0.0
    closed_by_us: bool = False
    closed_at_wall: float | None = None  # time.time() when we closed the socket
    complete: bool = False  # the server ended the body (last chunk / EOF)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @property
    def events(self) -> list[SseItem]:
        return [i for i in self.items if i.kind == "event"]

    @property
    def comments(self) -> list[SseItem]:
        return [i for i in self.items if i.kind == "comment"]

    @property
    def token_events(self) -> list[SseItem]:
        """Events after the first one that are not done events."""
        return [e for e in self.events[1:] if isinstance(e.json, dict) and e.json.get("done") is False]

    @property
    def done_events(self) -> list[SseItem]:
        return [e for e in self.events if isinstance(e.json, dict) and e.json.get("done") is True]

    @property
    def done(self) -> dict | None:
        d = self.done_events
        return d[-1].json if d else None

    @property
    def first(self) -> dict | None:
        ev = self.events
        return ev[0].json if ev else None

    @property
    def text(self) -> str:
        return "".join(e.json["token"] for e in self.token_events)

    def json_body(self):
        return json.loads(self.raw)

    def __repr__(self) -> str:
        return (f"<StreamResult {self.status} events={len(self.events)} "
                f"comments={len(self.comments)} raw={self.raw[:400]!r}...>")


def stream_request(port: int, body, *, path: str = "/api/chat/message/stream",
                   method: str = "POST", headers: dict | None = None, timeout: float = 60.0,
                   stop=None) -> StreamResult:
    """POSTs `body` (dict -> JSON, or bytes) over a raw socket and reads the response
    incrementally. `stop(result, new_item)` may return True to close the socket at once."""
    if isinstance(body, (dict, list)):
        payload = json.dumps(body).encode()
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = body
    hdrs = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json",
            "Accept": "text/event-stream", "Content-Length": str(len(payload))}
    hdrs.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    res = StreamResult()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    deadline = time.monotonic() + timeout
    try:
        sock.sendall(head.encode() + b"\r\n" + payload)
        res.t_sent = time.monotonic()
        buf = b""
        # Status line and headers.
        while b"\r\n\r\n" not in buf:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before the response headers: {buf!r}")
            buf += chunk
        res.t_headers = time.monotonic()
        head_bytes, rest = buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.decode("latin-1").split("\r\n")
        proto, status, *reason = lines[0].split(" ", 2)
        res.status = int(status)
        res.reason = reason[0] if reason else ""
        for line in lines[1:]:
            k, _, v = line.partition(":")
            res.headers.append((k.strip(), v.strip()))
        chunked = "chunked" in (res.header("Transfer-Encoding") or "").lower()
        length = res.header("Content-Length")
        length = int(length) if length is not None else None
        decoder = ChunkedDecoder() if chunked else None
        parser = SseParser()
        is_sse = (res.header("Content-Type") or "").startswith("text/event-stream")

        def consume(data: bytes, t: float) -> bool:
            body = decoder.feed(data) if decoder else data
            res.raw += body
            if is_sse and body:
                for item in parser.feed(body, t):
                    res.items.append(item)
                    if stop is not None and stop(res, item):
                        return True
            return False

        stopped = consume(rest, res.t_headers)
        if res.status in (204, 304):  # no body, by definition
            res.complete = True
            stopped = True
        while not stopped:
            if decoder and decoder.done:
                res.complete = True
                break
            if length is not None and len(res.raw) >= length:
                res.complete = True
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"stream did not end within {timeout}s: {res!r}")
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            t = time.monotonic()
            if not chunk:
                res.complete = decoder is None and length is None
                break
            stopped = consume(chunk, t)
        if stopped:
            res.closed_by_us = True
    finally:
        res.closed_at_wall = time.time()
        res.t_end = time.monotonic()
        sock.close()
    _remember_body(res.raw)
    return res


# --------------------------------------------------------------------------- fake upstream


class NatsServers:
    """`n` nats-servers with JetStream on loopback ports, their stores under `workdir`: one
    server, or (n > 1) one JetStream cluster joined by routes. `url` lists every server, as
    RAGSTREAM_NATS_URL takes them (cluster mode, lib/cluster)."""

    def __init__(self, workdir: Path, n: int = 1, timeout: float = 15):
        exe = shutil.which("nats-server")
        assert exe, "nats-server is missing: scripts/install_deps.sh --test installs it"
        self.ports = [free_port() for _ in range(n)]
        route_ports = [free_port() for _ in range(n)]
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in route_ports)
        self.procs, self._logs = [], []
        for i in range(n):
            d = workdir / f"n{i}"
            d.mkdir(parents=True, exist_ok=True)
            args = [exe, "-js", "-sd", str(d / "js"), "-a", "127.0.0.1", "-p", str(self.ports[i])]
            if n > 1:
                args += ["-server_name", f"n{i}", "-cluster_name", "ragstream-test",
                         "-cluster", f"nats://127.0.0.1:{route_ports[i]}", "-routes", routes]
            log = open(d / "nats.log", "ab")
            self._logs.append(log)
            self.procs.append(start_process(args, stdout=log, stderr=log))
        for port, p, i in zip(self.ports, self.procs, range(n)):
            wait_until(lambda: p.poll() is not None or tcp_accepts(port), timeout, what=f"nats-server :{port}")
            assert p.poll() is None, (workdir / f"n{i}" / "nats.log").read_text()
        self.url = ",".join(f"nats://127.0.0.1:{p}" for p in self.ports)

    def stop(self) -> None:
        for p in self.procs:
            stop_process(p, signal.SIGTERM, timeout=10)
        for f in self._logs:
            f.close()


def applied_seq(data_dir: Path) -> int:
    """A cluster-mode store's applied sequence of its shard's log (0: none), read with
    python3-lmdb beside the running workers."""
    import lmdb
    env = lmdb.open(str(data_dir), readonly=True, lock=True, max_dbs=256)
    try:
        try:
            db = env.open_db(b"replication", create=False)
        except lmdb.NotFoundError:
            return 0
        with env.begin(db=db) as txn:
            v = txn.get(b"applied_seq")
        return int.from_bytes(v, "big") if v else 0
    finally:
        env.close()


def store_dump(data_dir: Path) -> dict[str, dict[bytes, bytes]]:
    """{database: {key: value}} of every named database of a store, read with python3-lmdb
    beside the running workers."""
    import lmdb
    env = lmdb.open(str(data_dir), readonly=True, lock=True, max_dbs=256, subdir=True)
    try:
        out = {}
        with env.begin() as txn:
            names = [k for k, _ in txn.cursor()]
        for name in names:
            db = env.open_db(name, create=False)
            with env.begin(db=db) as txn:
                out[name.decode()] = dict(txn.cursor())
        return out
    finally:
        env.close()


def tenant_keys(data_dir: Path, tenant: str) -> dict[str, list[bytes]]:
    """{database: [keys]} of `tenant`'s records in a store: "T/..." keys, and index_meta's
    "<name>/T" keys but the "moving/T" mark a tenant move leaves on its source."""
    out = {}
    for name, rows in store_dump(data_dir).items():
        found = [k for k in rows if k.startswith(tenant.encode() + b"/") or
                 (name == "index_meta" and k.endswith(b"/" + tenant.encode())
                  and not k.startswith(b"moving/"))]
        if found:
            out[name] = found
    return out


class FakeUpstream:
    def __init__(self, workdir: Path, require_key: str | None = API_KEY):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port_file = workdir / "fake.port"
        self.log_path = workdir / "fake.log"
        self._log = open(self.log_path, "wb")
        args = [sys.executable, str(FAKE_SCRIPT), "--port", "0", "--port-file", str(self.port_file)]
        if require_key:
            args += ["--require-key", require_key]
        self.proc = start_process(args, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: self.port_file.exists() and self.port_file.read_text().strip()
                       or self.proc.poll() is not None, 15, what="the fake upstream's port file")
            if self.proc.poll() is not None:
                raise RuntimeError(f"fake upstream exited: {self.log_path.read_text()}")
            self.port = int(self.port_file.read_text().strip())
            wait_until(lambda: self._healthy(), 10, what="the fake upstream")
        except BaseException:
            self.stop()
            raise

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _healthy(self) -> bool:
        try:
            return http_request(self.port, "GET", "/_fake/health", timeout=2).status == 200
        except OSError:
            return False

    def _call(self, method: str, path: str, obj=None):
        body = json.dumps(obj).encode() if obj is not None else None
        r = http_request(self.port, method, path, body=body,
                         headers={"Content-Type": "application/json"} if body else None)
        assert r.status == 200, r
        return r.json

    def reset(self) -> None:
        self._call("POST", "/_fake/reset")

    def script(self, scenarios=None, default=None, replace: bool = False):
        obj = {"scenarios": list(scenarios or [])}
        if default is not None:
            obj["default"] = default
        if replace:
            obj["replace"] = True
        return self._call("POST", "/_fake/script", obj)

    def requests(self, since: int = 0) -> list:
        return self._call("GET", f"/_fake/requests?since={since}")

    def chat_requests(self, marker: str | None = None) -> list:
        """Recorded chat completion requests, optionally only those whose last user message
        contains `marker`."""
        out = []
        for r in self.requests():
            if r["path"] not in ("/v1/chat/completions", "/chat/completions"):
                continue
            if marker is not None and marker not in last_user_text(r):
                continue
            out.append(r)
        return out

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def last_user_text(record: dict) -> str:
    body = record.get("body")
    if not isinstance(body, dict):
        return ""
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    return ""


def fake_default_answer(question: str) -> str:
    """The fake upstream's deterministic answer to a question without directives."""
    q = " ".join(question.split())[:40]
    return f"This is a fake answer to: {q}."


def fake_tokens_answer(n: int) -> str:
    return "".join(f"tok{i} " for i in range(n))


# --------------------------------------------------------------------------- the stack


BASE_ENV = {
    "RAGSTREAM_CHAT_MODEL": "fake-model",
    "OPENAI_API_KEY": API_KEY,
    "RAGSTREAM_PING_INTERVAL_MS": "300",
    "RAGSTREAM_MAX_RETRY_WAIT_MS": "100",
    "RAGSTREAM_MAX_MESSAGE_CHARS": "1000",
    "RAGSTREAM_MAX_BODY_BYTES": "65536",
    # No key file in most tests: serve loopback clients (checked through the FastCGI peer).
    "RAGSTREAM_TRUST_LOOPBACK": "1",
    "RAGSTREAM_THREADS": "64",
    "RAGSTREAM_GRACE_S": "2",
    "RAGSTREAM_MAP_SIZE_MB": "256",
    "RAGSTREAM_FIRST_TOKEN_TIMEOUT_MS": "20000",
    "RAGSTREAM_IDLE_TIMEOUT_MS": "20000",
    "RAGSTREAM_CONNECT_TIMEOUT_MS": "3000",
    "RAGSTREAM_LOG_LEVEL": "info",
}


class Stack:
    """N ragstream-worker processes on unix sockets plus nginx in front, from a private
    prefix, the way scripts/stack.sh does it."""

    def __init__(self, workdir: Path, upstream_url: str, workers: int = 2, env: dict | None = None):
        self.workdir = workdir
        self.sock_dir = workdir / "sock"
        self.log_dir = workdir / "logs"
        self.data_dir = workdir / "data"
        self.prefix = workdir / "nginx"
        for d in (self.sock_dir, self.log_dir, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.workers: list[subprocess.Popen] = []
        self.worker_logs: list[Path] = []
        self.nginx: subprocess.Popen | None = None
        self._files = []
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith(("RAGSTREAM_", "OPENAI_")):
                del self.env[k]
        self.env.update(BASE_ENV)
        self.env["RAGSTREAM_DATA_DIR"] = str(self.data_dir)
        if upstream_url:
            self.env["OPENAI_BASE_URL"] = upstream_url
        self.env.update(env or {})
        self.env = {k: v for k, v in self.env.items() if v is not None}
        try:
            self._start(workers)
        except BaseException:
            self.stop()
            raise

    def worker_socket(self, i: int) -> Path:
        """The unix socket of worker slot i (0-based)."""
        return self.sock_dir / f"worker-{i + 1}.sock"

    def _start(self, n: int) -> None:
        assert WORKER_BIN.exists(), f"{WORKER_BIN} is missing: run scripts/build.sh"
        sockets = []
        for i in range(1, n + 1):
            sock = self.worker_socket(i - 1)
            log = self.log_dir / f"worker-{i}.log"
            PRODUCT_LOG_FILES.append(log)
            f = open(log, "ab")
            self._files.append(f)
            p = start_process([str(WORKER_BIN), "--listen", f"unix:{sock}"], env=self.env,
                              stdout=f, stderr=f)
            self.workers.append(p)
            self.worker_logs.append(log)
            sockets.append(sock)
        for sock, p in zip(sockets, self.workers):
            wait_until(lambda: sock.exists() or p.poll() is not None, 10, what=f"{sock}")
            if p.poll() is not None:
                raise RuntimeError(f"worker exited with {p.returncode}: {self.logs_text()}")
        self.port = free_port()
        subprocess.run([str(RENDER_SCRIPT), str(self.prefix), str(self.port), *map(str, sockets)],
                       check=True, stdout=subprocess.DEVNULL)
        self.nginx_out = self.log_dir / "nginx.out"
        f = open(self.nginx_out, "ab")
        self._files.append(f)
        self.nginx = start_process(["nginx", "-p", f"{self.prefix}/", "-c", "conf/nginx.conf",
                                    "-e", "logs/error.log"], stdout=f, stderr=f)
        for name in ("error.log", "access.log"):
            PRODUCT_LOG_FILES.append(self.prefix / "logs" / name)
        PRODUCT_LOG_FILES.append(self.nginx_out)

        def ready():
            if self.nginx.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.nginx_out.read_text()}")
            try:
                return self.get("/api/health", timeout=2).status == 200
            except OSError:
                return False
        wait_until(ready, 15, interval=0.05, what="GET /api/health 200")

    # ---- requests

    def request(self, method: str, path: str, body=None, headers=None, timeout=30.0) -> Response:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        return http_request(self.port, method, path, body=body, headers=hdrs, timeout=timeout)

    def get(self, path: str, timeout=30.0) -> Response:
        return self.request("GET", path, timeout=timeout)

    def post_json(self, path: str, obj, timeout=60.0) -> Response:
        return self.request("POST", path, body=obj, timeout=timeout)

    def stream(self, body, **kw) -> StreamResult:
        return stream_request(self.port, body, **kw)

    def conversation(self, conv_id: str) -> dict:
        r = self.get(f"/api/conversations/{conv_id}")
        assert r.status == 200, r
        return r.json

    def conversation_ids(self, limit: int = 100) -> list[str]:
        r = self.get(f"/api/conversations?limit={limit}")
        assert r.status == 200, r
        return [c["id"] for c in r.json["conversations"]]

    # ---- processes

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.workers) and self.nginx is not None \
            and self.nginx.poll() is None

    def assert_alive(self) -> None:
        dead = [(i + 1, p.returncode) for i, p in enumerate(self.workers) if p.poll() is not None]
        assert not dead, f"workers died (number, exit code): {dead}\n{self.logs_text()[-3000:]}"
        assert self.nginx.poll() is None, "nginx died"
        r = self.get("/api/health")
        assert r.status == 200, r

    def logs_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.worker_logs if p.exists())

    def log_records(self) -> list[dict]:
        out = []
        for p in self.worker_logs:
            for line in p.read_text(errors="replace").splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def stop(self) -> dict:
        """Stops nginx and the workers; returns {name: exit code}."""
        codes = {}
        if self.nginx is not None:
            codes["nginx"] = stop_process(self.nginx, signal.SIGTERM, timeout=10)
        for i, p in enumerate(self.workers):
            codes[f"worker-{i + 1}"] = stop_process(p, signal.SIGTERM, timeout=15)
        for f in self._files:
            f.close()
        self._files = []
        return codes


# --------------------------------------------------------------------------- assertions


def assert_json_error(r: Response, status: int, code: str | None = None) -> dict:
    assert r.status == status, f"expected {status}, got {r!r}"
    ctype = r.header("Content-Type") or ""
    assert ctype.startswith("application/json"), f"Content-Type {ctype!r}: {r!r}"
    obj = r.json
    assert isinstance(obj, dict) and isinstance(obj.get("error"), dict), r
    err = obj["error"]
    assert isinstance(err.get("code"), str) and err["code"], r
    assert isinstance(err.get("message"), str) and err["message"], r
    if code is not None:
        assert err["code"] == code, r
    return err


def poll_message(stack: Stack, conv_id: str, pred, timeout: float = 15.0):
    """Polls GET /api/conversations/{id} until pred(conversation) is truthy."""
    box = {}

    def check():
        conv = stack.conversation(conv_id)
        box["conv"] = conv
        return pred(conv)
    try:
        wait_until(check, timeout, interval=0.1, what="the conversation state")
    except AssertionError as e:
        raise AssertionError(f"{e}; last state: {json.dumps(box.get('conv'), ensure_ascii=False)[:2000]}")
    return box["conv"]


# --------------------------------------------------------------------------- documents, corpus


SAMPLE_DIR = ROOT / "data" / "sample"
EVAL_QUESTIONS = ROOT / "data" / "eval" / "questions.jsonl"

# Extra env for a stack without an upstream model: the worker answers with the embedded
# extractive answerer (OPENAI_BASE_URL is omitted by passing an empty upstream URL).
OFFLINE_ENV = {
    "RAGSTREAM_CHAT_MODEL": None,
    "OPENAI_API_KEY": None,
    "RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS": "0",
}


def sample_title(text: str) -> str:
    """A sample document's title: its first line without the Markdown heading marks."""
    return text.splitlines()[0].lstrip("#").strip()


def sample_files() -> list[Path]:
    return sorted(SAMPLE_DIR.glob("*.md"))


def ingest_sample_corpus(stack: "Stack") -> dict:
    """POSTs every data/sample/*.md (title = first line); returns {file name: ingest response}."""
    out = {}
    for p in sample_files():
        text = p.read_text(encoding="utf-8")
        r = stack.post_json("/api/documents", {"title": sample_title(text), "text": text})
        assert r.status in (200, 201), (p.name, r)
        out[p.name] = r.json
    return out


def load_eval_questions() -> list[dict]:
    with open(EVAL_QUESTIONS, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def document_list(stack: "Stack") -> list[dict]:
    r = stack.get("/api/documents")
    assert r.status == 200, r
    return r.json["documents"]
