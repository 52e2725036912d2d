"""Language-aware retrieval and honest answers through nginx, with documents this test writes:
other word forms and Hebrew prefix letters find the right document first, exact forms and
titles count, the offline answer quotes the sentence that answers, and a question the
documents do not cover cites nothing and says so in the question's language."""

from __future__ import annotations

import pytest

DOCS = {
    "lease": ("Apartment lease: 12 Birch Lane",
              "The monthly rent is 1,450 euros, due on the first day of each month.\n\n"
              "To extend the lease, the tenant must give written notice at least 60 days before "
              "the current term ends. The landlord answers within 14 days.\n\n"
              "Pets are allowed with a deposit of 300 euros."),
    "shakshuka": ("Shakshuka for four",
                  "Soften the onion and peppers in olive oil for 8 minutes, add cumin and paprika, "
                  "then the crushed tomatoes, and simmer for 10 minutes.\n\n"
                  "Make six wells in the sauce, crack an egg into each, cover the pan and cook "
                  "the eggs for 6 to 8 minutes, until the whites are set and the yolks still "
                  "runny."),
    "router": ("Setting up the home router",
               "Plug the modem cable into the yellow WAN port on the back of the router; the four "
               "grey LAN ports are for computers.\n\n"
               "The admin page is at http://192.168.8.1 and the first password is printed on "
               "the label under the router."),
    "water": ("The water cycle",
              "Water evaporates from the oceans, condenses into clouds and falls as rain or snow. "
              "Rivers carry it back to the sea, and the cycle takes days for the atmosphere and "
              "thousands of years for deep groundwater."),
    "deadsea": ("ים המלח",
                "ים המלח הוא אגם מלוח בבקע ירדן. פני המים שלו נמצאים כ־430 מטרים מתחת לפני הים.\n\n"
                "העומק המרבי של האגם הוא כ־300 מטרים. ריכוז המלחים במים הוא כ־34 אחוזים, ולכן "
                "אדם צף בהם בקלות."),
    "challah": ("אפיית חלה",
                "משאירים את הבצק לתפוח שעה וחצי במקום חמים, עד שנפחו מכפיל את עצמו.\n\n"
                "קולעים את החלות, מורחים ביצה ואופים בתנור שחומם ל־180 מעלות במשך 25 דקות."),
    "baikal": ("Озеро Байкал",
               "Байкал — самое глубокое озеро на Земле: его наибольшая глубина 1642 метра.\n\n"
               "В озере около 27 островов, крупнейший из них — Ольхон."),
    "coffee": ("القهوة العربية",
               "تُحمَّص حبوب البن على نار هادئة ثم تُطحن وتُغلى مع الهيل.\n\n"
               "يُقدَّم الفنجان باليد اليمنى، ويهز الضيف الفنجان إذا لم يرغب في المزيد."),
}


@pytest.fixture(scope="module")
def docs(offline_stack):
    ids = {}
    for key, (title, text) in DOCS.items():
        r = offline_stack.post_json("/api/documents", {"title": title, "text": text})
        assert r.status == 201, (key, r)
        ids[key] = r.json["id"]
    return ids


def first_document(stack, query, mode=None):
    body = {"query": query, "top_k": 5}
    if mode:
        body["mode"] = mode
    r = stack.post_json("/api/search", body)
    assert r.status == 200, r
    results = r.json["results"]
    return results[0]["document_id"] if results else None, results


@pytest.mark.parametrize("query,want", [
    ("How long is the notice period to extend the lease?", "lease"),
    ("How many minutes should the eggs cook in the shakshuka?", "shakshuka"),
    ("Which port does the modem cable go into?", "router"),
    ("leases extended notices", "lease"),                       # other word forms
    ("מה עומק ים המלח?", "deadsea"),
    ("ובכמה מעלות אופים את החלות?", "challah"),                 # ו, ב, ה prefixes; plural
    ("כמה זמן הבצק צריך לתפוח?", "challah"),
    ("Сколько островов на Байкале?", "baikal"),                 # another case
    ("هل تغلى القهوة بالهيل؟", "coffee"),                       # بال, ال attached
])
def test_the_right_document_comes_first(offline_stack, docs, query, want):
    for mode in (None, "lexical"):
        got, results = first_document(offline_stack, query, mode)
        assert got == docs[want], (mode, query, [(r["title"], r["score"]) for r in results])
        assert results[0]["relevance"] > 0, results[0]


@pytest.mark.parametrize("query", [
    "What is the capital of Mongolia?",
    "מי כתב את התקווה?",
    "the and of is what",
])
def test_a_question_nothing_covers_cites_nothing(offline_stack, docs, query):
    for mode in (None, "hybrid", "lexical"):
        _, results = first_document(offline_stack, query, mode)
        assert results == [], (mode, query, results)


@pytest.mark.parametrize("question,language,text", [
    ("What is the capital of Mongolia?", "en", "Your documents do not cover this question."),
    ("מי כתב את התקווה?", "he", "המסמכים שלך אינם עוסקים בשאלה הזאת."),
    ("Кто написал «Войну и мир»?", "ru", "В ваших документах нет ответа на этот вопрос."),
])
def test_the_offline_answer_says_the_documents_do_not_cover_it(offline_stack, docs, question,
                                                               language, text):
    res = offline_stack.stream({"message": question})
    assert res.done and res.done["status"] == "complete", res
    assert res.done["language"] == language, res.done
    assert res.done["sources"] == [], res.done["sources"]
    assert res.text == text, res.text


@pytest.mark.parametrize("question,must_quote", [
    ("מה עומק ים המלח?", "300 מטרים"),
    ("How long do I cook the eggs in the shakshuka?", "6 to 8 minutes"),
    ("How many days' notice do I give to extend the lease?", "60 days"),
])
def test_the_offline_answer_quotes_the_sentence_that_answers(offline_stack, docs, question,
                                                             must_quote):
    res = offline_stack.stream({"message": question})
    assert res.done and res.done["status"] == "complete", res
    assert res.done["sources"], res.done
    assert must_quote in res.text, res.text
