"""The OpenAI-compatible API (/v1) through nginx, with the official `openai` npm package,
unmodified (tests/sdk), plus the wire format checked directly."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import harness

SDK_DIR = harness.ROOT / "tests" / "sdk"


@pytest.fixture(scope="module")
def sdk():
    """Installs the pinned `openai` package from npm (once; node_modules is git-ignored)."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed for the SDK test")
    if not (SDK_DIR / "node_modules" / "openai").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=SDK_DIR, check=True,
                       timeout=300)
    return SDK_DIR / "sdk_check.mjs"


def test_official_sdk_streaming_and_not(stack, fake_upstream, sdk):
    doc = stack.post_json("/api/documents", {
        "title": "Quillmere observatory",
        "text": "The Quillmere observatory opens its dome every clear night at 21:00. "
                "Its main telescope has a 60 centimetre mirror."})
    assert doc.status in (200, 201), doc
    question = f"When does the Quillmere observatory open its dome? {harness.uniq('q')}"
    r = subprocess.run(["node", str(sdk), f"http://127.0.0.1:{stack.port}/v1", question],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    expected = harness.fake_default_answer(question)

    assert out["models"] == ["fake-model"]
    plain = out["plain"]
    assert plain["object"] == "chat.completion" and plain["id"].startswith("chatcmpl-")
    assert plain["text"] == expected and plain["role"] == "assistant"
    assert plain["finish_reason"] == "stop"
    assert plain["usage"]["completion_tokens"] > 0
    assert plain["usage"]["total_tokens"] == (plain["usage"]["prompt_tokens"] +
                                              plain["usage"]["completion_tokens"])
    assert plain["extra"]["sources"][0]["document_id"] == doc.json["id"]
    assert plain["extra"]["language"] == "en"

    streamed = out["stream"]
    assert streamed["text"] == expected
    assert streamed["deltas"] > 1, "the answer did not arrive as several deltas"
    assert streamed["finish_reason"] == "stop"
    assert streamed["usage"]["completion_tokens"] > 0
    assert streamed["extra"]["sources"][0]["document_id"] == doc.json["id"]
    assert out["error"]["status"] == 400

    # Without conversation_id the request's messages were the history: the upstream saw the
    # earlier turns, and each exchange was saved as a conversation of its own.
    sent = [x for x in fake_upstream.chat_requests() if question in harness.last_user_text(x)]
    assert len(sent) == 2, len(sent)
    roles = [(m["role"], m["content"]) for m in sent[0]["body"]["messages"]]
    assert ("user", "Earlier question?") in roles and ("assistant", "Earlier answer.") in roles
    assert not any(c == "You are terse." for _, c in roles), "a client system prompt leaked in"
    for extra in (plain["extra"], streamed["extra"]):
        conv = stack.conversation(extra["conversation_id"])
        assert [m["role"] for m in conv["messages"]] == ["user", "assistant"]
        assert conv["messages"][1]["content"] == expected
        assert conv["messages"][1]["status"] == "complete"


def test_wire_format_and_conversation_header(stack, fake_upstream):
    question = f"First question {harness.uniq('w')}"
    r = stack.post_json("/v1/chat/completions", {"messages": [{"role": "user", "content": question}]})
    assert r.status == 200, r
    conv_id = r.json["x_ragstream"]["conversation_id"]
    # A follow-up in the same conversation, chosen by header: the stored history is used.
    follow = f"Second question {harness.uniq('w')}"
    res = harness.stream_request(stack.port, {"messages": [{"role": "user", "content": follow}],
                                              "stream": True},
                                 path="/v1/chat/completions",
                                 headers={"X-Conversation-Id": conv_id})
    assert res.status == 200, res
    assert res.header("Content-Type").startswith("text/event-stream")
    data = [e.text for e in res.events]
    assert data[-1] == "[DONE]", data[-3:]
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in chunks[-1] or chunks[-1]["usage"] is None  # no include_usage asked
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == harness.fake_default_answer(follow)
    conv = stack.conversation(conv_id)
    assert [m["content"] for m in conv["messages"] if m["role"] == "user"] == [question, follow]
    sent = [x for x in fake_upstream.chat_requests() if follow in harness.last_user_text(x)][0]
    assert any(m["content"] == question for m in sent["body"]["messages"])


@pytest.mark.parametrize("body,status,code", [
    ({"messages": []}, 400, "missing_field"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "invalid_messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400,
     "unsupported_content"),
    ({"messages": [{"role": "user", "content": "x"}], "conversation_id": "conv_" + "0" * 24},
     404, "not_found"),
    ({"messages": [{"role": "user", "content": "x"}], "top_k": 99}, 422, "invalid_top_k"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, 400, "invalid_field"),
])
def test_openai_shaped_errors(stack, body, status, code):
    before = len(stack.conversation_ids())
    r = stack.post_json("/v1/chat/completions", body)
    assert r.status == status, r
    err = r.json["error"]
    assert err["code"] == code and err["message"] and err["type"] and "param" in err
    assert len(stack.conversation_ids()) == before
