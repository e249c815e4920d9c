"""The merchandiser's guardrail file: a YAML document, its schema, and loading that never lets a bad file in.

    policy = load_policy("rules.yaml")          # PolicyError listing every problem, with file, line and field
    save_policy("rules.yaml", text, catalog)    # validated against the schema and the catalog, then swapped in

The schema is strict (unknown keys are errors, so a typo such as `exclud:` is caught instead of silently ignored)
and every problem names the YAML line, the dotted field path and what was expected. Values that must exist in the
catalog (categories, brands, collections) are checked when the policy is compiled against a catalog
(`vendome.rules.guard.Guard`), because the same file may serve several catalogs.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_RULES = Path(__file__).with_name("default.yaml")
DEMO_RULES = Path(__file__).with_name("demo_boutique.yaml")   # Maison Aurèle, written by `vendome demo`
PLACEMENTS = ("home", "product", "cart", "email")
_DAY = re.compile(r"^(\d{4}-)?\d{2}-\d{2}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Products matched by catalog attributes: every listed column must hold one of its values (AND over columns,
    OR within a column). `{category: [Jewelry], brand: [Rive by Aurèle]}` is the diffusion line's jewelry."""

    category: list[str] = Field(default_factory=list)
    subcategory: list[str] = Field(default_factory=list)
    brand: list[str] = Field(default_factory=list)
    collection: list[str] = Field(default_factory=list)
    material: list[str] = Field(default_factory=list)

    def columns(self) -> dict[str, list[str]]:
        return {c: v for c, v in self.model_dump().items() if v}

    def is_empty(self) -> bool:
        return not self.columns()


class Placement(_Strict):
    """Where a list is shown. `exclude` never appears there; `complementary` (the cart's "complete the look")
    leaves out the subcategories already in the anchors, so the list completes the cart instead of repeating it."""

    exclude: Match = Field(default_factory=Match)
    complementary: bool = False
    max_k: int = Field(50, ge=1, le=500)


class Repurchase(_Strict):
    """What a client already bought: excluded, except in the categories she rebuys (fragrance, not a ring)."""

    exclude_purchased: bool = True
    allow: Match = Field(default_factory=Match)


class PriceBand(_Strict):
    """Stay within a band of price tiers (quartiles of price within the category) around those of the pieces she
    engaged with: `below` tiers under her lowest, `above` over her highest. Clients with fewer than `min_events`
    such events get no band (nothing to stay close to)."""

    enabled: bool = True
    below: int = Field(1, ge=0, le=3)
    above: int = Field(1, ge=0, le=3)
    behaviors: list[Literal["view", "click", "add_to_cart", "add_to_wishlist", "purchase"]] = Field(
        default_factory=lambda: ["purchase", "add_to_wishlist", "add_to_cart"])
    min_events: int = Field(1, ge=1)


class Boundaries(_Strict):
    """Lines that must never share a list, nor appear beside the anchor of a product or cart page: groups of
    values of one catalog attribute (brand or collection), and the pairs of groups kept apart."""

    attribute: Literal["brand", "collection"] = "brand"
    groups: dict[str, list[str]] = Field(default_factory=dict)
    never_together: list[tuple[str, str]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_groups(self) -> Boundaries:
        for a, b in self.never_together:
            for g in (a, b):
                if g not in self.groups:
                    raise ValueError(f"never_together names group {g!r}, which is not under groups "
                                     f"(have: {', '.join(self.groups) or 'none'})")
        seen: dict[str, str] = {}
        for g, values in self.groups.items():
            for v in values:
                if v in seen:
                    raise ValueError(f"{v!r} is in both group {seen[v]!r} and group {g!r}: a value has one group")
                seen[v] = g
        return self


class Season(_Strict):
    """Pieces matched by `match` are shown only between `start` and `end` (inclusive). "MM-DD" repeats every year
    (and may wrap over the new year: 11-15 to 01-10); "YYYY-MM-DD" is one window."""

    match: Match
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _day(cls, v: str) -> str:
        if not _DAY.match(v):
            raise ValueError(f"expected a day as MM-DD (every year) or YYYY-MM-DD, got {v!r}")
        try:
            date.fromisoformat(v if len(v) == 10 else f"2000-{v}")   # 2000 is a leap year: 02-29 is valid
        except ValueError as exc:
            raise ValueError(f"not a calendar day: {v!r} ({exc})") from None
        return v

    @model_validator(mode="after")
    def _same_kind(self) -> Season:
        if len(self.start) != len(self.end):
            raise ValueError("start and end must both be MM-DD or both be YYYY-MM-DD")
        if len(self.start) == 10 and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        if self.match.is_empty():
            raise ValueError("match names no attribute: a season must say which pieces it holds")
        return self


class Promotion(_Strict):
    """A share of the slots of some placements reserved for matched pieces (a new collection in 20% of slots),
    filled with the best-scored eligible ones; slots they cannot fill go back to the organic ranking."""

    name: str
    match: Match
    share: float = Field(gt=0.0, le=1.0)
    placements: list[Literal["home", "product", "cart", "email"]] = Field(default_factory=lambda: ["home"])
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _valid(self) -> Promotion:
        if self.match.is_empty():
            raise ValueError("match names no attribute: a promotion must say which pieces it pushes")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class Diversity(_Strict):
    """Maximal marginal relevance: each next slot maximises (1 - strength) x relevance - strength x its highest
    similarity to the pieces already placed. 0 keeps the model's order."""

    strength: float = Field(0.0, ge=0.0, le=1.0)
    similarity: Literal["attributes", "image", "text"] = "attributes"
    candidates: int = Field(200, ge=10, le=5000)


class Policy(_Strict):
    """The whole guardrail file."""

    version: Literal[1] = 1
    in_stock_only: bool = True
    launched_only: bool = True
    repurchase: Repurchase = Field(default_factory=Repurchase)
    price_band: PriceBand = Field(default_factory=lambda: PriceBand(enabled=False))
    boundaries: Boundaries = Field(default_factory=Boundaries)
    placements: dict[Literal["home", "product", "cart", "email"], Placement] = Field(
        default_factory=lambda: {p: Placement(complementary=p == "cart") for p in PLACEMENTS})
    seasons: list[Season] = Field(default_factory=list)
    promotions: list[Promotion] = Field(default_factory=list)
    diversity: Diversity = Field(default_factory=Diversity)

    def placement(self, name: str) -> Placement:
        if name not in PLACEMENTS:
            raise ValueError(f"unknown placement {name!r}; valid: {', '.join(PLACEMENTS)}")
        return self.placements.get(name, Placement(complementary=name == "cart"))


class PolicyError(ValueError):
    """Every problem of a guardrail file, each with its line, field and what was expected."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        super().__init__(f"{source}: {len(problems)} problem(s) in the guardrail file:\n"
                         + "\n".join(f"  - {p}" for p in problems))


def parse_policy(text: str, source: str = "<rules>") -> Policy:
    """The Policy in a YAML text, or a PolicyError naming each problem's line and field."""
    root, raw, problem = read_yaml_mapping(text, "a mapping of settings (version, placements, ...)")
    if problem:
        raise PolicyError(source, [problem])
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "tagged-")))]
            field = ".".join(str(p) for p in path) or "(top level)"
            value = f", got {err['input']!r}" if "input" in err and not isinstance(err["input"], dict) else ""
            problems.append(f"line {_line_of(root, path)}: {field}: {_plain(err['msg'])}{value}")
        raise PolicyError(source, problems) from None


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy in `path` (None: the shipped default, which is what evaluation and a fresh service use)."""
    path = Path(path) if path is not None else DEFAULT_RULES
    if not path.is_file():
        raise PolicyError(str(path), ["file not found (expected a YAML guardrail file)"])
    return parse_policy(path.read_text(encoding="utf-8"), str(path))


def save_policy(path: str | Path, text: str, check: Callable[[Policy], object] | None = None) -> Policy:
    """Validate `text` (and run `check(policy)`, e.g. compiling it against the catalog), then replace `path`
    atomically. On any problem the file on disk is left exactly as it was."""
    path = Path(path)
    policy = parse_policy(text, str(path))
    if check is not None:
        check(policy)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return policy


class TextDates(yaml.SafeLoader):
    """YAML's safe loader with dates left as text: the schema then parses them, so an impossible day such as
    2026-02-30 is reported with its line and field instead of escaping as a bare ValueError from the YAML layer."""


TextDates.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def read_yaml_mapping(text: str, expected: str) -> tuple[yaml.Node | None, dict, str | None]:
    """(node tree for line numbers, the mapping, None) of a YAML text, or a problem naming the line when it is not
    valid YAML or not a mapping (shared by every configuration file of the project)."""
    try:
        root = yaml.compose(text)
        raw = yaml.load(text, Loader=TextDates)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return None, {}, f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return root, {}, f"line 1: expected {expected}, got {type(raw).__name__}"
    return root, raw, None


def line_of(node: yaml.Node | None, path: list) -> int:
    """1-based line of the deepest YAML node the error path reaches (the field itself when it exists)."""
    return _line_of(node, path)


def _plain(msg: str) -> str:
    return msg.removeprefix("Value error, ").replace("Extra inputs are not permitted",
                                                     "unknown setting (a typo? see the shipped default.yaml)")


def _line_of(node: yaml.Node | None, path: list) -> int:
    """1-based line of the deepest YAML node the error path reaches (the field itself when it exists)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for key in path:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == str(key)), None)
            if found is None:
                break
            line = next(k for k, v in node.value if v is found).start_mark.line + 1
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line
