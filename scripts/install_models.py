"""Post-install step for the embedded offline models (filled in with the providers work)."""

from __future__ import annotations


def main() -> int:
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
