"""Staff tokens for operators.

Print one: `make token ARGS="--sub alice --level 50 --hours 8"`; a kiosk's names its location:
`make token ARGS="--sub kiosk-7 --level 1 --location 7 --hours 720"` (its jti goes to stderr).
Revoke one: `make token ARGS="--revoke <jti or the token itself> --reason 'kiosk stolen'"`; every web
process refuses it within TOKEN_REVOCATION_REFRESH_SECONDS (web.revocations).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

import jwt

from core.security import ADMIN_LEVEL, MAX_JTI_LENGTH, issue_staff_token, unverified_expiry_and_jti
from core.settings import get_settings
from db import staff_tokens
from db.engine import create_engine


def _jti_and_expiry(given: str) -> tuple[str, dt.datetime | None]:
    """A jti as given, or the jti and expiry read from a whole token (three dot-separated parts)."""
    if given.count(".") != 2:
        return given, None
    try:
        exp, jti = unverified_expiry_and_jti(given)
    except jwt.PyJWTError:
        raise SystemExit("--revoke: not a readable token") from None
    if jti is None:
        raise SystemExit("--revoke: this token has no jti and cannot be revoked; it lasts until it expires")
    return jti, None if exp is None else dt.datetime.fromtimestamp(exp, dt.UTC).replace(tzinfo=None)


async def _revoke(jti: str, expires_at: dt.datetime | None, reason: str | None) -> bool:
    engine = create_engine(get_settings(), pool_size=1)
    try:
        async with engine.begin() as conn:
            return await staff_tokens.revoke(conn, jti, "ops.token", reason, expires_at)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sub", default="operator", help="who the token names")
    parser.add_argument("--level", type=int, default=ADMIN_LEVEL, help="role_level: >= 1 reads, >= 50 is admin")
    parser.add_argument("--location", type=int, help="the one location the token acts for (needed below level 50)")
    parser.add_argument("--hours", type=float, default=8, help="lifetime in hours")
    parser.add_argument("--revoke", metavar="JTI_OR_TOKEN", help="revoke this token instead of printing one")
    parser.add_argument("--reason", help="why (with --revoke)")
    args = parser.parse_args()
    if args.revoke is not None:
        jti, expires_at = _jti_and_expiry(args.revoke.strip())
        if not 1 <= len(jti) <= MAX_JTI_LENGTH:
            raise SystemExit(f"--revoke: a jti has 1-{MAX_JTI_LENGTH} characters")
        revoked = asyncio.run(_revoke(jti, expires_at, args.reason))
        print(f"revoked {jti}" if revoked else f"{jti} was already revoked")
        return
    if args.location is not None and not 1 <= args.location < 2**31:
        raise SystemExit("--location: a location id is a positive integer")
    if args.location is None and args.level < ADMIN_LEVEL:
        print(f"note: without --location a token below level {ADMIN_LEVEL} is refused on the transaction routes", file=sys.stderr)
    token = issue_staff_token(get_settings().jwt_secret.get_secret_value(), args.sub, args.level, int(args.hours * 3600), location_id=args.location)
    print(f"jti {unverified_expiry_and_jti(token)[1]}", file=sys.stderr)
    print(token)


if __name__ == "__main__":
    main()
