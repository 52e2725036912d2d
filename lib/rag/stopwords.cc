#include "lib/rag/stopwords.h"

#include <string>
#include <unordered_set>

namespace ragstream::rag {
namespace {

using WordSet = std::unordered_set<std::string_view>;

// Question words ("how", "which", "when") are stop words here: they say what kind of answer
// is wanted, not what it is about, and the extractive answerer weighs numbers separately.
const WordSet& English() {
  static const WordSet words = {
      "a",          "about",      "above",    "after",     "again",     "against", "all",
      "also",       "am",         "an",       "and",       "any",       "are",     "as",
      "at",         "be",         "because",  "been",      "before",    "being",   "below",
      "between",    "both",       "but",      "by",        "can",       "could",   "did",
      "do",         "does",       "doing",    "down",      "during",    "each",    "either",
      "else",       "ever",       "few",      "for",       "from",      "further", "get",
      "gets",       "got",        "had",      "has",       "have",      "having",  "he",
      "her",        "here",       "hers",     "herself",   "him",       "himself", "his",
      "how",        "i",          "if",       "in",        "into",      "is",      "it",
      "its",        "itself",     "just",     "let",       "may",       "me",      "might",
      "more",       "most",       "must",     "my",        "myself",    "no",      "nor",
      "not",        "of",         "off",      "on",        "once",      "only",    "or",
      "other",      "ought",      "our",      "ours",      "ourselves", "out",     "over",
      "own",        "same",       "shall",    "she",       "should",    "so",      "some",
      "such",       "than",       "that",     "the",       "their",     "theirs",  "them",
      "themselves", "then",       "there",    "these",     "they",      "this",    "those",
      "through",    "to",         "too",      "under",     "until",     "up",      "upon",
      "us",         "very",       "was",      "we",        "were",      "what",    "when",
      "where",      "whether",    "which",    "while",     "who",       "whom",    "whose",
      "why",        "will",       "with",     "would",     "you",       "your",    "yours",
      "yourself",   "yourselves", "s",        "t",         "d",         "ll",      "m",
      "re",         "ve",         "don",      "doesn",     "didn",      "isn",     "aren",
      "wasn",       "weren",      "won",      "can't",     "cannot",    "there's", "whats",
      "tell",       "please",     "anything", "something", "thing",     "things",  "one",
  };
  return words;
}

// Hebrew function words, unpointed, including the common forms with a prefix letter already
// attached (the analyzer also tests the stems hunspell gives after removing prefixes).
const WordSet& Hebrew() {
  static const WordSet words = {
      "של",    "את",     "על",   "עם",   "אל",    "זה",    "זו",   "זאת",  "אלה",   "אלו",   "הוא",
      "היא",   "הם",     "הן",   "אני",  "אתה",   "את",    "אתם",  "אתן",  "אנחנו", "אנו",   "יש",
      "אין",   "לא",     "כן",   "גם",   "רק",    "כל",    "כי",   "אם",   "או",    "אבל",   "אך",
      "מה",    "מי",     "איך",  "כיצד", "למה",   "מדוע",  "מתי",  "איפה", "היכן",  "איזה",  "איזו",
      "אילו",  "כמה",    "האם",  "היה",  "הייתה", "היו",   "יהיה", "תהיה", "יהיו",  "להיות", "שלו",
      "שלה",   "שלהם",   "שלהן", "שלי",  "שלך",   "שלנו",  "שלכם", "אותו", "אותה",  "אותם",  "אותן",
      "אותי",  "אותך",   "לו",   "לה",   "להם",   "להן",   "לי",   "לך",   "לנו",   "לכם",   "בו",
      "בה",    "בהם",    "בהן",  "ממנו", "ממנה",  "מהם",   "עליו", "עליה", "עליהם", "אשר",   "כאשר",
      "כמו",   "לפי",    "בין",  "אחרי", "לפני",  "תחת",   "מעל",  "עד",   "מאוד",  "יותר",  "פחות",
      "כבר",   "עוד",    "שם",   "כאן",  "פה",    "ככה",   "כך",   "לכן",  "אז",    "ביותר", "צריך",
      "צריכה", "צריכים", "אפשר", "ניתן", "כדי",   "בשביל", "אצל",  "לגבי", "אחד",   "אחת",   "מן",
      "מ",     "ב",      "ל",    "ה",    "ו",     "ש",     "כ",    "הזה",  "הזאת",  "האלה",  "וגם",
      "שהוא",  "שהיא",   "שהם",  "ומה",  "ואם",   "ולא",   "שלא",  "שיש",
  };
  return words;
}

const WordSet& Arabic() {
  static const WordSet words = {
      "في",    "من",   "إلى",   "الى",   "على",    "عن",   "مع",   "هذا",   "هذه",  "ذلك",  "تلك",
      "هؤلاء", "الذي", "التي",  "الذين", "اللذان", "ما",   "ماذا", "متى",   "أين",  "اين",  "كيف",
      "كم",    "هل",   "لماذا", "لم",    "لن",     "لا",   "نعم",  "أن",    "ان",   "إن",   "أنه",
      "انه",   "إنه",  "أو",    "او",    "و",      "ثم",   "بل",   "لكن",   "قد",   "كان",  "كانت",
      "يكون",  "تكون", "كانوا", "هو",    "هي",     "هم",   "هن",   "أنا",   "انا",  "أنت",  "انت",
      "نحن",   "أنتم", "كل",    "بعض",   "غير",    "بين",  "عند",  "عندما", "حتى",  "إذا",  "اذا",
      "لو",    "منذ",  "بعد",   "قبل",   "حول",    "أي",   "اي",   "أيضا",  "ايضا", "فقط",  "جدا",
      "به",    "بها",  "له",    "لها",   "لهم",    "فيه",  "فيها", "منه",   "منها", "عليه", "عليها",
      "الى",   "وهو",  "وهي",   "وفي",   "ومن",    "وما",  "ولا",  "فما",   "بما",  "مما",  "كما",
      "لما",   "يجب",  "يمكن",  "ذو",    "ذات",    "هناك", "هنا",  "التى",  "إلا",  "الا",  "سوف",
  };
  return words;
}

const WordSet& Russian() {
  static const WordSet words = {
      "и",      "в",     "во",      "не",     "что",    "он",      "на",     "я",       "с",
      "со",     "как",   "а",       "то",     "все",    "всё",     "она",    "так",     "его",
      "но",     "да",    "ты",      "к",      "ко",     "у",       "же",     "вы",      "за",
      "бы",     "по",    "только",  "ее",     "её",     "мне",     "было",   "вот",     "от",
      "меня",   "еще",   "ещё",     "нет",    "о",      "об",      "из",     "ему",     "теперь",
      "когда",  "даже",  "ну",      "ли",     "если",   "уже",     "или",    "ни",      "быть",
      "был",    "него",  "до",      "вас",    "нибудь", "опять",   "уж",     "вам",     "ведь",
      "там",    "потом", "себя",    "ничего", "ей",     "может",   "они",    "тут",     "где",
      "есть",   "надо",  "ней",     "для",    "мы",     "тебя",    "их",     "чем",     "была",
      "сам",    "чтоб",  "без",     "будто",  "чего",   "раз",     "тоже",   "себе",    "под",
      "будет",  "ж",     "тогда",   "кто",    "этот",   "того",    "потому", "этого",   "какой",
      "совсем", "ним",   "здесь",   "этом",   "один",   "почти",   "мой",    "тем",     "чтобы",
      "нее",    "были",  "куда",    "зачем",  "всех",   "никогда", "можно",  "при",     "наконец",
      "два",    "об",    "другой",  "хоть",   "после",  "над",     "больше", "тот",     "через",
      "эти",    "нас",   "про",     "всего",  "них",    "какая",   "много",  "разве",   "три",
      "эту",    "моя",   "впрочем", "хорошо", "свою",   "этой",    "перед",  "иногда",  "лучше",
      "чуть",   "том",   "нельзя",  "такой",  "им",     "более",   "всегда", "конечно", "всю",
      "между",  "это",   "эта",     "какие",  "каких",  "каком",   "какую",  "сколько", "почему",
      "зачем",  "ли",    "нужно",   "был",    "были",   "была",
  };
  return words;
}

}  // namespace

bool IsStopword(std::string_view language, std::string_view word) {
  const WordSet* set = nullptr;
  if (language == "en") {
    set = &English();
  } else if (language == "he") {
    set = &Hebrew();
  } else if (language == "ar") {
    set = &Arabic();
  } else if (language == "ru") {
    set = &Russian();
  }
  return set != nullptr && set->count(word) > 0;
}

}  // namespace ragstream::rag
