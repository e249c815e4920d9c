"""The deterministic motivation extractor: a lexicon of cue phrases with negation and sentence sentiment.

It runs when no language model is configured (and in CI), answers in the taxonomy's labels like the LLM backends,
and says so: every result carries backend "rules". Hand-written because no library maps free text onto this
house's closed list of motivations; a cue is either polar ("runs small" is a reason against the fit) or a topic
("the colour ...") whose polarity comes from the sentiment words of its sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

POS, NEG, TOPIC = 1, -1, 0

# (label, polarity, pattern); patterns are matched on lower-cased text with word boundaries
CUES: tuple[tuple[str, int, str], ...] = (
    ("fit", NEG, r"runs? (?:really |very |a (?:little |litle )?|a bit |a tad |extremely |way |so )?"
                 r"(?:small|large|big|narrow|wide)"),
    ("fit", NEG, r"too (?:big|small|tight|loose|wide|large|baggy|snug|narrow|deep|low)"),
    ("fit", NEG, r"(?:un|non-|not |n't |nothing )flatter\w*|ill[- ]fitting|didn't fit|does(?:n't| not) fit"),
    ("fit", NEG, r"\btent\b|swimming in|drowned|oversized|size[ds]? (?:up|down)|sized up|order(?:ed)? (?:a )?size up"),
    ("fit", NEG, r"hangs? (?:\w+ )?(?:funny|strangely|horribly|weird|oddly|like a)|no shape|awkward fit|"
                 r"weird fit|oddly shaped|ill fitting|between sizes|(?:loose|wide|boxy|snug|tight) (?:fit|in)|"
                 r"boxy|fit like a parachute|hung (?:horribly|on me)|puckered|(?:arm ?holes?|v|neck) (?:\w+ )?"
                 r"(?:too|so|was so) (?:large|deep|big)|low cut"),
    ("fit", POS, r"true to size|\btts\b|fits? (?:me )?(?:perfectly|well|great|nicely|like a glove)|"
                 r"(?:perfect|right|great|good|relaxed|looser) fit|slimming|(?<!un)(?<!not )flattering|"
                 r"fit (?:was |is )?perfect|hugs? (?:your|my) body|(?:size|\d+) (?:is|was) perfect|"
                 r"(?:covers|hides) (?:my )?(?:trouble|problem)|fit well|looks (?:great|amazing) on"),
    ("length", NEG, r"(?:too|so|very|cut too|ran so|runs?) (?:short|long)\b|high/low|short in the body"),
    ("length", POS, r"(?:perfect|right|nice|great|good|classy) length|length (?:is|was|looks) (?:perfect|good|great)|"
                    r"the length (?:was good|is good)|length looks good|just the right length|long and|extra long"),
    ("comfort", POS, r"(?<!un)comfortabl\w*|comfy|\bsoft\b(?! spot)|cozy|easy to wear|comfotabl\w*"),
    ("comfort", NEG, r"itchy|scratchy|uncomfortable|not comfortable|restrictive|pokey"),
    ("quality", POS, r"well made|high quality|quality (?:is|was) (?:really )?(?:great|excellent|good|nice)|"
                     r"excellent quality|nice quality|quality (?:material|fabric)s?|beautiful fabric|"
                     r"fabric and (?:detail|cut) (?:was|is|are) beautiful|material is nice|nicely lined|"
                     r"material and cut is great|heavy fabric|thick and"),
    ("quality", NEG, r"\bthin\b|sheer|see[- ]through|\bcheap\b|cheap looking|flimsy|poor quality|\bhole\b|fell apart|"
                     r"came off|\bfray|pilling|not well made|quality (?:is|was)? ?(?:just )?not|lacking quality|"
                     r"stretched out|hanging threads|misshapen|pj quality|quality was (?:very )?upsetting|"
                     r"not (?:of )?(?:that )?great (?:of )?quality|wasn't great|suspect seams"),
    ("style", POS, r"\bcute\b|beautiful|gorgeous|stylish|\bpretty\b|elegant|\bchic\b|lovely|adorable|"
                   r"love the (?:look|style|design|shape)|really neat|classic|looks great"),
    ("style", NEG, r"frumpy|sloppy|not cute|looks? nothing like|not the same as|maternity|pajama|\bpjs?\b|"
                   r"not my (?:thing|scene)|look(?:s|ed)? like a (?:big )?box|sleeves awkward"),
    ("colour", TOPIC, r"colou?rs?\b|colorway|\bpattern\b|\bprint\b|\bshade\b|\baqua\b|\bcoral\b"),
    ("value", POS, r"on sale|from the sale|sale pieces|great (?:buy|price|deal)|good price|worth (?:it|the)|"
                   r"great value|budget|watches the price|entry pieces"),
    ("value", NEG, r"over ?priced|price (?:seems|is|was) (?:too )?high|not worth|expensive|price tag|at this price"),
    ("versatility", POS, r"dress(?:ed)? (?:it )?up or down|goes with everything|versatile|coordinates well|"
                         r"pair (?:it )?with|dress it up"),
    ("compliments", POS, r"compliment"),
    ("care", NEG, r"shr[au]nk|fad(?:ed|ing)|after (?:washing|wash)|washed (?:and|it)"),
    ("care", POS, r"machine washable|washes well|easy care"),
    ("work", TOPIC, r"\boffice\b|for work|to work|business (?:setting|casual|meeting)"),
    ("special occasion", TOPIC, r"wedding|\bparty\b|\bgala\b|anniversary|special occasion|\bevent\b|dressy"),
    ("travel & summer", TOPIC, r"vacation|\bbeach\b|summer|\btravel|swim"),
    ("everyday", TOPIC, r"\bcasual\b|everyday|every day|\bstaple\b|lounge|weekend|go-to"),
    ("warmth", TOPIC, r"\bwarm\b|winter|cold weather|layering"),
    ("gift", POS, r"\bgift|\bpresent for|for my (?:niece|daughter|mother|mom|wife|sister|friend|husband)|"
                  r"bought (?:it|this|one) for (?:my|her)"),
    ("yellow gold", TOPIC, r"yellow gold|(?<!rose )(?<!white )\bgold\b"),
    ("rose gold", TOPIC, r"rose gold"),
    ("white metals", TOPIC, r"white gold|platinum|\bsilver\b"),
    ("diamonds", TOPIC, r"diamond"),
    ("pearls", TOPIC, r"pearl"),
    ("coloured stones", TOPIC, r"rub(?:y|ies)|sapphire|emerald|colou?red stone|gemstone"),
    ("craftsmanship", TOPIC, r"hand[- ]finished|heritage|bespoke|savoir|craftsmanship|artisan"),
)
INTENTS = {"work", "special occasion", "travel & summer", "everyday", "warmth", "yellow gold", "rose gold",
           "white metals", "diamonds", "pearls", "coloured stones", "craftsmanship"}
_POSITIVE = re.compile(r"\b(?:love\w*|gorgeous|beautiful|great|perfect|nice|pretty|lovely|adorable|rich|classic|"
                       r"best|favou?rite|prefers?|only wears?|always|wants?|adore\w*|eye catching|neat|cool)\b")
_NEGATIVE = re.compile(r"\b(?:not|no|never|n't|isn't|wasn't|doesn't|don't|too|ugly|disappoint\w*|wrong|awful|"
                       r"hate\w*|dull|bad|avoid\w*|dislikes?|instead of|nothing like|odd|misleading)\b|n't\b")
_NEGATION = re.compile(r"\b(?:not|no|never|without|nothing|hardly)\b|n't\b")
_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+|\s+-{2,}\s*|\s+but\s+|,\s*however,?\s*")


@dataclass(frozen=True)
class Found:
    label: str
    polarity: int
    cue: str


class RuleExtractor:
    """Motivations from cue phrases: `extract(text)` -> (positive, negative) label lists, in taxonomy order."""

    name = "rules"
    model = "lexicon v1"

    def __init__(self) -> None:
        self._cues = [(label, pol, re.compile(pattern)) for label, pol, pattern in CUES]

    def findings(self, text: str) -> list[Found]:
        """Every cue found, sentence by sentence, with the polarity it carries there."""
        out = []
        for sentence in _SENTENCES.split(str(text).lower()):
            if not sentence.strip():
                continue
            for label, pol, pattern in self._cues:
                for m in pattern.finditer(sentence):
                    negated = _NEGATION.search(sentence[max(0, m.start() - 12):m.start()])
                    polarity = pol if pol != TOPIC else self._topic_polarity(label, sentence)
                    if negated and pol != NEG:
                        polarity = NEG                     # "not comfortable", "no diamonds", "not for work"
                    if polarity:
                        out.append(Found(label, polarity, m.group(0)))
        return out

    @staticmethod
    def _topic_polarity(label: str, sentence: str) -> int:
        pos, neg = len(_POSITIVE.findall(sentence)), len(_NEGATIVE.findall(sentence))
        if pos > neg:
            return POS
        if neg > pos:
            return NEG
        return POS if label in INTENTS else 0            # "for the office": a purpose, not an opinion

    def extract(self, text: str) -> tuple[list[str], list[str]]:
        found = self.findings(text)
        positive = {f.label for f in found if f.polarity == POS}
        negative = {f.label for f in found if f.polarity == NEG}
        from vendome.motivations.taxonomy import LABELS

        return [x for x in LABELS if x in positive], [x for x in LABELS if x in negative]
