"""Moving a tenant between shards under load (issue 15, part 4): two shards in cluster mode (a
and b, one primary each, one real nats-server), a front nginx routing tenants by key, and
scripts/cluster_agent.sh keeping nginx in step with the cluster file. While clients keep adding
documents and streaming answers for the moving tenant (and another tenant of the same shard),
`ragstream cluster move alpha --to b` runs on shard a's host. Afterwards every write a client
was told succeeded is on shard b, served through the front; nothing of the tenant is left in
shard a's store (read with python3-lmdb) but the mark that refuses it; the other tenant never
noticed."""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import harness
from test_cluster_routing import CLI, Host, call, leaders, served_by, start_agent, start_front


def shard_env(nats: harness.NatsServers, shard: str, node: str) -> dict:
    return {"RAGSTREAM_CLUSTER_ROLE": "primary", "RAGSTREAM_SHARD": shard, "RAGSTREAM_NATS_URL": nats.url,
            "RAGSTREAM_LOG_REPLICAS": "1", "RAGSTREAM_NODE": node, "RAGSTREAM_LEASE_MS": "2000"}


class Load:
    """Clients writing for `tenant` through the front until stopped: documents, and every third
    request a streamed answer. Keeps what each was told."""

    def __init__(self, cl: dict, tenant: str):
        self.cl, self.tenant = cl, tenant
        self.docs, self.answers, self.refused, self.other, self.cut = [], [], [], [], []
        self.unsaved = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                self._one(i)
            except OSError as e:  # a connection cut (nginx reloading): the outcome is unknown
                self.cut.append(repr(e))
            time.sleep(0.02)

    def _one(self, i):
        if i % 3 == 0:
            body = json.dumps({"message": f"What does note {i} of {self.tenant} say about herons?"}).encode()
            r = harness.http_request(self.cl["port"], "POST", "/api/chat/message/stream", body=body,
                                     headers={"Authorization": f"Bearer {self.cl['keys'][self.tenant]}",
                                              "Content-Type": "application/json"}, timeout=60)
            text = r.body.decode(errors="replace")
            events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
            done = [e for e in events if e.get("done")]
            if r.status == 200 and done and done[-1].get("status") == "complete":
                self.answers.append(events[0]["conversation_id"])
            elif r.status == 200 and done:
                # Streaming when the writes paused: its final save was refused, and the done
                # event says so (the answer is not reported complete).
                self.unsaved.append(done[-1])
            elif r.status == 503:
                self.refused.append(r.body)
            else:
                self.other.append((r.status, text[:300]))
            return
        r, _ = call(self.cl, self.tenant, "POST", "/api/documents",
                    {"title": f"{self.tenant} note {i}",
                     "text": f"Note {i} of {self.tenant}: the grey heron waits in the reeds. " * 8})
        if r.status in (200, 201):
            self.docs.append(r.json["id"])
        elif r.status == 503:
            self.refused.append(r.body)
        else:
            self.other.append((r.status, r.body[:300]))

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=120)


def add_bulk(port: int, key: str, tag: str) -> list[str]:
    """60 documents of 160 lines each (about 600 kB, some 900 chunks) in one batch request
    through the front; their ids. `tag` keeps one call's texts apart from another's."""
    lines = [json.dumps({"title": f"Bulk {tag}{i}",
                         "text": " ".join(f"Bulk note {tag}{i} line {k}: the heron wades past reed "
                                          f"{tag}{i * 100 + k}." for k in range(160))})
             for i in range(60)]
    r = harness.http_request(port, "POST", "/api/documents/batch", body="\n".join(lines).encode(),
                             headers={"Authorization": f"Bearer {key}",
                                      "Content-Type": "application/x-ndjson"}, timeout=300)
    assert r.status == 200 and r.json["created"] == 60, r
    return [x["id"] for x in r.json["documents"]]


def test_a_tenant_moves_under_load_and_leaves_nothing_behind(tmp_path):
    keys_file = tmp_path / "keys"
    keys = harness.make_api_keys(keys_file, "alpha", "beta")
    nats = harness.NatsServers(tmp_path / "nats")
    hosts, front, agent = {}, None, None
    try:
        hosts["a1"] = Host("a1", tmp_path, keys_file, 2, shard_env(nats, "a", "a1"))
        hosts["b1"] = Host("b1", tmp_path, keys_file, 1, shard_env(nats, "b", "b1"))
        a1, b1 = ",".join(hosts["a1"].addrs), ",".join(hosts["b1"].addrs)
        cluster_file = tmp_path / "cluster.conf"
        cluster_file.write_text(f"shard a {a1} -\nshard b {b1} -\ntenant alpha a\ntenant beta a\ndefault a\n"
                                f"node a1 {a1}\nnode b1 {b1}\n")
        harness.wait_until(lambda: leaders(cluster_file, nats) == "a a1\nb b1\n", 40, interval=0.2,
                           what="each shard's host to hold its lease")
        front, port, prefix = start_front(tmp_path, cluster_file)
        agent, include, agent_log = start_agent(tmp_path, cluster_file, prefix, nats)
        cl = {"port": port, "keys": keys, "hosts": hosts}

        seeded = []
        for i in range(12):
            r, rid = call(cl, "alpha", "POST", "/api/documents",
                          {"title": f"Seed {i}", "text": f"Seed note {i}: the kingfisher dives for minnows. " * 30})
            assert r.status in (200, 201) and served_by(cl, rid) == ["a1"], r
            seeded.append(r.json["id"])
        # Past 512 chunks, so that the tenant's vectors include a whole block (one value of
        # about 0.8 MB, more than one log message holds).
        seeded += add_bulk(port, keys["alpha"], "")
        r, _ = call(cl, "beta", "POST", "/api/documents", {"title": "Beta", "text": "Beta keeps bees in the orchard."})
        assert r.status in (200, 201)
        beta_doc = r.json["id"]

        load, other = Load(cl, "alpha"), Load(cl, "beta")
        time.sleep(1.5)
        moved = subprocess.run([str(CLI), "cluster", "move", "alpha", "--to", "b", "--cluster", str(cluster_file),
                                "--data-dir", str(hosts["a1"].data), "--nats", nats.url, "--timeout", "120"],
                               capture_output=True, text=True, timeout=300,
                               env={**hosts["a1"].env, "RAGSTREAM_LOG_REPLICAS": "1"})
        assert moved.returncode == 0, (moved.stdout, moved.stderr, hosts["b1"].log_text()[-3000:])
        assert "moved tenant alpha to shard b" in moved.stdout, moved.stdout
        print(moved.stdout, moved.stderr)
        assert "tenant alpha b" in cluster_file.read_text()
        harness.wait_until(lambda: '"alpha" ragstream_shard_b' in include.read_text(), 30, interval=0.2,
                           what="the agent to route alpha to b: " + agent_log.read_text()[-1500:])
        time.sleep(1.5)  # the reload has taken over; the clients keep writing to b
        load.stop()
        other.stop()

        assert not load.other and not other.other, (load.other, other.other)
        assert len(load.docs) >= 10 and len(load.answers) >= 3, (len(load.docs), len(load.answers))
        print(f"alpha: {len(load.docs)} documents and {len(load.answers)} answers stored, "
              f"{len(load.refused)} refused, {len(load.unsaved)} answers unsaved, {len(load.cut)} cut")
        print(f"beta: {len(other.docs)} documents and {len(other.answers)} answers stored, "
              f"{len(other.refused)} refused {[json.loads(b)['error']['code'] for b in other.refused]}, "
              f"{len(other.cut)} cut")
        for done in load.unsaved:
            # Its saves were refused from the pause on (tenant_moving), or it found its
            # conversation deleted at the source (not_found): never reported complete. What
            # was saved before the pause is on b.
            assert done.get("error", {}).get("code") in ("tenant_moving", "log_behind", "not_found"), done
        for body in load.refused:  # refused while the writes paused, and said why
            assert json.loads(body)["error"]["code"] in ("tenant_moving", "log_behind"), body
        # Everything alpha's clients were told was stored is on b, served through the front.
        r, rid = call(cl, "alpha", "GET", "/api/documents")
        assert r.status == 200 and served_by(cl, rid) == ["b1"], r
        listed = {d["id"] for d in (r.json["documents"] if isinstance(r.json, dict) else r.json)}
        missing = [d for d in seeded + load.docs if d not in listed]
        assert not missing, f"{len(missing)} of {len(seeded) + len(load.docs)} documents lost: {missing[:5]}"
        for conv in load.answers:
            r, rid = call(cl, "alpha", "GET", f"/api/conversations/{conv}")
            assert r.status == 200 and served_by(cl, rid) == ["b1"], (conv, r)
            roles = [(m["role"], m["status"]) for m in r.json["messages"]]
            assert roles[-2:] == [("user", "complete"), ("assistant", "complete")], roles
        for done in load.unsaved:
            r, _ = call(cl, "alpha", "GET", f"/api/conversations/{done['conversation_id']}")
            assert r.status == 200 and r.json["messages"][0]["role"] == "user", (done, r)
        r, _ = call(cl, "alpha", "POST", "/api/search", {"query": "kingfisher minnows", "top_k": 3})
        assert r.status == 200 and r.json["results"] and r.json["results"][0]["document_id"] in seeded
        # New writes go to b.
        r, rid = call(cl, "alpha", "POST", "/api/documents", {"title": "After", "text": "Written after the move."})
        assert r.status in (200, 201) and served_by(cl, rid) == ["b1"], r

        # Nothing of alpha is left on a but the mark; b holds it; beta never noticed.
        left = harness.tenant_keys(hosts["a1"].data, "alpha")
        assert left == {}, {db: ks[:3] for db, ks in left.items()}
        # What refuses alpha's writes on a:
        assert harness.store_dump(hosts["a1"].data)["index_meta"].get(b"moving/alpha") == b"b"
        moved_keys = harness.tenant_keys(hosts["b1"].data, "alpha")
        assert moved_keys.get("documents") and any(db.startswith("vblocks.") for db in moved_keys), moved_keys.keys()
        r, rid = call(cl, "beta", "GET", f"/api/documents/{beta_doc}")
        assert r.status == 200 and served_by(cl, rid) == ["a1"], r
        assert len(other.docs) >= 10 and not other.other
        # Not even a retry: the mover's records in a's log are taken in by beta's next write
        # (the primary still holds its lease), not answered with log_behind.
        assert not other.refused, [json.loads(b)["error"]["code"] for b in other.refused]
    finally:
        if agent is not None:
            harness.stop_process(agent, signal.SIGTERM, timeout=10)
        if front is not None:
            harness.stop_process(front, signal.SIGTERM, timeout=10)
        for h in hosts.values():
            h.stop()
        nats.stop()


def test_a_move_the_target_cannot_take_is_called_off(tmp_path):
    """The target shard's primary is down: the move stops after the snapshot (nothing paused
    yet) and says so; run again it is refused as under way; --abort (once the target is back)
    calls it off: the tenant stays on its shard, which takes its writes, and the target holds
    nothing of it. Then the same move goes through, and a second one takes the tenant back."""
    keys_file = tmp_path / "keys"
    keys = harness.make_api_keys(keys_file, "alpha")
    nats = harness.NatsServers(tmp_path / "nats")
    hosts, front = {}, None
    try:
        hosts["a1"] = Host("a1", tmp_path, keys_file, 1, shard_env(nats, "a", "a1"))
        hosts["b1"] = Host("b1", tmp_path, keys_file, 1, shard_env(nats, "b", "b1"))
        a1, b1 = hosts["a1"].addrs[0], hosts["b1"].addrs[0]
        cluster_file = tmp_path / "cluster.conf"
        cluster_file.write_text(f"shard a {a1} -\nshard b {b1} -\ntenant alpha a\ndefault a\n")
        harness.wait_until(lambda: leaders(cluster_file, nats) == "a a1\nb b1\n", 40, interval=0.2,
                           what="each shard's host to hold its lease")
        front, front_port, _ = start_front(tmp_path, cluster_file)
        cl = {"port": front_port, "keys": keys, "hosts": hosts}
        r, _ = call(cl, "alpha", "POST", "/api/documents", {"title": "Stays", "text": "The otter stays in the river."})
        assert r.status in (200, 201)
        doc = r.json["id"]

        b_ports = [int(hosts["b1"].addrs[0].rsplit(":", 1)[1])]
        hosts["b1"].kill()
        move = [str(CLI), "cluster", "move", "alpha", "--to", "b", "--cluster", str(cluster_file),
                "--data-dir", str(hosts["a1"].data), "--nats", nats.url, "--timeout", "4"]
        env = {**hosts["a1"].env, "RAGSTREAM_LOG_REPLICAS": "1"}
        first = subprocess.run(move, capture_output=True, text=True, timeout=120, env=env)
        assert first.returncode == 1 and "move_timeout" in first.stderr, (first.stdout, first.stderr)
        again = subprocess.run(move, capture_output=True, text=True, timeout=120, env=env)
        assert again.returncode == 1 and "move_under_way" in again.stderr and "--abort" in again.stderr, again.stderr
        # Nothing paused: alpha still writes on a.
        r, rid = call(cl, "alpha", "POST", "/api/documents", {"title": "Meanwhile", "text": "Written during it."})
        assert r.status in (200, 201) and served_by(cl, rid) == ["a1"], r

        hosts["b1"].stop()
        hosts["b1"] = Host("b1", tmp_path, keys_file, 1, shard_env(nats, "b", "b1"), ports=b_ports)
        called_off = subprocess.run(move[:-2] + ["--timeout", "60", "--abort"], capture_output=True, text=True,
                                    timeout=120, env=env)
        assert called_off.returncode == 0, (called_off.stdout, called_off.stderr)
        assert "called off moving tenant alpha" in called_off.stdout
        assert "tenant alpha a" in cluster_file.read_text()
        r, rid = call(cl, "alpha", "GET", f"/api/documents/{doc}")
        assert r.status == 200 and served_by(cl, rid) == ["a1"]
        assert harness.tenant_keys(hosts["b1"].data, "alpha") == {}

        done = subprocess.run(move[:-2] + ["--timeout", "60"], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0 and "moved tenant alpha to shard b" in done.stdout, (done.stdout, done.stderr)
        assert harness.tenant_keys(hosts["a1"].data, "alpha") == {}
        assert harness.tenant_keys(hosts["b1"].data, "alpha").get("documents")

        # And back: the second move of a tenant starts afresh (the first one's progress on b is
        # not copied), and a, which refused alpha since it left, takes its writes again.
        back = subprocess.run([str(CLI), "cluster", "move", "alpha", "--to", "a", "--cluster", str(cluster_file),
                               "--data-dir", str(hosts["b1"].data), "--nats", nats.url, "--timeout", "60"],
                              capture_output=True, text=True, timeout=120, env=env)
        assert back.returncode == 0 and "moved tenant alpha to shard a" in back.stdout, (back.stdout, back.stderr)
        # b's mover drops the first move's progress keys at its next look after that plan went.
        harness.wait_until(lambda: harness.tenant_keys(hosts["b1"].data, "alpha") == {}, 10, interval=0.2,
                           what="nothing of alpha left on b")
        assert "tenant alpha a" in cluster_file.read_text()
        r, rid = call(cl, "alpha", "GET", f"/api/documents/{doc}")
        assert r.status == 200 and served_by(cl, rid) == ["a1"], r
        r, rid = call(cl, "alpha", "POST", "/api/documents", {"title": "Home", "text": "Back on shard a."})
        assert r.status in (200, 201) and served_by(cl, rid) == ["a1"], r
    finally:
        if front is not None:
            harness.stop_process(front, signal.SIGTERM, timeout=10)
        for h in hosts.values():
            h.stop()
        nats.stop()


def test_a_move_called_off_after_its_copy_began_leaves_nothing_on_the_target(tmp_path):
    """The target's worker is frozen (SIGSTOP) once the tenant's copy has begun to land on it,
    so the move times out half-copied; --abort (the worker running again) calls it off: the
    target deletes what it had copied (TenantMover::DropCopy, in batches), holds nothing of the
    tenant, and the source keeps every document and takes writes."""
    keys_file = tmp_path / "keys"
    keys = harness.make_api_keys(keys_file, "alpha")
    nats = harness.NatsServers(tmp_path / "nats")
    hosts, front, mover = {}, None, None
    try:
        hosts["a1"] = Host("a1", tmp_path, keys_file, 1, shard_env(nats, "a", "a1"))
        hosts["b1"] = Host("b1", tmp_path, keys_file, 1, shard_env(nats, "b", "b1"))
        cluster_file = tmp_path / "cluster.conf"
        cluster_file.write_text(f"shard a {hosts['a1'].addrs[0]} -\nshard b {hosts['b1'].addrs[0]} -\n"
                                "tenant alpha a\ndefault a\n")
        harness.wait_until(lambda: leaders(cluster_file, nats) == "a a1\nb b1\n", 40, interval=0.2,
                           what="each shard's host to hold its lease")
        front, front_port, _ = start_front(tmp_path, cluster_file)
        cl = {"port": front_port, "keys": keys, "hosts": hosts}
        # Enough of the tenant (about 3 MB of text, thousands of chunks) that its copy takes a
        # while to land, and more keys than one of DropCopy's batches.
        ids = []
        for batch in range(5):
            ids += add_bulk(front_port, keys["alpha"], f"{batch}-")

        env = {**hosts["a1"].env, "RAGSTREAM_LOG_REPLICAS": "1"}
        move = [str(CLI), "cluster", "move", "alpha", "--to", "b", "--cluster", str(cluster_file),
                "--data-dir", str(hosts["a1"].data), "--nats", nats.url]
        mover = subprocess.Popen(move + ["--timeout", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env)
        target = hosts["b1"].procs[0]
        harness.wait_until(lambda: mover.poll() is not None or harness.tenant_keys(hosts["b1"].data, "alpha"),
                           60, interval=0.01, what="the tenant's copy to begin landing on b")
        target.send_signal(signal.SIGSTOP)
        out, err = mover.communicate(timeout=120)
        assert mover.returncode == 1 and "move_timeout" in err, (
            "the move was not stopped half-way (it finished before the target was frozen?)", out, err)
        copied = harness.tenant_keys(hosts["b1"].data, "alpha")
        assert copied, "nothing of the tenant had landed on b"
        target.send_signal(signal.SIGCONT)

        called_off = subprocess.run(move + ["--timeout", "60", "--abort"], capture_output=True, text=True,
                                    timeout=120, env=env)
        assert called_off.returncode == 0, (called_off.stdout, called_off.stderr)
        assert "called off moving tenant alpha" in called_off.stdout
        harness.wait_until(lambda: harness.tenant_keys(hosts["b1"].data, "alpha") == {}, 30, interval=0.2,
                           what="b to delete its copy of alpha")
        assert "its copy is deleted" in hosts["b1"].log_text()
        assert "tenant alpha a" in cluster_file.read_text()
        # The source kept everything and takes writes.
        r, rid = call(cl, "alpha", "GET", "/api/documents")
        assert r.status == 200 and served_by(cl, rid) == ["a1"], r
        listed = {d["id"] for d in (r.json["documents"] if isinstance(r.json, dict) else r.json)}
        assert not [d for d in ids if d not in listed]
        r, rid = call(cl, "alpha", "POST", "/api/documents", {"title": "Still here", "text": "Written after."})
        assert r.status in (200, 201) and served_by(cl, rid) == ["a1"], r
    finally:
        if mover is not None and mover.poll() is None:
            mover.kill()
        for h in hosts.values():
            for p in h.procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGCONT)
        if front is not None:
            harness.stop_process(front, signal.SIGTERM, timeout=10)
        for h in hosts.values():
            h.stop()
        nats.stop()
