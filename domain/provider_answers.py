"""What the provider's answer to a purchase means: sukses, gagal, still pending, or a refusal of
the request itself that says nothing about the order.

Digiflazz answers with a status word and a response code (rc); the rules below read both, and
everything Loket does next (end, refund, keep open, re-check) follows from the Outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Gagal answers that reject the request before any order lookup: the order (if an earlier call
# created one) lives on, so these must never refund. Signature, username, IP, rate limits, a
# ref_id clash, a malformed payload.
REQUEST_REJECTED_RCS = frozenset({"40", "41", "42", "45", "49", "83", "85", "86"})
PENDING_RCS = frozenset({"03", "99"})


class Outcome(StrEnum):
    SUKSES = "sukses"
    GAGAL = "gagal"
    PENDING = "pending"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ProviderAnswer:
    """One answer of the provider about one purchase: its status word, rc, serial number and message."""

    status: str
    rc: str
    sn: str | None
    message: str

    @property
    def outcome(self) -> Outcome:
        return classify(self.status, self.rc)


def classify(status: str, rc: str) -> Outcome:
    if status == "Sukses" and rc == "00":
        return Outcome.SUKSES
    if status == "Pending" or rc in PENDING_RCS:
        return Outcome.PENDING
    if status == "Gagal" and rc in REQUEST_REJECTED_RCS:
        return Outcome.REJECTED
    if status == "Gagal":
        return Outcome.GAGAL
    return Outcome.PENDING  # an answer that cannot be read is not a failure
