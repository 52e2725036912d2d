#!/usr/bin/env python3
"""The cluster test (issue 15): hosts as network namespaces joined by a bridge, started and torn
down here; traffic stays inside them. Run by tests/cluster/run.sh (as root).

  rs-sw       the switch: a bridge every other namespace is plugged into (10.77.0.0/24)
  rs-front    the front nginx (scripts/render_cluster_nginx.sh) and this driver
  rs-n1..n3   three nats-servers, one JetStream cluster: the shard logs and the leases (R3)
  rs-a1 rs-a2 shard a: primary and standby, each its own workers and LMDB store
  rs-b1 rs-b2 shard b: the same

Streams from three tenants (two on shard a, one on shard b) run all the while. Then:
  1. every process of rs-a1 is SIGKILLed (the whole host dies);
  2. later, rs-b1's link to the switch goes down (the host lives on, cut off);
  3. with rs-b1 back and scripts/cluster_agent.sh keeping the front in step, tenant apex moves
     from shard a to shard b (`ragstream cluster move`, run in rs-a2) while the streams go on.
Checks:
  - every exchange whose done event a client received is on its shard's new primary, with
    the answer it streamed, once (its conversation holds exactly that question and answer);
  - new requests for each failed shard succeed within the recovery time stated below;
  - the other shard never noticed (no failed request while the first failover ran);
  - rs-b1, reconnected, finds the lease taken, stays a standby and converges byte for byte;
  - the moved tenant is routed to shard b, every exchange whose done event arrived during the
    move is stored (the moved tenant's on shard b), and nothing of it is left on rs-a2.
Prints each check; exits 1 if any fails.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import harness  # noqa: E402

LEASE_MS = 3000
# Stated recovery: the lease lapses LEASE_MS after the last renewal (renewals every quarter),
# the standby notices within a quarter, applies the log's end and takes it; nginx needs a
# connect timeout (5 s, fastcgi_connect_timeout) to give up on a host cut off by a link.
RECOVERY_BOUND_S = LEASE_MS / 1000 * 1.5 + 6
SUBNET = "10.77.0"
HOSTS = {"front": 2, "n1": 11, "n2": 12, "n3": 13, "a1": 21, "a2": 22, "b1": 31, "b2": 32}
FRONT_PORT = 8080
WORKERS = 2

results: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    results.append((name, ok, detail))
    print(f"{'ok  ' if ok else 'FAIL'} - {name}{': ' + detail if detail else ''}", flush=True)


def sh(*args, check=True, quiet=False):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def ns(name: str) -> str:
    return f"rs-{name}"


def in_ns(name: str, args: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns(name), *args]


def ip_of(host: str) -> str:
    return f"{SUBNET}.{HOSTS[host]}"


class Net:
    """The namespaces, the bridge and a veth pair per host."""

    def __init__(self):
        self.teardown()
        sh("ip", "netns", "add", ns("sw"))
        sh("ip", "netns", "exec", ns("sw"), "ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "netns", "exec", ns("sw"), "ip", "link", "set", "br0", "up")
        sh("ip", "netns", "exec", ns("sw"), "ip", "link", "set", "lo", "up")
        for host in HOSTS:
            sh("ip", "netns", "add", ns(host))
            sh("ip", "link", "add", f"v-{host}", "netns", ns("sw"), "type", "veth", "peer", "name", "eth0",
               "netns", ns(host))
            sh("ip", "netns", "exec", ns("sw"), "ip", "link", "set", f"v-{host}", "master", "br0")
            sh("ip", "netns", "exec", ns("sw"), "ip", "link", "set", f"v-{host}", "up")
            sh("ip", "netns", "exec", ns(host), "ip", "addr", "add", f"{ip_of(host)}/24", "dev", "eth0")
            sh("ip", "netns", "exec", ns(host), "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns(host), "ip", "link", "set", "lo", "up")

    @staticmethod
    def link(host: str, up: bool) -> None:
        sh("ip", "netns", "exec", ns("sw"), "ip", "link", "set", f"v-{host}", "up" if up else "down")

    @staticmethod
    def kill_host(host: str) -> int:
        pids = [p for p in sh("ip", "netns", "pids", ns(host), check=False).stdout.split()
                if int(p) != os.getpid()]
        for p in pids:
            try:
                os.kill(int(p), signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)

    @staticmethod
    def enter(host: str) -> None:
        """Moves this thread (and the threads it starts later) into the host's namespace."""
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        fd = os.open(f"/var/run/netns/{ns(host)}", os.O_RDONLY)
        try:
            if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    @staticmethod
    def teardown() -> None:
        for host in list(HOSTS) + ["sw"]:
            if sh("ip", "netns", "pids", ns(host), check=False).returncode == 0:
                Net.kill_host(host)
            sh("ip", "netns", "del", ns(host), check=False)


class Cluster:
    def __init__(self, work: Path, net: Net):
        self.work, self.net = work, net
        self.procs: list[subprocess.Popen] = []
        self.files = []
        nats_urls = ",".join(f"nats://{ip_of(n)}:4222" for n in ("n1", "n2", "n3"))
        routes = ",".join(f"nats://{ip_of(n)}:6222" for n in ("n1", "n2", "n3"))
        for n in ("n1", "n2", "n3"):
            d = work / n
            d.mkdir()
            self.start(n, [shutil.which("nats-server"), "-js", "-sd", str(d / "js"), "-a", ip_of(n),
                           "-p", "4222", "-server_name", n, "-cluster_name", "ragstream",
                           "-cluster", f"nats://{ip_of(n)}:6222", "-routes", routes], d / "nats.log")
        self.keys_file = work / "keys"
        self.keys = harness.make_api_keys(self.keys_file, "alpha", "apex", "bravo")
        self.data = {}
        for host, shard, role in (("a1", "a", "primary"), ("a2", "a", "standby"),
                                  ("b1", "b", "primary"), ("b2", "b", "standby")):
            self.start_workers(host, shard, role, nats_urls)
        self.nats_urls = nats_urls
        cluster_file = self.cluster_file = work / "cluster.conf"
        cluster_file.write_text(
            "".join(f"shard {s} {self.addrs(s + '1')} {self.addrs(s + '2')}\n" for s in ("a", "b")) +
            "tenant alpha a\ntenant apex a\ntenant bravo b\ndefault b\n" +
            "".join(f"node {h} {self.addrs(h)}\n" for h in ("a1", "a2", "b1", "b2")))
        prefix = self.prefix = work / "front"
        sh(str(ROOT / "scripts" / "render_cluster_nginx.sh"), "--front", str(prefix), str(FRONT_PORT),
           str(cluster_file))
        self.start("front", ["nginx", "-p", f"{prefix}/", "-c", "conf/nginx.conf", "-e", "logs/error.log"],
                   work / "front.out")

    def addrs(self, host: str) -> str:
        return ",".join(f"{ip_of(host)}:{9001 + i}" for i in range(WORKERS))

    def start(self, host: str, args: list[str], log: Path) -> subprocess.Popen:
        f = open(log, "ab")
        self.files.append(f)
        p = subprocess.Popen(in_ns(host, args), stdout=f, stderr=f, start_new_session=True)
        self.procs.append(p)
        return p

    def start_workers(self, host: str, shard: str, role: str, nats_urls: str) -> None:
        d = self.work / host
        d.mkdir(exist_ok=True)
        self.data[host] = d / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGSTREAM_", "OPENAI_"))}
        env.update({k: v for k, v in harness.BASE_ENV.items() if v is not None})
        for k, v in harness.OFFLINE_ENV.items():
            env.pop(k, None) if v is None else env.__setitem__(k, v)
        env.update({"RAGSTREAM_DATA_DIR": str(self.data[host]), "RAGSTREAM_API_KEYS_FILE": str(self.keys_file),
                    "RAGSTREAM_TRUST_LOOPBACK": "0", "RAGSTREAM_CLUSTER_ROLE": role, "RAGSTREAM_SHARD": shard,
                    "RAGSTREAM_NODE": host, "RAGSTREAM_NATS_URL": nats_urls, "RAGSTREAM_LOG_REPLICAS": "3",
                    "RAGSTREAM_LEASE_MS": str(LEASE_MS), "RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS": "20",
                    "RAGSTREAM_PERSIST_INTERVAL_MS": "200", "RAGSTREAM_ORPHAN_TIMEOUT_S": "3"})
        for i in range(WORKERS):
            f = open(d / f"worker-{i + 1}.log", "ab")
            self.files.append(f)
            p = subprocess.Popen(in_ns(host, [str(harness.WORKER_BIN), "--listen", f"{ip_of(host)}:{9001 + i}"]),
                                 stdout=f, stderr=f, env=env, start_new_session=True)
            self.procs.append(p)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for f in self.files:
            f.close()


class Traffic:
    """A client per tenant, streaming questions through the front, each in a new conversation."""

    SHARD = {"alpha": "a", "apex": "a", "bravo": "b"}

    def __init__(self, keys: dict):
        self.keys = keys
        self.stop_flag = False
        self.lock = threading.Lock()
        self.done: list[dict] = []      # exchanges whose done event arrived
        self.attempts: list[dict] = []  # every attempt: tenant, t, ok
        self.threads = [threading.Thread(target=self.client, args=(t,), daemon=True) for t in self.SHARD]

    def start(self):
        for t in self.threads:
            t.start()

    def client(self, tenant: str):
        i = 0
        while not self.stop_flag:
            i += 1
            t0 = time.monotonic()
            ok = False
            try:
                r = harness.stream_request(FRONT_PORT, {"message": f"{tenant} asks question {i}: where do herons nest?"},
                                           headers={"Authorization": f"Bearer {self.keys[tenant]}"}, timeout=10)
                # A done event that reports its answer complete (one whose final save was refused,
                # during a move's pause, says so in its status).
                if r.status == 200 and r.done is not None and r.first and r.done.get("status") == "complete":
                    ok = True
                    with self.lock:
                        self.done.append({"tenant": tenant, "conversation": r.first["conversation_id"],
                                          "text": r.text, "t": time.monotonic()})
            except OSError:
                pass
            with self.lock:
                self.attempts.append({"tenant": tenant, "t0": t0, "t": time.monotonic(), "ok": ok})
            if not ok:
                time.sleep(0.2)

    def stop(self):
        self.stop_flag = True
        for t in self.threads:
            t.join(timeout=40)

    def failures(self, shard: str, t_from: float, t_to: float) -> int:
        with self.lock:
            return sum(1 for a in self.attempts if self.SHARD[a["tenant"]] == shard and not a["ok"]
                       and t_from <= a["t0"] <= t_to)


def recovery(key: str, since: float, limit_s: float) -> float | None:
    """New requests, one after another from now on, until one is answered whole: its end,
    in seconds after `since` (None if none within limit_s). Measures what a client that
    arrives after the failure sees, not a stream that was cut by it."""
    deadline = since + limit_s
    i = 0
    while time.monotonic() < deadline:
        i += 1
        try:
            r = harness.stream_request(FRONT_PORT, {"message": f"probe {i}: are you there?"},
                                       headers={"Authorization": f"Bearer {key}"}, timeout=10)
            if r.status == 200 and r.done is not None:
                return time.monotonic() - since
        except OSError:
            pass
        time.sleep(0.1)
    return None


def get(port: int, key: str, path: str):
    return harness.http_request(port, "GET", path, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true")
    a = ap.parse_args()
    phase_s = 6 if a.short else 20
    for tool in ("ip", "nginx", "nats-server"):
        assert shutil.which(tool), f"{tool} is missing"
    assert os.geteuid() == 0, "the cluster test makes network namespaces: run it as root"
    harness.WORKER_BIN.exists() or sys.exit(f"{harness.WORKER_BIN} is missing: run scripts/build.sh")
    work = Path(tempfile.mkdtemp(prefix="ragstream-cluster."))
    net = Net()
    cluster = None
    traffic = None
    try:
        cluster = Cluster(work, net)
        Net.enter("front")  # the driver is a client in the front's namespace from here on

        def ready():
            for tenant in ("alpha", "bravo"):
                try:
                    r = harness.http_request(FRONT_PORT, "POST", "/api/documents",
                                             body=json.dumps({"title": f"Herons {tenant}",
                                                              "text": "Herons nest in reeds by the lake. " * 30}).encode(),
                                             headers={"Authorization": f"Bearer {cluster.keys[tenant]}",
                                                      "Content-Type": "application/json"}, timeout=10)
                except OSError:
                    return False
                if r.status not in (200, 201):
                    return False
            return True
        harness.wait_until(ready, 90, interval=0.5, what="both shards to take writes through the front")
        check("both shards take writes through the front nginx", True)
        leads = lambda host: "this host leads its shard" in "".join(  # noqa: E731
            p.read_text(errors="replace") for p in (work / host).glob("worker-*.log"))
        check("each shard's preferred primary (the host nginx lists first) holds its lease",
              leads("a1") and leads("b1") and not leads("a2") and not leads("b2"))

        traffic = Traffic(cluster.keys)
        traffic.start()
        time.sleep(phase_s)

        # 1. Shard a's primary host dies: every process in its namespace SIGKILLed.
        killed_at = time.monotonic()
        n = Net.kill_host("a1")
        print(f"     killed {n} processes of rs-a1", flush=True)
        took = recovery(cluster.keys["apex"], killed_at, RECOVERY_BOUND_S + 20)
        time.sleep(phase_s)
        check(f"shard a answers again within {RECOVERY_BOUND_S:.0f} s of its primary's death",
              took is not None and took <= RECOVERY_BOUND_S, f"{took:.1f} s" if took else "never")
        b_fail = traffic.failures("b", killed_at, time.monotonic())
        check("shard b never noticed shard a's failover", b_fail == 0, f"{b_fail} failed requests")

        # 2. Shard b's primary is cut off from the switch (it lives on).
        cut_at = time.monotonic()
        Net.link("b1", False)
        took_b = recovery(cluster.keys["bravo"], cut_at, RECOVERY_BOUND_S + 20)
        time.sleep(phase_s)
        check(f"shard b answers again within {RECOVERY_BOUND_S:.0f} s of its primary's link going down",
              took_b is not None and took_b <= RECOVERY_BOUND_S, f"{took_b:.1f} s" if took_b else "never")
        traffic.stop()

        # Every exchange whose done event arrived is on its shard's (new) primary, once.
        missing, wrong = [], []
        for ex in traffic.done:
            r = get(FRONT_PORT, cluster.keys[ex["tenant"]], f"/api/conversations/{ex['conversation']}")
            if r.status != 200:
                missing.append((ex["conversation"], r.status))
                continue
            msgs = r.json["messages"]
            if [m["role"] for m in msgs] != ["user", "assistant"] or msgs[1]["status"] != "complete" \
                    or msgs[1]["content"] != ex["text"]:
                wrong.append(ex["conversation"])
        check(f"every exchange whose done event was received is stored on the new primaries ({len(traffic.done)})",
              not missing and len(traffic.done) > 0, f"missing: {missing[:3]}" if missing else "")
        check("no exchange stored twice or changed", not wrong, f"{wrong[:3]}" if wrong else "")
        per_shard = {s: sum(1 for e in traffic.done if Traffic.SHARD[e["tenant"]] == s) for s in ("a", "b")}
        print(f"     exchanges done: {per_shard}; attempts {len(traffic.attempts)}", flush=True)

        # b1 reconnected: the lease is b2's; b1 stays a standby and catches up byte for byte.
        Net.link("b1", True)
        def seq(host):
            return harness.applied_seq(cluster.data[host])
        try:
            harness.wait_until(lambda: seq("b1") == seq("b2") > 0, 60, interval=0.5, what="b1 to catch up")
            converged = True
        except AssertionError:
            converged = False
        check("the cut-off primary, reconnected, applies what it missed", converged,
              f"b1 at {seq('b1')}, b2 at {seq('b2')}")
        logs = "".join(p.read_text(errors="replace") for p in (work / "b1").glob("worker-*.log"))
        check("... and does not lead (the lease is the standby's now)",
              "this host does not lead its shard" in logs or "the lease is held by b2" in logs)

        # 3. A tenant moves to the other shard under load: apex, from a (a2 leads it now) to b.
        #    The agent keeps the front's routing in step with the leases and the move.
        include = cluster.prefix / "conf" / "ragstream_cluster.conf"
        agent_log = work / "agent.log"
        cluster.start("front", [str(ROOT / "scripts" / "cluster_agent.sh"), "--cluster", str(cluster.cluster_file),
                                "--out", str(include), "--nats", cluster.nats_urls, "--interval", "0.5",
                                "--reload", f"nginx -p {cluster.prefix}/ -c conf/nginx.conf -e logs/error.log -s reload"],
                      agent_log)
        harness.wait_until(lambda: "reloaded" in agent_log.read_text(errors="replace"), 30, interval=0.2,
                           what="the agent's first routing")
        time.sleep(1)
        traffic = Traffic(cluster.keys)
        traffic.start()
        time.sleep(phase_s / 2)
        moved_at = time.monotonic()
        move = subprocess.run(in_ns("a2", [str(ROOT / "build" / "ragstream"), "cluster", "move", "apex", "--to", "b",
                                           "--cluster", str(cluster.cluster_file), "--data-dir", str(cluster.data["a2"]),
                                           "--nats", cluster.nats_urls, "--timeout", "120"]),
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "RAGSTREAM_LOG_REPLICAS": "3"})
        print(f"     {move.stdout.strip()}", flush=True)
        routed = False
        if move.returncode == 0:
            try:
                harness.wait_until(lambda: '"apex" ragstream_shard_b' in include.read_text(), 30, interval=0.2,
                                   what="the agent to route apex to b")
                routed = True
            except AssertionError:
                pass
        time.sleep(phase_s / 2)
        traffic.stop()
        during = [e for e in traffic.done if e["tenant"] == "apex" and e["t"] >= moved_at]
        lost = []
        for ex in traffic.done:
            r = get(FRONT_PORT, cluster.keys[ex["tenant"]], f"/api/conversations/{ex['conversation']}")
            if r.status != 200 or r.json["messages"][-1].get("content") != ex["text"]:
                lost.append((ex["tenant"], ex["conversation"], r.status))
        check("a tenant moves to the other shard under load, and the front routes it there",
              move.returncode == 0 and routed, move.stderr.strip()[-300:])
        check(f"every exchange whose done event was received is stored, the moved tenant's on its new shard "
              f"({len(traffic.done)}, {len(during)} of them the moved tenant's after the move began)",
              not lost and len(during) > 0, f"lost: {lost[:3]}" if lost else "")
        # The promoted hosts' stores record what they were made with (a host that led only after
        # its start writes it then), which the move checks against the target's.
        def identity(host):
            meta = harness.store_dump(cluster.data[host])["index_meta"]
            return meta.get(b"shards"), meta.get(b"embedder")
        ids = {h: identity(h) for h in ("a2", "b2")}
        check("the new primaries' stores record their index's identity",
              all(v[0] and v[1] for v in ids.values()),
              f"{ids}")
        left = harness.tenant_keys(cluster.data["a2"], "apex")
        check("nothing of the moved tenant is left on its old shard's primary", not left,
              f"{ {db: len(k) for db, k in left.items()} }")
    except Exception as e:  # noqa: BLE001 -- a failed step is a failed check, then teardown
        check("the run completed", False, f"{type(e).__name__}: {e}")
    finally:
        if traffic:
            traffic.stop_flag = True
        if cluster:
            cluster.stop()
        net.teardown()
        if all(ok for _, ok, _ in results):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"     logs kept in {work}", flush=True)
    failed = [n for n, ok, _ in results if not ok]
    print(f"{len(results) - len(failed)} of {len(results)} checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
