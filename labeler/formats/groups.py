"""N responses per prompt: the rows of the layouts that carry several responses (`responses`, `completions`) become
a group, stored whole (labeler rank ranks it), plus one gold pair per two responses whose human ratings differ.

- `responses`: `prompt` and `responses: [...]`, each a string, a single assistant message, or an object with a text
  (`response`, `text`, `content` or `completion`) and optionally a rating (`rating`, `score`, ...) and `model`.
- `completions` (UltraFeedback, or TRL's prompt/completions): the same, under `completions`; a parallel `ratings`
  (or `scores`) list rates plain-string completions.
"""

import hashlib
import json

from labeler.errors import RowError
from labeler.formats.messages import json_type, single_turn

TEXT_KEYS = ("response", "text", "content", "completion")
RATING_KEYS = ("overall_score", "rating", "score", "fine-grained_score")
LIST_KEYS = ("responses", "completions")


def rating(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):  # UltraFeedback has "N/A" ratings
        return None
    return out if out == out and out not in (float("inf"), float("-inf")) else None


def group_id(prompt: str, texts: list[str]) -> str:
    return "g" + hashlib.sha256(json.dumps([prompt, texts], ensure_ascii=False).encode()).hexdigest()[:15]


def responses(row: dict, key: str, messages: list[dict] | None) -> list[tuple[str, float | None, str | None]]:
    """(text, rating, model) of each response with a non-empty text; ratings from the items or a parallel list."""
    items = row.get(key)
    if not isinstance(items, list):
        raise RowError(key, "missing field" if items is None and key not in row else
                       f"must be a list of responses, got {json_type(items)}")
    ratings = row.get("ratings", row.get("scores"))
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if isinstance(item, dict) and "role" not in item:
            text = next((item[k] for k in TEXT_KEYS if isinstance(item.get(k), str)), None)
            score = next((r for r in (rating(item.get(k)) for k in RATING_KEYS) if r is not None), None)
            model = item.get("model") if isinstance(item.get("model"), str) else None
        elif isinstance(item, str | list | dict):  # a string, a message or a message list
            text = single_turn([item] if isinstance(item, dict) else item, where, messages)
            score, model = None, None
            if isinstance(ratings, list) and i < len(ratings):
                score = rating(ratings[i])
        else:
            raise RowError(where, f"must be a string, a message or an object with a text, got {json_type(item)}")
        if text is not None and text.strip():
            out.append((text, score, model))
    return out
