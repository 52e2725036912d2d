"""Running ragstream as a service: the systemd units, scripts/install.sh, the production nginx
site (nginx/ragstream.site.conf + ragstream.http.conf), the environment file example, and
`ragstream-worker --check-config`.

Nothing here changes the machine: install.sh runs with --destdir into a temporary directory,
the units are verified offline (systemd-analyze verify; systemd need not be PID 1), and the
installed nginx site is run from a private prefix on a loopback port in front of workers
listening on sockets in a temporary directory. Socket activation itself is not exercised.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

import harness
from harness import ROOT

SYSTEMD_DIR = ROOT / "systemd"
UNIT_FILES = ("ragstream-worker@.service", "ragstream-worker@.socket", "ragstream.target")
ENV_EXAMPLE = SYSTEMD_DIR / "ragstream.env.example"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
API_KEY = "sk-deploy-test-KEY-0123456789"
WORKERS = 3  # install.sh --workers


def worker_bin() -> Path:
    # The session's private copy (conftest.worker_binary), so a rebuild cannot race a test.
    return Path(harness.WORKER_BIN)


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGSTREAM_", "OPENAI_"))}
    env.pop("DESTDIR", None)
    env.update(extra)
    return env


def run(args, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 60)
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


# --------------------------------------------------------------------------- --help


def help_settings() -> dict[str, str | None]:
    """{variable: default or None} from the Environment section of `ragstream-worker --help`."""
    r = run([worker_bin(), "--help"], env=clean_env())
    assert r.returncode == 0, r
    out = r.stdout
    assert "Environment (defaults in brackets):" in out, out
    section = out.split("Environment (defaults in brackets):", 1)[1]
    settings = {}
    for line in section.splitlines():
        m = re.match(r"^  ([A-Z][A-Z0-9_]+)\s+(.*?)\s*$", line)
        if not m:
            continue
        d = re.search(r"\[([^\]]*)\]$", m.group(2))
        settings[m.group(1)] = d.group(1) if d else None
    assert len(settings) >= 20, f"could not parse --help: {out}"
    return settings


def check_config_defaults() -> dict[str, str]:
    """The effective defaults, as `--check-config` prints them with no variable set."""
    r = run([worker_bin(), "--check-config"], env=clean_env())
    assert r.returncode == 0, r
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def env_example_entries(text: str) -> dict[str, tuple[str, str, bool]]:
    """{variable: (value, the comment lines right above it, commented out)} of an env file."""
    out = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#?)([A-Z][A-Z0-9_]+)=(.*)$", line)
        if not m:
            continue
        j = i
        while j > 0 and lines[j - 1].startswith("# ") and not lines[j - 1].startswith("# ---"):
            j -= 1
        above = "\n".join(lines[j:i])
        assert m.group(2) not in out, f"{m.group(2)} appears twice in the env example"
        out[m.group(2)] = (m.group(3), above, m.group(1) == "#")
    return out


# --------------------------------------------------------------------------- install.sh


# What install.sh reads from the checkout. The tests run a frozen copy of these, so that
# someone editing the checkout meanwhile cannot make a second run differ from the first.
CHECKOUT_PARTS = ("scripts/install.sh", "systemd", "nginx", "data/sample", "web",
                  "docs/operations.md")


@pytest.fixture(scope="module")
def deploy_dir(session_dir):
    d = Path(tempfile.mkdtemp(prefix="deploy-", dir=session_dir))
    (d / "tmp").mkdir()
    return d


@pytest.fixture(scope="module")
def src(deploy_dir) -> Path:
    """A frozen copy of the parts of the checkout install.sh installs from."""
    out = deploy_dir / "checkout"
    for part in CHECKOUT_PARTS:
        p = ROOT / part
        if p.is_dir():
            shutil.copytree(p, out / part, symlinks=True)
        elif p.is_file():
            (out / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, out / part)
    assert (out / "scripts/install.sh").is_file(), "scripts/install.sh is missing"
    return out


def run_install(src: Path, destdir: Path | None, *args, tmp: Path, bin_path: Path | None = None,
                **env):
    e = clean_env(RAGSTREAM_BIN=str(bin_path or worker_bin()), TMPDIR=str(tmp), **env)
    dest = ["--destdir", destdir] if destdir is not None else []
    return run([src / "scripts/install.sh", *dest, *args], env=e)


@pytest.fixture(scope="module")
def installed(deploy_dir, src, worker_binary):
    """install.sh --destdir DEST --workers 3, once for the module: (DEST, its output)."""
    dest = deploy_dir / "dest"
    r = run_install(src, dest, "--workers", str(WORKERS), tmp=deploy_dir / "tmp")
    assert r.returncode == 0, f"install.sh failed:\n{r.stdout}\n{r.stderr}"
    return dest, r.stdout


def expected_files(src: Path) -> dict[str, int]:
    """Installed path (relative to DESTDIR) -> mode."""
    files = {
        "usr/local/bin/ragstream-worker": 0o755,
        "etc/systemd/system/ragstream-worker@.service": 0o644,
        "etc/systemd/system/ragstream-worker@.socket": 0o644,
        "etc/systemd/system/ragstream.target": 0o644,
        "etc/ragstream/ragstream.env": 0o640,
        "usr/share/ragstream/ragstream.env.example": 0o644,
        "etc/nginx/sites-available/ragstream": 0o644,
        "etc/nginx/conf.d/ragstream.http.conf": 0o644,
        "etc/nginx/ragstream/fastcgi_ragstream.conf": 0o644,
        "etc/nginx/ragstream/json_errors.conf": 0o644,
    }
    for p in sorted((src / "data" / "sample").iterdir()):
        if p.is_file():
            files[f"usr/share/ragstream/sample/{p.name}"] = 0o644
    if (src / "docs" / "operations.md").is_file():
        files["usr/share/doc/ragstream/operations.md"] = 0o644
    web = src / "web"
    if web.is_dir():
        for p in web.rglob("*"):
            if p.is_file() and p.name not in (".keep", ".gitkeep"):
                files[f"usr/share/ragstream/web/{p.relative_to(web)}"] = 0o644
    return files


EXPECTED_DIRS = {
    "usr/share/ragstream/web": 0o755,
    "usr/share/ragstream/sample": 0o755,
    "var/lib/ragstream": 0o750,
    "etc/ragstream": 0o755,
}


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and dir under root: (mode, mtime_ns, sha256 of files)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else None
        out[str(p.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_mtime_ns, digest)
    return out


def test_install_into_destdir_installs_every_file_with_its_mode(installed, src):
    dest, out = installed
    for rel, mode in expected_files(src).items():
        p = dest / rel
        assert p.is_file(), f"{rel} was not installed:\n{out}"
        assert stat.S_IMODE(p.stat().st_mode) == mode, f"{rel}: mode {oct(p.stat().st_mode)}"
    for rel, mode in EXPECTED_DIRS.items():
        p = dest / rel
        assert p.is_dir(), f"{rel}/ missing"
        assert stat.S_IMODE(p.stat().st_mode) == mode, f"{rel}/: mode {oct(p.stat().st_mode)}"
    # Contents: the binary itself, the sources as they are, the rendered files.
    assert (dest / "usr/local/bin/ragstream-worker").read_bytes() == worker_bin().read_bytes()
    src_dir = src
    for src_rel, rel in [
            ("nginx/fastcgi_ragstream.conf", "etc/nginx/ragstream/fastcgi_ragstream.conf"),
            ("nginx/json_errors.conf", "etc/nginx/ragstream/json_errors.conf"),
            ("nginx/ragstream.http.conf", "etc/nginx/conf.d/ragstream.http.conf"),
            ("systemd/ragstream-worker@.socket", "etc/systemd/system/ragstream-worker@.socket")]:
        assert (dest / rel).read_text() == (src_dir / src_rel).read_text(), rel
    for p in (src_dir / "data" / "sample").glob("*.md"):
        assert (dest / "usr/share/ragstream/sample" / p.name).read_bytes() == p.read_bytes()
    service = (dest / "etc/systemd/system/ragstream-worker@.service").read_text()
    assert re.findall(r"(?m)^ExecStart=.*$", service) == \
        ["ExecStart=/usr/local/bin/ragstream-worker"]
    target = (dest / "etc/systemd/system/ragstream.target").read_text()
    wants = re.findall(r"(?m)^Wants=(.*)$", target)
    assert wants and wants[0].split() == \
        [f"ragstream-worker@{i}.socket" for i in range(1, WORKERS + 1)]
    site = (dest / "etc/nginx/sites-available/ragstream").read_text()
    servers = re.findall(r"(?m)^\s*server unix:(\S+);", site)
    assert servers == [f"/run/ragstream/worker-{i}.sock" for i in range(1, WORKERS + 1)], site
    # The environment file is the example (with this prefix's binary path).
    assert (dest / "etc/ragstream/ragstream.env").read_text() == \
        (src / "systemd/ragstream.env.example").read_text()
    # Staged: no user, no chown; what would be done is printed, and how to enable N workers.
    assert "useradd --system" in out and "usermod --append --groups ragstream www-data" in out
    assert "chown ragstream:ragstream /var/lib/ragstream" in out
    assert (f"systemctl enable --now ragstream-worker@{{1..{WORKERS}}}.socket ragstream.target"
            in out)
    assert "ln -sf /etc/nginx/sites-available/ragstream /etc/nginx/sites-enabled/ragstream" in out
    assert "nginx -t && systemctl reload nginx" in out
    # Nothing outside DESTDIR: every path the script reported lies in it.
    for line in out.splitlines():
        m = re.match(r"^  (?:installed|created|mode \S+ on) (/\S+)", line)
        if m:
            assert m.group(1).startswith(str(dest)), line


def test_install_creates_no_user_on_this_machine(installed, src):
    # With DESTDIR, the script must not have touched the real user database.
    r = run(["getent", "passwd", "ragstream"])
    before = r.returncode
    dest, _ = installed
    r2 = run_install(src, dest, "--workers", str(WORKERS), tmp=dest.parent / "tmp")
    assert r2.returncode == 0, r2
    assert run(["getent", "passwd", "ragstream"]).returncode == before


def test_install_second_run_changes_nothing_and_says_so(installed, src):
    dest, _ = installed
    before = snapshot(dest)
    time.sleep(0.02)  # a rewrite would show in mtime_ns
    r = run_install(src, dest, "--workers", str(WORKERS), tmp=dest.parent / "tmp")
    assert r.returncode == 0, r
    assert "nothing changed" in r.stdout, r.stdout
    assert not re.search(r"(?m)^  (installed|created|mode|removed|owner) ", r.stdout), r.stdout
    after = snapshot(dest)
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                             if before.get(k) != after.get(k)}


def test_install_keeps_the_operators_config(deploy_dir, src, worker_binary):
    dest = deploy_dir / "dest-operator"
    tmp = deploy_dir / "tmp"
    r = run_install(src, dest, tmp=tmp)
    assert r.returncode == 0, r
    env_file = dest / "etc/ragstream/ragstream.env"
    edited = env_file.read_text() + \
        "OPENAI_BASE_URL=https://llm.example/v1\nRAGSTREAM_CHAT_MODEL=mine\n"
    env_file.write_text(edited)
    site = dest / "etc/nginx/sites-available/ragstream"
    site_edited = site.read_text().replace("server_name _;", "server_name chat.example.org;")
    site.write_text(site_edited)

    r = run_install(src, dest, tmp=tmp)
    assert r.returncode == 0, r
    assert env_file.read_text() == edited, "install.sh overwrote the operator's env file"
    assert "kept /etc/ragstream/ragstream.env" in r.stdout, r.stdout
    assert site.read_text() == site_edited, "install.sh overwrote the operator's nginx site"
    assert "kept /etc/nginx/sites-available/ragstream" in r.stdout, r.stdout
    new = dest / "etc/nginx/sites-available/ragstream.new"
    assert "server_name _;" in new.read_text()
    # And a third run with nothing new: nothing changes.
    r = run_install(src, dest, tmp=tmp)
    assert r.returncode == 0 and "nothing changed" in r.stdout, r.stdout
    assert env_file.read_text() == edited


@pytest.mark.parametrize("script", ["run.sh", "ingest.sh", "test_streaming.sh", "test.sh",
                                    "render_cluster_nginx.sh"])
def test_script_help_is_the_header_comment_and_does_nothing_else(script):
    """--help prints the script's header comment (no code line after it) and exits 0 at
    once: test.sh --help must not start the suite, run.sh --help must not install."""
    path = ROOT / "scripts" / script
    r = run([path, "--help"], env=clean_env(), timeout=10)
    assert r.returncode == 0, r
    assert "Usage" in r.stdout or "Environment" in r.stdout, r.stdout
    assert "set -" not in r.stdout and "#!" not in r.stdout, r.stdout
    header = []
    for line in path.read_text().splitlines()[1:]:
        if not line.startswith("#"):
            break
        header.append(line[2:] if line.startswith("# ") else line[1:])
    assert r.stdout.splitlines() == header, r.stdout
    assert r.stderr == "", r.stderr
    if script == "test.sh":
        bad = run([path, "--bogus"], env=clean_env(), timeout=10)
        assert bad.returncode == 2 and "unknown argument" in bad.stderr, bad


def test_install_options_and_errors(deploy_dir, src, worker_binary):
    tmp = deploy_dir / "tmp"
    r = run([src / "scripts/install.sh", "--help"], env=clean_env())
    assert r.returncode == 0 and "--destdir" in r.stdout and "--workers" in r.stdout, r
    # The binary is not built: the error says how to build it.
    r = run_install(src, deploy_dir / "dest-nobin", tmp=tmp,
                    bin_path=deploy_dir / "no" / "ragstream-worker")
    assert r.returncode != 0
    assert "scripts/build.sh ragstream-worker" in r.stderr, r.stderr
    assert not (deploy_dir / "dest-nobin" / "etc").exists()
    for bad in (["--workers", "0"], ["--workers", "two"], ["--prefix", "relative/dir"],
                ["--bogus"]):
        r = run_install(src, deploy_dir / "dest-bad", *bad, tmp=tmp)
        assert r.returncode != 0, (bad, r.stdout)
        assert r.stderr.strip(), bad
    # --prefix moves the binary and the unit's ExecStart; DESTDIR from the environment works.
    dest = deploy_dir / "dest-prefix"
    e = clean_env(RAGSTREAM_BIN=str(worker_bin()), TMPDIR=str(tmp), DESTDIR=str(dest))
    r = run([src / "scripts/install.sh", "--prefix", "/opt/ragstream", "--workers", "1"], env=e)
    assert r.returncode == 0, r
    assert (dest / "opt/ragstream/bin/ragstream-worker").is_file()
    service = (dest / "etc/systemd/system/ragstream-worker@.service").read_text()
    assert "\nExecStart=/opt/ragstream/bin/ragstream-worker\n" in service
    env_text = (dest / "etc/ragstream/ragstream.env").read_text()
    assert "/opt/ragstream/bin/ragstream-worker --check-config" in env_text
    assert "systemctl enable --now ragstream-worker@1.socket ragstream.target" in r.stdout


SANDBOX_SCRIPT = r"""
set -euo pipefail
scratch="$1" install="$2"
# Everything install.sh writes lands in overlays whose upper layers are a tmpfs of this
# private mount namespace: nothing reaches the machine, and it all vanishes on exit.
mount -t tmpfs ragstream-sandbox "$scratch"
for d in /etc /usr /var; do
  n="${d//\//_}"
  mkdir -p "$scratch/up$n" "$scratch/work$n"
  mount -t overlay ragstream-sandbox \
    -o "lowerdir=$d,upperdir=$scratch/up$n,workdir=$scratch/work$n" "$d"
  [ "$(findmnt -n -o FSTYPE --mountpoint "$d")" = overlay ] ||
    { echo "no overlay on $d" >&2; exit 97; }
done
# Hide a running systemd, so that no daemon-reload reaches it.
if [ -d /run/systemd ]; then mount -t tmpfs ragstream-sandbox /run/systemd; fi
mkdir -p "$scratch/tmp"
export TMPDIR="$scratch/tmp"
echo "@@ run 1"; "$install" --workers 2
echo "@@ run 2"; "$install" --workers 2
echo "@@ facts"
getent passwd ragstream
getent group ragstream
id -nG www-data 2>/dev/null || echo "no www-data"
stat -c '%n %a %U:%G' /var/lib/ragstream /etc/ragstream/ragstream.env \
  /usr/local/bin/ragstream-worker
"""


def test_install_as_root_without_destdir_in_a_sandbox(deploy_dir, src, worker_binary):
    """The real install (user, group, www-data membership, owners, idempotence), run as root
    in a private mount namespace where /etc, /usr and /var are overlays on a tmpfs."""
    if os.geteuid() != 0:
        pytest.skip("needs root (a private mount namespace with overlays)")
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    scratch = Path(tempfile.mkdtemp(prefix="sandbox-", dir=deploy_dir))
    probe = run([unshare, "--mount", "--propagation", "private", "sh", "-c",
                 f"mount -t tmpfs none {scratch} && mkdir {scratch}/u {scratch}/w && "
                 f"mount -t overlay none -o lowerdir=/etc,upperdir={scratch}/u,"
                 f"workdir={scratch}/w /etc"])
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace with overlays here: {probe.stderr.strip()}")
    host_user_before = run(["getent", "passwd", "ragstream"]).stdout
    host_paths = [Path(p) for p in ("/etc/ragstream", "/var/lib/ragstream", "/usr/share/ragstream",
                                    "/etc/systemd/system/ragstream-worker@.service")]
    host_before = [p.exists() for p in host_paths]
    e = clean_env(RAGSTREAM_BIN=str(worker_bin()))
    r = run([unshare, "--mount", "--propagation", "private", "bash", "-c", SANDBOX_SCRIPT,
             "sandbox", scratch, src / "scripts/install.sh"], env=e)
    assert run(["getent", "passwd", "ragstream"]).stdout == host_user_before, \
        "the sandboxed install changed this machine's users"
    assert [p.exists() for p in host_paths] == host_before, \
        "the sandboxed install wrote to this machine"
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    run1 = r.stdout.split("@@ run 1", 1)[1].split("@@ run 2", 1)[0]
    run2 = r.stdout.split("@@ run 2", 1)[1].split("@@ facts", 1)[0]
    facts = r.stdout.split("@@ facts", 1)[1]
    if not host_user_before:
        assert "created group ragstream" in run1 and "created user ragstream" in run1, run1
    assert "nothing changed" in run2, run2
    assert not re.search(r"(?m)^  (installed|created|mode|removed|owner|added) ", run2), run2
    assert not re.search(r"(?m)^  systemctl daemon-reload$", run1 + run2)  # systemd hidden
    lines = facts.strip().splitlines()
    user = next(l for l in lines if l.startswith("ragstream:x:"))
    fields = user.split(":")
    assert int(fields[2]) < 1000 and fields[5] == "/var/lib/ragstream", user
    assert fields[6].endswith("nologin"), user
    if "no www-data" not in facts:
        www = next(l for l in lines if "www-data" in l.split())
        assert "ragstream" in www.split(), facts
    assert "/var/lib/ragstream 750 ragstream:ragstream" in lines, facts
    assert "/etc/ragstream/ragstream.env 640 root:ragstream" in lines, facts
    assert "/usr/local/bin/ragstream-worker 755 root:root" in lines, facts


# --------------------------------------------------------------------------- systemd units


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    cur = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            cur = sections.setdefault(line.strip("[]"), {})
            continue
        k, _, v = line.partition("=")
        cur.setdefault(k.strip(), []).append(v.strip())
    return sections


def verify_units(unit_dir: Path) -> subprocess.CompletedProcess:
    names = [*UNIT_FILES, "ragstream-worker@1.service", "ragstream-worker@2.socket"]
    return run([SYSTEMD_ANALYZE, "verify", "--man=no", *[unit_dir / n for n in names]],
               env=clean_env(SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="cat"))


def ragstream_complaints(r: subprocess.CompletedProcess) -> list[str]:
    """systemd-analyze only warns ('..., ignoring') about a bad line and still exits 0, so
    any line about our units counts as a failure too."""
    return [l for l in (r.stdout + r.stderr).splitlines() if "ragstream" in l]


def units_copy(src_dir: Path, dst: Path, exec_start: Path) -> Path:
    dst.mkdir(parents=True)
    for name in UNIT_FILES:
        text = (src_dir / name).read_text()
        if name.endswith(".service"):
            text = re.sub(r"(?m)^ExecStart=.*$", f"ExecStart={exec_start}", text)
        (dst / name).write_text(text)
    return dst


@pytest.fixture
def need_systemd_analyze():
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd): "
                    "cannot verify the units")


@pytest.mark.parametrize("source", ["repository", "installed"])
def test_units_pass_systemd_analyze_verify(need_systemd_analyze, installed, deploy_dir, source):
    dest, _ = installed
    src = SYSTEMD_DIR if source == "repository" else dest / "etc/systemd/system"
    d = units_copy(src, Path(tempfile.mkdtemp(prefix="units-", dir=deploy_dir)) / "u", worker_bin())
    r = verify_units(d)
    assert r.returncode == 0 and not ragstream_complaints(r), f"{r.stdout}\n{r.stderr}"


def test_systemd_analyze_verify_catches_broken_units(need_systemd_analyze, deploy_dir):
    base = Path(tempfile.mkdtemp(prefix="units-broken-", dir=deploy_dir))
    # A missing binary: a non-zero exit.
    d = units_copy(SYSTEMD_DIR, base / "missing-binary", base / "nowhere" / "ragstream-worker")
    r = verify_units(d)
    assert r.returncode != 0, f"verify accepted a missing ExecStart binary: {r.stdout}{r.stderr}"
    # A socket the service requires does not exist: a non-zero exit.
    d = units_copy(SYSTEMD_DIR, base / "missing-socket", worker_bin())
    svc = d / "ragstream-worker@.service"
    svc.write_text(svc.read_text().replace("Requires=ragstream-worker@%i.socket",
                                           "Requires=ragstream-wroker@%i.socket"))
    r = verify_units(d)
    assert r.returncode != 0, f"verify accepted a missing socket unit: {r.stdout}{r.stderr}"
    # A misspelt value only warns: the complaint filter catches it.
    d = units_copy(SYSTEMD_DIR, base / "bad-value", worker_bin())
    svc = d / "ragstream-worker@.service"
    svc.write_text(svc.read_text().replace("StandardInput=socket", "StandardInput=sockett"))
    r = verify_units(d)
    assert ragstream_complaints(r), \
        f"no complaint about StandardInput=sockett: {r.stdout}{r.stderr}"


def test_units_keep_the_required_settings():
    service = parse_unit((SYSTEMD_DIR / "ragstream-worker@.service").read_text())
    socket_ = parse_unit((SYSTEMD_DIR / "ragstream-worker@.socket").read_text())
    target = parse_unit((SYSTEMD_DIR / "ragstream.target").read_text())
    s = service["Service"]
    one = lambda k: s.get(k, [None])[-1]  # noqa: E731
    assert one("StandardInput") == "socket"
    assert one("StandardError") == "journal" and one("StandardOutput") == "journal"
    assert one("User") == "ragstream" and one("Group") == "ragstream"
    assert one("ExecStart") == "/usr/local/bin/ragstream-worker"
    assert any(v.lstrip("-") == "/etc/ragstream/ragstream.env" for v in s["EnvironmentFile"])
    assert one("ProtectSystem") == "strict"
    assert "/var/lib/ragstream" in " ".join(s["ReadWritePaths"]).split()
    assert one("NoNewPrivileges") == "yes" and one("PrivateTmp") == "yes"
    assert one("Restart") == "always"
    assert one("KillMode") == "mixed" and one("KillSignal") == "SIGTERM"
    # systemd must not SIGKILL a worker that is still draining: grace + the 5 s abort wait.
    grace = int(help_settings()["RAGSTREAM_GRACE_S"])
    stop = one("TimeoutStopSec")
    assert stop and stop.isdigit() and int(stop) > grace + 5, stop
    assert "ragstream-worker@%i.socket" in " ".join(service["Unit"]["Requires"])
    k = socket_["Socket"]
    assert k["ListenStream"] == ["/run/ragstream/worker-%i.sock"]
    assert k["SocketMode"] == ["0660"] and k["SocketGroup"] == ["www-data"]
    assert k.get("Accept", ["no"]) == ["no"]
    # nginx must be able to traverse the directory systemd creates (owned by root).
    assert int(k["DirectoryMode"][0], 8) & 0o005 == 0o005, k["DirectoryMode"]
    assert "ragstream.target" in service["Unit"]["PartOf"]
    assert "ragstream.target" in socket_["Unit"]["PartOf"]
    assert target["Unit"]["Wants"][0].split() == \
        ["ragstream-worker@1.socket", "ragstream-worker@2.socket"]


# --------------------------------------------------------------------------- env example


def test_env_example_documents_every_setting():
    settings = help_settings()
    text = ENV_EXAMPLE.read_text()
    entries = env_example_entries(text)
    missing = sorted(set(settings) - set(entries))
    assert not missing, f"the env example lacks {missing}"
    unknown = sorted(set(entries) - set(settings))
    assert not unknown, f"the env example sets variables --help does not know: {unknown}"
    actual = check_config_defaults()
    for name, default in settings.items():
        value, above, commented = entries[name]
        assert re.match(r"^# \S.{8,}", above), f"{name}: no explanation right above it ({above!r})"
        if name == "RAGSTREAM_DATA_DIR":
            # Set for the service (the binary's own default is relative to its cwd).
            assert not commented and value == "/var/lib/ragstream"
            assert default in above, f"{name}: the binary's default {default} is not mentioned"
            continue
        assert commented, f"{name} should be commented out at its default"
        if default is not None:
            assert value == default, f"{name}: example {value!r}, --help default {default!r}"
            assert actual[name] == default, \
                f"{name}: --help says {default}, --check-config {actual[name]}"
        else:
            assert actual.get(name) in ("(unset)", None), (name, actual.get(name))
            assert "unset" in above, f"{name}: say that it is unset by default ({above!r})"


def test_env_example_values_all_pass_check_config(deploy_dir):
    """Every line of the example uncommented (its default or example value) is valid."""
    env = clean_env()
    for name, (value, _, _) in env_example_entries(ENV_EXAMPLE.read_text()).items():
        env[name] = value
    env["RAGSTREAM_DATA_DIR"] = str(deploy_dir / "never-opened")
    # The key file's example path is read by --check-config: give it a real file there.
    keys = deploy_dir / "api_keys"
    keys.write_text("tenant-a:" + "ab" * 32 + "\n")
    env["RAGSTREAM_API_KEYS_FILE"] = str(keys)
    r = run([worker_bin(), "--check-config"], env=env)
    assert r.returncode == 0 and "configuration ok" in r.stdout, r
    assert not (deploy_dir / "never-opened").exists(), "--check-config must not open the store"


# --------------------------------------------------------------------------- --check-config


BAD_VALUES = [
    ({"RAGSTREAM_THREADS": "abc"}, "RAGSTREAM_THREADS"),
    ({"RAGSTREAM_THREADS": "0"}, "RAGSTREAM_THREADS"),
    ({"RAGSTREAM_THREADS": "12x"}, "RAGSTREAM_THREADS"),
    ({"RAGSTREAM_GRACE_S": "-1"}, "RAGSTREAM_GRACE_S"),
    ({"RAGSTREAM_MAP_SIZE_MB": "0"}, "RAGSTREAM_MAP_SIZE_MB"),
    ({"RAGSTREAM_LOG_LEVEL": "loud"}, "RAGSTREAM_LOG_LEVEL"),
    ({"RAGSTREAM_ON_DISCONNECT": "maybe"}, "RAGSTREAM_ON_DISCONNECT"),
    ({"OPENAI_BASE_URL": "ftp://x", "RAGSTREAM_CHAT_MODEL": "m"}, "OPENAI_BASE_URL"),
    ({"RAGSTREAM_EMBEDDER": "magic"}, "RAGSTREAM_EMBEDDER"),
    ({"RAGSTREAM_CHUNK_CHARS": "400", "RAGSTREAM_CHUNK_OVERLAP_CHARS": "201"},
     "RAGSTREAM_CHUNK_OVERLAP_CHARS"),
    ({"RAGSTREAM_TOP_K": "21"}, "RAGSTREAM_TOP_K"),
    ({"RAGSTREAM_PERSIST_INTERVAL_MS": "501"}, "RAGSTREAM_PERSIST_INTERVAL_MS"),
]


@pytest.mark.parametrize("bad,name", BAD_VALUES,
                         ids=[f"{n}={b[n]}" for b, n in BAD_VALUES])
def test_check_config_rejects_bad_values(bad, name, deploy_dir):
    env = clean_env(OPENAI_API_KEY=API_KEY, RAGSTREAM_DATA_DIR=str(deploy_dir / "never-opened"),
                    **bad)
    r = run([worker_bin(), "--check-config"], env=env)
    assert r.returncode == 2, f"{bad}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert name in r.stderr, f"{bad}: the message does not name {name}: {r.stderr!r}"
    assert "configuration ok" not in r.stdout
    assert API_KEY not in r.stdout + r.stderr, "the API key was printed"


def test_check_config_accepts_valid_values_and_hides_the_key(deploy_dir):
    env = clean_env(OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL="https://llm.example/v1/",
                    RAGSTREAM_CHAT_MODEL="some-model", RAGSTREAM_THREADS="8",
                    RAGSTREAM_LOG_LEVEL="warn", RAGSTREAM_ON_DISCONNECT="finish",
                    RAGSTREAM_CHUNK_CHARS="400", RAGSTREAM_CHUNK_OVERLAP_CHARS="200",
                    RAGSTREAM_DATA_DIR=str(deploy_dir / "never-opened"))
    r = run([worker_bin(), "--check-config"], env=env)
    assert r.returncode == 0, r
    assert r.stdout.rstrip().endswith("configuration ok"), r.stdout
    assert API_KEY not in r.stdout + r.stderr
    printed = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    assert printed["OPENAI_API_KEY"] == "(set)"
    assert printed["RAGSTREAM_THREADS"] == "8" and printed["RAGSTREAM_ON_DISCONNECT"] == "finish"
    assert printed["OPENAI_BASE_URL"] == "https://llm.example/v1"
    assert not (deploy_dir / "never-opened").exists()


# --------------------------------------------------------------------------- the nginx site


def render_site_prefix(dest: Path, prefix: Path, port: int, run_dir: Path, *,
                       include_zones: bool = True, rate: str | None = None) -> Path:
    """A private nginx prefix whose nginx.conf includes the installed zone file and site in
    http {}, with /etc/nginx/, /run/ragstream/ and /usr/share/ragstream moved into temp
    dirs and the site listening on 127.0.0.1:port. `rate` replaces the zone's rate and
    drops the bursts (a test variant with low limits)."""
    for sub in ("conf", "logs", "run", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)

    def move(text: str) -> str:
        text = text.replace("/etc/nginx/", f"{dest}/etc/nginx/")
        text = text.replace("/run/ragstream/", f"{run_dir}/")
        return text.replace("/usr/share/ragstream", f"{dest}/usr/share/ragstream")

    site = move((dest / "etc/nginx/sites-available/ragstream").read_text())
    listens = re.findall(r"(?m)^\s*listen\s[^;]*;", site)
    assert listens, "the site has no listen directive"
    site = site.replace(listens[0], f"    listen 127.0.0.1:{port};", 1)
    for extra in listens[1:]:
        site = site.replace(extra, "", 1)
    zones = move((dest / "etc/nginx/conf.d/ragstream.http.conf").read_text())
    if rate is not None:
        zones, n = re.subn(r"rate=\d+r/[sm]", f"rate={rate}", zones)
        assert n >= 1, zones
        site, n = re.subn(r" burst=\d+( nodelay)?", "", site)  # no burst: the default
        assert n >= 1, site
    (prefix / "conf" / "site.conf").write_text(site)
    (prefix / "conf" / "zones.conf").write_text(zones)
    mime = "include /etc/nginx/mime.types;" if os.path.exists("/etc/nginx/mime.types") \
        else "types { text/html html; application/json json; }"
    user = "user root root;" if os.geteuid() == 0 else ""
    (prefix / "conf" / "nginx.conf").write_text(f"""{user}
worker_processes 1;
daemon off;
pid run/nginx.pid;
error_log logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    {mime}
    default_type application/octet-stream;
    access_log logs/access.log;
    client_body_temp_path tmp/client_body;
    fastcgi_temp_path tmp/fastcgi;
    proxy_temp_path tmp/proxy;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    {"include " + str(prefix / "conf" / "zones.conf") + ";" if include_zones else ""}
    include {prefix / "conf" / "site.conf"};
}}
""")
    return prefix


def nginx_t(prefix: Path) -> subprocess.CompletedProcess:
    return run([NGINX, "-t", "-p", f"{prefix}/", "-c", "conf/nginx.conf", "-e", "logs/error.log"])


@pytest.fixture
def need_nginx():
    if NGINX is None:
        pytest.skip("nginx is not installed (scripts/install_deps.sh)")


def test_installed_nginx_site_passes_nginx_t(need_nginx, installed, deploy_dir):
    dest, _ = installed
    base = Path(tempfile.mkdtemp(prefix="ngx-t-", dir=deploy_dir))
    prefix = render_site_prefix(dest, base / "nginx", harness.free_port(), base / "run")
    r = nginx_t(prefix)
    assert r.returncode == 0, r.stderr
    assert "syntax is ok" in r.stderr and "test is successful" in r.stderr, r.stderr
    # The check can fail: without the http-level zone file the site's limits are undefined.
    prefix = render_site_prefix(dest, base / "nginx-nozones", harness.free_port(), base / "run",
                                include_zones=False)
    r = nginx_t(prefix)
    assert r.returncode != 0, r.stderr
    assert "ragstream_req" in r.stderr or "ragstream_conn" in r.stderr, r.stderr


def test_site_limits_static_files_metrics_and_request_ids(need_nginx, installed, deploy_dir):
    """The installed site in front of real workers, with its rate limit lowered to 2r/s and
    no burst: of 20 rapid GET /api/health, some are refused with a JSON 429."""
    dest, _ = installed
    base = Path(tempfile.mkdtemp(prefix="ngx-live-", dir=deploy_dir))
    run_dir = base / "run"
    run_dir.mkdir()
    web = dest / "usr/share/ragstream/web"
    created_index = not (web / "index.html").exists()
    if created_index:
        (web / "index.html").write_text("<!doctype html><title>ragstream deploy test</title>\n")
    index_html = (web / "index.html").read_bytes()
    env = clean_env(RAGSTREAM_DATA_DIR=str(base / "data"), RAGSTREAM_THREADS="8",
                    RAGSTREAM_GRACE_S="1", RAGSTREAM_MAP_SIZE_MB="64", RAGSTREAM_TRUST_LOOPBACK="1",
                    RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS="0")
    procs, files = [], []
    try:
        logs = []
        for i in range(1, WORKERS + 1):
            log = base / f"worker-{i}.log"
            logs.append(log)
            harness.PRODUCT_LOG_FILES.append(log)
            f = open(log, "ab")
            files.append(f)
            procs.append(harness.start_process(
                [str(worker_bin()), "--listen", f"unix:{run_dir}/worker-{i}.sock"],
                env=env, stdout=f, stderr=f))
        for i, p in enumerate(procs, 1):
            harness.wait_until(
                lambda: (run_dir / f"worker-{i}.sock").exists() or p.poll() is not None,
                10, what=f"worker-{i}.sock")
            assert p.poll() is None, (base / f"worker-{i}.log").read_text()
        port = harness.free_port()
        prefix = render_site_prefix(dest, base / "nginx", port, run_dir, rate="2r/s")
        r = nginx_t(prefix)
        assert r.returncode == 0, r.stderr
        nginx_out = open(base / "nginx.out", "ab")
        files.append(nginx_out)
        harness.PRODUCT_LOG_FILES.append(prefix / "logs" / "error.log")
        nginx = harness.start_process([NGINX, "-p", f"{prefix}/", "-c", "conf/nginx.conf",
                                       "-e", "logs/error.log"], stdout=nginx_out, stderr=nginx_out)
        procs.append(nginx)

        def get(path, source="127.0.0.1", headers=None):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                              source_address=(source, 0))
            try:
                conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
                resp = conn.getresponse()
                return harness.Response(resp.status, resp.reason, resp.getheaders(), resp.read())
            finally:
                conn.close()

        def up():
            assert nginx.poll() is None, (base / "nginx.out").read_text()
            try:
                get("/index.html")
                return True
            except OSError:
                return False
        harness.wait_until(up, 10, what="nginx on the rendered site")

        # Static files from the web root; unknown paths get index.html (single-page app).
        for path in ("/", "/index.html", "/conversations/some-id"):
            r = get(path)
            assert r.status == 200 and r.body == index_html, (path, r)
            assert (r.header("Content-Type") or "").startswith("text/html"), r.headers
            assert r.header("X-Request-Id"), r.headers
        # /metrics: loopback only (127.0.0.2 is another client address on lo).
        r = get("/metrics", source="127.0.0.2")
        assert r.status == 403, r
        r = get("/metrics")
        assert r.status != 403 and r.status != 502, r
        # /v1/ reaches the workers (their JSON 404 for an unknown route, not nginx's page).
        r = get("/v1/ragstream-deploy-test-no-such-route")
        assert r.status == 404, r
        assert (r.header("Content-Type") or "").startswith("application/json"), r

        # The rate limit: let the bucket empty, then 20 rapid requests.
        time.sleep(1.1)
        results = [get("/api/health") for _ in range(20)]
        statuses = [x.status for x in results]
        assert statuses.count(200) >= 1, statuses
        limited = [x for x in results if x.status == 429]
        assert len(limited) >= 10, statuses
        assert set(statuses) <= {200, 429}, statuses
        for x in limited:
            assert (x.header("Content-Type") or "").startswith("application/json"), x.headers
            assert x.json["error"]["code"] == "rate_limited", x
            assert x.json["error"]["message"], x
            assert x.header("X-Request-Id"), x.headers
            assert x.header("Retry-After") == "1", x.headers
        # The request id nginx returns is the one the worker logged (REQUEST_ID).
        ok = [x for x in results if x.status == 200]
        rid = ok[0].header("X-Request-Id")
        assert rid and re.fullmatch(r"[0-9a-f]{32}", rid), ok[0].headers

        def logged():
            return rid in "".join(p.read_text(errors="replace") for p in logs)
        harness.wait_until(logged, 5, what=f"request id {rid} in a worker log")
        record = next(json.loads(l) for p in logs for l in p.read_text().splitlines() if rid in l)
        assert record["request_id"] == rid and record["status"] == 200, record
        assert not any(rid == x.header("X-Request-Id") for x in limited)
    finally:
        for p in reversed(procs):
            harness.stop_process(p, signal.SIGTERM, timeout=10)
        for f in files:
            f.close()
        if created_index:
            (web / "index.html").unlink()


# --------------------------------------------------------------------------- socket on fd 0


def spawn_on_fd0(listener: socket.socket, env: dict, log) -> subprocess.Popen:
    """Starts a worker with `listener` as its fd 0, as systemd does for StandardInput=socket,
    registered with the harness so that it is stopped even if the test fails."""
    p = subprocess.Popen([str(worker_bin())], stdin=listener.fileno(), stdout=log, stderr=log,
                         env=env, preexec_fn=harness._die_with_parent)
    harness._STARTED.append(p)
    return p


def test_worker_restart_on_a_socket_held_by_its_parent(need_nginx, deploy_dir):
    """The systemd model without systemd: this test holds the listening socket (as
    ragstream-worker@1.socket does) and starts the worker with it on fd 0. A restart (SIGTERM,
    then a new process on the same socket) lets the running stream finish; a request sent
    during the drain is answered (by the old process if it was already waiting, else from
    the backlog by the new one), and the socket file stays."""
    base = Path(tempfile.mkdtemp(prefix="fd0-", dir=deploy_dir))
    sock_path = base / "worker-1.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(1024)
    env = clean_env(RAGSTREAM_DATA_DIR=str(base / "data"), RAGSTREAM_THREADS="8",
                    RAGSTREAM_GRACE_S="10", RAGSTREAM_MAP_SIZE_MB="64", RAGSTREAM_TRUST_LOOPBACK="1",
                    RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS="40", RAGSTREAM_PING_INTERVAL_MS="300")
    log_path = base / "worker.log"
    harness.PRODUCT_LOG_FILES.append(log_path)
    log = open(log_path, "ab")
    procs = []
    try:
        a = spawn_on_fd0(listener, env, log)
        procs.append(a)
        harness.wait_until(
            lambda: f'"pid":{a.pid},' in log_path.read_text() or a.poll() is not None,
            10, what="the worker on fd 0 to start")
        assert a.poll() is None, log_path.read_text()
        port = harness.free_port()
        subprocess.run([str(harness.RENDER_SCRIPT), str(base / "nginx"), str(port), str(sock_path)],
                       check=True, stdout=subprocess.DEVNULL)
        nginx = harness.start_process([NGINX or "nginx", "-p", f"{base}/nginx/",
                                       "-c", "conf/nginx.conf", "-e", "logs/error.log"],
                                      stdout=log, stderr=log)
        procs.append(nginx)
        harness.wait_until(lambda: _status(port, "/api/health") == 200, 10, what="GET /api/health")
        text = " ".join(f"The harbour lighthouse number {i} was painted red and white in spring."
                        for i in range(40))
        r = harness.http_request(port, "POST", "/api/documents",
                                 json.dumps({"title": "Lighthouses", "text": text}).encode(),
                                 {"Content-Type": "application/json"})
        assert r.status in (200, 201), r

        first_token = threading.Event()
        box = {}

        def on_item(res, item):
            if item.kind == "event" and isinstance(item.json, dict) and item.json.get("token"):
                first_token.set()
            return False

        def stream():
            try:
                box["stream"] = harness.stream_request(
                    port, {"message": "What colour was the harbour lighthouse painted?"},
                    stop=on_item, timeout=60)
            except Exception as e:  # reported below
                box["stream"] = e

        t = threading.Thread(target=stream)
        t.start()
        assert first_token.wait(20), box
        a.send_signal(signal.SIGTERM)  # systemctl restart: stop the old process first
        harness.wait_until(lambda: "draining" in log_path.read_text(), 5, what="the drain")

        def queued():
            try:
                box["queued"] = harness.http_request(port, "GET", "/api/documents", timeout=60)
            except Exception as e:
                box["queued"] = e

        q = threading.Thread(target=queued)
        q.start()
        # One SIGTERM, as systemd sends (KillMode=mixed); wait for the drain to end.
        code = a.wait(30)
        assert code == 0, log_path.read_text()[-2000:]
        assert sock_path.exists(), "the worker removed a socket it did not create"
        # No process listens now: a request waits in the socket's backlog ...
        box["t_gap"] = time.monotonic()

        def in_gap():
            try:
                box["gap"] = harness.http_request(port, "GET", "/api/documents", timeout=60)
                box["t_gap_answered"] = time.monotonic()
            except Exception as e:
                box["gap"] = e

        g = threading.Thread(target=in_gap)
        g.start()
        time.sleep(0.5)
        assert "gap" not in box, f"answered with no worker running: {box['gap']!r}"
        t_b = time.monotonic()
        b = spawn_on_fd0(listener, env, log)  # ... until the new process starts on it
        procs.append(b)
        g.join(30)
        t.join(60)
        q.join(60)
        gap = box["gap"]
        assert isinstance(gap, harness.Response) and gap.status == 200, gap
        assert box["t_gap_answered"] >= t_b
        assert [d["title"] for d in gap.json["documents"]] == ["Lighthouses"], gap
        s1 = box["stream"]
        assert isinstance(s1, harness.StreamResult), s1
        assert s1.status == 200 and len(s1.done_events) == 1, s1
        assert s1.done["status"] == "complete", s1.done
        r2 = box["queued"]
        assert isinstance(r2, harness.Response) and r2.status == 200, r2
        assert [d["title"] for d in r2.json["documents"]] == ["Lighthouses"], r2
        assert b.poll() is None
    finally:
        for p in reversed(procs):
            harness.stop_process(p, signal.SIGTERM, timeout=15)
        log.close()
        listener.close()


def _status(port: int, path: str) -> int:
    try:
        return harness.http_request(port, "GET", path, timeout=2).status
    except OSError:
        return 0
