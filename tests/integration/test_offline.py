"""No upstream model configured (no OPENAI_BASE_URL / RAGSTREAM_CHAT_MODEL): the embedded
extractive answerer quotes sentences of the retrieved passages with [n] markers, in English
or Hebrew, says when nothing is relevant or there are no documents, and streams word by
word (RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from harness import ROOT, SAMPLE_DIR, ingest_sample_corpus, load_eval_questions, uniq

INTRO = {"en": "From your documents (quoted):", "he": "לפי המסמכים שלך (ציטוט):"}
NOTHING = {"en": "Your documents do not cover this question.",
           "he": "המסמכים שלך אינם עוסקים בשאלה הזאת."}
SWALLOW = "What is the airspeed velocity of an unladen swallow?"


def _norm(s: str) -> str:
    return " ".join(s.split())


def _quotes(answer: str, language: str) -> list[tuple[str, int]]:
    """[(sentence, n)] of an extractive answer: the intro line, then blank-line separated
    sentences each ending in ' [n]'."""
    blocks = answer.split("\n\n")
    assert blocks[0] == INTRO[language], f"no {language} intro line: {answer!r}"
    out = []
    for b in blocks[1:]:
        m = re.fullmatch(r"(.+) \[(\d+)\]", b, flags=re.S)
        assert m, f"a quoted sentence without its [n] marker: {b!r}\nin {answer!r}"
        out.append((m.group(1), int(m.group(2))))
    assert out, f"an intro with no quotes: {answer!r}"
    return out


def _check_extractive_answer(stack, res, language: str):
    assert res.status == 200, res
    done = res.done
    assert done and done["status"] == "complete", res
    assert "error" not in done, done
    assert done["language"] == language, done
    assert done["finish_reason"] == "stop", done
    sources = done["sources"]
    assert sources, done
    answer = res.text
    assert answer.startswith(INTRO[language]), answer
    quotes = _quotes(answer, language)
    for sentence, n in quotes:
        assert 1 <= n <= len(sources), f"[{n}] with {len(sources)} sources: {answer!r}"
        # Hard-wrapped lines are joined and list markers dropped: compare modulo whitespace.
        assert _norm(sentence) in _norm(sources[n - 1]["text"]), (
            f"{sentence!r} is not in source [{n}]: {sources[n - 1]['text']!r}")
    # Stored as streamed.
    msg = stack.conversation(done["conversation_id"])["messages"][-1]
    assert msg["status"] == "complete" and msg["content"] == answer, msg
    return quotes


@pytest.fixture(scope="module")
def corpus(offline_stack):
    return ingest_sample_corpus(offline_stack)


def _first_question(language: str) -> dict:
    return next(q for q in load_eval_questions()
                if q["language"] == language and not q["paraphrase"])


@pytest.mark.parametrize("language", ["en", "he"])
def test_extractive_answer_quotes_its_sources(offline_stack, corpus, language):
    q = _first_question(language)
    res = offline_stack.stream({"message": q["question"]})
    quotes = _check_extractive_answer(offline_stack, res, language)
    # The answer comes from the labelled document (its passages rank among the sources).
    relevant = corpus[q["relevant"][0]]["id"]
    assert relevant in [s["document_id"] for s in res.done["sources"]], (q, res.done["sources"])
    cited = {res.done["sources"][n - 1]["document_id"] for _, n in quotes}
    assert relevant in cited, (q["id"], res.text)


def test_non_streaming_extractive_answer(offline_stack, corpus):
    q = _first_question("en")
    r = offline_stack.post_json("/api/chat/message", {"message": q["question"]})
    assert r.status == 200, r
    body = r.json
    assert body["status"] == "complete" and body["language"] == "en", body
    assert body["response"].startswith(INTRO["en"])
    for sentence, n in _quotes(body["response"], "en"):
        assert 1 <= n <= len(body["sources"])
        assert _norm(sentence) in _norm(body["sources"][n - 1]["text"])


def test_nothing_relevant_in_a_tiny_unrelated_document(stack_factory):
    s = stack_factory(offline=True)
    r = s.post_json("/api/documents", {"title": "Bread",
                                       "text": "Sourdough bread needs flour, water and salt, "
                                               "and a long slow rise."})
    assert r.status == 201, r
    res = s.stream({"message": SWALLOW})
    assert res.done and res.done["status"] == "complete", res
    assert res.text == NOTHING["en"], res.text
    assert res.done["sources"] == []  # searched, and below the relevance floor: not cited


@pytest.mark.parametrize("file", ["chess-openings.md", "he-dead-sea.md"])
def test_nothing_relevant_in_an_unrelated_document(offline_stack, corpus, file):
    """Restricted to a document about something else, nothing reaches the relevance floor:
    nothing is cited, and the answer says the documents do not cover the question instead of
    quoting sentences that merely share function words ('the', 'is', 'of') with it, or
    (Hebrew document) share no word with it at all."""
    res = offline_stack.stream({"message": SWALLOW, "document_ids": [corpus[file]["id"]]})
    assert res.done and res.done["status"] == "complete", res
    assert res.done["sources"] == [], res.done["sources"]
    assert res.text == NOTHING["en"], f"quoted an unrelated document: {res.text!r}"


def test_no_documents_at_all(stack_factory):
    s = stack_factory(offline=True)
    assert s.get("/api/documents").json["documents"] == []
    res = s.stream({"message": f"What is ragstream? {uniq()}"})
    assert res.done and res.done["status"] == "complete", res
    assert res.done["sources"] == [] and res.done["language"] == "en", res.done
    assert "no documents" in res.text.lower(), res.text
    assert "/api/documents" in res.text
    res = s.stream({"message": "מה זה ים המלח ואיפה הוא נמצא?"})
    assert res.done and res.done["status"] == "complete" and res.done["language"] == "he"
    assert "אין עדיין מסמכים" in res.text, res.text


def test_test_streaming_script(offline_stack, corpus):
    env = dict(os.environ, RAGSTREAM_URL=f"http://127.0.0.1:{offline_stack.port}")
    p = subprocess.run([str(ROOT / "scripts" / "test_streaming.sh"),
                        "How deep is Lake Baikal and how old is it?"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    m = re.search(r"^sources:\s+(\d+)\s*$", p.stdout, flags=re.M)
    assert m and int(m.group(1)) > 0, p.stdout
    assert re.search(r"^status:\s+complete\s*$", p.stdout, flags=re.M), p.stdout
    assert "[1]" in p.stdout, p.stdout


def test_incremental_delivery(stack_factory):
    s = stack_factory(offline=True, env={"RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS": "30"})
    text = (SAMPLE_DIR / "water-cycle.md").read_text(encoding="utf-8")
    assert s.post_json("/api/documents", {"text": text}).status == 201
    res = s.stream({"message": "What drives evaporation in the water cycle?", "top_k": 1})
    assert res.done and res.done["status"] == "complete", res
    tokens = [e for e in res.token_events if e.json["token"]]
    times = sorted({round(e.t, 4) for e in tokens})
    spread = times[-1] - times[0] if times else 0
    print(f"\nextractive stream: {len(tokens)} token events at {len(times)} distinct times "
          f"over {spread * 1000:.0f} ms")
    assert len(times) > 5, f"{len(tokens)} tokens arrived at only {len(times)} distinct times"
    assert spread > 0.15, f"tokens spread over only {spread * 1000:.0f} ms"
    assert res.text.startswith(INTRO["en"])
