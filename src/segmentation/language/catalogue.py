"""The field catalogue: every field a condition may name, its type and where it lives.

Table-driven on purpose: an `Entity` is a staging model plus its typed columns, so the same
operators can later run over other entities' own fields (deals, tickets, ...). A field name
from YAML is only ever used as a key into this table; SQL gets the catalogue's column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from segmentation.language.rfm import RFM_SEGMENTS
from segmentation.language.suggest import did_you_mean


class FieldType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"
    ARRAY = "array"  # text[]


# Types a custom field (a key of the custom_fields jsonb) may be declared as.
CUSTOM_TYPES = (
    FieldType.STRING,
    FieldType.NUMBER,
    FieldType.DATE,
    FieldType.BOOLEAN,
    FieldType.ARRAY,
)
CUSTOM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Field:
    name: str  # as written in YAML: loyalty_points, company.industry, custom.vip_level
    entity: str  # key into ENTITIES
    column: str  # column of the entity's staging model
    type: FieldType
    json_key: str | None = None  # custom.*: the key inside the jsonb column
    description: str = ""
    # A closed set of values (rfm.segment): eq/neq/in/not_in values must be among them.
    values: tuple[str, ...] | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "entity": self.entity,
            "column": self.column,
            "type": str(self.type),
        }
        if self.json_key is not None:
            out["json_key"] = self.json_key
        return out


@dataclass(frozen=True)
class Entity:
    name: str
    model: str  # the staging model holding the rows
    prefix: str  # how its fields are written in YAML ("" for the contact itself)
    columns: dict[str, tuple[FieldType, str]]  # YAML name (after prefix) -> (type, description)
    custom_column: str | None = None  # jsonb column exposed as `custom.<key>`
    # YAML name -> the model's column, where they differ (rfm.segment -> rfm_segment)
    column_names: dict[str, str] = field(default_factory=dict)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)  # YAML name -> closed set
    fields: dict[str, Field] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        built = {
            f"{self.prefix}{name}": Field(
                f"{self.prefix}{name}",
                self.name,
                self.column_names.get(name, name),
                t,
                None,
                d,
                self.values.get(name),
            )
            for name, (t, d) in self.columns.items()
        }
        object.__setattr__(self, "fields", built)


S, N, D, T, B, A = (
    FieldType.STRING,
    FieldType.NUMBER,
    FieldType.DATE,
    FieldType.TIMESTAMP,
    FieldType.BOOLEAN,
    FieldType.ARRAY,
)

CONTACT = Entity(
    name="contact",
    model="stg_crm__contacts",
    prefix="",
    custom_column="custom_fields",
    columns={
        "contact_id": (S, "CRM contact id"),
        "full_name": (S, "full name"),
        "email": (S, "lower-cased email; unset when not a valid address"),
        "phone": (S, "E.164 phone like +6281234567890; unset when not normalisable"),
        "gender": (S, "picklist, lower snake_case"),
        "date_of_birth": (D, "birth date"),
        "job_title": (S, "job title"),
        "city": (S, "city, initcap ('Jakarta Selatan')"),
        "province": (S, "province, initcap"),
        "country": (S, "ISO 3166-1 alpha-2 code ('ID')"),
        "lifecycle_stage": (S, "picklist, lower snake_case ('customer')"),
        "lead_source": (S, "picklist, lower snake_case"),
        "owner_user_id": (S, "owning user id"),
        "tags": (A, "tags, lower-cased and trimmed; never unset (empty list)"),
        "consent_whatsapp": (B, "WhatsApp consent; unknown = false"),
        "consent_email": (B, "email consent; unknown = false"),
        "consent_sms": (B, "SMS consent; unknown = false"),
        "consent_updated_at": (T, "when consent last changed"),
        "loyalty_tier": (S, "picklist, lower snake_case ('gold')"),
        "loyalty_points": (N, "loyalty points"),
        "created_at": (T, "when the contact was created"),
        "created_by": (S, "user who created the contact"),
        "updated_at": (T, "when the contact was last updated"),
        "updated_by": (S, "user who last updated the contact"),
    },
)

COMPANY = Entity(
    name="company",
    model="stg_crm__companies",
    prefix="company.",
    columns={
        "company_id": (S, "primary company id"),
        "company_name": (S, "primary company name"),
        "industry": (S, "picklist, lower snake_case"),
        "employee_count": (N, "employees"),
        "annual_revenue": (N, "annual revenue"),
        "city": (S, "city, initcap"),
        "country": (S, "ISO 3166-1 alpha-2 code"),
        "created_at": (T, "when the company was created"),
        "updated_at": (T, "when the company was last updated"),
    },
)

# The contact's RFM scores for the run's as-of date (dbt model rfm_scores; docs/analytics.md).
RFM = Entity(
    name="rfm",
    model="rfm_scores",
    prefix="rfm.",
    columns={
        "segment": (S, "named RFM segment ('champions', ...; 'no_orders' without an order)"),
        "r_score": (N, "recency quintile in the account, 1-5 (5 = most recent)"),
        "f_score": (N, "frequency quintile in the account, 1-5 (5 = most orders)"),
        "m_score": (N, "monetary quintile in the account, 1-5 (5 = most spent)"),
        "recency_days": (N, "days since the last completed order; unset without one"),
        "frequency": (N, "completed orders in the RFM window (default 365 days)"),
        "monetary": (N, "total of those orders"),
    },
    column_names={"segment": "rfm_segment"},
    values={"segment": RFM_SEGMENTS},
)

# The contact's cluster for the run's as-of date (segments_marts.contact_clusters, written by
# the clustering step; a dbt source).
CLUSTER = Entity(
    name="cluster",
    model="contact_clusters",
    prefix="cluster.",
    columns={
        "id": (N, "cluster number in the account; unset when not clustered"),
        "label": (S, "generated cluster label ('high value, recent, retail')"),
    },
    column_names={"id": "cluster_id", "label": "cluster_label"},
)

ENTITIES: dict[str, Entity] = {e.name: e for e in (CONTACT, COMPANY, RFM, CLUSTER)}
CUSTOM_PREFIX = "custom."


class UnknownFieldError(LookupError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Catalogue:
    """Resolves YAML field names for the contact-level segment language."""

    entities: tuple[Entity, ...] = (CONTACT, COMPANY, RFM, CLUSTER)
    custom_entity: Entity = CONTACT

    @property
    def fields(self) -> dict[str, Field]:
        out: dict[str, Field] = {}
        for entity in self.entities:
            out.update(entity.fields)
        return out

    def names(self) -> list[str]:
        return sorted(self.fields)

    def is_custom(self, name: str) -> bool:
        return name.startswith(CUSTOM_PREFIX)

    def custom_field(self, name: str, field_type: FieldType) -> Field:
        """`custom.<key>` read from the custom jsonb column as `field_type`."""
        key = name[len(CUSTOM_PREFIX) :]
        if not CUSTOM_KEY.fullmatch(key):
            raise UnknownFieldError(
                f"invalid custom field name '{name}': the part after 'custom.' must be letters, "
                "digits and underscores, starting with a letter or underscore (at most 63)"
            )
        column = self.custom_entity.custom_column
        assert column is not None
        return Field(name, self.custom_entity.name, column, field_type, key, "custom field")

    def lookup(self, name: str) -> Field:
        """A catalogue field (not custom.*). Raises UnknownFieldError with a suggestion."""
        found = self.fields.get(name)
        if found is not None:
            return found
        hint = did_you_mean(name, [*self.names(), "custom.<key>"])
        raise UnknownFieldError(f"unknown field '{name}'{hint}")


CATALOGUE = Catalogue()
