"""The API's request and response bodies (pydantic), so the OpenAPI document tells client developers exactly what
they send and get back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Placement = Literal["home", "email"]


class Reason(BaseModel):
    """Why a piece is shown: a short code, a sentence for people, the signals behind it."""

    code: str = Field(examples=["expert_mix", "similar_image", "bought_together", "promotion"])
    text: str = Field(examples=["mostly its look (visual 54%), close to the Serpent ring she wishlisted"])
    signals: dict[str, float] = Field(default_factory=dict)
    promotion: str | None = None


class ProductCard(BaseModel):
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
    image_url: str | None = None
    score: float
    reason: Reason


class CustomerRecommendations(BaseModel):
    customer_id: str
    placement: str
    model: str
    version: str | None = None
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


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    version: str | None
    products: int
    customers: int


class RulesText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(max_length=200_000, description="the whole guardrail file, YAML")


class RulesState(BaseModel):
    source: str
    yaml: str
    policy: dict


class Problem(BaseModel):
    detail: str | list
