"""Request models of the reseller API; they reject before anything is touched."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Id = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
Rupiah = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000_000)]
Url = Annotated[str, StringConstraints(max_length=500, pattern=r"^https?://[^\s]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class RegisterRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"nama": "Toko Sinar", "email": "sinar@example.com", "hp": "081234567890"}]})

    nama: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    email: Annotated[str, StringConstraints(max_length=190, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    hp: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{8,15}$")] | None = None
    saldo: Rupiah = 0
    callback_url: Url | None = None

    @field_validator("email")
    @classmethod
    def lower(cls, value: str) -> str:
        return value.lower()


class BeliRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"produk_id": 1, "nomor_tujuan": "081234567890", "ref_id": "INV-2026-000123"}]}
    )

    produk_id: Id
    nomor_tujuan: Annotated[str, StringConstraints(pattern=r"^[0-9]{8,20}$")]
    nominal: Annotated[int, Field(strict=True, ge=1, le=2_000_000_000)] | None = None
    ref_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")] | None = None


class CallbackRequest(Strict):
    callback_url: Url | None


class PageQuery(Strict):
    limit: Annotated[int, Field(ge=1, le=100)] = 100
    before_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None


class RefIdQuery(Strict):
    ref_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
