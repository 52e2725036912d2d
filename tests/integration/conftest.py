"""Fixtures for the ragstream integration tests: a fake OpenAI upstream, and stacks of
real ragstream-worker processes behind a real nginx (private prefix, loopback port).

    fake_upstream   session-wide fake_openai.py; reset before every test
    stack           a module-wide stack (2 workers) with the standard test environment
    stack_factory   start more stacks (workers=N, env={...}, offline=True for no upstream
                    model); each is stopped at the end of the test that made it
    offline_stack   a module-wide stack (2 workers) with no upstream model configured (the
                    extractive answerer), word delay 0
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import harness
from harness import FakeUpstream, Stack

atexit.register(harness.stop_all_started)


@pytest.fixture(scope="session")
def session_dir():
    with tempfile.TemporaryDirectory(prefix="ragstream-it-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def cli(session_dir):
    """A private copy of build/ragstream (or RAGSTREAM_CLI_BIN): a rebuild during the session
    cannot swap it."""
    src = Path(os.environ.get("RAGSTREAM_CLI_BIN", harness.ROOT / "build" / "ragstream"))
    assert src.exists(), f"{src} is missing: run scripts/build.sh ragstream"
    dst = session_dir / "bin" / "ragstream"
    dst.parent.mkdir(exist_ok=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            shutil.copy2(src, dst)
            if subprocess.run([str(dst), "--version"], capture_output=True,
                              timeout=10).returncode == 0:
                return dst
        except (OSError, subprocess.SubprocessError):
            pass
        assert time.monotonic() < deadline, f"could not get a working copy of {src}"
        time.sleep(1)


@pytest.fixture(scope="session", autouse=True)
def worker_binary(session_dir):
    """Runs a private copy of build/ragstream-worker, so that a rebuild by someone else
    during the session cannot swap the binary under a test (ninja relinks in place)."""
    src = harness.WORKER_BIN
    dst = session_dir / "bin" / "ragstream-worker"
    dst.parent.mkdir()
    deadline = time.monotonic() + 60
    while True:
        assert src.exists() or time.monotonic() < deadline, f"{src} is missing: run scripts/build.sh"
        try:
            before = src.stat()
            shutil.copy2(src, dst)
            after = src.stat()
            ok = (before.st_mtime_ns == after.st_mtime_ns and before.st_size == after.st_size
                  and subprocess.run([str(dst), "--version"], capture_output=True,
                                     timeout=10).returncode == 0)
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            break
        assert time.monotonic() < deadline, f"could not get a working copy of {src}"
        time.sleep(1)
    harness.WORKER_BIN = dst
    yield dst


@pytest.fixture(scope="session")
def _fake_process(session_dir):
    fake = FakeUpstream(session_dir / "fake")
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_upstream(_fake_process):
    """The fake OpenAI upstream, with no scripted scenarios and no recorded requests."""
    _fake_process.reset()
    yield _fake_process


def _stack_dir(session_dir: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=session_dir))


@pytest.fixture(scope="module")
def stack(session_dir, _fake_process, request):
    """Two workers behind nginx; module-wide (tests use fresh conversations)."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    s = Stack(_stack_dir(session_dir, name), _fake_process.base_url, workers=2)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def stack_factory(session_dir, _fake_process, request):
    """Starts stacks with a chosen number of workers and extra env; stops them afterwards."""
    made: list[Stack] = []

    def make(workers: int = 1, env: dict | None = None, upstream: str | None = None,
             offline: bool = False) -> Stack:
        """offline=True: no OPENAI_BASE_URL / RAGSTREAM_CHAT_MODEL (the extractive answerer
        serves), RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS=0 unless `env` says otherwise."""
        if offline:
            upstream = ""
            env = {**harness.OFFLINE_ENV, **(env or {})}
        s = Stack(_stack_dir(session_dir, request.node.name[:40]),
                  _fake_process.base_url if upstream is None else upstream,
                  workers=workers, env=env)
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.stop()


@pytest.fixture(scope="module")
def offline_stack(session_dir, request):
    """Two workers behind nginx with no OPENAI_BASE_URL / RAGSTREAM_CHAT_MODEL: answers come
    from the embedded extractive answerer. Module-wide."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    s = Stack(_stack_dir(session_dir, name + "-offline"), "", workers=2,
              env=dict(harness.OFFLINE_ENV))
    try:
        yield s
    finally:
        s.stop()
