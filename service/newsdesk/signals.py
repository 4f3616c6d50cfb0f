"""What an entry says, as the clustering compares it: terms, names, numbers, text keys.

Pure functions (no I/O, no clock). ``signals_of`` turns an entry's title and summary
into :class:`Signals`:

- **terms**: content words, stemmed lightly and folded (``Zürich`` = ``zurich``), with
  counts; the title counts double, because a headline is what the entry is about, and
  its pairs of successive words count too (``~mark_carney``);
- **strong terms**: the ones that carry across outlets and languages: names and
  acronyms (capitalised mid-sentence, ``OpenAI``, ``EU``) and numbers;
- **numbers** in one canonical form across languages and styles: "$97.4 billion",
  "97,4 Milliarden Dollar" and "97.4bn" are all ``#9.74e10``; "3,5 Prozent" and
  "3.5%" are ``#3.5%``;
- **text keys**: digests of the headline and of the lede, equal for syndicated copies
  of one article (wire copy, aggregators) whatever the feed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import unicodedata
from dataclasses import dataclass

from newsdesk.identity import plain_text

LEDE_WORDS = 12
"""A lede shorter than this is too generic to prove two entries are one article."""

TITLE_KEY_WORDS = 5
"""Headlines shorter than this ("Live updates") are not proof of one article either."""

SUMMARY_WORDS = 80
"""Words of the summary that count: the top of an article says what it is about."""

MAX_TERM = 80
"""Longest term: the width of the index's term columns (PostgreSQL refuses a longer
value, and the batch with it would fail every round). Longer words are cut to it (a
run of letters that long is glued text, a Chinese or Japanese clause, which has no
spaces, or a German legal compound whose first 80 letters say as much); a headline
pair longer than this is left out."""

_EN_STOP = frozenset(
    """a about above after again against all also am an and any are as at be because
    been before being below between both but by can could did do does doing down during
    each few for from further had has have having he her here hers herself him himself
    his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours out over own same she should so some such than
    that the their theirs them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would
    you your yours yourself says said say new news report reports reported update
    updates live video watch photos via after amid over will may might could first one
    two three last year years week day today tomorrow yesterday get gets got make makes
    back still time like just according people many much told tells breaking exclusive
    s t don didn doesn isn wasn aren won can't shouldn mr mrs ms""".split()
)
_DE_STOP = frozenset(
    """aber alle allem allen aller alles als also am an ander andere anderem anderen
    anderer anderes auch auf aus bei bin bis bist da damit dann das dass dein deine dem
    den der des dessen dich die dies diese diesem diesen dieser dieses dir doch dort du
    durch ein eine einem einen einer eines einig einige er es etwas euer eure für gegen
    gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm ihn ihnen ihr ihre im
    in indem ins ist jede jedem jeden jeder jedes jene jetzt kann kein keine können könnte
    machen man manche mein meine mit muss musste nach nicht nichts noch nun nur ob oder
    ohne sehr sein seine seit sich sie sind so solche soll sollte sondern sonst über um
    und uns unser unter viel vom von vor während war waren warum was weil welche wenn
    werde werden wie wieder will wir wird wirklich wo wollen wollte würde würden zu zum
    zur zwar zwischen sagt sagte neue neuen neuer neues heute gestern morgen jahr jahren
    prozent mehr weitere ersten erste laut soll sollen wurde wurden worden bereits schon
    immer rund etwa derzeit""".split()
)
_DE_NOUN_SUFFIXES = (
    "ung", "heit", "keit", "schaft", "tion", "tionen", "itat", "ismus", "nis", "tum",
    "er", "ern", "en", "e", "el", "chen", "lein", "ling", "ei", "ie", "ik", "ur", "anz", "enz",
)  # fmt: skip
"""Endings of German common nouns (folded): capitalised, but not names."""

_CURRENCIES = frozenset("dollar dollars usd euro euros eur pound pounds yen".split())

# Words shared by German and English news text carry no news: fold them out too.
_LANG_HINTS = {
    "en": frozenset("the and of to is for on that with was are by from has have".split()),
    "de": frozenset("der die das und ist nicht mit von den dem des ein eine sich auf für".split()),
}

_SCALES = {
    "en": {
        "thousand": 1e3,
        "k": 1e3,
        "million": 1e6,
        "millions": 1e6,
        "mn": 1e6,
        "m": 1e6,
        "mln": 1e6,
        "billion": 1e9,
        "billions": 1e9,
        "bn": 1e9,
        "b": 1e9,
        "trillion": 1e12,
        "tn": 1e12,
    },
    "de": {
        "tausend": 1e3,
        "mio": 1e6,
        "million": 1e6,
        "millionen": 1e6,
        "mrd": 1e9,
        "milliarde": 1e9,
        "milliarden": 1e9,
        # A German "Billion" is an English trillion.
        "billion": 1e12,
        "billionen": 1e12,
        "bio": 1e12,
    },
}
_SCALE_WORDS = sorted({w for table in _SCALES.values() for w in table}, key=len, reverse=True)
_NUMBER_RE = re.compile(
    r"(?<![\w.,])(?P<cur>[$€£¥])?\s?"
    r"(?P<num>\d{1,3}(?:[.,\u00a0\u202f]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
    r"(?:\s?(?P<scale>" + "|".join(_SCALE_WORDS) + r")\.?(?![\w]))?"
    r"(?:\s?(?P<unit>%|prozent\b|percent\b|per\s?cent\b))?",
    re.IGNORECASE,
)
_DIGIT_RE = re.compile(r"\d")
_WORD_RE = re.compile(r"[^\W\d_]+(?:-\d+)?|\d+-?[^\W\d_]+", re.UNICODE)
_WORD_SPLIT_RE = re.compile(f"({_WORD_RE.pattern})", re.UNICODE)
_ASCII_WORD_SPLIT_RE = re.compile(r"([A-Za-z]+(?:-\d+)?|\d+-?[A-Za-z]+)")
"""The same split for ASCII text (where the classes are the same), 18% faster: most
English text is ASCII, and the split is a fifth of reading an entry."""
_KEY_WORD_RE = re.compile(r"\w+")
_SENTENCE_END = frozenset(".!?:;\"'«»„“”")
# " - Reuters", " | heise online", " — The Verge": the outlet's name, not the news.
_TITLE_SUFFIX_RE = re.compile(r"\s+(?:[-|–—:]|::)\s+([^-|–—:]{1,60})$")


@dataclass(frozen=True, slots=True)
class Signals:
    """An entry as the clustering sees it."""

    lang: str
    """``de``, ``en`` or ``""`` when neither is clear."""
    terms: dict[str, int]
    """Term -> count. Numbers appear as ``#…`` terms."""
    strong: frozenset[str]
    """The terms that are names, acronyms or numbers."""
    keys: tuple[str, ...]
    """Digests of the headline and lede: equal keys mean the same article."""


def signals_of(title: str, summary: str = "", lang: str | None = None) -> Signals:
    """The signals of one entry; ``lang`` is the feed's or entry's language, if known."""
    headline = strip_outlet_suffix(plain_text(repair_mojibake(title)))
    body = " ".join(plain_text(repair_mojibake(summary)).split()[:SUMMARY_WORDS])
    language = _language(lang, headline + " " + body)
    terms: dict[str, int] = {}
    count = terms.get
    strong: set[str] = set()
    # German capitalises every noun, and English headlines often Every Word: in neither
    # is a capital a sign of a name, so only mid-sentence capitals in English count.
    for text, weight, trust_case, is_headline in (
        (headline, 2, language == "de" or not _is_title_case(headline), True),
        (body, 1, True, False),
    ):
        numbers, rest = _numbers(text, language)
        for number in numbers:
            terms[number] = count(number, 0) + weight
            strong.add(number)
        words = _words(rest, trust_case, language)
        for word, is_name in words:
            terms[word] = count(word, 0) + weight
            if is_name:
                strong.add(word)
        if is_headline:
            # Pairs of successive content words ("mark carney", "high school"): a
            # headline's phrases tell stories apart better than its words one by one.
            for (first, _), (second, _) in itertools.pairwise(words):
                pair = f"~{first}_{second}"
                if len(pair) <= MAX_TERM:
                    terms[pair] = count(pair, 0) + 1
    return Signals(
        lang=language,
        terms=terms,
        strong=frozenset(strong & terms.keys()),
        keys=_text_keys(headline, body),
    )


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 that was decoded as Latin-1/cp1252 once ("MÃ¼nchen" -> "München").

    Scrapers and some feeds do this; left alone, "München" and "MÃ¼nchen" would be two
    different words. Text that does not round-trip is returned unchanged.
    """
    if "Ã" not in text and "â€" not in text:
        return text
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
    return text


def strip_outlet_suffix(title: str) -> str:
    """``title`` without a trailing outlet name ("… - Reuters", "… | heise online")."""
    match = _TITLE_SUFFIX_RE.search(title)
    if match and len(match.group(1).split()) <= 4 and len(title[: match.start()].split()) >= 3:
        return title[: match.start()]
    return title


def canonical_number(text: str, lang: str = "en") -> str | None:
    """The canonical form of one number phrase ("97,4 Milliarden" -> ``#9.74e10``)."""
    numbers, _ = _numbers(text, lang)
    return numbers[0] if numbers else None


def fold(word: str) -> str:
    """Lower-case, without diacritics (``Zürich`` -> ``zurich``, ``ß`` -> ``ss``)."""
    word = word.casefold()
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


STOPWORDS = frozenset(fold(w) for w in _EN_STOP | _DE_STOP | _CURRENCIES)
"""Words that say nothing about which event an entry reports, folded."""


def stem(word: str, lang: str) -> str:
    """A light stem: enough that "Musk's", "Musks" and "Musk" meet, never aggressive."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if lang == "de":
        for suffix in ("ern", "en", "er", "es", "em", "e", "n", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 4:
                return word[: -len(suffix)]
        return word
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _language(declared: str | None, text: str) -> str:
    if declared:
        code = declared.strip().lower()[:2]
        if code in ("de", "en"):
            return code
    # Counted in C (map over the set's __contains__): a generator per word was a sixth
    # of reading an entry that declares no language.
    words = text.casefold().split()[:200]
    en = sum(map(_LANG_HINTS["en"].__contains__, words))
    de = sum(map(_LANG_HINTS["de"].__contains__, words))
    # Umlauts and ß are German (folded names like "Zurich" are not a problem here).
    head = text[:1000]
    de += any(c in head for c in "äöüßÄÖÜ")
    if de == en:
        return ""
    return "de" if de > en else "en"


def _is_title_case(text: str) -> bool:
    """Headline Style Capitalises Every Word, so capitals there say nothing of names."""
    words = [w for w in text.split() if w[:1].isalpha() and len(w) > 3]
    if len(words) < 3:
        return False
    return sum(w[0].isupper() for w in words) / len(words) > 0.6


def _numbers(text: str, lang: str) -> tuple[list[str], str]:
    """The canonical numbers in ``text``, and the text with them cut out."""
    if not _DIGIT_RE.search(text):
        return [], text  # most headlines and many summaries: no scan for number shapes
    found: list[str] = []

    def take(match: re.Match[str]) -> str:
        value = _parse_number(match.group("num"), lang)
        scale_word = (match.group("scale") or "").lower()
        unit = match.group("unit")
        if value is None:
            return " "
        if scale_word:
            table = _SCALES.get(lang) or _SCALES["en"]
            value *= table.get(scale_word, _SCALES["en"].get(scale_word, 1.0))
        if unit:
            found.append(f"#{value:.3g}%")
        elif scale_word or match.group("cur") or value >= 100:
            found.append(f"#{value:.3g}".replace("e+", "e"))
        return " "

    return found, _NUMBER_RE.sub(take, text)


def _parse_number(raw: str, lang: str) -> float | None:
    digits = raw.replace("\u00a0", "").replace("\u202f", "")
    dots, commas = digits.count("."), digits.count(",")
    if dots and commas:
        decimal = "." if digits.rfind(".") > digits.rfind(",") else ","
    elif dots + commas == 1:
        sep = "." if dots else ","
        after = digits.split(sep)[1]
        # "1,000" is a thousand in English and "1.000" in German; "97,4" is 97.4.
        thousands_sep = "." if lang == "de" else ","
        decimal = "" if len(after) == 3 and sep == thousands_sep else sep
    else:
        decimal = ""  # several of one separator: thousands groups
    if decimal:
        whole, _, fraction = digits.rpartition(decimal)
        digits = whole.replace(".", "").replace(",", "") + "." + fraction
    else:
        digits = digits.replace(".", "").replace(",", "")
    try:
        return float(digits)
    except ValueError:
        return None


def _words(text: str, trust_case: bool, lang: str) -> list[tuple[str, bool]]:
    """Content words of ``text`` as (stemmed term, looks like a name).

    A capital at the start of a sentence says nothing; such a word still counts as a
    name when the entry capitalises it elsewhere (the term is strong for the entry).
    """
    out: list[tuple[str, bool]] = []
    # [gap, word, gap, word, ..., gap]: what stands between words decides whether a
    # word starts a sentence (one split instead of a match object per word).
    parts = (_ASCII_WORD_SPLIT_RE if text.isascii() else _WORD_SPLIT_RE).split(text)
    for i in range(1, len(parts), 2):
        term, always_name, capital_name = _word(parts[i], lang)
        if not term:
            continue
        if always_name:
            out.append((term, True))
        elif trust_case and capital_name:
            # A sentence starts after an end mark, or at the very start of the text.
            gap = parts[i - 1].rstrip()
            out.append((term, (gap[-1] not in _SENTENCE_END) if gap else i > 1))
        else:
            out.append((term, False))
    return out


@functools.lru_cache(maxsize=1 << 16)
def _word(word: str, lang: str) -> tuple[str, bool, bool]:
    """What ``word`` says wherever it stands: its term ("" for a stopword or a single
    letter), whether it is a name anyway (acronym, digits), and whether a capital
    mid-sentence makes it one.

    Cached: news vocabulary is Zipf-distributed, so folding and stemming each word
    once is most of the work of reading an entry.
    """
    lowered = fold(word)
    if len(lowered) < 2 or lowered in STOPWORDS:
        return "", False, False
    acronym = len(word) >= 2 and word.isupper()
    has_digit = not word.isalpha()  # the only non-letters a word can hold are digits
    # Every German noun has a capital: "Regierung" is no name.
    capital = word[0].isupper() and not (lang == "de" and lowered.endswith(_DE_NOUN_SUFFIXES))
    return stem(lowered, lang)[:MAX_TERM], acronym or has_digit, capital


def _text_keys(headline: str, body: str) -> tuple[str, ...]:
    keys = []
    title_words = _key_words(headline)
    if len(title_words) >= TITLE_KEY_WORDS:
        keys.append("t:" + _digest(" ".join(title_words)))
    lede = _key_words(_first_sentence(body))
    if len(lede) >= LEDE_WORDS:
        keys.append("l:" + _digest(" ".join(lede)))
    return tuple(keys)


def _key_words(text: str) -> list[str]:
    if text.isascii():
        # The same words as below: folding ASCII is lower-casing, one call for the text.
        return _KEY_WORD_RE.findall(text.lower())
    return [fold(w) for w in _KEY_WORD_RE.findall(text)]


def _first_sentence(text: str) -> str:
    match = re.search(r"[.!?](?:\s|$)", text)
    return text[: match.end()] if match else text


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()
