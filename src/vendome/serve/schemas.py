"""The API's request and response bodies (pydantic), so the OpenAPI document tells client developers exactly what
they send and get back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Placement = Literal["home", "email"]


class Reason(BaseModel):
    """Why a piece is shown: a short code, a sentence for people, the signals behind it."""

    code: str = Field(examples=["expert_mix", "similar_image", "bought_together", "promotion"])
    text: str = Field(examples=["mostly its look (visual 54%), close to the Serpent ring she wishlisted"])
    signals: dict[str, float] = Field(default_factory=dict)
    promotion: str | None = None


class ProductCardFacts(BaseModel):
    model_config = ConfigDict(extra="allow")

    product_id: str
    title: str | None = None
    category: str | None = None
    subcategory: str | None = None
    brand: str | None = None
    collection: str | None = None
    price: float
    price_tier: int | None = Field(None, description="price quartile within the category, 0 entry .. 3 top")
    material: str | None = None
    image_url: str | None = Field(None, description="this API's picture path for a workspace file, else the URL")


class ProductCard(ProductCardFacts):
    score: float
    reason: Reason


class ExperimentArm(BaseModel):
    name: str
    arm: str


class CustomerRecommendations(BaseModel):
    customer_id: str
    placement: str
    model: str
    version: str | None = None
    personalised: bool = Field(True, description="false when she opted out: best sellers within the rules")
    experiment: ExperimentArm | None = Field(None, description="the A/B test and arm that chose the model")
    items: list[ProductCard]


class SimilarProducts(BaseModel):
    product_id: str
    placement: Literal["product"] = "product"
    signal: str
    items: list[ProductCard]


class CartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_ids: list[str] = Field(min_length=1, max_length=50, description="the pieces in the cart")
    customer_id: str | None = Field(None, max_length=128)
    k: int = Field(10, ge=1, le=100)


class CartCompletion(BaseModel):
    cart: list[str]
    placement: Literal["cart"] = "cart"
    customer_id: str | None = None
    items: list[ProductCard]


class SearchRequest(BaseModel):
    """A composed search: words, optionally a piece to start from and the client it is for."""

    text: str = Field("", max_length=500, examples=["like this, but in rose gold, no diamonds, under 5k"])
    anchor: str | None = Field(None, min_length=1, max_length=128, description="the product_id she points at")
    customer_id: str | None = Field(None, min_length=1, max_length=128, description="her taste re-ranks")
    k: int = Field(10, ge=1, le=100)
    planner: bool = Field(False, description="answer through the planner (LLM when configured, else deterministic)")
    session_id: str | None = Field(None, max_length=64, description="a planner session: follow-ups keep its anchor, "
                                   "constraints and rejected pieces")
    reject: list[str] = Field(default_factory=list, max_length=200, description="product_ids she turned down")


class SearchConstraint(BaseModel):
    attribute: str
    op: str = Field(examples=["in", "not_in", "lt", "between"])
    value: str | float | list[str] | list[float]
    hard: bool = Field(description="hard: never violated; soft: a preference that re-ranks")
    source: str = Field("", description="the words it came from")


class SearchResults(BaseModel):
    text: str
    anchor: str | None = None
    customer_id: str | None = None
    personalised: bool = False
    delta: str = Field("", description="the change the composer read")
    constraints: list[SearchConstraint]
    planner: str | None = Field(None, description="who planned: 'deterministic', 'llm:<model>', or none (fast path)")
    session_id: str | None = None
    answer: str | None = Field(None, description="the planner's answer in words")
    items: list[ProductCard]


class WarmerStatus(BaseModel):
    running: bool
    rounds: int = Field(description="rounds finished since start (one after start-up, one per invalidation)")
    computed: int = Field(description="lists computed ahead in all")
    last_seconds: float | None = None


class ReplicaStatus(BaseModel):
    events_seq: int = Field(description="the last event-log sequence number this replica has folded in")
    erasures: int
    interval: float = Field(description="seconds between polls of the shared files (activation, rules, experiments)")
    caught_up: dict[str, int] = Field(description="changes of other replicas followed, by kind")


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    version: str | None
    products: int
    customers: int
    warmer: WarmerStatus | None = Field(None, description="the background warmer of home lists, when it runs")
    replica: ReplicaStatus | None = Field(None, description="how this replica follows the others sharing its "
                                                             "PostgreSQL store (none with the embedded store)")


class RulesText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(max_length=200_000, description="the whole guardrail file, YAML")


class RulesState(BaseModel):
    source: str
    yaml: str
    policy: dict


class Problem(BaseModel):
    detail: str | list


class EventIn(BaseModel):
    """One website event; the log assigns its id and stamps it with the time it was received."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=128)
    product_id: str = Field(min_length=1, max_length=128)
    interaction_type: str = Field(max_length=32, examples=["view", "add_to_wishlist", "add_to_cart", "purchase"])
    timestamp: datetime | None = Field(None, description="when it happened (default: when it is received)")
    session_id: str | None = Field(None, max_length=256)
    interaction_duration: float | None = Field(None, ge=0, description="seconds")
    device_type: str | None = Field(None, max_length=256)
    referrer_source: str | None = Field(None, max_length=256)


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=10_000)


class Accepted(BaseModel):
    ids: list[str] = Field(description="the interaction ids assigned, in order; committed to the store")


class Consent(BaseModel):
    customer_id: str
    opted_out: bool


class Erasure(BaseModel):
    model_config = ConfigDict(extra="allow")

    receipt: str = Field(description="salted hash standing for the erased id in the erasures table")
    model_versions_rewritten: dict[str, list[str]]


class ModelVersion(BaseModel):
    version: str
    fitted_at: str | None = None
    fit_seconds: float | None = None
    params: dict = Field(default_factory=dict)


class ModelVersions(BaseModel):
    name: str
    active: str | None
    serving: bool
    versions: list[ModelVersion]


class Activation(BaseModel):
    name: str
    active: str
    serving: bool


class CampaignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment: dict[str, list[str]] = Field(default_factory=dict, max_length=20,
                                          description="customers column -> values (all must match); empty: all",
                                          examples=[{"customer_segment": ["VIP"]}])
    placement: Placement = "email"
    k: int = Field(10, ge=1, le=100)
    format: Literal["parquet", "csv"] = "parquet"


class Campaign(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed", "interrupted"]
    segment: dict[str, list[str]]
    placement: str
    k: int
    format: str
    model: str
    version: str | None = None
    created_at: str
    finished_at: str | None = None
    done: int = Field(0, description="customers written so far")
    total: int | None = None
    customers: int | None = None
    rows: int | None = None
    skipped_no_consent: int | None = None
    not_personalised: int | None = None
    seconds: float | None = None
    error: str | None = None


class CustomerSummary(BaseModel):
    customer_id: str
    segment: str | None = None
    city: str | None = None
    country: str | None = None
    last_seen: str | None = Field(None, description="her latest event, ISO 8601 UTC")


class Tastes(BaseModel):
    categories: list[str] = Field(default_factory=list)
    subcategories: list[str] = Field(default_factory=list)
    materials: list[str] = Field(default_factory=list)
    collections: list[str] = Field(default_factory=list)
    price_range: str | None = None


class PriceBand(BaseModel):
    lowest: int = Field(description="price tier, 0 entry .. 3 top")
    highest: int


class ConsentState(BaseModel):
    personalised: bool = Field(description="false once she opted out of personalisation")
    marketing: bool | None = Field(None, description="marketing e-mails, from the CRM export")


class StatedMotivations(BaseModel):
    loves: list[str] = Field(default_factory=list, description="reasons to buy, most mentioned first")
    avoids: list[str] = Field(default_factory=list, description="reasons against")
    texts: int = Field(0, description="her reviews and notes they were read from")
    backend: str = Field("rules", description="what read them: the rule lexicon here")


class CustomerProfile(CustomerSummary):
    gender: str | None = None
    age_group: str | None = None
    stated: Tastes = Field(description="what the CRM says she prefers")
    observed: Tastes = Field(description="what her events say (weighted by behavior)")
    price_band: PriceBand | None = Field(None, description="the tiers her lists stay within (None: not enough "
                                                           "events yet)")
    behaviors: dict[str, int] = Field(default_factory=dict, description="her events by behavior")
    motivations: StatedMotivations = Field(default_factory=StatedMotivations,
                                           description="what she told us, from her reviews and her associates' notes")
    lifetime_value: float | None = None
    orders: float | None = None
    consent: ConsentState


class JourneyStep(ProductCardFacts):
    behavior: str
    at: str | None = None


class Journey(BaseModel):
    customer_id: str
    events: int = Field(description="all her events; `steps` holds the last ones")
    steps: list[JourneyStep]


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=128)
    placement: Placement = "home"
    k: int = Field(10, ge=1, le=100)
    yaml: str | None = Field(None, max_length=200_000, description="a draft guardrail file to try (not saved)")


class RulesPreview(BaseModel):
    customer_id: str
    placement: str
    with_rules: CustomerRecommendations = Field(description="under the rules in force, or the draft")
    without_rules: CustomerRecommendations = Field(description="under the shipped default rules only")


class EvaluationReport(BaseModel):
    name: str
    protocol: str | None = None
    generated_at: str | None = None
    dataset: str | None = None
    best: str | None = Field(None, description="the model with the best NDCG@10")
    html: str | None = Field(None, description="the full report with its plots")
    models: dict[str, dict[str, float | int | None]]
