"""N responses per prompt: the rows of the layouts that carry several responses (`responses`, `completions`) become
a group, stored whole (labeler rank ranks it), plus one gold pair per two responses whose human ratings differ.

- `responses`: `prompt` and `responses: [...]`, each a string, a single assistant message, or an object with a text
  (`response`, `text`, `content` or `completion`) and optionally a rating (`rating`, `score`, ...) and `model`.
- `completions` (UltraFeedback, or TRL's prompt/completions): the same, under `completions`; a parallel `ratings`
  (or `scores`) list rates plain-string completions.
"""

import hashlib
import json
import math
import re

from labeler.errors import RowError
from labeler.formats.messages import json_type, single_turn

TEXT_KEYS = ("response", "text", "content", "completion")
RATING_KEYS = ("overall_score", "rating", "score", "fine-grained_score")
LIST_KEYS = ("responses", "completions")


def rating(value, field: str) -> float | None:
    """A numeric rating; None for a missing one ("N/A", null, NaN). A boolean or an infinite rating is a RowError: it
    is not a score, and JSON cannot write it back."""
    if isinstance(value, bool):
        raise RowError(field, f"must be a number, got {json.dumps(value)}")
    try:
        out = float(value)
    except (TypeError, ValueError):  # UltraFeedback has "N/A" ratings
        return None
    if math.isinf(out):
        raise RowError(field, f"must be a finite number, got {value!r}")
    return out if out == out else None


def group_id(prompt: str, texts: list[str]) -> str:
    return "g" + hashlib.sha256(json.dumps([prompt, texts], ensure_ascii=False).encode()).hexdigest()[:15]


def responses(row: dict, key: str, messages: list[dict] | None,
              blank: re.Pattern) -> list[tuple[str, float | None, str | None]]:
    """(text, rating, model) of each response with a text that is not `blank`; ratings from the items or a parallel
    `ratings` (or `scores`) list, which must then have one per response."""
    items = row.get(key)
    if not isinstance(items, list):
        raise RowError(key, "missing field" if items is None and key not in row else
                       f"must be a list of responses, got {json_type(items)}")
    ratings_key = "ratings" if "ratings" in row else "scores"
    ratings = row.get(ratings_key)
    if isinstance(ratings, list) and any(not isinstance(item, dict) for item in items) and len(ratings) != len(items):
        raise RowError(ratings_key, f"has {len(ratings)} ratings for {len(items)} {key}")
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if isinstance(item, dict) and "role" not in item:
            text = next((item[k] for k in TEXT_KEYS if isinstance(item.get(k), str)), None)
            score = next((r for r in (rating(item.get(k), f"{where}.{k}") for k in RATING_KEYS) if r is not None),
                         None)
            model = item.get("model") if isinstance(item.get("model"), str) else None
        elif isinstance(item, str | list | dict):  # a string, a message or a message list
            text = single_turn([item] if isinstance(item, dict) else item, where, messages)
            score, model = None, None
            if isinstance(ratings, list) and i < len(ratings):
                score = rating(ratings[i], f"{ratings_key}[{i}]")
        else:
            raise RowError(where, f"must be a string, a message or an object with a text, got {json_type(item)}")
        if text is not None and not blank.fullmatch(text):
            out.append((text, score, model))
    return out
