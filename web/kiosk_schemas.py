"""Request models of the kiosk API (photobox-api.md field names)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from web.schemas import Id, Url

STATUSES = ("PENDING", "COMPLETED", "FAILED", "EXPIRED")
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]
Amount = Annotated[int, Field(strict=True, gt=0, le=100_000_000)]
Quota = Annotated[int, Field(strict=True, ge=0, le=100_000_000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateTransaction(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"location_id": 1, "price_id": 2}]})

    location_id: Id
    price_id: Id | None = None


class Photo(Body):
    url: Url


class PhotoRequest(Body):
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=190, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    photos: Annotated[list[Photo], Field(min_length=1, max_length=200)]


class LocationIn(Body):
    ml_name: Name
    ml_address: Address | None = None


def _not_null(model: BaseModel, fields: tuple[str, ...]) -> None:
    """A PUT may leave a field out; it may not set a NOT NULL column to null."""
    for name in fields:
        if name in model.model_fields_set and getattr(model, name) is None:
            raise ValueError(f"{name} cannot be null")


class LocationChange(Body):
    ml_name: Name | None = None
    ml_address: Address | None = None

    @model_validator(mode="after")
    def required_columns(self) -> LocationChange:
        _not_null(self, ("ml_name",))
        return self


class PriceIn(Body):
    mp_name: Name
    mp_amount: Amount
    mp_location_id: Id | None = None
    mp_quota: Quota | None = None


class PriceChange(Body):
    mp_name: Name | None = None
    mp_amount: Amount | None = None
    mp_location_id: Id | None = None  # null: valid at every location
    mp_quota: Quota | None = None  # null: unlimited

    @model_validator(mode="after")
    def required_columns(self) -> PriceChange:
        _not_null(self, ("mp_name", "mp_amount"))
        return self


class ListQuery(Body):
    search: Annotated[str, StringConstraints(max_length=100)] | None = None
    skip: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class TransactionListQuery(ListQuery):
    status: str | None = None

    @field_validator("status")
    @classmethod
    def known_statuses(cls, value: str | None) -> str | None:
        return check_statuses(value)


class CountQuery(Body):
    status: str | None = None

    @field_validator("status")
    @classmethod
    def known_statuses(cls, value: str | None) -> str | None:
        return check_statuses(value)


def check_statuses(value: str | None) -> str | None:
    if value:
        unknown = [s for s in value.split(",") if s.strip().upper() not in STATUSES]
        if unknown:
            raise ValueError(f"unknown status {unknown[0]!r}; use {', '.join(STATUSES)}")
    return value


def status_list(value: str | None) -> list[str] | None:
    return [s.strip().upper() for s in value.split(",") if s.strip()] if value else None


class EventQuery(ListQuery):
    outcome: Annotated[str, StringConstraints(pattern=r"^(received|applied|ignored|unmatched)$")] | None = None
    source: Annotated[str, StringConstraints(max_length=16)] | None = None


class DeliveryQuery(Body):
    status: Annotated[str, StringConstraints(pattern=r"^(pending|delivered|failed)$")] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 100
    before_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
