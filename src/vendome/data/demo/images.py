"""Product pictures drawn with PIL: the silhouette says the subcategory, colours say material, colour and stone,
and a surface pattern shows the motif, which the copy never names.

Pictures are small (128 x 128) so the full catalog renders in seconds, yet carry real visual signal for an image
encoder. Drawing is deterministic: the only randomness is a per-product jitter of size and position from the seed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from vendome.data.demo.vocab import RGB

SIZE = 128
BACKGROUND = (244, 241, 236)
STRAP = {"black": (30, 30, 34), "brown": (96, 60, 36)}


def _shade(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    """Darker (f < 1) or lighter (f > 1) version of a colour, towards black or white."""
    if f < 1:
        return tuple(int(c * f) for c in rgb)
    return tuple(int(c + (255 - c) * (f - 1)) for c in rgb)


def _contrast(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return _shade(rgb, 0.55) if sum(rgb) > 300 else _shade(rgb, 1.55)


def _ink(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Near-black on a light surface, near-white on a dark one: the motif must survive any colour."""
    return (18, 18, 22) if 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 110 else (250, 250, 246)


@lru_cache(maxsize=512)
def _pattern(motif: str, base: tuple[int, int, int], ink: tuple[int, int, int]) -> Image.Image:
    """A full-canvas fill of the base colour with the motif drawn large and bold in the ink colour.

    Coarse, thick strokes on purpose: an ImageNet encoder sees the picture upscaled from 128 px, and a fine
    hairline pattern would vanish behind the silhouette and the colour, leaving the motif invisible to it.
    """
    img = Image.new("RGB", (SIZE, SIZE), base)
    d = ImageDraw.Draw(img)
    if motif == "stripes":
        for x in range(-SIZE, SIZE, 16):
            d.line([(x, 0), (x + SIZE, SIZE)], fill=ink, width=6)
    elif motif == "quilting":
        for x in range(-SIZE, 2 * SIZE, 20):
            d.line([(x, 0), (x + SIZE, SIZE)], fill=ink, width=3)
            d.line([(x, 0), (x - SIZE, SIZE)], fill=ink, width=3)
    elif motif == "dots":
        for y in range(5, SIZE, 14):
            for x in range(5 + (y // 14 % 2) * 7, SIZE, 14):
                d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=ink)
    elif motif == "chevrons":
        for y in range(-24, SIZE + 24, 16):
            pts = [(x, y + (8 if (x // 16) % 2 else 0)) for x in range(0, SIZE + 16, 16)]
            d.line(pts, fill=ink, width=5)
    return img


def _stone(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, stone: str) -> None:
    if stone == "none":
        return
    col = RGB[stone]
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col, outline=_shade(col, 0.6), width=1)
    hr = max(1.0, r / 3)
    d.ellipse([cx - r / 2 - hr, cy - r / 2 - hr, cx - r / 2 + hr, cy - r / 2 + hr], fill=(255, 255, 255))


def render(subcategory: str, material: str, color: str, stone: str, motif: str,
           rng: np.random.Generator) -> Image.Image:
    """One product picture; the main surface carries the motif pattern."""
    s = float(rng.uniform(0.9, 1.08))
    ox, oy = (float(v) for v in rng.uniform(-4, 4, 2))
    c = SIZE / 2

    def P(x: float, y: float) -> tuple[float, float]:  # noqa: N802 - a point on the jittered canvas
        return (c + (x - c) * s + ox, c + (y - c) * s + oy)

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [*P(x0, y0), *P(x1, y1)]

    metal = RGB.get(material) if material in RGB else None
    body = RGB[color] if metal is None or subcategory in ("dress watch", "chronograph", "diver",
                                                          "jewelry watch") else metal
    img = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    mask = Image.new("L", (SIZE, SIZE), 0)
    m = ImageDraw.Draw(mask)
    extras: list = []  # drawn on top of the patterned surface

    if subcategory == "ring":
        m.ellipse(box(22, 34, 106, 118), fill=255)
        m.ellipse(box(46, 58, 82, 94), fill=0)
        extras.append(lambda d: _stone(d, *P(64, 38), 13 * s, stone))
    elif subcategory == "necklace":
        m.arc(box(20, -30, 108, 80), 20, 160, fill=255, width=5)
        m.ellipse(box(30, 50, 98, 122), fill=255)
        extras.append(lambda d: _stone(d, *P(64, 86), 11 * s, stone))
    elif subcategory == "earrings":
        for x0 in (14, 70):
            m.ellipse(box(x0 - 6, 30, x0 + 50, 110), fill=255)
            m.ellipse(box(x0 + 14, 58, x0 + 30, 82), fill=0)
            extras.append(lambda d, x0=x0: _stone(d, *P(x0 + 22, 100), 8 * s, stone))
    elif subcategory == "bracelet":
        m.ellipse(box(8, 28, 120, 108), fill=255)
        m.ellipse(box(38, 56, 90, 80), fill=0)
        for x in (36, 64, 92):
            extras.append(lambda d, x=x: _stone(d, *P(x, 40 if x == 64 else 46), 6 * s, stone))
    elif subcategory in ("dress watch", "chronograph", "diver", "jewelry watch"):
        case = RGB[material]
        strap = case if subcategory in ("diver", "jewelry watch") else STRAP["black" if rng.random() < 0.5
                                                                             else "brown"]
        big = 34 if subcategory in ("chronograph", "diver") else 28

        def watch(d: ImageDraw.ImageDraw) -> None:
            d.rectangle(box(50, 4, 78, 40), fill=strap)
            d.rectangle(box(50, 88, 78, 124), fill=strap)
            d.ellipse(box(64 - big - 6, 64 - big - 6, 64 + big + 6, 64 + big + 6), fill=case,
                      outline=_shade(case, 0.6), width=2)
        extras.insert(0, watch)
        m.ellipse(box(64 - big, 64 - big, 64 + big, 64 + big), fill=255)

        def hands(d: ImageDraw.ImageDraw) -> None:
            ink = _contrast(body)
            d.line([P(64, 64), P(64, 64 - big * 0.8)], fill=ink, width=3)
            d.line([P(64, 64), P(64 + big * 0.55, 64 + 6)], fill=ink, width=3)
            if subcategory == "chronograph":
                for dx in (-14, 14):
                    d.ellipse(box(64 + dx - 6, 72, 64 + dx + 6, 84), outline=ink, width=2)
            if stone != "none":
                for a in np.linspace(0, 2 * np.pi, 12, endpoint=False):
                    x, y = P(64 + (big + 3) * np.cos(a), 64 + (big + 3) * np.sin(a))
                    d.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=RGB[stone])
        extras.append(hands)
    elif subcategory in ("handbag", "tote", "clutch"):
        if subcategory == "clutch":
            m.rounded_rectangle(box(14, 46, 114, 100), radius=8, fill=255)
        else:
            top = 44 if subcategory == "handbag" else 36
            m.polygon([P(30, top), P(98, top), P(112, 112), P(16, 112)], fill=255)
        handle = _shade(body, 0.6)

        def bag(d: ImageDraw.ImageDraw) -> None:
            if subcategory == "handbag":
                d.arc(box(40, 14, 88, 74), 180, 360, fill=handle, width=6)
            elif subcategory == "tote":
                for x0 in (28, 62):
                    d.arc(box(x0, 10, x0 + 38, 62), 180, 360, fill=handle, width=5)
            d.rectangle(box(58, 60, 70, 70), fill=RGB["gold"])
        extras.append(bag)
    elif subcategory == "wallet":
        m.rounded_rectangle(box(14, 34, 114, 96), radius=6, fill=255)
        extras.append(lambda d: d.line([P(14, 58), P(114, 58)], fill=_shade(body, 0.6), width=2))
        extras.append(lambda d: d.ellipse(box(60, 54, 68, 62), fill=RGB["gold"]))
    elif subcategory == "belt":
        m.rectangle(box(4, 52, 124, 76), fill=255)
        extras.append(lambda d: d.rectangle(box(40, 46, 64, 82), outline=RGB["gold"], width=4))
    elif subcategory == "dress":
        m.polygon([P(50, 8), P(78, 8), P(84, 44), P(108, 122), P(20, 122), P(44, 44)], fill=255)
    elif subcategory == "coat":
        m.polygon([P(40, 8), P(88, 8), P(116, 30), P(116, 80), P(100, 80), P(100, 122), P(28, 122), P(28, 80),
                   P(12, 80), P(12, 30)], fill=255)
        extras.append(lambda d: d.line([P(64, 10), P(64, 122)], fill=_contrast(body), width=2))
    elif subcategory in ("blouse", "knitwear"):
        m.polygon([P(40, 16), P(88, 16), P(120, 40), P(108, 60), P(92, 50), P(92, 112), P(36, 112), P(36, 50),
                   P(20, 60), P(8, 40)], fill=255)
    elif subcategory in ("pumps", "loafers", "sneakers", "boots"):
        if subcategory == "pumps":
            m.polygon([P(10, 96), P(30, 70), P(70, 84), P(104, 52), P(118, 56), P(114, 70), P(108, 100), P(10, 100)],
                      fill=255)
            extras.append(lambda d: d.rectangle(box(104, 70, 112, 114), fill=_shade(body, 0.5)))
        elif subcategory == "boots":
            m.polygon([P(12, 108), P(20, 80), P(60, 72), P(66, 18), P(108, 18), P(112, 108)], fill=255)
        else:
            m.polygon([P(8, 100), P(18, 72), P(56, 62), P(88, 44), P(118, 50), P(120, 100)], fill=255)
            if subcategory == "sneakers":
                extras.append(lambda d: d.rectangle(box(8, 96, 120, 108), fill=RGB["white"]))
        if subcategory != "sneakers":
            extras.append(lambda d: d.rectangle(box(8, 100, 120, 106), fill=_shade(body, 0.4)))
    elif subcategory == "scarf":
        m.polygon([P(64, 6), P(122, 64), P(64, 122), P(6, 64)], fill=255)
        extras.append(lambda d: d.polygon([P(64, 14), P(114, 64), P(64, 114), P(14, 64)],
                                          outline=_contrast(body), width=2))
    elif subcategory == "sunglasses":
        for x0 in (10, 70):
            m.ellipse(box(x0, 40, x0 + 48, 84), fill=255)
        lens = _shade(RGB[color], 0.35)
        extras.append(lambda d: [d.ellipse(box(x0 + 7, 47, x0 + 41, 77), fill=lens) for x0 in (10, 70)])
        extras.append(lambda d: d.line([P(56, 56), P(72, 56)], fill=_shade(body, 0.6), width=4))
    else:
        raise ValueError(f"no drawing for subcategory {subcategory!r}")

    d = ImageDraw.Draw(img)
    if subcategory in ("dress watch", "chronograph", "diver", "jewelry watch"):
        extras.pop(0)(d)  # case and strap under the dial
    fill = _pattern(motif, body, _ink(body))
    img.paste(fill, (0, 0), mask)
    for draw in extras:
        draw(d)
    return img


def write_images(items: pd.DataFrame, folder: Path, rng: np.random.Generator, progress: bool = True) -> None:
    """Render and save `folder/<product_id>.png` for every product."""
    from tqdm.auto import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    rows = zip(items["product_id"], items["subcategory"], items["material"], items["color"], items["stone_type"],
               items["motif"], strict=True)
    for pid, sub, mat, col, stone, motif in tqdm(rows, total=len(items), desc="images", disable=not progress):
        render(sub, mat, col, stone, motif, rng).save(folder / f"{pid}.png", compress_level=3)
