"""Language detection and the answer-language instruction; non-ASCII answers intact."""

from harness import uniq

HEBREW_QUESTION = "מה ההבדל בין ספרייה סטטית לספרייה דינמית בלינוקס?"

# Hebrew, niqqud (combining marks), emoji with skin tone, a ZWJ family, a flag, commas.
HEBREW_ANSWER = ("שָׁלוֹם! ספרייה סטטית 📦 נקשרת בזמן הקישור, ודינמית 🔗 נטענת בזמן ריצה. "
                 "בהצלחה 👋🏽 מכל המשפחה 👨‍👩‍👧 ומישראל 🇮🇱, עם פסיקים, נקודות; וסימני שאלה?")


def _system_message(record) -> str:
    msgs = record["body"]["messages"]
    assert msgs[0]["role"] == "system", msgs
    return msgs[0]["content"]


def test_hebrew_question_gets_hebrew_instruction(stack, fake_upstream):
    r = stack.stream({"message": HEBREW_QUESTION})
    assert r.status == 200 and r.done, r
    assert r.done["status"] == "complete"
    assert r.done["language"] == "he"
    recs = fake_upstream.chat_requests(HEBREW_QUESTION)
    assert len(recs) == 1
    system = _system_message(recs[0])
    assert "Hebrew" in system, system
    assert '"he"' in system or " he" in system, system
    # The question reaches the model byte for byte.
    assert recs[0]["body"]["messages"][-1] == {"role": "user", "content": HEBREW_QUESTION}
    conv = stack.conversation(r.done["conversation_id"])
    assert conv["language"] == "he"
    assert conv["messages"][0]["content"] == HEBREW_QUESTION


def test_english_question_gets_english(stack, fake_upstream):
    question = f"What is the difference between static and dynamic libraries on Linux? {uniq()}"
    r = stack.stream({"message": question})
    assert r.done and r.done["language"] == "en", r
    system = _system_message(fake_upstream.chat_requests(question)[0])
    assert "English" in system and '"en"' in system, system


def test_hebrew_answer_with_emoji_arrives_intact(stack, fake_upstream):
    # Through /_fake/script (the text has commas); split framing cuts events at nasty
    # places, including inside \uXXXX escapes of surrogate pairs.
    fake_upstream.script([{"text": HEBREW_ANSWER, "split": True, "gap_ms": 5, "seed": 7}])
    r = stack.stream({"message": f"ענה לי בבקשה בעברית עם אימוג'י {uniq()}"})
    assert r.status == 200 and r.done and r.done["status"] == "complete", r
    tokens = [e.json["token"] for e in r.token_events]
    assert all("\ufffd" not in t for t in tokens), tokens
    assert "\ufffd".encode() not in r.raw
    assert r.text == HEBREW_ANSWER
    conv = stack.conversation(r.done["conversation_id"])
    assert conv["messages"][1]["content"] == HEBREW_ANSWER


def test_answer_with_characters_split_across_deltas(stack, fake_upstream):
    # Deltas cut between a base letter and its combining marks, and between the members of
    # a ZWJ sequence: each delta is still whole code points, and they must be relayed
    # unchanged and in order.
    parts = ["שָ", "\u05c1", "לוֹם 👨", "\u200d👩", "\u200d👧 ", "🇮", "🇱 end"]
    fake_upstream.script([{"answer": parts, "split": True, "seed": 3}])
    r = stack.stream({"message": f"Split characters please {uniq()}"})
    assert r.done and r.done["status"] == "complete", r
    assert r.text == "".join(parts)
    assert "\ufffd" not in r.text


def test_short_hebrew_questions_get_hebrew(stack, fake_upstream):
    """A question written only in Hebrew letters cannot be English, however short: the model
    must be told to answer in Hebrew."""
    got = {}
    for q in ["שלום", "מה זה?", "תודה רבה", "מה שלומך?"]:
        r = stack.stream({"message": q})
        assert r.done and r.done["status"] == "complete", r
        got[q] = r.done["language"]
    assert all(v == "he" for v in got.values()), got
