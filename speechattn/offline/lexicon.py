"""The offline corpus's lexicon: the word classes its sentence grammar draws from.

Hand-written lists of people, animals, things, places, verbs and names give the sentences their
plausible core; ``wordfreq``'s frequency list, filtered to alphabetic words with noun, adjective,
adverb or verb suffixes, gives them breadth (thousands of words). :func:`build_lexicon` puts both
together; :mod:`speechattn.offline.sentences` writes sentences from the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["HAND_ADJECTIVE_SHARE", "Lexicon", "Noun", "Verb", "build_lexicon"]

@dataclass(frozen=True)
class Noun:
    singular: str
    plural: str


@dataclass(frozen=True)
class Verb:
    base: str
    past: str
    third: str  # third person singular present


@dataclass(frozen=True)
class Lexicon:
    """Word classes the grammar draws from (all lowercase except names)."""

    people: tuple[Noun, ...]
    animals: tuple[Noun, ...]
    things: tuple[Noun, ...]
    places: tuple[Noun, ...]
    abstracts: tuple[Noun, ...]
    person_adjectives: tuple[str, ...]  # hand-written, fit people and animals
    thing_adjectives: tuple[str, ...]  # hand-written, fit things and places
    rare_adjectives: tuple[str, ...]  # suffix-classified wordfreq words, fit anything
    adverbs: tuple[str, ...]
    verbs_thing: tuple[Verb, ...]  # take a concrete object: "repaired the lamp"
    verbs_person: tuple[Verb, ...]  # take a person: "thanked the nurse"
    verbs_abstract: tuple[Verb, ...]  # take an idea: "questioned the decision"
    verbs_intransitive: tuple[Verb, ...]
    first_names: tuple[str, ...]
    surnames: tuple[str, ...]
    cities: tuple[str, ...]

    def vocabulary(self) -> set[str]:
        """Every word form the lexicon can emit, lowercased."""
        words: set[str] = set()
        for nouns in (self.people, self.animals, self.things, self.places, self.abstracts):
            words.update(w for n in nouns for w in (n.singular, n.plural))
        for verbs in (self.verbs_thing, self.verbs_person, self.verbs_abstract, self.verbs_intransitive):
            words.update(w for v in verbs for w in (v.base, v.past, v.third))
        words.update(self.person_adjectives + self.thing_adjectives + self.rare_adjectives)
        words.update(self.adverbs)
        words.update(w.lower() for w in self.first_names + self.surnames + self.cities)
        return words


# Hand-written lists: "word" or "word:irregular-form".
_PEOPLE = """
baker banker barber captain carpenter chemist child:children clerk cook dancer dentist doctor
driver engineer farmer firefighter fisherman:fishermen gardener guard guide hunter inspector
journalist judge lawyer librarian manager mechanic merchant miner musician neighbor nurse officer
painter passenger pilot plumber poet porter priest professor reporter sailor scientist secretary
shepherd singer soldier student surgeon tailor teacher tourist traveler visitor waiter weaver
woman:women man:men boy girl friend stranger uncle aunt cousin brother sister mother father
grandmother grandfather widow king queen prince princess knight mayor architect artist author
editor landlord tenant customer shopkeeper butcher jeweler sculptor historian nephew niece
volunteer athlete coach referee swimmer runner climber sheriff detective prisoner messenger
translator pharmacist photographer astronomer banker diver goalkeeper lifeguard nanny cashier
"""
_ANIMALS = """
dog cat horse cow sheep:sheep goat pig rabbit fox wolf:wolves bear deer:deer mouse:mice owl eagle
crow sparrow pigeon duck goose:geese swan frog turtle lion tiger elephant monkey donkey camel whale
dolphin squirrel beaver otter parrot hen rooster pony kitten puppy
"""
_THINGS = """
apple basket bag ball barrel bell bicycle blanket boat book bottle bowl box bread brush bucket
button cake camera candle cap chair cheese clock coat coin comb cup curtain desk diary dictionary
dish drawer dress drum envelope fan feather flag flower fork glass glove guitar hammer hat helmet
jacket jar jug kettle key knife:knives ladder lamp lantern leaf:leaves letter lock map mirror nail
necklace needle newspaper notebook orange package pan paper parcel pen pencil photograph piano
pillow pipe plate pot purse radio ribbon ring rope rug ruler sack saddle scarf:scarves shell shirt
shoe shovel sign sock spoon stamp stick stone suitcase sweater table telephone tent ticket tool
towel toy tray trumpet trunk umbrella vase violin wagon wallet watch wheel whistle bench boot
compass statue painting sandwich pie laptop kite anchor banner blanket cushion teapot thermometer
typewriter wristwatch microscope telescope postcard medal trophy
"""
_PLACES = """
airport bakery bank barn beach bridge cabin castle cathedral cave church cinema city classroom
cliff clinic cottage courtyard desert farm field forest garage garden harbor hill hospital hotel
island kitchen lake library market meadow museum office orchard palace park pharmacy platform pond
port prison restaurant river school shop square stadium station studio temple theater tower valley
village warehouse workshop mountain canyon laboratory basement attic hallway corridor yard
lighthouse monastery greenhouse bookshop cafeteria playground vineyard
"""
_ABSTRACTS = """
idea plan story problem promise secret rumor lesson answer question reason decision mistake result
report proposal theory opinion argument message warning request dream habit method rule choice
"""
_PERSON_ADJECTIVES = """
young tall short quiet loud brave careful clever cheerful gentle honest hungry kind lazy lucky
nervous patient polite proud rich poor shy strict tired wise busy calm angry happy sad curious
friendly stubborn elderly famous pale sleepy noisy gloomy lonely clumsy humble weak strong old
generous modest anxious cautious thoughtful
"""
_THING_ADJECTIVES = """
old small large tiny huge broken empty clean dirty wooden golden silver red blue green yellow black
white brown gray round narrow wide soft hard sharp smooth rough warm cold wet dry cheap ancient
modern strange simple fragile shiny dusty rusty bright dark new heavy light famous quiet noisy
expensive beautiful useful valuable comfortable enormous portable colorful
"""
_VERBS_THING = """
carry paint find:found buy:bought sell:sold lose:lost open repair clean move drop:dropped borrow
wash wrap:wrapped lift build:built break:broke bring:brought take:took keep:kept hold:held
throw:threw hide:hid steal:stole make:made leave:left fix polish deliver examine measure weigh
fill return hang:hung pack push pull drag:dragged collect count order design test check mend sew
shake:shook fold bury choose:chose catch:caught grab:grabbed hand inspect label load unload
replace sketch guard
"""
_VERBS_PERSON = """
meet:met call visit help thank follow warn invite teach:taught ask greet pay:paid hire trust
watch see:saw remind interview admire recognize rescue ignore forgive:forgave introduce join
surprise congratulate comfort accompany blame chase convince encourage
"""
_VERBS_ABSTRACT = """
discuss explain question support describe announce study accept reject consider doubt praise
criticize review understand:understood change improve notice mention defend explore propose
debate predict publish challenge remember forget:forgot share summarize imagine postpone approve
oppose analyze compare welcome
"""
_VERBS_INTRANSITIVE = """
wait sleep:slept sit:sat stand:stood walk run:ran laugh smile work arrive stay live sing:sang
dance rest swim:swam wander shout cry travel hurry whisper listen pause argue complain relax
vanish appear sneeze shiver
"""
_FIRST_NAMES = """
Maria James Anna David Sofia Daniel Elena Thomas Laura Peter Grace Samuel Clara Oliver Emma Henry
Alice Lucas Nora Victor Julia Martin Rosa Oscar Helen Felix Irene Hugo Lena Arthur Diana Simon Eva
Leo Ruth Adam Vera Paul Frank Amir Priya Kenji Omar Fatima Carlos Lucia Ivan Olga Aisha Noah Zoe
Isaac Hannah George Lily Jonas Maya
"""
_SURNAMES = """
Smith Brown Taylor Miller Wilson Moore Clark Lewis Walker Hall Allen Young King Wright Scott Green
Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Parker Collins
Edwards Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey Bell Kelly Howard
Ward Richardson Wood Watson Brooks Bennett Gray Hughes Price Sanders Patel Garcia Novak Larsen
"""
_CITIES = """
London Paris Boston Chicago Denver Dublin Madrid Berlin Vienna Prague Lisbon Oslo Toronto Sydney
Cairo Nairobi Lagos Delhi Tokyo Seoul Lima Austin Seattle Portland Glasgow Edinburgh Manchester
Bristol Geneva Athens Rome Naples Warsaw Helsinki Montreal Memphis Phoenix Dallas Atlanta
"""

# Suffix classes for wordfreq words. Agent nouns ("-er") and verbs in "-ate" are left out: too many
# of them are other parts of speech ("never", "climate").
_ABSTRACT_SUFFIXES = ("tion", "sion", "ment", "ness", "ity", "ance", "ence", "ship")
_ADJECTIVE_SUFFIXES = ("ous", "ful", "ive", "able", "ible", "less", "ical")
_VERB_SUFFIXES = ("ize", "ify")
# Words the suffix rules get wrong (names, verbs, nouns) or that do not belong in a demo corpus.
_EXCLUDED = frozenset(
    """
    receive arrive survive derive deprive forgive perceive deceive strive thrive revive relive conceive
    overdrive disable archive handful mouthful vegetable constable timetable syllable crucible
    rendezvous regardless nevertheless nonetheless unless motive locomotive fugitive captive adjective
    narrative perspective initiative executive representative detective relative objective alternative
    incentive directive derivative operative elective additive inclement enhance commence augment
    implement envision complement supplement apologize sympathize socialize specialize spotify testify
    qualify belize business witness lawrence laurence florence clarence terence terrence constance
    clement inverness guinness playstation eurovision sundance philly trinity christianity supply family
    apply reply comply assembly butterfly bully belly rally jelly lovely friendly lonely elderly deadly
    costly lively timely heavenly cowardly orderly disorderly scholarly worldly earthly ghostly stately
    unlikely weekly monthly yearly hourly quarterly nightly bodily
    abortion sexuality homosexuality masturbation nudity virginity prostitution circumcision erection
    seduction seductive infidelity contraception topless sexually sinful chastity abstinence
    """.split()
)
HAND_ADJECTIVE_SHARE = 0.6  # how often an adjective comes from the hand-written list


def _parse_nouns(block: str) -> tuple[Noun, ...]:
    nouns = {}
    for entry in block.split():
        word, _, plural = entry.partition(":")
        nouns[word] = Noun(word, plural or _pluralize(word))
    return tuple(nouns.values())


def _parse_verbs(block: str) -> tuple[Verb, ...]:
    verbs = {}
    for entry in block.split():
        base, _, past = entry.partition(":")
        verbs[base] = Verb(base, past or _regular_past(base), _third_person(base))
    return tuple(verbs.values())


def _pluralize(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
        return word[:-1] + "ies"
    if word.endswith(("s", "sh", "ch", "x", "z")):
        return word + "es"
    return word + "s"


def _regular_past(base: str) -> str:
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2:-1] not in tuple("aeiou"):
        return base[:-1] + "ied"
    return base + "ed"


def _third_person(base: str) -> str:
    if base.endswith("y") and base[-2:-1] not in tuple("aeiou"):
        return base[:-1] + "ies"
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        return base + "es"
    return base + "s"


def _frequent_words(top_n: int) -> list[str]:
    import wordfreq  # imported here: only the lexicon needs it

    words = wordfreq.top_n_list("en", top_n)
    return [w for w in words if w.isascii() and w.isalpha() and len(w) >= 3 and re.search("[aeiouy]", w)]


def _with_suffix(words: list[str], suffixes: tuple[str, ...], exclude: frozenset[str]) -> list[str]:
    return [
        w
        for w in words
        if w not in exclude and any(w.endswith(s) and len(w) >= len(s) + 3 for s in suffixes)
    ]


def _adverbs(words: list[str]) -> list[str]:
    known = set(words)

    def from_adjective(word: str) -> bool:
        stem = word[:-2]
        return len(stem) >= 4 and (stem in known or (word.endswith("ily") and word[:-3] + "y" in known))

    return [w for w in words if w.endswith("ly") and w not in _EXCLUDED and from_adjective(w)]


def _merge_nouns(hand: tuple[Noun, ...], extra: list[str], taken: set[str]) -> tuple[Noun, ...]:
    new = [Noun(w, _pluralize(w)) for w in extra if w not in taken]
    return hand + tuple(new)


def build_lexicon(top_n: int = 30000) -> Lexicon:
    """Hand-written word lists plus suffix-classified words from ``wordfreq``'s top ``top_n``."""
    if top_n < 0:
        raise ValueError(f"build_lexicon: top_n={top_n} must be >= 0")
    frequent = _frequent_words(top_n) if top_n else []
    people, animals = _parse_nouns(_PEOPLE), _parse_nouns(_ANIMALS)
    things, places = _parse_nouns(_THINGS), _parse_nouns(_PLACES)
    hand_abstracts = _parse_nouns(_ABSTRACTS)
    taken = {n.singular for group in (people, animals, things, places, hand_abstracts) for n in group}
    abstracts = _merge_nouns(
        hand_abstracts, _with_suffix(frequent, _ABSTRACT_SUFFIXES, _EXCLUDED), taken
    )
    person_adjectives = tuple(dict.fromkeys(_PERSON_ADJECTIVES.split()))
    thing_adjectives = tuple(dict.fromkeys(_THING_ADJECTIVES.split()))
    common = set(person_adjectives + thing_adjectives)
    rare_adjectives = tuple(
        w for w in _with_suffix(frequent, _ADJECTIVE_SUFFIXES, _EXCLUDED) if w not in common
    )
    verbs_abstract = _parse_verbs(_VERBS_ABSTRACT)
    hand_bases = {v.base for v in verbs_abstract}
    verbs_abstract += tuple(
        Verb(w, _regular_past(w), _third_person(w))
        for w in _with_suffix(frequent, _VERB_SUFFIXES, _EXCLUDED)
        if w not in hand_bases
    )
    adverbs = _adverbs(frequent) or ["quietly", "slowly", "suddenly", "carefully"]
    return Lexicon(
        people=people,
        animals=animals,
        things=things,
        places=places,
        abstracts=abstracts,
        person_adjectives=person_adjectives,
        thing_adjectives=thing_adjectives,
        rare_adjectives=rare_adjectives or thing_adjectives,
        adverbs=tuple(dict.fromkeys(adverbs)),
        verbs_thing=_parse_verbs(_VERBS_THING),
        verbs_person=_parse_verbs(_VERBS_PERSON),
        verbs_abstract=verbs_abstract,
        verbs_intransitive=_parse_verbs(_VERBS_INTRANSITIVE),
        first_names=tuple(_FIRST_NAMES.split()),
        surnames=tuple(_SURNAMES.split()),
        cities=tuple(_CITIES.split()),
    )
