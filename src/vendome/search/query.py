"""Query understanding for composed search: "like this, but in rose gold, no diamonds, under 2k".

    vocab = Vocabulary.from_products(products)                    # once per catalog
    q = parse("like this, but in rose gold, no diamonds, under 2k", vocab, anchor=products.iloc[i].to_dict())
    q.constraints  # hard: subcategory in (ring,), stone_type not_in (diamond,), price lt 2000
                   # soft: material in (rose gold,)
    q.delta        # "in rose gold": the change the embedding composer reads
    q.named        # {"material": ("rose gold",)}

The vocabulary is the catalog's own values (another house has other materials and stones), with a thin generic layer
on top: English plurals ("rubies" -> ruby, "earring" -> earrings), token families (a word that is the last word of
values but not a value itself, "gold" -> yellow/rose/white gold, "leather" -> patent leather; a modifier no other
attribute claims, "yellow" -> yellow gold) and a tiny synonym table of retail words ("stones" -> every stone but
none, "watch" -> Watches, "bag" -> handbag/tote/clutch). A word with several readings takes an exact value before a
synonym before a family, then the first of subcategory, category, material, stone, collection, brand; colour comes
after every other reading, so "gold" and "silver" are metals when the catalog sells such metals.

What the parser turns into constraints:

- negations, HARD `not_in`: "no diamonds or rubies", "not silver", "without stones", "diamond-free", "anything but
  black", "instead of yellow gold";
- prices, HARD on `price`: "under 2,000", "max 3k", "over 10k", "from 1k", "between 1k and 3k", "€2,000 to €4,000",
  "around 5k" (0.8x to 1.2x), "2k or less"; "cheaper"/"more affordable" is `lt` the anchor's price (ignored without
  an anchor), "more expensive"/"pricier" `gt` it;
- what the client wants to see, HARD `in`: a subcategory (or category) the text names ("matching earrings", "rings
  in rose gold"), otherwise the anchor's subcategory (its category when it has none, or when she excludes it);
  a piece named after "this", "my", "that" ("earrings to go with my necklace") describes the anchor, not the wish;
- other positive mentions (material, stone, colour, brand, collection), SOFT `in`, also listed in `named`.

`delta` is the text less negations, prices and filler ("like this, but", "please", "show me"); positive mentions and
unknown words stay in it. Parsing never raises: a phrase it does not understand is left to the composer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from vendome.search.constraints import Constraint, is_missing, text, to_number

__all__ = ["Constraint", "ParsedQuery", "Vocabulary", "parse", "VOCAB_COLUMNS"]

VOCAB_COLUMNS = ("category", "subcategory", "material", "stone_type", "color", "brand", "collection")
# A phrase matching several attributes goes to the first of these; colour always loses to the others.
PRIORITY = ("subcategory", "category", "material", "stone_type", "collection", "brand", "color")
LOCK_ATTRIBUTES = ("subcategory", "category")  # what the client wants to see: hard, never a mere preference
FAMILY_ATTRIBUTES = ("material", "stone_type", "color", "subcategory")  # "gold" -> every "... gold"
MODIFIER_ATTRIBUTES = ("material", "stone_type", "color")  # "yellow" -> "yellow gold"
NULL_VALUES = frozenset({"", "none", "n/a", "na", "nan", "null", "unknown", "other", "-", "no stone", "no stones"})
EXACT, SYNONYM, FAMILY, MODIFIER = 0, 1, 2, 3  # tiers of a vocabulary entry, best first

# Grammar and cue words: never catalog values on their own, whatever a catalog contains.
_GRAMMAR = """
a an the and or nor but no not non in on at of for with without from to by as is it its it's this that these those
my your her his our their me i you we like same similar one any all some something anything nothing none other than
more less most least very too so up under over below above between around about free please show want only just
also de du la le les d l et y e o u s
"""
STOPWORDS = frozenset(_GRAMMAR.split())

_ANY = "*"  # a synonym for every non-null value of the attribute
SYNONYMS: dict[str, tuple[str, tuple[str, ...]]] = {
    **{w: ("stone_type", (_ANY,)) for w in ("stone", "stones", "gem", "gems", "gemstone", "gemstones",
                                             "precious stone", "precious stones")},
    **{w: ("category", ("watches", "watch", "timepieces")) for w in ("watch", "watches", "timepiece", "timepieces")},
    **{w: ("subcategory", ("handbag", "tote", "clutch", "bag", "handbags", "totes", "clutches", "bags"))
       for w in ("bag", "bags", "purse", "purses")},
    **{w: ("category", ("jewelry", "jewellery", "fine jewelry", "fine jewellery"))
       for w in ("jewelry", "jewellery", "jewel", "jewels")},
    **{w: ("category", ("ready-to-wear", "clothing", "apparel")) for w in ("clothes", "clothing", "apparel", "rtw")},
    "trainers": ("subcategory", ("sneakers",)),
    "heels": ("subcategory", ("pumps",)),
    "pendant": ("subcategory", ("necklace", "pendant")),
    "pendants": ("subcategory", ("necklace", "pendant")),
}

# ------------------------------------------------------------------------------------------------- cue tables
_PRICE_WORDS = frozenset({"priced", "price", "prices", "pricing", "costing", "costs", "cost", "retail", "retailing"})
_PRICE_CONTEXT = _PRICE_WORDS | {"for", "at", "a", "with"}
_PREFIX_CUES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("no", "more", "than"), "le"), (("not", "more", "than"), "le"), (("not", "over"), "le"), (("not", "above"), "le"),
    (("no", "less", "than"), "ge"), (("not", "less", "than"), "ge"), (("not", "under"), "ge"), (("not", "below"), "ge"),
    (("less", "than"), "lt"), (("lower", "than"), "lt"), (("cheaper", "than"), "lt"), (("under",), "lt"),
    (("below",), "lt"), (("beneath",), "lt"), (("<", "="), "le"), (("<",), "lt"),
    (("at", "most"), "le"), (("up", "to"), "le"), (("upto",), "le"), (("max",), "le"), (("maximum",), "le"),
    (("within", "a", "budget", "of"), "le"), (("on", "a", "budget", "of"), "le"), (("a", "budget", "of"), "le"),
    (("my", "budget", "is"), "le"), (("budget", "of"), "le"), (("budget", "is"), "le"), (("budget",), "le"),
    (("within",), "le"),
    (("more", "than"), "gt"), (("greater", "than"), "gt"), (("higher", "than"), "gt"),
    (("more", "expensive", "than"), "gt"), (("pricier", "than"), "gt"), (("over",), "gt"), (("above",), "gt"),
    (("exceeding",), "gt"), ((">", "="), "ge"), ((">",), "gt"),
    (("at", "least"), "ge"), (("min",), "ge"), (("minimum",), "ge"), (("starting", "at"), "ge"),
    (("starting", "from"), "ge"), (("upwards", "of"), "ge"), (("from",), "ge"),
)
_BETWEEN_CUES = (("between",), ("in", "the", "range", "of"), ("in", "the", "range"), ("range",), ("from",),
                 ("starting", "from"))
_AROUND_CUES = (("around",), ("about",), ("approximately",), ("approx",), ("roughly",), ("circa",), ("ca",),
                ("~",), ("close", "to"), ("near",), ("nearly",), ("something", "like"))
_RANGE_JOINERS = (("-",), ("to",), ("and",), ("&",), ("until",), ("till",), ("up", "to"), ("through",), ("thru",))
_BARE_RANGE_JOINERS = (("-",), ("to",))
_SUFFIX_CUES = (
    (("or", "less"), "le"), (("or", "under"), "le"), (("or", "below"), "le"), (("and", "under"), "le"),
    (("and", "below"), "le"), (("max",), "le"), (("maximum",), "le"), (("tops",), "le"), (("at", "most"), "le"),
    (("or", "more"), "ge"), (("or", "above"), "ge"), (("and", "up"), "ge"), (("and", "above"), "ge"),
    (("and", "over"), "ge"), (("plus",), "ge"), (("+",), "ge"), (("minimum",), "ge"), (("at", "least"), "ge"),
)
_CHEAPER = (("less", "expensive"), ("more", "affordable"), ("cheaper",), ("less", "pricey"), ("less", "costly"),
            ("lower", "priced"), ("lower", "price"), ("more", "budget", "friendly"), ("budget", "friendly"),
            ("for", "less"))
_PRICIER = (("more", "expensive"), ("pricier",), ("dearer",), ("higher", "priced"), ("more", "upscale"))
_INTENSIFIERS = frozenset({"a", "bit", "little", "slightly", "somewhat", "much", "even", "way", "far", "lot"})
_RELATIVE_TAILS = (("than", "this", "one"), ("than", "this"), ("than", "that", "one"), ("than", "that"),
                   ("than", "it"), ("than", "the", "original"), ("than", "the", "anchor"), ("one",), ("ones",),
                   ("version",), ("option",), ("options",), ("alternative",), ("alternatives",))
# (cue, loose): a loose cue may skip prepositions before its attribute ("nothing in gold", "not made of steel").
_NEGATION_CUES: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("i", "do", "not", "want"), True), (("i", "don't", "want"), True), (("i", "dont", "want"), True),
    (("do", "not", "want"), True), (("don't", "want"), True), (("dont", "want"), True),
    (("not", "a", "fan", "of"), True), (("i", "don't", "like"), True), (("i", "dont", "like"), True),
    (("don't", "like"), True), (("dont", "like"), True), (("do", "not", "like"), True), (("not", "keen", "on"), True),
    (("allergic", "to"), True), (("dislike",), True), (("hate",), True),
    (("anything", "but"), False), (("anything", "except"), False), (("everything", "but"), False),
    (("all", "but"), False), (("other", "than"), False), (("instead", "of"), False), (("rather", "than"), False),
    (("except", "for"), False), (("except",), False), (("excluding",), True), (("exclude",), True),
    (("avoiding",), True), (("avoid",), True), (("without",), True), (("w", "/", "o"), True), (("free", "of"), True),
    (("free", "from"), True), (("nothing",), True), (("never",), True), (("minus",), True), (("sans",), True),
    (("skip",), True), (("non",), False), (("not",), True), (("no",), True),
)
_SKIP_STRICT = frozenset({"a", "an", "any", "the", "-"})
_SKIP_LOOSE = _SKIP_STRICT | {"in", "with", "made", "of", "from", "more", "real", "genuine", "set", "kind", "type",
                              "kinds", "types", "that", "which", "has", "have", "having", "contains", "containing",
                              "featuring"}
_SKIP_AFTER_JOINER = frozenset({"a", "an", "any", "the", "in", "with", "of", "from"})
_LIST_JOINERS = frozenset({",", "/", "or", "and", "&", "nor", "+"})
_OR_JOINERS = frozenset({"or", "nor", "/"})  # these keep a negation going across attributes ("no gold or stones")
_PHRASE_GLUE = frozenset({"-", "&"})  # inside one value: "ready-to-wear", "van cleef & arpels"
_REFERENCES = frozenset({"this", "that", "these", "those", "my", "her", "his", "our", "same"})
_FILLERS = tuple(tuple(f.split()) for f in (
    "can you show me", "could you show me", "can you find me", "could you find me", "i am looking for",
    "i'm looking for", "im looking for", "we are looking for", "looking for", "similar to this one",
    "similar to this", "similar to that", "something similar to", "something like", "just like this", "like this one",
    "like that one", "like this", "like that", "like it", "same as this", "similar", "show me", "find me", "give me",
    "get me", "i would like", "i'd like", "id like", "i want", "i need", "do you have", "have you got", "can you",
    "could you", "something", "but", "please", "pls", "plz", "thanks", "thank you", "at all", "ideally",
    "preferably", "perhaps", "maybe", "except for", "except", "it's", "it is",
))
_FILLERS = tuple(sorted(_FILLERS, key=len, reverse=True))
_SUFFIXES = {"k": 1e3, "thousand": 1e3, "thousands": 1e3, "grand": 1e3,
             "m": 1e6, "mn": 1e6, "mio": 1e6, "million": 1e6, "millions": 1e6}

# ----------------------------------------------------------------------------------------------- text & tokens
_CHAR_MAP = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'", "`": "'", "\u2032": "'",
                           "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-"})
_AMOUNT = re.compile(
    r"(?P<cur1>[€$£]|(?:eur|usd|gbp|chf)(?=\s*\d))?\s*"
    r"(?:(?P<grp>\d{1,3}(?:[,. ]\d{3})+)(?P<dec>\.\d{1,2})?(?!\d)|(?P<plain>\d+(?:[.,]\d+)?))"
    r"(?:\s*(?P<suf>k|m|mn|mio|millions?|thousands?|grand)(?![^\W_]))?"
    r"(?:\s*(?P<cur2>[€$£]|(?:eur|euros?|usd|dollars?|gbp|pounds?|chf)(?![^\W_])))?"
    r"(?![^\W_])"
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_SPACE = re.compile(r"\s+")


def _surface(raw: str) -> str:
    """The working text: compatibility-normalised, with one apostrophe and one dash."""
    return unicodedata.normalize("NFKC", raw).translate(_CHAR_MAP)


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)).lower()
    if len(base) == 1:
        return base
    low = ch.lower()
    return low if len(low) == 1 else ch


def _fold(s: str) -> str:
    """Lower-cased, accents dropped, one character for one, so offsets in the key are offsets in the text."""
    return "".join(_fold_char(ch) for ch in s)


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "amount" or "punct"
    key: str  # folded text ("#" for an amount)
    start: int
    end: int
    space: bool  # whitespace before it
    value: float = 0.0  # an amount, in units
    base: float = 0.0  # the number as written, before k/m
    scale: float = 1.0  # the k/m multiplier
    currency: bool = False


def _tokenize(key: str) -> list[_Token]:
    out: list[_Token] = []
    pos, n = 0, len(key)
    while pos < n:
        space = _SPACE.match(key, pos)
        if space:
            pos = space.end()
            continue
        gap = pos > 0 and key[pos - 1].isspace()
        m = _AMOUNT.match(key, pos) if key[pos].isdigit() or key[pos] in "€$£ecgu" else None
        if m is not None:
            if m.group("grp"):
                base = float(re.sub(r"\D", "", m.group("grp"))) + float("0" + (m.group("dec") or ".0"))
            else:
                base = float(m.group("plain").replace(",", "."))
            scale = _SUFFIXES.get(m.group("suf") or "", 1.0)
            if not math.isfinite(base * scale):  # 400 nines are a word, not a budget
                m = None
        if m is not None:
            end = m.end()
            while end > pos and key[end - 1].isspace():
                end -= 1
            out.append(_Token("amount", "#", pos, end, gap, base * scale, base, scale,
                              bool(m.group("cur1") or m.group("cur2"))))
            pos = end
            continue
        m = _WORD.match(key, pos)
        if m:
            out.append(_Token("word", m.group(), pos, m.end(), gap))
            pos = m.end()
            continue
        out.append(_Token("punct", key[pos], pos, pos + 1, gap))
        pos += 1
    return out


def _words(phrase: str) -> tuple[str, ...]:
    """The word keys of a phrase or catalog value ("Ready-to-Wear" -> ("ready", "to", "wear"))."""
    return tuple(t.key for t in _tokenize(_fold(_surface(phrase))) if t.kind == "word")


def _variants(word: str) -> list[str]:
    """Singular and plural forms of an English word, most likely first."""
    out = [word + "s", word + "es"]
    if word.endswith("ies") and len(word) > 4:
        out.insert(0, word[:-3] + "y")
    if word.endswith("ves") and len(word) > 4:
        out.insert(0, word[:-3] + "f")
    if word.endswith("es") and len(word) > 3:
        out.insert(0, word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        out.insert(0, word[:-1])
    if word.endswith("y") and len(word) > 2:
        out.append(word[:-1] + "ies")
    if word.endswith("f") and len(word) > 2:
        out.append(word[:-1] + "ves")
    return out


# --------------------------------------------------------------------------------------------------- vocabulary
class Vocabulary:
    """Catalog values by attribute, indexed by their word keys, with plurals, families and synonyms on top."""

    def __init__(self, values: Mapping[str, Iterable[str]]) -> None:
        self.values: dict[str, tuple[str, ...]] = {}
        for attribute, vals in values.items():
            seen: dict[str, str] = {}
            for v in vals:
                if not is_missing(v) and str(v).strip():
                    seen.setdefault(text(v), str(v).strip())
            self.values[attribute] = tuple(sorted(seen.values(), key=str.lower))
        # word keys -> attribute -> (tier, values): only the best tier of an attribute is kept for a key
        self._index: dict[tuple[str, ...], dict[str, tuple[int, list[str]]]] = {}
        self._build()
        self.max_len = max((len(k) for k in self._index), default=1)

    @classmethod
    def from_products(cls, products: pd.DataFrame, columns: Iterable[str] = VOCAB_COLUMNS) -> Vocabulary:
        """The vocabulary of a catalog's columns (those it lacks are skipped)."""
        return cls({c: products[c].dropna().unique() for c in columns if c in products.columns})

    def _add(self, keys: tuple[str, ...], attribute: str, value: str, tier: int) -> None:
        if not keys:
            return
        entries = self._index.setdefault(keys, {})
        current = entries.get(attribute)
        if current is None or tier < current[0]:
            entries[attribute] = (tier, [value])
        elif tier == current[0] and value not in current[1]:
            current[1].append(value)

    def _best_tier(self, keys: tuple[str, ...]) -> int:
        return min((tier for tier, _ in self._index.get(keys, {}).values()), default=MODIFIER + 1)

    def _build(self) -> None:
        real = {a: [(v, _words(v)) for v in vals if text(v) not in NULL_VALUES] for a, vals in self.values.items()}
        for attribute, vals in real.items():
            for v, keys in vals:
                if not (len(keys) == 1 and keys[0] in STOPWORDS):
                    self._add(keys, attribute, v, EXACT)
        for phrase, (attribute, targets) in SYNONYMS.items():
            for v, _ in real.get(attribute, []):
                if _ANY in targets or text(v) in targets:
                    self._add(_words(phrase), attribute, v, SYNONYM)
        for attribute in FAMILY_ATTRIBUTES:
            exact = {keys for _, keys in real.get(attribute, [])}
            for v, keys in real.get(attribute, []):
                if len(keys) > 1 and keys[-1] not in STOPWORDS and (keys[-1],) not in exact:
                    self._add((keys[-1],), attribute, v, FAMILY)
        modifiers: list[tuple[tuple[str, ...], str, str]] = []
        for attribute in MODIFIER_ATTRIBUTES:
            for v, keys in real.get(attribute, []):
                for word in keys[:-1]:
                    if word not in STOPWORDS and len(word) > 2 and self._best_tier((word,)) > FAMILY:
                        modifiers.append(((word,), attribute, v))
        brands = [(v, keys) for v, keys in real.get("brand", []) if len(keys) > 1]
        owners: dict[tuple[str, ...], set[str]] = {}
        for v, keys in brands:  # a part of one brand's name only: "manufacture" -> "Aurèle Manufacture"
            for a in range(len(keys)):
                for b in range(a + 1, len(keys) + 1):
                    part = keys[a:b]
                    if part != keys and all(w not in STOPWORDS and len(w) > 2 for w in part):
                        owners.setdefault(part, set()).add(v)
        for part, vs in owners.items():
            if len(vs) == 1 and self._best_tier(part) > FAMILY:
                modifiers.append((part, "brand", next(iter(vs))))
        for keys, attribute, v in modifiers:
            self._add(keys, attribute, v, FAMILY if attribute == "brand" else MODIFIER)

    def _match(self, keys: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
        """(attribute, values) for word keys, best first; plural/singular of the last word when the keys miss."""
        entries = self._index.get(keys)
        if entries is None and keys:
            for variant in _variants(keys[-1]):
                entries = self._index.get(keys[:-1] + (variant,))
                if entries is not None:
                    break
        if not entries:
            return []
        rank = {a: k for k, a in enumerate(PRIORITY)}
        ordered = sorted(entries.items(), key=lambda e: (e[0] == "color", e[1][0], rank.get(e[0], len(rank)), e[0]))
        return [(a, tuple(sorted(vs, key=str.lower))) for a, (_, vs) in ordered]

    def lookup(self, phrase: str) -> list[tuple[str, tuple[str, ...]]]:
        """(attribute, matching catalog values) for a phrase, the most likely reading first; [] when unknown."""
        return self._match(_words(phrase))


# ------------------------------------------------------------------------------------------------------ parsing
@dataclass
class ParsedQuery:
    """A query understood against one catalog: constraints for the guard, the delta for the composer."""

    text: str
    constraints: list[Constraint] = field(default_factory=list)
    delta: str = ""
    named: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def hard(self) -> list[Constraint]:
        return [c for c in self.constraints if c.hard]

    @property
    def soft(self) -> list[Constraint]:
        return [c for c in self.constraints if not c.hard]

    def to_dict(self) -> dict:
        return {"text": self.text, "constraints": [c.to_dict() for c in self.constraints], "delta": self.delta,
                "named": {a: list(v) for a, v in self.named.items()}}


@dataclass(frozen=True)
class _Mention:
    end: int  # token index after the phrase
    attribute: str
    values: tuple[str, ...]
    n_words: int


def _record(anchor: object) -> dict:
    """The anchor as a dict (a mapping or a pandas row); anything else is no anchor."""
    if isinstance(anchor, Mapping):
        return dict(anchor)
    if isinstance(anchor, pd.Series):
        return anchor.to_dict()
    return {}


class _Parser:
    def __init__(self, raw: str, vocab: Vocabulary, anchor: Mapping | None) -> None:
        self.raw, self.vocab = raw, vocab
        self.anchor = _record(anchor)
        self.surface = _surface(raw)
        self.t = _tokenize(_fold(self.surface))
        self.n = len(self.t)
        self.dropped = [False] * self.n
        self.negated: dict[str, dict[str, str]] = {}  # attribute -> text(value) -> value
        self.negated_sources: dict[str, list[str]] = {}
        self.wanted: dict[str, dict[str, str]] = {}
        self.wanted_sources: dict[str, list[str]] = {}
        self.prices: list[Constraint] = []

    # ------------------------------------------------------------------------------------------ helpers
    def _span(self, a: int, b: int) -> str:
        return self.surface[self.t[a].start:self.t[b - 1].end] if b > a else ""

    def _drop(self, a: int, b: int) -> None:
        for k in range(a, b):
            self.dropped[k] = True

    def _seq(self, i: int, words: tuple[str, ...]) -> int | None:
        """The index after `words` matched from token i (a dash between two words is skipped), else None."""
        k = i
        for n, w in enumerate(words):
            if n and k < self.n and self.t[k].key == "-" and w != "-":
                k += 1
            if k >= self.n or self.t[k].key != w:
                return None
            k += 1
        return k

    def _first(self, i: int, options) -> tuple[int, object] | None:
        """The first (end, payload) of `options` ((words, payload) pairs) matching at i."""
        for words, payload in options:
            end = self._seq(i, words)
            if end is not None:
                return end, payload
        return None

    def _skip(self, i: int, words: frozenset[str]) -> int:
        while i < self.n and self.t[i].key in words:
            i += 1
        return i

    # ------------------------------------------------------------------------------------------ phrases
    def _phrase(self, i: int, elliptic: bool = True) -> _Mention | None:
        """The longest catalog phrase starting at token i."""
        words: list[str] = []
        ends: list[int] = []
        k = i
        while k < self.n and self.t[k].kind == "word" and len(words) < self.vocab.max_len:
            words.append(self.t[k].key)
            k += 1
            ends.append(k)
            if k + 1 < self.n and self.t[k].key in _PHRASE_GLUE and self.t[k + 1].kind == "word":
                k += 1
        for size in range(len(words), 0, -1):
            found = self.vocab._match(tuple(words[:size]))
            if found:
                mention = _Mention(ends[size - 1], found[0][0], found[0][1], size)
                if size == 1 and elliptic:
                    return self._elliptic(i) or mention
                return mention
        return self._elliptic(i) if words and elliptic else None

    def _elliptic(self, i: int) -> _Mention | None:
        """"white or yellow gold": a modifier sharing the head of a later phrase in the same list."""
        k, steps = i + 1, 0
        while k < self.n and steps < 8:
            steps += 1
            if self.t[k].key not in _LIST_JOINERS:
                return None
            k = self._skip(k + 1, _LIST_JOINERS)
            nxt = self._phrase(k, elliptic=False)
            if nxt is not None and nxt.n_words > 1:
                found = self.vocab._match((self.t[i].key, self.t[nxt.end - 1].key))
                if found and found[0][0] == nxt.attribute:
                    return _Mention(i + 1, found[0][0], found[0][1], 1)
                return None
            if nxt is not None:
                k = nxt.end
            elif k < self.n and self.t[k].kind == "word":
                k += 1
            else:
                return None
        return None

    def _phrase_list(self, i: int, skip: frozenset[str]) -> tuple[int, list[_Mention]] | None:
        """A coordinated list of phrases: "diamonds, rubies or pearls", "gold and silver", "gold or stones".
        "or"/"nor" join across attributes, "and" within one; a comma within one attribute, and only when the list
        goes on to close with "or"/"and" ("no gold, silver please" negates the gold only)."""
        first = self._phrase(self._skip(i, skip))
        if first is None:
            return None
        items, end = [first], first.end
        committed = 1
        while end < self.n:
            k, joiners = end, set()
            while k < self.n and self.t[k].key in _LIST_JOINERS and len(joiners) < 2:
                joiners.add(self.t[k].key)
                k += 1
            if not joiners:
                break
            nxt = self._phrase(self._skip(k, _SKIP_AFTER_JOINER))
            if nxt is None or (not joiners & _OR_JOINERS and nxt.attribute != items[-1].attribute):
                break
            items.append(nxt)
            end = nxt.end
            if joiners != {","}:
                committed = len(items)
        items = items[:committed]
        return items[-1].end, items

    # ------------------------------------------------------------------------------------------ recording
    def _negate(self, m: _Mention, source: str) -> None:
        _note_mention(self.negated, self.negated_sources, m, source)

    def _want(self, m: _Mention, source: str) -> None:
        _note_mention(self.wanted, self.wanted_sources, m, source)

    # ------------------------------------------------------------------------------------------ steps
    def _amount(self, i: int) -> tuple[int, _Token] | None:
        i = self._skip(i, frozenset({":", "."}))
        if i < self.n and self.t[i].kind == "amount":
            return i + 1, self.t[i]
        return None

    def _range_end(self, i: int, first: _Token, joiners) -> tuple[int, float, float] | None:
        hit = self._first(i, ((w, None) for w in joiners))
        second = self._amount(hit[0]) if hit else None
        if second is None:
            return None
        end, b = second
        lo = first.value
        if first.scale == 1.0 and b.scale > 1.0 and first.base * b.scale <= b.value:
            lo = first.base * b.scale  # "1-3k": the k belongs to both
        return end, min(lo, b.value), max(lo, b.value)

    def _price(self, i: int) -> int | None:
        k = self._skip(i, _PRICE_CONTEXT)
        context = any(self.t[j].key in _PRICE_WORDS for j in range(i, k))
        starts = [k] if k == i else [k, i]  # "for under 2k", but also "at most 3k" (where "at" is a cue word)
        for s in starts:
            end = self._price_at(s, context and s == k)
            if end is not None:
                self._drop(i, end)
                return end
        return None

    def _emit_price(self, op: str, value: object, a: int, b: int) -> None:
        self.prices.append(Constraint("price", op, value, hard=True, source=self._span(a, b)))

    def _price_at(self, i: int, context: bool) -> int | None:
        for cue in _BETWEEN_CUES:
            e = self._seq(i, cue)
            first = self._amount(e) if e is not None else None
            if first is not None:
                r = self._range_end(first[0], first[1], _RANGE_JOINERS)
                if r is not None:
                    self._emit_price("between", (r[1], r[2]), i, r[0])
                    return r[0]
        hit = self._first(i, ((c, None) for c in _AROUND_CUES))
        first = self._amount(hit[0]) if hit else None
        if first is not None:
            r = self._range_end(first[0], first[1], _RANGE_JOINERS)
            if r is not None:
                self._emit_price("between", (r[1], r[2]), i, r[0])
                return r[0]
            x = first[1].value
            self._emit_price("between", (round(0.8 * x, 2), round(1.2 * x, 2)), i, first[0])
            return first[0]
        hit = self._first(i, _PREFIX_CUES)
        first = self._amount(hit[0]) if hit else None
        if first is not None:
            self._emit_price(str(hit[1]), first[1].value, i, first[0])  # type: ignore[index]
            return first[0]
        if i < self.n and self.t[i].kind == "amount":
            a = self.t[i]
            r = self._range_end(i + 1, a, _BARE_RANGE_JOINERS)
            if r is not None and (context or a.currency or a.scale > 1 or self.t[r[0] - 1].currency
                                  or self.t[r[0] - 1].scale > 1):
                self._emit_price("between", (r[1], r[2]), i, r[0])
                return r[0]
            hit = self._first(i + 1, _SUFFIX_CUES)
            if hit is not None:
                self._emit_price(str(hit[1]), a.value, i, hit[0])
                return hit[0]
        return None

    def _relative(self, i: int) -> int | None:
        """"cheaper", "more affordable", "pricier": relative to the anchor's price."""
        k = self._skip(i, _INTENSIFIERS)
        hit = self._first(k, [(c, "lt") for c in _CHEAPER] + [(c, "gt") for c in _PRICIER])
        if hit is None:
            return None
        end, op = hit
        tail = self._first(end, ((t, None) for t in _RELATIVE_TAILS))
        end = tail[0] if tail else end
        price = to_number(self.anchor.get("price"))
        if price == price and price > 0:  # not NaN
            self._emit_price(str(op), price, i, end)
        self._drop(i, end)
        return end

    def _negation(self, i: int) -> int | None:
        for cue, loose in _NEGATION_CUES:
            e = self._seq(i, cue)
            if e is None:
                continue
            found = self._phrase_list(e, _SKIP_LOOSE if loose else _SKIP_STRICT)
            if found is None:
                continue
            end, items = found
            source = self._span(i, end)
            for m in items:
                self._negate(m, source)
            self._drop(i, end)
            return end
        return None

    def _filler(self, i: int) -> int | None:
        for words in _FILLERS:
            end = self._seq(i, words)
            if end is not None:
                self._drop(i, end)
                return end
        return None

    def _mention(self, i: int, reference: bool) -> int | None:
        m = self._phrase(i)
        if m is None:
            return None
        free = self._seq(m.end, ("-", "free")) or self._seq(m.end, ("free",))
        if free is not None:  # "diamond-free"
            self._negate(m, self._span(i, free))
            self._drop(i, free)
            return free
        if reference:  # "this gold ring", "my necklace": the anchor, not the wish (nor the composer's business)
            start = i
            while start > 0 and self.t[start - 1].key in _REFERENCES:
                start -= 1
            self._drop(start, m.end)
            return m.end
        self._want(m, self._span(i, m.end))
        return m.end

    # ------------------------------------------------------------------------------------------ the whole
    def run(self) -> ParsedQuery:
        i, reference = 0, False
        while i < self.n:
            end = self._price(i) or self._relative(i) or self._negation(i)
            if end:
                reference = False
            else:
                end = self._filler(i)
                if end:
                    reference = self.t[end - 1].key in _REFERENCES
                else:
                    end = self._mention(i, reference)
                    if end is None:
                        reference = self.t[i].key in _REFERENCES
                        end = i + 1
            i = end
        return ParsedQuery(self.raw, self._constraints(), self._delta(), self._named())

    def _negated_texts(self, attribute: str) -> set[str]:
        return set(self.negated.get(attribute, {}))

    def _kept(self, attribute: str) -> tuple[str, ...]:
        banned = self._negated_texts(attribute)
        return tuple(v for k, v in self.wanted.get(attribute, {}).items() if k not in banned)

    def _lock(self) -> Constraint | None:
        for attribute in LOCK_ATTRIBUTES:
            kept = self._kept(attribute)
            if kept:
                return Constraint(attribute, "in", kept, True, ", ".join(self.wanted_sources[attribute]))
        for attribute in LOCK_ATTRIBUTES:
            value = self.anchor.get(attribute)
            if is_missing(value) or not str(value).strip() or text(value) in self._negated_texts(attribute):
                continue
            return Constraint(attribute, "in", (str(value).strip(),), True, f"the anchor's {attribute}")
        return None

    def _constraints(self) -> list[Constraint]:
        out: list[Constraint] = []
        lock = self._lock()
        if lock is not None:
            out.append(lock)
        for attribute, values in self.negated.items():
            out.append(Constraint(attribute, "not_in", tuple(values.values()), True,
                                  ", ".join(self.negated_sources[attribute])))
        out.extend(self.prices)
        for attribute in self.wanted:
            kept = self._kept(attribute)
            if attribute not in LOCK_ATTRIBUTES and kept:
                out.append(Constraint(attribute, "in", kept, False, ", ".join(self.wanted_sources[attribute])))
        return out

    def _named(self) -> dict[str, tuple[str, ...]]:
        return {a: kept for a in self.wanted if (kept := self._kept(a))}

    def _delta(self) -> str:
        parts: list[str] = []
        previous = -2
        for k, tok in enumerate(self.t):
            if self.dropped[k]:
                continue
            piece = self.surface[tok.start:tok.end]
            if parts and tok.key not in _CLOSERS and (tok.space or previous != k - 1):
                parts.append(" ")
            parts.append(piece)
            previous = k
        return _tidy("".join(parts))


_CLOSERS = frozenset(",.;:!?)")
_EDGE_WORDS = r"(?:and|or|nor|but|with|in|of|a|an|the|&|/|-)"
_INTERJECTIONS = r"(?:no|yes|ok|okay|well|hmm|so|now|then)"
_LEADING = re.compile(rf"^(?:[\s,.;:!?)\-/&]+|(?:{_EDGE_WORDS}|{_INTERJECTIONS})\b(?=\s*(?:[,.;:!?]|$)))+", re.I)
_TRAILING = re.compile(rf"(?:[\s,.;:!?(\-/&]+|\b{_EDGE_WORDS})+$", re.I)
_LEADING_JOINER = re.compile(r"^(?:and|or|nor)\b\s*", re.I)


def _tidy(delta: str) -> str:
    """Collapse the punctuation left where pieces were cut out, and trim dangling joiners at either end."""
    delta = re.sub(r"\s+", " ", delta)
    delta = re.sub(r"\s+([,.;:!?])", r"\1", delta)
    delta = re.sub(r"([,.;:!?])(?:\s*[,.;:!?])+", r"\1", delta)
    for _ in range(8):
        before = delta
        delta = _LEADING.sub("", delta).strip()
        delta = _LEADING_JOINER.sub("", delta).strip()
        delta = _TRAILING.sub("", delta).strip()
        if delta == before:
            break
    return delta


def parse(text: str, vocab: Vocabulary, anchor: Mapping | None = None) -> ParsedQuery:
    """Constraints, delta and named attributes of a composed query, against `vocab`'s catalog. `anchor` is the
    anchor product's record (a dict or a pandas row): it supplies the default subcategory lock and the price
    "cheaper" refers to. Never raises on a string."""
    raw = "" if text is None else str(text)
    return _Parser(raw, vocab, anchor).run()


def _note_mention(values: dict[str, dict], sources: dict[str, list[str]], m: _Mention, source: str) -> None:
    """Note a mention's catalog values (first spelling kept, keyed by comparison text) and the words it came from."""
    bucket = values.setdefault(m.attribute, {})
    for v in m.values:
        bucket.setdefault(text(v), v)
    said = sources.setdefault(m.attribute, [])
    if source not in said:
        said.append(source)
