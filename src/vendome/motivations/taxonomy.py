"""The motivations Vendome knows: why a client buys a piece, or why she would not.

One closed list serves every backend, so the rule extractor, a 0.5B model and a hosted model answer in the same
words, profiles built from them can be compared and embedded, and extraction can be scored against labels. Each
motivation is a short label a sales associate reads as is ("special occasion", "rose gold"), with the one-line
meaning the LLM prompt shows. A text can carry a motivation as positive (a reason to buy: "the colour is
gorgeous"), negative (a reason against: "runs small"), or both.
"""

from __future__ import annotations

import re

MOTIVATIONS: dict[str, str] = {
    # the piece itself
    "fit": "how it fits and flatters her body: true to size, runs small or large, flattering, boxy, tight",
    "length": "where it falls on her: length of the hem or sleeves, too short, too long, petite or tall",
    "comfort": "how it feels to wear: comfortable, soft, cozy, itchy, scratchy, stiff",
    "quality": "how well it is made: fabric weight, thin or sheer, seams, buttons, durability, well made, cheap",
    "style": "the design and look: cute, beautiful, elegant, chic, unique, details, frumpy, not like the photo",
    "colour": "the colour, print or pattern",
    "value": "the price against what it is worth: on sale, a great buy, overpriced",
    "versatility": "wears many ways: dressed up or down, goes with everything, pairs with many outfits",
    "compliments": "the admiration of others: compliments, people noticed",
    "care": "washing and care: shrank, faded in the wash, dry clean only, easy care",
    # what it is for
    "work": "for the office or a business setting",
    "special occasion": "for a wedding, a party, a gala, an anniversary or another event",
    "travel & summer": "for holidays, the beach, travel or hot weather",
    "everyday": "for casual, daily wear: a staple, lounging, weekends",
    "warmth": "for cold weather: warm, layering, winter",
    "gift": "bought as a present for someone else",
    # fine jewelry and watches
    "yellow gold": "a preference for yellow gold",
    "rose gold": "a preference for rose gold",
    "white metals": "a preference for white gold, platinum or silver",
    "diamonds": "a preference for diamonds (negative: she does not want diamonds)",
    "pearls": "a preference for pearls",
    "coloured stones": "a preference for rubies, sapphires, emeralds or other coloured stones",
    "craftsmanship": "the house's savoir-faire and heritage: hand-finished, bespoke, heritage techniques",
}
LABELS: tuple[str, ...] = tuple(MOTIVATIONS)

# other words models use for a label (lower case); anything else a model says is dropped, and counted
SYNONYMS: dict[str, str] = {
    "sizing": "fit", "size": "fit", "flattering": "fit", "shape": "fit", "cut": "fit", "silhouette": "fit",
    "comfortable": "comfort", "softness": "comfort", "fabric": "quality", "material": "quality",
    "durability": "quality", "construction": "quality", "design": "style", "look": "style", "looks": "style",
    "appearance": "style", "color": "colour", "pattern": "colour", "print": "colour", "price": "value",
    "sale": "value", "versatile": "versatility", "compliment": "compliments", "washing": "care",
    "office": "work", "wedding": "special occasion", "party": "special occasion", "event": "special occasion",
    "occasion": "special occasion", "anniversary": "special occasion", "vacation": "travel & summer",
    "travel": "travel & summer", "summer": "travel & summer", "beach": "travel & summer", "casual": "everyday",
    "daily wear": "everyday", "staple": "everyday", "lounge": "everyday", "winter": "warmth",
    "cold weather": "warmth", "present": "gift", "gifting": "gift", "gold": "yellow gold",
    "white gold": "white metals", "platinum": "white metals", "silver": "white metals", "diamond": "diamonds",
    "pearl": "pearls", "gemstones": "coloured stones", "colored stones": "coloured stones",
    "craft": "craftsmanship", "heritage": "craftsmanship", "savoir-faire": "craftsmanship",
}
_SPACES = re.compile(r"[\s_\-]+")


def canonical(label: object) -> str | None:
    """The taxonomy's label for what a model wrote ("Color", "sizing", "special_occasion"), or None."""
    text = _SPACES.sub(" ", str(label).strip().lower()).strip(" .'\"")
    text = text.replace(" and ", " & ")
    if text in MOTIVATIONS:
        return text
    if text in SYNONYMS:
        return SYNONYMS[text]
    head = text.split(":")[-1].strip()       # "occasion: wedding", "metal: rose gold"
    return head if head in MOTIVATIONS else SYNONYMS.get(head)
