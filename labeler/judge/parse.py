"""Parse a CoT judge completion: only the last verdict marker counts; none means the sample abstains."""

import re

MARKER = re.compile(r"\[\[\s*([AB])\s*\]\]")


def parse_verdict(text: str) -> str | None:
    found = MARKER.findall(text or "")
    return found[-1] if found else None
