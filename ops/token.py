"""Print a staff token for operators: `make token ARGS="--sub alice --level 50 --hours 8"`."""

from __future__ import annotations

import argparse

from core.security import issue_staff_token
from core.settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sub", default="operator", help="who the token names")
    parser.add_argument("--level", type=int, default=50, help="role_level: >= 1 reads, >= 50 is admin")
    parser.add_argument("--hours", type=float, default=8, help="lifetime in hours")
    args = parser.parse_args()
    print(issue_staff_token(get_settings().jwt_secret, args.sub, args.level, int(args.hours * 3600)))


if __name__ == "__main__":
    main()
