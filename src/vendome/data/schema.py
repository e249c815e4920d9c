"""The retail data contract (DESIGN §2) as data: one `TableSpec` per table, one `Column` per field.

Ingestion, the store and the public-format loaders all read these specs, so a column's kind, its rules and the
words used to explain a violation live in one place. Unknown extra columns are not listed: they are kept as
attributes, as text when they come from CSV and with their own types when they come from Parquet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONTRACT_VERSION = "1.0"

INTERACTION_TYPES = ("view", "click", "add_to_cart", "remove_from_cart", "add_to_wishlist", "purchase")
STOCK_STATUSES = ("in_stock", "low_stock", "out_of_stock", "preorder", "discontinued")
ORDER_STATUSES = ("completed", "shipped", "delivered", "processing", "pending", "cancelled", "returned", "refunded")
MODALITIES = ("image", "text")

KINDS = ("str", "int", "float", "datetime", "bool", "enum")

# Personal data (matched case-insensitively on the column name) in every table but the catalog, whose `name` is a
# product's. Hashed columns keep their name and carry a salted SHA-256 pseudonym, so a person can still be found
# (erasure) and joined across tables without the raw value being stored; dropped columns never reach the store.
PII_HASHED = frozenset({"email", "postal_code", "zip", "zip_code"})
PII_DROPPED = frozenset({"first_name", "last_name", "name", "full_name", "phone", "address", "street"})
PII_EXEMPT_TABLES = frozenset({"products", "product_embeddings"})


@dataclass(frozen=True)
class Column:
    """One contract column.

    required: the column must be present in the file; nullable: its cells may be empty.
    min_value: smallest allowed number (prices, amounts and quantities are >= 0).
    values: the allowed values of an enum (input is matched after lower-casing and turning spaces/hyphens into
    underscores; `aliases` maps common spellings onto them).
    not_future: an event time, which may not lie after the ingestion time (+1 day of clock skew).
    unix_seconds: plain numbers are accepted as unix seconds (click-stream timestamps often are).
    """

    name: str
    kind: str = "str"
    required: bool = False
    nullable: bool = True
    min_value: float | None = None
    values: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    not_future: bool = False
    unix_seconds: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "enum" and not self.values:
            raise ValueError(f"column {self.name!r}: an enum needs its allowed values")

    def expected(self) -> str:
        """What a valid cell looks like, in plain words (used in problem reports)."""
        bound = "" if self.min_value is None else f" >= {self.min_value:g}"
        if self.kind == "int":
            return f"a whole number{bound}"
        if self.kind == "float":
            return f"a number{bound}"
        if self.kind == "datetime":
            extra = " or unix seconds" if self.unix_seconds else ""
            return f"a date/time like 2024-03-01 or 2024-03-01T10:15:00Z{extra}"
        if self.kind == "bool":
            return "true or false (also yes/no, 1/0)"
        if self.kind == "enum":
            return "one of " + ", ".join(self.values)
        return "text"


@dataclass(frozen=True)
class ForeignKey:
    column: str
    table: str
    ref_column: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    primary_key: str | None = None
    foreign_keys: tuple[ForeignKey, ...] = ()
    required: bool = False

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


def _id(name: str) -> Column:
    return Column(name, "str", required=True, nullable=False)


def _amount(name: str, required: bool = False) -> Column:
    return Column(name, "float", required=required, nullable=not required, min_value=0)


def _date(name: str, required: bool = False, not_future: bool = False) -> Column:
    return Column(name, "datetime", required=required, nullable=not required, not_future=not_future)


PRODUCTS = TableSpec(
    "products",
    (
        _id("product_id"),
        Column("title", required=True, nullable=False),
        Column("description"),
        Column("category", required=True, nullable=False),
        Column("subcategory"),
        Column("brand", required=True, nullable=False),
        Column("collection"),
        _amount("price", required=True),
        _amount("sale_price"),
        Column("image_url", required=True),  # empty: no picture yet
        Column("additional_images"),
        Column("material", required=True),  # empty: unknown
        Column("color"),
        Column("gender"),
        Column("age_group"),
        Column("stone_type"),
        Column("weight"),  # free text: exports carry units ("12.5 g", "0.5 ct")
        Column("size"),
        Column("stock_status", "enum", required=True, nullable=False, values=STOCK_STATUSES,
               aliases={"available": "in_stock", "sold_out": "out_of_stock", "pre_order": "preorder"}),
        _date("created_date"),
    ),
    primary_key="product_id",
    required=True,
)

CUSTOMERS = TableSpec(
    "customers",
    (
        _id("customer_id"),
        _date("registration_date", required=True, not_future=True),
        Column("gender"),
        Column("age", "int", min_value=0),
        Column("age_group"),
        Column("location_country", required=True),
        Column("location_state"),
        Column("location_city"),
        Column("preferred_language"),
        Column("income_bracket"),
        Column("customer_segment"),
        _amount("lifetime_value"),
        Column("total_orders", "int", min_value=0),
        _amount("avg_order_value"),
        Column("preferred_categories"),
        Column("preferred_materials"),
        Column("preferred_price_range"),
        Column("marketing_consent", "bool"),
        _date("last_active_date", required=True, not_future=True),
    ),
    primary_key="customer_id",
)

ORDERS = TableSpec(
    "orders",
    (
        _id("order_id"),
        _id("customer_id"),
        _date("order_date", required=True, not_future=True),
        Column("order_status", "enum", required=True, nullable=False, values=ORDER_STATUSES,
               aliases={"canceled": "cancelled", "complete": "completed", "refund": "refunded"}),
        _amount("total_amount", required=True),
        _amount("discount_amount"),
        Column("payment_method"),
        Column("shipping_method"),
        _date("delivery_date"),  # may be an expected date, hence allowed in the future
        Column("num_items", "int", min_value=0),
        Column("is_gift", "bool"),
        Column("occasion"),
    ),
    primary_key="order_id",
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
)

ORDER_ITEMS = TableSpec(
    "order_items",
    (
        _id("order_item_id"),
        _id("order_id"),
        _id("product_id"),
        Column("quantity", "int", required=True, nullable=False, min_value=0),
        _amount("unit_price", required=True),
        _amount("discount_applied"),
        _amount("final_price"),
    ),
    primary_key="order_item_id",
    foreign_keys=(ForeignKey("order_id", "orders", "order_id"), ForeignKey("product_id", "products", "product_id")),
)

INTERACTIONS = TableSpec(
    "interactions",
    (
        _id("interaction_id"),
        _id("customer_id"),
        _id("product_id"),
        Column("interaction_type", "enum", required=True, nullable=False, values=INTERACTION_TYPES,
               aliases={"wishlist": "add_to_wishlist", "cart": "add_to_cart", "buy": "purchase",
                        "remove_cart": "remove_from_cart"}),
        Column("timestamp", "datetime", required=True, nullable=False, not_future=True, unix_seconds=True),
        Column("session_id"),
        Column("interaction_duration", "float", min_value=0),
        Column("device_type"),
        Column("referrer_source"),
    ),
    primary_key="interaction_id",
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),
                  ForeignKey("product_id", "products", "product_id")),
)

# Vectors are columns emb_0..emb_n in the file and one float32 array per row (column `vector`) once validated.
PRODUCT_EMBEDDINGS = TableSpec(
    "product_embeddings",
    (
        _id("product_id"),
        Column("modality", "enum", values=MODALITIES),
        Column("model"),
    ),
    foreign_keys=(ForeignKey("product_id", "products", "product_id"),),
)

# Texts clients wrote and notes their sales associates kept: where motivations (why she buys) are read from.
REVIEWS = TableSpec(
    "reviews",
    (
        _id("review_id"),
        _id("customer_id"),
        _id("product_id"),
        Column("text", required=True, nullable=False),
        Column("title"),
        Column("rating", "int", min_value=0),
        Column("timestamp", "datetime", required=True, nullable=False, not_future=True, unix_seconds=True),
    ),
    primary_key="review_id",
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),
                  ForeignKey("product_id", "products", "product_id")),
)

CLIENT_NOTES = TableSpec(
    "client_notes",
    (
        _id("note_id"),
        _id("customer_id"),
        Column("text", required=True, nullable=False),
        Column("author"),
        Column("timestamp", "datetime", required=True, nullable=False, not_future=True, unix_seconds=True),
    ),
    primary_key="note_id",
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
)

TABLES: dict[str, TableSpec] = {
    t.name: t for t in (PRODUCTS, CUSTOMERS, ORDERS, ORDER_ITEMS, INTERACTIONS, PRODUCT_EMBEDDINGS, REVIEWS,
                        CLIENT_NOTES)
}
TABLE_NAMES = tuple(TABLES)
EMBEDDING_PREFIX = "emb_"
