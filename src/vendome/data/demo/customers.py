"""Clients: demographics a CRM holds, and the hidden tastes that drive what they look at and buy.

A client's taste over categories, materials, stones, colours, motifs and techniques is a demographic prior
(gender, age group, country) plus a personal deviation, so popularity within a segment beats global popularity
while personal history still beats both. Each client also has a price tier, a visual share (how much the eye
rather than the story leads her), an activity level (long tail: a few heavy clients, many light, some cold), a
purchase propensity and a favourite collection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vendome.data.demo.vocab import CATEGORIES, COLORS, MATERIALS, MOTIFS, STONES, TECHNIQUES, TIERS

DAY = 86_400
AGE_GROUPS = ((18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"), (45, 54, "45-54"), (55, 64, "55-64"),
              (65, 200, "65+"))
INCOME = ("<50k", "50k-100k", "100k-250k", "250k-500k", "500k+")

# code: (weight, language, wealth shift, ((state, city, postal code pattern), ...))
COUNTRIES = {
    "FR": (0.17, "fr", 0.0, (("Île-de-France", "Paris", "750##"), ("Provence-Alpes-Côte d'Azur", "Nice", "06###"),
                             ("Auvergne-Rhône-Alpes", "Lyon", "690##"))),
    "US": (0.17, "en", 0.1, (("NY", "New York", "100##"), ("CA", "Los Angeles", "900##"),
                             ("CA", "San Francisco", "941##"), ("FL", "Miami", "331##"), ("TX", "Dallas", "752##"))),
    "CN": (0.13, "zh", 0.2, (("Shanghai", "Shanghai", "200###"), ("Beijing", "Beijing", "100###"),
                             ("Guangdong", "Shenzhen", "518###"), ("Zhejiang", "Hangzhou", "310###"))),
    "GB": (0.08, "en", 0.0, (("England", "London", "W1# #@@"), ("Scotland", "Edinburgh", "EH# #@@"))),
    "JP": (0.07, "ja", 0.0, (("Tokyo", "Tokyo", "1##-####"), ("Osaka", "Osaka", "5##-####"))),
    "IT": (0.05, "it", -0.1, (("Lombardy", "Milan", "201##"), ("Lazio", "Rome", "001##"))),
    "DE": (0.05, "de", -0.1, (("Bavaria", "Munich", "80###"), ("Berlin", "Berlin", "10###"),
                              ("Hesse", "Frankfurt", "60###"))),
    "AE": (0.05, "ar", 0.5, (("Dubai", "Dubai", ""), ("Abu Dhabi", "Abu Dhabi", ""))),
    "KR": (0.05, "ko", 0.0, (("Seoul", "Seoul", "0####"), ("Busan", "Busan", "4####"))),
    "CH": (0.04, "de", 0.5, (("Geneva", "Geneva", "12##"), ("Zurich", "Zurich", "80##"))),
    "HK": (0.04, "zh", 0.3, (("Hong Kong", "Hong Kong", ""),)),
    "SG": (0.03, "en", 0.3, (("Singapore", "Singapore", "0#####"),)),
    "ES": (0.03, "es", -0.2, (("Madrid", "Madrid", "280##"), ("Catalonia", "Barcelona", "080##"))),
}
NAMES = {  # language: (women, men, family names)
    "fr": (("Camille", "Louise", "Claire", "Inès", "Margaux", "Hélène"), ("Louis", "Antoine", "Hugo", "Julien"),
           ("Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Fontaine")),
    "en": (("Olivia", "Emma", "Charlotte", "Grace", "Sophia", "Amelia"), ("James", "William", "Henry", "Oliver"),
           ("Smith", "Johnson", "Taylor", "Brown", "Walker", "Clarke", "Miller")),
    "zh": (("Mei", "Xiu", "Li Na", "Ying", "Jing", "Hui"), ("Wei", "Jun", "Hao", "Ming"),
           ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang")),
    "ja": (("Yuki", "Aiko", "Haruka", "Sakura", "Emi"), ("Haruto", "Ren", "Takumi", "Kenji"),
           ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe")),
    "it": (("Giulia", "Chiara", "Francesca", "Sofia"), ("Marco", "Luca", "Matteo"),
           ("Rossi", "Russo", "Ferrari", "Esposito", "Romano")),
    "de": (("Anna", "Lena", "Katharina", "Sophie"), ("Lukas", "Maximilian", "Felix"),
           ("Müller", "Schmidt", "Schneider", "Fischer", "Weber")),
    "ar": (("Fatima", "Layla", "Mariam", "Noor"), ("Omar", "Khalid", "Rashid"),
           ("Al Mansouri", "Al Nahyan", "Haddad", "Al Suwaidi")),
    "ko": (("Ji-woo", "Seo-yeon", "Min-ji", "Ha-eun"), ("Min-jun", "Seo-jun", "Do-hyun"),
           ("Kim", "Lee", "Park", "Choi", "Jung")),
    "es": (("Lucía", "Carmen", "Elena", "Paula"), ("Javier", "Alejandro", "Pablo"),
           ("García", "Fernández", "López", "Martínez")),
}
DOMAINS = ("example.com", "example.org", "example.net", "mail.example")

# Demographic priors (documented in truth.json): offsets added to every client's personal taste.
GENDER_CATEGORY = {"female": (0.8, -0.6, 0.5, 0.4, 0.0, 0.0), "male": (-0.6, 1.3, 0.3, 0.0, 0.2, -0.1),
                   "unspecified": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)}
YOUNG, OLD = ("18-24", "25-34"), ("55-64", "65+")
AGE_MATERIAL = {
    "young": {"silver": 0.9, "rose gold": 0.5, "canvas": 0.7, "cotton": 0.4, "steel": 0.4, "platinum": -0.5,
              "crocodile": -0.6},
    "old": {"platinum": 0.6, "yellow gold": 0.6, "crocodile": 0.5, "cashmere": 0.4, "silver": -0.7, "canvas": -0.7},
}
AGE_CATEGORY = {"young": (0.0, -0.2, 0.0, 0.1, 0.4, 0.3), "old": (0.3, 0.3, 0.0, 0.0, -0.3, -0.1)}
AGE_TECHNIQUE = {"young": {"responsible": 0.6, "precision": 0.3}, "old": {"heritage": 0.6, "hand-finished": 0.3}}
COUNTRY_MATERIAL = {"CN": {"rose gold": 0.6, "yellow gold": 0.5}, "HK": {"rose gold": 0.5, "yellow gold": 0.5},
                    "JP": {"white gold": 0.5, "platinum": 0.4, "silver": 0.3}, "KR": {"white gold": 0.4, "silver": 0.4},
                    "AE": {"yellow gold": 0.8, "crocodile": 0.4}, "IT": {"lambskin": 0.4}, "FR": {"tweed": 0.3}}
COUNTRY_STONE = {"CN": {"ruby": 0.6}, "HK": {"ruby": 0.4, "diamond": 0.3}, "JP": {"pearl": 0.7},
                 "AE": {"emerald": 0.6, "diamond": 0.4}, "FR": {"sapphire": 0.3}, "CH": {"sapphire": 0.3},
                 "US": {"diamond": 0.5}, "GB": {"pearl": 0.3}}
TIER_SHARES = (0.36, 0.36, 0.20)  # entry, core, high; the rest (8%) haute


@dataclass
class Tastes:
    """Hidden per-client preferences (rows follow the client table)."""

    category: np.ndarray    # (n, n_categories)
    material: np.ndarray    # (n, n_materials)
    stone: np.ndarray
    color: np.ndarray
    motif: np.ndarray       # visual-only attribute
    technique: np.ndarray   # text-only attribute
    tier: np.ndarray        # int 0..3
    visual_share: np.ndarray
    activity: np.ndarray    # expected sessions over a full year
    propensity: np.ndarray  # chance that a session ends with a purchase
    fav_collection: np.ndarray  # collection index

    def table(self) -> pd.DataFrame:
        """Flat per-client truth columns (taste vectors spelled out by attribute value)."""
        cols: dict[str, np.ndarray] = {
            "tier": self.tier, "tier_name": np.array([TIERS[t] for t in self.tier]),
            "visual_share": np.round(self.visual_share, 4), "activity": np.round(self.activity, 4),
            "propensity": np.round(self.propensity, 4), "fav_collection_idx": self.fav_collection,
        }
        for name, vocab, m in (("category", CATEGORIES, self.category), ("material", MATERIALS, self.material),
                               ("stone", STONES, self.stone), ("color", COLORS, self.color),
                               ("motif", MOTIFS, self.motif), ("technique", TECHNIQUES, self.technique)):
            cols[f"fav_{name}"] = np.array([vocab[i] for i in m.argmax(1)])
            for j, v in enumerate(vocab):
                cols[f"taste_{name}_{v.replace(' ', '_')}"] = np.round(m[:, j], 4)
        return pd.DataFrame(cols)


def _age_band(age: np.ndarray) -> np.ndarray:
    return np.array([next(g for lo, hi, g in AGE_GROUPS if lo <= a <= hi) for a in age])


def _offsets(vocab: tuple[str, ...], table: dict[str, float]) -> np.ndarray:
    return np.array([table.get(v, 0.0) for v in vocab])


def build_customers(rng: np.random.Generator, n: int, collections: pd.DataFrame, start: int, end: int
                    ) -> tuple[pd.DataFrame, Tastes, dict]:
    """Client demographics and PII, hidden tastes, and the per-country offsets drawn for this seed."""
    codes = list(COUNTRIES)
    w = np.array([COUNTRIES[c][0] for c in codes])
    country = np.array(codes)[rng.choice(len(codes), size=n, p=w / w.sum())]
    gender = np.array(["female", "male", "unspecified"])[rng.choice(3, size=n, p=[0.72, 0.26, 0.02])]
    age = np.clip(np.round(rng.normal(41, 12, n)), 18, 84).astype(int)
    band = _age_band(age)
    young, old = np.isin(band, YOUNG), np.isin(band, OLD)

    wealth = rng.normal(0, 1, n) + 0.025 * (age - 41) + np.array([COUNTRIES[c][2] for c in country])
    cut = np.quantile(wealth, np.cumsum(TIER_SHARES))
    tier = np.searchsorted(cut, wealth).astype(int)
    income = np.clip(np.round(1.6 + wealth + rng.normal(0, 0.6, n)), 0, len(INCOME) - 1).astype(int)

    country_color = {c: rng.normal(0, 0.6, len(COLORS)) for c in codes}
    country_motif = {c: rng.normal(0, 0.5, len(MOTIFS)) for c in codes}

    def prior(vocab, by_age, by_country=None):
        out = np.zeros((n, len(vocab)))
        out[young] += _offsets(vocab, by_age["young"])
        out[old] += _offsets(vocab, by_age["old"])
        if by_country is not None:
            for c in codes:
                out[country == c] += _offsets(vocab, by_country.get(c, {}))
        return out

    cat = np.array([GENDER_CATEGORY[g] for g in gender]) + rng.normal(0, 0.8, (n, len(CATEGORIES)))
    cat[young] += AGE_CATEGORY["young"]
    cat[old] += AGE_CATEGORY["old"]
    tastes = Tastes(
        category=cat,
        material=prior(MATERIALS, AGE_MATERIAL, COUNTRY_MATERIAL) + rng.normal(0, 0.8, (n, len(MATERIALS))),
        stone=prior(STONES, {"young": {"onyx": 0.5, "none": 0.3}, "old": {"pearl": 0.5, "diamond": 0.3}},
                    COUNTRY_STONE) + rng.normal(0, 0.8, (n, len(STONES))),
        color=np.array([country_color[c] for c in country]) + rng.normal(0, 0.8, (n, len(COLORS))),
        motif=np.array([country_motif[c] for c in country]) + rng.normal(0, 1.0, (n, len(MOTIFS))),
        technique=prior(TECHNIQUES, AGE_TECHNIQUE) + rng.normal(0, 1.0, (n, len(TECHNIQUES))),
        tier=tier,
        visual_share=rng.beta(0.7, 0.7, n),
        activity=np.where(rng.random(n) < 0.08, 0.0, rng.lognormal(1.32, 0.95, n)),
        propensity=rng.beta(1.6, 6.0, n) * (1 + 0.15 * tier),
        fav_collection=np.zeros(n, dtype=int),
    )
    main_cat = collections["main_cat"].to_numpy()
    logw = np.log(collections["weight"].to_numpy())
    for u in range(n):
        z = cat[u, main_cat] + logw
        p = np.exp(z - z.max())
        tastes.fav_collection[u] = int(rng.choice(len(p), p=p / p.sum()))

    # Registration: most clients predate the window; about a fifth join during it.
    joined = rng.random(n) < 0.2
    old_reg = int(pd.Timestamp("2012-01-01", tz="UTC").timestamp())
    reg = np.where(joined, start + (rng.random(n) * (end - start - 5 * DAY)).astype(np.int64),
                   old_reg + (rng.random(n) * (start - old_reg)).astype(np.int64))
    reg = reg - reg % DAY

    lang = [COUNTRIES[c][1] for c in country]
    first, last, email, postal, state, city = [], [], [], [], [], []
    for u in range(n):
        women, men, fam = NAMES[lang[u]]
        pool = men if gender[u] == "male" else women if gender[u] == "female" else women + men
        f = pool[int(rng.integers(len(pool)))]
        la = fam[int(rng.integers(len(fam)))]
        first.append(f)
        last.append(la)
        handle = f"{f}.{la}".lower().replace(" ", "").replace("'", "")
        email.append(f"{handle}{int(rng.integers(1, 999))}@{DOMAINS[int(rng.integers(len(DOMAINS)))]}")
        places = COUNTRIES[country[u]][3]
        st, ci, pattern = places[int(rng.integers(len(places)))]
        state.append(st)
        city.append(ci)
        postal.append("".join(str(int(rng.integers(10))) if ch == "#" else chr(65 + int(rng.integers(26)))
                              if ch == "@" else ch for ch in pattern))
    frame = pd.DataFrame({
        "customer_id": [f"C{u + 1:06d}" for u in range(n)],
        "registration": reg,
        "gender": gender, "age": age, "age_group": band, "location_country": country,
        "location_state": state, "location_city": city,
        "preferred_language": [("en" if rng.random() < 0.35 and la != "en" else la) for la in lang],
        "income_bracket": [INCOME[i] for i in income],
        "marketing_consent": rng.random(n) < 0.66,
        "email": email, "first_name": first, "last_name": last, "postal_code": postal,
    })
    priors = {"country_color": {c: np.round(v, 4).tolist() for c, v in country_color.items()},
              "country_motif": {c: np.round(v, 4).tolist() for c, v in country_motif.items()}}
    return frame, tastes, priors
