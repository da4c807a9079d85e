"""English sentence generator and text normalizer for the offline speech corpus.

Sentences come from a small hand-written grammar (statements, questions, compound and reported
clauses, number facts) filled from the lexicon of :mod:`speechattn.offline.lexicon`.

Every sentence has three forms (see :class:`Sentence`):

* ``raw``: what a book would print, with digits, ``$``, ``%``, ordinals and ``Mr.``/``Dr.``;
* ``normalized``: what is spoken, numbers and abbreviations spelled out, case and punctuation kept
  (the third column of an LJSpeech ``metadata.csv``; also the text the synthesizer reads);
* ``transcript``: LibriSpeech style, ``A-Z``, apostrophe and single spaces only.

Everything random goes through one ``random.Random(seed)``: same seed, same sentences.

>>> [s.raw for s in generate_sentences(2, seed=1)] == [s.raw for s in generate_sentences(2, seed=1)]
True
>>> normalize_text("Dr. Hall paid $1,250 on May 3rd, 1999.")
'Doctor Hall paid one thousand two hundred fifty dollars on May third, nineteen ninety nine.'
>>> to_transcript("Doctor Hall's dog, at seven o'clock?")
"DOCTOR HALL'S DOG AT SEVEN O'CLOCK"
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from speechattn.offline.lexicon import HAND_ADJECTIVE_SHARE, Lexicon, Noun, Verb, build_lexicon
from speechattn.text import number_to_words, ordinal_to_words, year_to_words

__all__ = [
    "MAX_WORDS",
    "MIN_WORDS",
    "Sentence",
    "SentenceGenerator",
    "generate_sentences",
    "normalize_text",
    "to_transcript",
]

MIN_WORDS = 3
MAX_WORDS = 25
T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Numbers and normalization
# ---------------------------------------------------------------------------------------------

# Number words live once, in speechattn.text; the corpus reuses them.
_ABBREVIATIONS = {"Mr.": "Mister", "Mrs.": "Missus", "Dr.": "Doctor", "Prof.": "Professor"}


def _plain_number(match: re.Match[str]) -> str:
    digits = match.group(0)
    value = int(digits.replace(",", ""))
    # A bare four-digit number in 1100-2099 is a year; counts that large are printed with commas.
    if "," not in digits and len(digits) == 4 and 1100 <= value <= 2099:
        return year_to_words(value)
    return number_to_words(value)


def _money(match: re.Match[str]) -> str:
    value = int(match.group(1).replace(",", ""))
    return number_to_words(value) + (" dollar" if value == 1 else " dollars")


def _percent(match: re.Match[str]) -> str:
    return number_to_words(int(match.group(1).replace(",", ""))) + " percent"


_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"
_UNSUPPORTED_NUMBER = re.compile(r"\d[.:/-]\d")
_NORMALIZERS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"\b(?:Mrs|Mr|Dr|Prof)\."), lambda m: _ABBREVIATIONS[m.group(0)]),
    (re.compile(rf"\$({_NUMBER})"), _money),
    (re.compile(rf"({_NUMBER})%"), _percent),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b"), lambda m: ordinal_to_words(int(m.group(1)))),
    (re.compile(rf"\b(?:{_NUMBER})\b"), _plain_number),
)


def normalize_text(raw: str) -> str:
    """Spell out abbreviations, money, percentages, ordinals, years and cardinals; keep the rest.

    Only the forms the generator writes are handled (``Mr. Mrs. Dr. Prof.``, ``$N``, ``N%``,
    ``Nst/nd/rd/th``, ``N`` and ``N,NNN``); decimals, times, dates and ranges (``3.5``, ``7:30``,
    ``5/6``, ``3-4``) are refused with ``ValueError`` rather than read wrongly.
    """
    if _UNSUPPORTED_NUMBER.search(raw):
        raise ValueError(f"normalize_text: decimals, times, dates and ranges are not supported: {raw!r}")
    text = raw
    for pattern, replace in _NORMALIZERS:
        text = pattern.sub(replace, text)
    if re.search(r"\d", text):
        raise ValueError(f"normalize_text: cannot spell out the digits in {raw!r}")
    return re.sub(r"\s+", " ", text).strip()


def to_transcript(normalized: str) -> str:
    """LibriSpeech-style transcript: uppercase ``A-Z``, apostrophes and single spaces only."""
    letters = re.sub(r"[^A-Z']+", " ", normalized.upper())
    words = [w.strip("'") for w in letters.split()]
    return " ".join(w for w in words if w)


@dataclass(frozen=True)
class Sentence:
    """One generated sentence in its printed, spoken and transcript forms."""

    raw: str
    normalized: str
    transcript: str

    @classmethod
    def from_raw(cls, raw: str) -> Sentence:
        normalized = _capitalize(normalize_text(raw))
        return cls(raw=raw, normalized=normalized, transcript=to_transcript(normalized))


# ---------------------------------------------------------------------------------------------
# Grammar
# ---------------------------------------------------------------------------------------------

_MONTHS = tuple(
    "January February March April May June July August September October November December".split()
)
_WEEKDAYS = tuple("Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split())
_TITLES = ("Mr.", "Mrs.", "Dr.", "Prof.")
_PREPOSITIONS = ("in", "near", "behind", "outside", "across", "beside", "toward", "inside", "at")
# Templates name fields of SentenceGenerator._fields in braces.
_PAST_TIMES = (
    "yesterday", "last night", "this morning", "last week", "an hour ago", "after lunch",
    "before dawn", "last winter", "during the storm", "on {weekday}", "in {year}", "last {month}",
    "on the {day} of {month}", "at {hour} o'clock", "{count} days ago",
)
_TIMES = {
    "past": _PAST_TIMES,
    "base": _PAST_TIMES,
    "present": (
        "every morning", "every {weekday}", "each summer", "on weekends", "most evenings",
        "twice a week", "every {count} days",
    ),
    "future": (
        "tomorrow", "next week", "next {weekday}", "in {month}", "after the meeting",
        "at {hour} o'clock", "in {count} days", "before {future_year}",
    ),
}
_NUMBER_FACTS = (
    "{person} paid ${amount} for {thing_phrase}.",
    "about {percent}% of the {people} {moved} {place_phrase}.",
    "nearly {percent} percent of the {people} agreed.",
    "the {place} was built in {old_year}.",
    "{name} was born in {birth_year}, in {city}.",
    "in {year}, {clause}.",
    "{name} lives on the {floor} floor of the {place}.",
    "the {place} opened on {month} {day}, {old_year}.",
    "the old {thing} dates from the {century} century.",
    "there were {count} {people} {place_phrase}.",
    "the train to {city} leaves at {hour} o'clock.",
    "{name} waited for {count} minutes {place_phrase}.",
    "room {room} is on the {floor} floor.",
    "we counted {count} {things} and {other_count} {animals}.",
)
_CONJUNCTIONS = ("but", "and", "so", "while", "although")


def _ordinal_suffix(n: int) -> str:
    """``1 -> '1st'``, ``12 -> '12th'``, ``23 -> '23rd'``."""
    if 11 <= n % 100 <= 13:
        return f"{n}th"
    return f"{n}" + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


class SentenceGenerator:
    """Draws sentences from the grammar; all randomness comes from ``rng``."""

    def __init__(self, lexicon: Lexicon, rng: random.Random) -> None:
        self.lex = lexicon
        self.rng = rng
        forms = (
            (self._statement, 5.0),
            (self._compound, 2.5),
            (self._question, 3.0),
            (self._reported, 1.5),
            (self._number_fact, 3.0),
            (self._short, 1.0),
            (self._description, 1.5),
        )
        self._forms = tuple(form for form, _ in forms)
        self._weights = tuple(weight for _, weight in forms)
        self._fields = self._field_makers()

    def sentence(self) -> Sentence:
        """One sentence of ``MIN_WORDS`` to ``MAX_WORDS`` printed words."""
        for _ in range(100):
            raw = _capitalize(self.rng.choices(self._forms, self._weights)[0]())
            if MIN_WORDS <= len(raw.split()) <= MAX_WORDS:
                return Sentence.from_raw(raw)
        raise RuntimeError("SentenceGenerator: 100 draws in a row fell outside the length limits")

    # -- small helpers ------------------------------------------------------------------------
    def _pick(self, items: Sequence[T]) -> T:
        return self.rng.choice(items)

    def _chance(self, p: float) -> bool:
        return self.rng.random() < p

    def _between(self, low: int, high: int) -> str:
        return str(self.rng.randint(low, high))

    @staticmethod
    def _article(word: str) -> str:
        if word.startswith(("uni", "use", "usu", "uti", "eu", "one")):
            return "a"
        if word.startswith(("hour", "honest", "honor", "heir")) or word[0] in "aeiou":
            return "an"
        return "a"

    def _count(self) -> str:
        """A count of things: small ones in digits or words, large ones with thousands commas."""
        roll = self.rng.random()
        if roll < 0.7:
            n = self.rng.randint(2, 20)
            return number_to_words(n) if self._chance(0.4) else str(n)
        if roll < 0.93:
            return self._between(21, 999)
        return f"{self.rng.randint(1000, 99999):,}"

    def _amount(self) -> str:
        """A dollar amount, always in digits ("12", "1,250")."""
        high = self._pick((99, 50000))
        return f"{self.rng.randint(1, high):,}"

    def _field_makers(self) -> dict[str, Callable[[], str]]:
        """Makers of the ``{field}`` values used by ``_TIMES`` and ``_NUMBER_FACTS``."""
        lex = self.lex
        return {
            "weekday": lambda: self._pick(_WEEKDAYS),
            "month": lambda: self._pick(_MONTHS),
            "year": lambda: self._between(1750, 2023),
            "old_year": lambda: self._between(1100, 2023),
            "birth_year": lambda: self._between(1900, 2020),
            "future_year": lambda: self._between(2030, 2090),
            "day": lambda: _ordinal_suffix(self.rng.randint(1, 31)),
            "floor": lambda: _ordinal_suffix(self.rng.randint(2, 40)),
            "century": lambda: _ordinal_suffix(self.rng.randint(11, 20)),
            "hour": lambda: self._between(1, 12),
            "percent": lambda: self._between(2, 99),
            "room": lambda: self._between(1, 999),
            "count": self._count,
            "other_count": self._count,
            "amount": self._amount,
            "name": lambda: self._pick(lex.first_names),
            "person": lambda: self._person()[0],
            "city": lambda: self._pick(lex.cities),
            "place": lambda: self._pick(lex.places).singular,
            "thing": lambda: self._pick(lex.things).singular,
            "things": lambda: self._pick(lex.things).plural,
            "people": lambda: self._pick(lex.people).plural,
            "animals": lambda: self._pick(lex.animals).plural,
            "thing_phrase": lambda: self._noun_phrase("thing")[0],
            "place_phrase": self._place,
            "moved": lambda: self._pick(lex.verbs_intransitive).past,
            "clause": lambda: self._clause("past", timed=False),
        }

    def _expand(self, template: str) -> str:
        """Fill each ``{field}`` of ``template`` (a field used twice gets one value)."""
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        return template.format(**{name: self._fields[name]() for name in sorted(names)})

    def _time(self, tense: str) -> str:
        return self._expand(self._pick(_TIMES[tense]))

    # -- noun phrases -------------------------------------------------------------------------
    def _adjective(self, common: tuple[str, ...]) -> str:
        """Mostly one of ``common`` (the class that fits the noun), sometimes a rare one."""
        use_common = common and self._chance(HAND_ADJECTIVE_SHARE)
        return self._pick(common if use_common else self.lex.rare_adjectives)

    def _adjectives(self, common: tuple[str, ...]) -> str:
        roll = self.rng.random()
        count = 0 if roll < 0.45 else 1 if roll < 0.85 else 2
        return " ".join(self._adjective(common) for _ in range(count))

    def _noun_class(self, kind: str) -> tuple[tuple[Noun, ...], tuple[str, ...]]:
        """The nouns of ``kind`` and the common adjectives that fit them."""
        lex = self.lex
        return {
            "person": (lex.people, lex.person_adjectives),
            "animal": (lex.animals, lex.person_adjectives),
            "thing": (lex.things, lex.thing_adjectives),
            "place": (lex.places, lex.thing_adjectives),
            "abstract": (lex.abstracts, ()),
        }[kind]

    def _determiner(self, head: str, plural: bool) -> str:
        if self._chance(0.1):
            return f"{self._pick(self.lex.first_names)}'s"
        if plural:
            return self._pick(("the", "the", "some", "many", "several", "these", "their", self._count()))
        det = self._pick(("the", "the", "the", "a", "a", "this", "that", "my", "his", "her", "our"))
        return self._article(head) if det == "a" else det

    def _noun_phrase(self, kind: str, plural: bool | None = None) -> tuple[str, bool]:
        """A noun phrase of ``kind`` (see ``_noun_class``); returns it and whether it is plural."""
        nouns, adjectives = self._noun_class(kind)
        plural = self._chance(0.25) if plural is None else plural
        noun = self._pick(nouns)
        word = noun.plural if plural else noun.singular
        head = " ".join(filter(None, (self._adjectives(adjectives), word)))
        tail = ""
        if self._chance(0.12):
            city, place = self._pick(self.lex.cities), self._pick(self.lex.places).singular
            tail = self._pick((f" from {city}", f" of the {place}"))
        return f"{self._determiner(head, plural)} {head}{tail}", plural

    def _person(self) -> tuple[str, bool]:
        """A name, a title and surname, or a noun phrase of people; returns it and its plurality."""
        roll = self.rng.random()
        if roll < 0.25:
            return self._pick(self.lex.first_names), False
        if roll < 0.35:
            return f"{self._pick(_TITLES)} {self._pick(self.lex.surnames)}", False
        return self._noun_phrase("person")

    def _subject(self) -> tuple[str, bool]:
        """A person or a pronoun; returns the phrase and its plurality.

        "I", "we" and "they" count as plural: they take the verb's base form.
        """
        if self._chance(0.1):
            pronoun = self._pick(("he", "she", "they", "we", "I"))
            return pronoun, pronoun not in ("he", "she")
        return self._person()

    def _place(self) -> str:
        if self._chance(0.15):
            return f"in {self._pick(self.lex.cities)}"
        place, _ = self._noun_phrase("place", plural=False)
        return f"{self._pick(_PREPOSITIONS)} {place}"

    # -- clauses ------------------------------------------------------------------------------
    def _verb_form(self, verb: Verb, tense: str, plural: bool) -> str:
        adverb = f"{self._pick(self.lex.adverbs)} " if self._chance(0.15) else ""
        if tense == "future":
            return f"will {adverb}{verb.base}"
        form = {"past": verb.past, "base": verb.base, "present": verb.base if plural else verb.third}
        return adverb + form[tense]

    def _verb_phrase(
        self, tense: str, plural: bool, timed: bool = True, animal: bool = False
    ) -> str:
        """Verb, object and adverbials.

        ``timed=False`` when the sentence already has a time; an ``animal`` subject neither
        meets people nor discusses ideas.
        """
        kinds, weights = ("thing", "none"), (1, 2)
        if not animal:
            kinds, weights = ("thing", "person", "abstract", "none"), (3, 2, 3, 2)
        kind = self.rng.choices(kinds, weights)[0]
        verbs = {
            "thing": self.lex.verbs_thing,
            "person": self.lex.verbs_person,
            "abstract": self.lex.verbs_abstract,
            "none": self.lex.verbs_intransitive,
        }[kind]
        parts = [self._verb_form(self._pick(verbs), tense, plural)]
        if kind == "person":
            parts.append(self._person()[0])
        elif kind != "none":
            parts.append(self._noun_phrase(kind)[0])
        if self._chance(0.7 if kind == "none" else 0.25):
            parts.append(self._place())
        if timed and self._chance(0.25):
            parts.append(self._time(tense))
        return " ".join(parts)

    def _clause(self, tense: str | None = None, timed: bool = True) -> str:
        tense = tense or self.rng.choices(("past", "present", "future"), (6, 2, 2))[0]
        animal = self._chance(0.1)
        subject, plural = self._noun_phrase("animal") if animal else self._subject()
        return f"{subject} {self._verb_phrase(tense, plural, timed, animal)}"

    # -- sentence forms (capitalized by ``sentence``) ----------------------------------------
    def _statement(self) -> str:
        if self._chance(0.25):
            return f"{self._time('past')}, {self._clause('past', timed=False)}."
        return f"{self._clause()}."

    def _compound(self) -> str:
        first, second = self._clause("past"), self._clause("past")
        roll = self.rng.random()
        if roll < 0.5:
            return f"{first}, {self._pick(_CONJUNCTIONS)} {second}."
        if roll < 0.75:
            return f"{first} because {second}."
        return f"when {first}, {second}."

    def _question(self) -> str:
        subject, _ = self._subject()
        roll = self.rng.random()
        if roll < 0.3:
            return f"did {subject} {self._verb_phrase('base', True)}?"
        if roll < 0.5:
            wh = self._pick(("why", "when", "where", "how"))
            return f"{wh} did {subject} {self._verb_phrase('base', True)}?"
        if roll < 0.6:
            return f"who {self._verb_phrase('past', False)}?"
        if roll < 0.75:
            things, verb = self._pick(self.lex.things).plural, self._pick(self.lex.verbs_thing).base
            return f"how many {things} did {subject} {verb}?"
        if roll < 0.87:
            modal = self._pick(("can", "should", "could", "will"))
            return f"{modal} {subject} {self._verb_phrase('base', True)}?"
        kind = self._pick(("thing", "place"))
        noun, plural = self._noun_phrase(kind)
        adjective = self._adjective(self._noun_class(kind)[1])
        return f"{'were' if plural else 'was'} {noun} {adjective}?"

    def _reported(self) -> str:
        speaker = self._person()[0]
        roll = self.rng.random()
        if roll < 0.4:
            return f"{speaker} said that {self._clause()}."
        if roll < 0.6:
            return f"{speaker} asked whether {self._clause('past')}."
        if roll < 0.8:
            return f"according to {speaker}, {self._clause('past')}."
        return f"{speaker} believed that {self._clause()}."

    def _number_fact(self) -> str:
        return self._expand(self._pick(_NUMBER_FACTS))

    def _short(self) -> str:
        verb = self._pick(self.lex.verbs_intransitive).past
        roll = self.rng.random()
        if roll < 0.4:
            return f"{self._pick(self.lex.first_names)} {verb} {self._pick(self.lex.adverbs)}."
        if roll < 0.7:
            return f"the {self._pick(self.lex.animals).singular} {verb}."
        thing = self._pick(self.lex.things).singular
        return f"nobody {self._pick(self.lex.verbs_thing).past} the {thing}."

    def _description(self) -> str:
        kind = self._pick(("thing", "place", "person"))
        subject, plural = self._noun_phrase(kind)
        verb = self._pick(("were", "seemed", "looked") if plural else ("was", "seemed", "looked", "is"))
        adjectives = self._noun_class(kind)[1]
        first, second = self._adjective(adjectives), self._adjective(adjectives)
        if self._chance(0.3):
            return f"{subject} {verb} {first} and {second}."
        if self._chance(0.3):
            return f"the {self._pick(self.lex.abstracts).singular} of {subject} {verb} {first}."
        return f"{subject} {verb} {first}."


def generate_sentences(count: int, seed: int = 0, lexicon: Lexicon | None = None) -> list[Sentence]:
    """``count`` sentences with pairwise distinct transcripts, the same for the same ``seed``."""
    if count < 0:
        raise ValueError(f"generate_sentences: count={count} must be >= 0")
    generator = SentenceGenerator(lexicon or build_lexicon(), random.Random(seed))
    seen: set[str] = set()
    sentences: list[Sentence] = []
    max_draws = 20 * count + 1000
    for _ in range(max_draws):
        if len(sentences) == count:
            break
        sentence = generator.sentence()
        if sentence.transcript not in seen:
            seen.add(sentence.transcript)
            sentences.append(sentence)
    if len(sentences) < count:
        raise RuntimeError(
            f"generate_sentences: only {len(sentences)} distinct sentences in {max_draws} draws"
        )
    return sentences
