"""Routing by tenant across shards (issue 15, part 1): a front nginx rendered by
scripts/render_cluster_nginx.sh sends each request to its tenant's shard by the API key's
prefix (rsk_<tenant>_<secret>), to the shard's primary workers, and to its standby only when
no primary worker answers. Real nginx, real workers on TCP ports, each "host" with its own
LMDB store; which host served a request is read from the workers' own request log lines (by
the X-Request-Id nginx gave it)."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness import uniq

RENDER = harness.ROOT / "scripts" / "render_cluster_nginx.sh"


class Host:
    """A shard host: its own store and `workers` ragstream-worker processes on TCP ports."""

    def __init__(self, name: str, workdir: Path, keys_file: Path, workers: int,
                 extra_env: dict | None = None, ports: list[int] | None = None):
        self.name = name
        self.data = workdir / name / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGSTREAM_", "OPENAI_"))}
        self.env.update(harness.BASE_ENV)
        self.env.update({"RAGSTREAM_DATA_DIR": str(self.data), "RAGSTREAM_API_KEYS_FILE": str(keys_file),
                         "RAGSTREAM_TRUST_LOOPBACK": "0", **(extra_env or {})})
        self.addrs, self.procs, self.logs, self._files = [], [], [], []
        for i in range(workers):
            port = ports[i] if ports else harness.free_port()
            log = workdir / name / f"worker-{i + 1}.log"
            harness.PRODUCT_LOG_FILES.append(log)
            f = open(log, "ab")
            self._files.append(f)
            p = harness.start_process([str(harness.WORKER_BIN), "--listen", f"127.0.0.1:{port}"],
                                      env=self.env, stdout=f, stderr=f)
            self.addrs.append(f"127.0.0.1:{port}")
            self.procs.append(p)
            self.logs.append(log)
        for addr, p in zip(self.addrs, self.procs):
            port = int(addr.rsplit(":", 1)[1])
            harness.wait_until(lambda: p.poll() is not None or harness.tcp_accepts(port), 10, what=f"{name} {addr}")
            assert p.poll() is None, f"{name}: worker exited: {self.log_text()}"

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def served(self, request_id: str) -> list[dict]:
        """The request log lines this host's workers wrote for `request_id`."""
        out = []
        for line in self.log_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") == "request" and rec.get("request_id") == request_id:
                out.append(rec)
        return out

    def kill(self) -> None:
        """Every worker SIGKILLed, as when the host dies."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)

    def stop(self) -> None:
        for p in self.procs:
            harness.stop_process(p, signal.SIGTERM, timeout=15)
        for f in self._files:
            f.close()


def start_front(workdir: Path, cluster_file: Path) -> tuple[subprocess.Popen, int, Path]:
    """A front nginx rendered from `cluster_file` (render_cluster_nginx.sh --front) in
    workdir/front, on a free port: (its process, the port, the prefix)."""
    prefix = workdir / "front"
    port = harness.free_port()
    subprocess.run([str(RENDER), "--front", str(prefix), str(port), str(cluster_file)], check=True)
    out = open(workdir / "front.out", "ab")
    front = harness.start_process(["nginx", "-p", f"{prefix}/", "-c", "conf/nginx.conf",
                                   "-e", "logs/error.log"], stdout=out, stderr=out)
    harness.PRODUCT_LOG_FILES.append(prefix / "logs" / "error.log")
    harness.wait_until(lambda: front.poll() is not None or harness.tcp_accepts(port), 10, what="front nginx")
    assert front.poll() is None, (workdir / "front.out").read_text()
    return front, port, prefix


def start_agent(workdir: Path, cluster_file: Path, prefix: Path,
                nats: harness.NatsServers) -> tuple[subprocess.Popen, Path, Path]:
    """scripts/cluster_agent.sh keeping the front in `prefix` in step with the leases and moves,
    looking every 0.3 s: (its process, the include it writes, its log)."""
    include = prefix / "conf" / "ragstream_cluster.conf"
    log = workdir / "agent.log"
    agent = harness.start_process(
        [str(AGENT), "--cluster", str(cluster_file), "--out", str(include), "--nats", nats.url,
         "--interval", "0.3", "--ragstream", str(CLI),
         "--reload", f"nginx -p {prefix}/ -c conf/nginx.conf -e logs/error.log -s reload"],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    return agent, include, log


@pytest.fixture
def cluster(tmp_path):
    """Shard a: primary a1 (2 workers), standby a2 (1 worker). Shard b: primary b1, no standby,
    and the default shard. Tenants: alpha on a, team_b.x (a '_' in its name) on b; `legacy` has
    a key made before prefixes (rsk_<64 hex>), which goes to the default shard."""
    keys_file = tmp_path / "keys"
    keys = harness.make_api_keys(keys_file, "alpha", "team_b.x")
    keys["legacy"] = "rsk_" + secrets.token_hex(32)
    with open(keys_file, "a") as f:
        f.write(f"legacy:{hashlib.sha256(keys['legacy'].encode()).hexdigest()}\n")
    hosts = {}
    front = None
    try:
        hosts["a1"] = Host("a1", tmp_path, keys_file, 2)
        hosts["a2"] = Host("a2", tmp_path, keys_file, 1)
        hosts["b1"] = Host("b1", tmp_path, keys_file, 1)
        cluster_file = tmp_path / "cluster.conf"
        cluster_file.write_text(
            "# two shards\n"
            f"shard a {','.join(hosts['a1'].addrs)} {','.join(hosts['a2'].addrs)}\n"
            f"shard b {hosts['b1'].addrs[0]} -\n"
            "tenant alpha a\n"
            "tenant team_b.x b\n"
            "default b\n")
        front, port, prefix = start_front(tmp_path, cluster_file)
        yield {"port": port, "keys": keys, "hosts": hosts, "cluster_file": cluster_file,
               "prefix": prefix}
    finally:
        if front is not None:
            harness.stop_process(front, signal.SIGTERM, timeout=10)
        for h in hosts.values():
            h.stop()


def call(cluster, tenant, method, path, body=None):
    headers = {"Authorization": f"Bearer {cluster['keys'][tenant]}"} if tenant else {}
    if body is not None:
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    r = harness.http_request(cluster["port"], method, path, body=body, headers=headers)
    rid = r.header("X-Request-Id")
    assert rid, r
    return r, rid


def served_by(cluster, rid: str) -> list[str]:
    return [name for name, h in cluster["hosts"].items() if h.served(rid)]


def test_each_tenant_reaches_its_own_shard(cluster):
    text = "The alpha canary: " + uniq()
    r, rid = call(cluster, "alpha", "POST", "/api/documents", {"title": "Alpha", "text": text})
    assert r.status in (200, 201), r
    assert served_by(cluster, rid) == ["a1"]
    assert cluster["hosts"]["a1"].served(rid)[0]["tenant"] == "alpha"

    r, rid = call(cluster, "team_b.x", "GET", "/api/documents")
    assert r.status == 200 and r.json["documents"] == [], r  # shard b has none of alpha's
    assert served_by(cluster, rid) == ["b1"]

    # A key made before prefixes, and a request without a key: the default shard.
    r, rid = call(cluster, "legacy", "GET", "/api/documents")
    assert r.status == 200, r
    assert served_by(cluster, rid) == ["b1"]
    r, rid = call(cluster, None, "GET", "/api/documents")
    assert r.status == 401 and served_by(cluster, rid) == ["b1"], r

    # alpha's document is on its shard: listed there, searchable there.
    r, rid = call(cluster, "alpha", "POST", "/api/search", {"query": "alpha canary"})
    assert r.status == 200 and r.json["results"] and text in r.json["results"][0]["text"], r
    assert served_by(cluster, rid) == ["a1"]


def test_a_prefix_is_a_route_not_a_credential(cluster):
    # A made-up key naming alpha is routed to alpha's shard, which refuses it.
    forged = "rsk_alpha_" + secrets.token_hex(32)
    r = harness.http_request(cluster["port"], "GET", "/api/documents",
                             headers={"Authorization": f"Bearer {forged}"})
    assert r.status == 401, r
    assert served_by(cluster, r.header("X-Request-Id")) == ["a1"]
    # team_b.x's real key with alpha's name in front is another key: unknown everywhere.
    secret = cluster["keys"]["team_b.x"].rsplit("_", 1)[1]
    r = harness.http_request(cluster["port"], "GET", "/api/documents",
                             headers={"Authorization": f"Bearer rsk_alpha_{secret}"})
    assert r.status == 401, r
    assert served_by(cluster, r.header("X-Request-Id")) == ["a1"]


def test_streams_pass_through_the_front(cluster):
    r = harness.stream_request(cluster["port"], {"message": "What is in the alpha note?"},
                               headers={"Authorization": f"Bearer {cluster['keys']['alpha']}"})
    assert r.status == 200 and r.complete, r
    assert len(r.token_events) >= 1 and len(r.done_events) == 1, r
    # Token by token: the front does not buffer the stream (fastcgi_buffering off).
    assert r.events[0].t <= r.done_events[0].t
    assert served_by(cluster, r.header("X-Request-Id")) == ["a1"]


def test_the_standby_takes_requests_when_the_primary_is_down(cluster):
    hosts = cluster["hosts"]
    r, rid = call(cluster, "alpha", "GET", "/api/documents")
    assert r.status == 200 and served_by(cluster, rid) == ["a1"]
    hosts["a1"].kill()
    # Connection refused at every primary worker: nginx moves on to the backup (the request
    # never reached a worker, so even a POST may be retried).
    for method, path, body in (("GET", "/api/documents", None),
                               ("POST", "/api/documents", {"title": "After", "text": "After the failover."})):
        r, rid = call(cluster, "alpha", method, path, body)
        assert r.status in (200, 201), r
        assert served_by(cluster, rid) == ["a2"], (method, path)
    # The other shard never noticed.
    r, rid = call(cluster, "team_b.x", "GET", "/api/documents")
    assert r.status == 200 and served_by(cluster, rid) == ["b1"]


def test_a_bad_cluster_file_is_refused_and_the_routing_left_alone(cluster, tmp_path):
    include = cluster["prefix"] / "conf" / "ragstream_cluster.conf"
    before = include.read_text()
    bad = tmp_path / "bad.conf"
    for text, says in (
            ("shard a 127.0.0.1:1 -\ntenant alpha c\ndefault a\n", "line 2: no shard c"),
            ("shard a 127.0.0.1:1 -\n", "no default shard"),
            ("shard a localhost -\ndefault a\n", "line 1: PRIMARY must be HOST:PORT"),
            ("shard a 127.0.0.1:1 -\ntenant Alpha a\ntenant alpha a\ndefault a\n", "listed twice"),
            ("shard a 127.0.0.1:1 -\ndefault a\nreplica a\n", "line 3: unknown entry")):
        bad.write_text(text)
        out = subprocess.run([str(RENDER), str(bad), str(include)], capture_output=True, text=True)
        assert out.returncode == 2, (text, out)
        assert says in out.stderr, (says, out.stderr)
        assert include.read_text() == before
    assert not list(include.parent.glob("ragstream_cluster.conf.*"))  # no temporary left


AGENT = harness.ROOT / "scripts" / "cluster_agent.sh"
CLI = harness.ROOT / "build" / "ragstream"


def leased_env(nats: harness.NatsServers, node: str) -> dict:
    return {"RAGSTREAM_CLUSTER_ROLE": "primary" if node == "a1" else "standby", "RAGSTREAM_SHARD": "a",
            "RAGSTREAM_NATS_URL": nats.url, "RAGSTREAM_LOG_REPLICAS": "1", "RAGSTREAM_NODE": node,
            "RAGSTREAM_LEASE_MS": "2000"}


def leaders(cluster_file: Path, nats: harness.NatsServers) -> str:
    out = subprocess.run([str(CLI), "cluster", "leaders", "--cluster", str(cluster_file), "--nats", nats.url],
                         capture_output=True, text=True, timeout=30)
    return out.stdout


def test_the_agent_puts_the_lease_holder_first(tmp_path):
    """Shard a in cluster mode (a1 primary, a2 standby, one nats-server), a front nginx and
    scripts/cluster_agent.sh watching the leases. After a1 dies a2 holds the lease and the agent
    lists a2 first; when a1 returns, as a standby, a POST still reaches a2 on its first try
    (without the agent nginx would send it to a1, which answers 503, and nginx does not retry
    a POST)."""
    keys_file = tmp_path / "keys"
    keys = harness.make_api_keys(keys_file, "alpha")
    nats = harness.NatsServers(tmp_path / "nats")
    hosts, front, agent = {}, None, None
    try:
        hosts["a1"] = Host("a1", tmp_path, keys_file, 2, leased_env(nats, "a1"))
        cluster_file = tmp_path / "cluster.conf"
        cluster_file.write_text(f"shard a {','.join(hosts['a1'].addrs)} PENDING\ntenant alpha a\ndefault a\n")
        harness.wait_until(lambda: leaders(cluster_file, nats) == "a a1\n", 40, interval=0.2,
                           what="a1 to hold shard a's lease")
        hosts["a2"] = Host("a2", tmp_path, keys_file, 1, leased_env(nats, "a2"))
        a1, a2 = ",".join(hosts["a1"].addrs), ",".join(hosts["a2"].addrs)
        cluster_file.write_text(f"shard a {a1} {a2}\ntenant alpha a\ndefault a\n"
                                f"node a1 {a1}\nnode a2 {a2}\n")
        front, port, prefix = start_front(tmp_path, cluster_file)
        agent, include, agent_log = start_agent(tmp_path, cluster_file, prefix, nats)
        cl = {"port": port, "keys": keys, "hosts": hosts}

        def first_server() -> str:
            text = include.read_text()
            return text.split("upstream ragstream_shard_a {", 1)[1].split("server ", 1)[1].split()[0]

        assert first_server() == hosts["a1"].addrs[0]
        r, rid = call(cl, "alpha", "POST", "/api/documents", {"title": "Before", "text": "Before the failover."})
        assert r.status in (200, 201) and served_by(cl, rid) == ["a1"], r

        hosts["a1"].kill()
        harness.wait_until(lambda: first_server() == hosts["a2"].addrs[0], 30, interval=0.2,
                           what="the agent to put a2 first: " + agent_log.read_text()[-1500:])
        assert "leads a2" in agent_log.read_text()
        assert f"{hosts['a1'].addrs[0]} backup" in include.read_text()

        # a1 returns on its ports, as a standby now (the lease is a2's).
        ports = [int(a.rsplit(":", 1)[1]) for a in hosts["a1"].addrs]
        hosts["a1"].stop()
        hosts["a1"] = Host("a1", tmp_path, keys_file, 2, leased_env(nats, "a1"), ports=ports)
        time.sleep(1)  # the reload's new nginx workers have taken over
        for i in range(3):
            r, rid = call(cl, "alpha", "POST", "/api/documents", {"title": f"After {i}", "text": f"After {i}."})
            assert r.status in (200, 201), (r, agent_log.read_text()[-1500:])
            assert served_by(cl, rid) == ["a2"]
        assert "reloaded" in agent_log.read_text()
        # The agent wrote nothing more once the routing matched the leases.
        assert agent_log.read_text().count("routing rendered") <= 2
    finally:
        if agent is not None:
            harness.stop_process(agent, signal.SIGTERM, timeout=10)
        if front is not None:
            harness.stop_process(front, signal.SIGTERM, timeout=10)
        for h in hosts.values():
            h.stop()
        nats.stop()


def test_the_agent_checks_its_arguments(tmp_path):
    out = subprocess.run([str(AGENT), "--cluster", str(tmp_path / "none.conf"), "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "cannot read" in out.stderr
    out = subprocess.run([str(AGENT), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Usage: cluster_agent.sh" in out.stdout
    assert "set -euo" not in out.stdout
