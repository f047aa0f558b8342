"""Response models: the documented success and error bodies of every route (see web/openapi.py).

They are used only to describe responses in /openapi.json; the handlers build their bodies by hand
(web/views.py, web/envelope.py), and the fuzz test (tests/test_fuzz.py) checks that the two agree.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints

# What views._time and envelope._default write: isoformat(timespec="seconds"), with or without an offset.
Timestamp = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)?$")]
PurchaseStatus = Literal["pending", "proses", "sukses", "gagal"]
TransactionStatus = Literal["PENDING", "COMPLETED", "FAILED", "EXPIRED"]
Data = TypeVar("Data")


class Out(BaseModel):
    # Every documented key is required; an extra key is allowed (adding one breaks no client).
    model_config = ConfigDict(extra="allow")


class Error(Out):
    """The reseller API's error body."""

    detail: str = Field(description="what went wrong, for a human")
    code: str = Field(description="a stable machine-readable reason, e.g. invalid_input")


class KioskError(Error):
    """The error body under /api/v1/: the kiosk envelope around {detail, code}."""

    success: Literal[False]
    message: str = Field(description="the same text as detail")


class Health(Out):
    status: Literal["ok"]


class Ready(Out):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description="per dependency: ok, or down: <error type>")


class Registered(Out):
    id: int
    api_key: str = Field(description="shown once; send it as x-api-key")
    private_key: str = Field(description="shown once")
    info: str


class Keys(Out):
    api_key: str
    private_key: str
    info: str


class Saldo(Out):
    saldo: int = Field(ge=0)


class LedgerEntry(Out):
    id: int
    jenis: Literal["saldo_awal", "deposit", "pembelian", "refund", "koreksi"]
    jumlah: int = Field(description="signed rupiah: a debit is negative")
    saldo_akhir: int
    trx_id: int | None = Field(description="the purchase this entry belongs to, if any")
    keterangan: str | None
    waktu: Timestamp


class Ledger(RootModel[list[LedgerEntry]]):
    """Ledger entries, newest first."""


class CallbackSet(Out):
    callback_url: str | None


class Product(Out):
    id: int
    kode: str
    nama: str
    harga: int = Field(ge=0)
    nominal: int = Field(ge=0)
    kategori: str
    deskripsi: str


class Products(RootModel[list[Product]]):
    pass


class Accepted(Out):
    """A purchase accepted (or the same ref_id replayed): its id, status and the saldo after the debit."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": 41872, "ref_id": "INV-2026-000123", "status": "proses", "harga": 5500, "saldo": 94500}]}
    )

    id: int
    ref_id: str | None
    status: PurchaseStatus
    harga: int = Field(ge=0)
    saldo: int = Field(ge=0)


class Purchase(Out):
    id: int
    ref_id: str | None
    produk_id: int
    kode: str
    nomor_tujuan: str
    nominal: int | None
    harga: int = Field(ge=0)
    status: PurchaseStatus
    sn: str | None
    hasil_eksekusi: str | None
    waktu: Timestamp
    updated_at: Timestamp


class CallbackEvent(Out):
    """The body Loket POSTs to a reseller's callback URL when a purchase ends (sukses or gagal)."""

    event: Literal["transaksi.selesai"]
    data: Purchase


class Purchases(RootModel[list[Purchase]]):
    """Purchases, newest first."""


class CallbackAttempt(Out):
    attempt: int = Field(ge=1)
    at: Timestamp
    status_code: int | None = Field(description="the reseller's HTTP status; null when no answer came")
    error: str | None
    duration_ms: int = Field(ge=0)


class CallbackDelivery(Out):
    """One purchase's callback to the reseller, with every attempt."""

    delivery_id: str = Field(description="X-Loket-Delivery: the same on every attempt")
    trx_id: int
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int = Field(ge=0)
    last_status: int | None
    last_error: str | None
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    delivered_at: Timestamp | None
    attempt_log: list[CallbackAttempt]


class CallbackDeliveries(RootModel[list[CallbackDelivery]]):
    """Deliveries, newest first."""


class OperatorDelivery(CallbackDelivery):
    reseller_id: int


class Deposit(Out):
    """A QRIS top-up of the reseller's saldo; credited once, when the gateway reports the payment."""

    id: int
    external_id: str
    jumlah: int = Field(gt=0)
    status: TransactionStatus
    qris_string: str | None
    gateway: str = Field(description="xendit (pay qris_string), midtrans or paystack (open payment_url)")
    payment_url: str | None
    expired_at: Timestamp
    paid_at: Timestamp | None
    created_at: Timestamp


class Deposits(RootModel[list[Deposit]]):
    """Deposits, newest first."""


class SaldoCorrected(Out):
    saldo: int = Field(ge=0, description="the saldo after the correction")
    entry_id: int
    jumlah: int
    keterangan: str | None


class ResellerChanged(Out):
    """The reseller's id and the fields that were set."""

    id: int
    aktif: bool | None = None
    require_signature: bool | None = None


class ProductChanged(Out):
    """The product's id and the fields that were set."""

    id: int
    aktif: bool | None = None
    harga: int | None = Field(default=None, gt=0)


class TokenRevoked(Out):
    """The revoked token's jti; revoked_now is false when it was revoked before."""

    jti: str
    revoked_now: bool


class WebhookAck(Out):
    received: Literal[True]
    duplicate: bool = Field(description="true when this event had been stored before")


class Envelope(Out, Generic[Data]):
    """The kiosk API's {success, message, data}."""

    success: Literal[True]
    message: str
    data: Data


class Page(Envelope[list[Data]], Generic[Data]):
    total: int = Field(ge=0)
    page: int = Field(ge=1)
    size: int = Field(ge=1)
    pages: int = Field(ge=0)


class Encrypted(Out):
    """A public kiosk answer when RESPONSE_ENCRYPTION_KEY is set: AES-256-GCM, base64."""

    model_config = ConfigDict(extra="forbid")
    data: str


class Transaction(Out):
    tr_id: int
    tr_external_id: str
    tr_location_id: int
    tr_price_id: int | None
    tr_amount: int = Field(gt=0)
    tr_status: TransactionStatus
    tr_qris_string: str | None
    tr_qris_url: str | None
    tr_expired_at: Timestamp
    tr_paid_at: Timestamp | None
    tr_created_at: Timestamp


class LocationRef(Out):
    ml_id: int
    ml_name: str


class ListedTransaction(Transaction):
    location: LocationRef


class Count(Out):
    count: int = Field(ge=0)


class PhotosAccepted(Out):
    external_id: str
    photo_count: int = Field(ge=1)


class PhotoLink(Out):
    url: str


class Photos(Out):
    external_id: str
    photo_count: int = Field(ge=0)
    email_sent_at: Timestamp | None
    expiry_date: Timestamp | None
    photos: list[PhotoLink]


class Location(Out):
    ml_id: int
    ml_name: str
    ml_address: str | None
    ml_created_at: Timestamp


class Price(Out):
    mp_id: int
    mp_name: str
    mp_amount: int = Field(gt=0)
    mp_location_id: int | None
    mp_quota: int | None
    mp_used: int = Field(ge=0)
    mp_created_at: Timestamp


class WebhookEvent(Out):
    id: int
    source: str
    reference: str | None
    outcome: Literal["received", "applied", "ignored", "unmatched"]
    note: str | None
    payload: dict[str, Any]
    received_at: Timestamp
    handled_at: Timestamp | None


class TransactionAnswer(RootModel[Envelope[Transaction] | Encrypted]):
    """GET by external id: the envelope, or the same encrypted."""


class PhotosAnswer(RootModel[Photos | Encrypted]):
    """GET photos: the gallery, or the same encrypted."""
