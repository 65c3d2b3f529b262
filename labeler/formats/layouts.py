"""The preference layouts an input may use, found from its columns, and how one of its rows becomes pairs in ours.

- `pairs`: ours, `prompt` / `response_a` / `response_b` [/ `label` A, B or tie]; the prompt may be a message list.
- `trl`: TRL's explicit prompt, `prompt` / `chosen` / `rejected`, strings or message lists.
- `trl-implicit`: TRL's implicit prompt, `chosen` / `rejected` only: the shared beginning is the prompt (HH-style
  `\\n\\nHuman: ... \\n\\nAssistant: ...` transcripts are cut at the last shared assistant turn).
- `ultrafeedback`: a prompt (`prompt` or `instruction`) and `completions` with ratings: one pair per two completions
  whose ratings differ, the higher rated one being the human label.

Whatever the layout, a known preference (`chosen` over `rejected`, the higher rating) is stored as a gold label and
the two responses are put in an order drawn from a hash of the pair and a seed, so position carries no signal.
"""

import hashlib
import json
import math
import re
from collections.abc import Callable
from functools import partial
from itertools import combinations

from labeler.errors import RowError
from labeler.formats.messages import (as_messages, check_prompt, hh_messages, is_hh, json_type, single_turn,
                                      transcript)
from labeler.store.pairs import FieldMap

LAYOUTS = {
    "pairs": "prompt / response_a / response_b",
    "trl": "TRL explicit prompt: prompt / chosen / rejected",
    "trl-implicit": "TRL implicit prompt: chosen / rejected (shared beginning = prompt)",
    "ultrafeedback": "prompt + rated completions (one pair per two different ratings)",
}
EXPECTED = "prompt/response_a/response_b, prompt/chosen/rejected, chosen/rejected or prompt/completions"
MESSAGES = "prompt_messages"  # the pair's prompt as messages, when it is a conversation
HH_ASSISTANT = "\n\nAssistant:"
TEXT_KEYS = ("response", "text", "content", "completion")
RATING_KEYS = ("overall_score", "rating", "score", "fine-grained_score")
Convert = Callable[[dict], list[dict]]
# whitespace and the characters that show as nothing (zero-width space/joiners, word joiner, BOM, soft hyphen)
BLANK = re.compile(r"[\s\u200b-\u200d\u2060\ufeff\u00ad\u180e]*")


def detect(columns, fields: FieldMap = FieldMap()) -> str:
    """The layout of an input with these columns (ours when none fits, so the missing fields get reported)."""
    cols = set(columns)
    if {fields.response_a, fields.response_b} <= cols:
        return "pairs"
    if {"chosen", "rejected"} <= cols:
        return "trl" if fields.prompt in cols else "trl-implicit"
    if "completions" in cols and (fields.prompt in cols or "instruction" in cols):
        return "ultrafeedback"
    return "pairs"


def converter(layout: str, fields: FieldMap, max_chars: int, seed: int = 0) -> Convert:
    """row (a decoded JSON object) -> the pairs it makes, as rows of our layout; a bad row raises RowError."""
    convert = {"pairs": _pairs, "trl": _trl, "trl-implicit": _trl_implicit, "ultrafeedback": _ultrafeedback}[layout]
    return partial(convert, fields=fields, max_chars=max_chars, seed=seed)


def _text(value: str, field: str, max_chars: int) -> str:
    """The checks ingest runs on every text field (`store.pairs.validate_staged`), naming the input's own field."""
    if BLANK.fullmatch(value):
        raise RowError(field, "is empty")
    if "\x00" in value:
        raise RowError(field, "contains a NUL byte")
    if len(value) > max_chars:
        raise RowError(field, f"too long: {len(value)} characters (limit {max_chars})")
    return value


def _different(value: str, other: str, field: str) -> str:
    """The check SQL runs on our layout, here so that the quarantine names the input's field and keeps its row."""
    if value == other:
        raise RowError(field, "identical to the other response")
    return value


def _required(row: dict, key: str):
    if key not in row:
        raise RowError(key, "missing field")
    value = row[key]
    if value is None:
        raise RowError(key, "is null")
    if not isinstance(value, str | list):
        raise RowError(key, f"must be a string or a list of messages, got {json_type(value)}")
    return value


def _prompt(value, field: str) -> tuple[str, list[dict] | None]:
    """(readable prompt, its messages or None): a message list or an HH transcript is a conversation."""
    if isinstance(value, list):
        messages = as_messages(value, field)
    elif is_hh(value):
        messages = hh_messages(value)
    else:
        return value, None
    if not messages:
        raise RowError(field, "has no turns")
    return transcript(messages), check_prompt(messages, field)


def _order(seed: int, prompt: str, better: str, worse: str) -> bool:
    """True when the better response goes second: a hash of the pair and the seed, so the same every run."""
    digest = hashlib.sha256(json.dumps([seed, prompt, better, worse]).encode()).digest()
    return bool(digest[0] & 1)


def _pair(row: dict, consumed: set[str], fields: FieldMap, prompt: str, messages: list[dict] | None, a: str, b: str,
          label: str | None, **extra) -> dict:
    """A row of our layout; the input's other fields stay (renamed `input_<name>` where they would clash)."""
    ours = {fields.prompt, fields.response_a, fields.response_b, fields.label, MESSAGES, *extra}
    out = {(f"input_{k}" if k in ours else k): v for k, v in row.items() if k not in consumed}
    out.update({fields.prompt: prompt, fields.response_a: a, fields.response_b: b, **extra})
    if label is not None:
        out[fields.label] = label
    if messages is not None:
        out[MESSAGES] = messages
    return out


def _preference(row: dict, consumed: set[str], fields: FieldMap, seed: int, prompt: str, messages, better: str,
                worse: str, **extra) -> dict:
    """A known preference: the gold label says which one is better; the A/B order is the hash's."""
    second = _order(seed, prompt, better, worse)
    a, b = (worse, better) if second else (better, worse)
    if second:  # rating_a / model_a describe the better response, which is now B
        extra = {k[:-1] + {"a": "b", "b": "a"}[k[-1]]: v for k, v in extra.items()}
    return _pair(row, consumed, fields, prompt, messages, a, b, "B" if second else "A", **extra)


def _pairs(row: dict, fields: FieldMap, max_chars: int, seed: int) -> list[dict]:
    """Ours, with a message-list prompt (or single-message responses): SQL checks everything else as for any row."""
    out, messages = dict(row), None
    field = next((f for f in (MESSAGES, fields.prompt) if isinstance(row.get(f), list)), None)
    if field is not None:  # stored messages (a labeler export read back) win over the transcript beside them
        prompt, messages = _prompt(row[field], field)
        out[fields.prompt], out[MESSAGES] = _text(prompt, field, max_chars), messages
    for field in (fields.response_a, fields.response_b):
        if isinstance(row.get(field), list):
            out[field] = single_turn(row[field], field, messages)
    if isinstance(out.get(fields.response_a), str) and out.get(fields.response_a) == out.get(fields.response_b):
        raise RowError(fields.response_b, "identical to the other response")
    return [out]


def _trl(row: dict, fields: FieldMap, max_chars: int, seed: int) -> list[dict]:
    prompt, messages = _prompt(_required(row, fields.prompt), fields.prompt)
    chosen = single_turn(_required(row, "chosen"), "chosen", messages)
    rejected = single_turn(_required(row, "rejected"), "rejected", messages)
    prompt = _text(prompt, fields.prompt, max_chars)
    better, worse = _text(chosen, "chosen", max_chars), _different(_text(rejected, "rejected", max_chars), chosen,
                                                                     "rejected")
    return [_preference(row, {fields.prompt, "chosen", "rejected"}, fields, seed, prompt, messages, better, worse)]


def _trl_implicit(row: dict, fields: FieldMap, max_chars: int, seed: int) -> list[dict]:
    chosen, rejected = _required(row, "chosen"), _required(row, "rejected")
    if isinstance(chosen, str) and isinstance(rejected, str):
        prompt, messages, better, worse = _split_strings(chosen, rejected)
    elif isinstance(chosen, list) and isinstance(rejected, list):
        prompt, messages, better, worse = _split_messages(as_messages(chosen, "chosen"), as_messages(rejected, "rejected"))
    else:
        raise RowError("rejected", f"must be the same kind as chosen (both strings or both message lists), got "
                                   f"{json_type(chosen)} and {json_type(rejected)}")
    prompt = _text(prompt, "chosen", max_chars)
    better, worse = _text(better, "chosen", max_chars), _different(_text(worse, "rejected", max_chars), better,
                                                                   "rejected")
    return [_preference(row, {"chosen", "rejected"}, fields, seed, prompt, messages, better, worse)]


def _split_strings(chosen: str, rejected: str) -> tuple[str, list[dict] | None, str, str]:
    n = next((i for i, (x, y) in enumerate(zip(chosen, rejected)) if x != y), min(len(chosen), len(rejected)))
    if is_hh(chosen):  # the prompt ends at the last assistant turn both share
        cut = chosen.rfind(HH_ASSISTANT, 0, n)
        if cut < 0:
            raise RowError("chosen", "shares no '\\n\\nAssistant:' turn with rejected")
        head = chosen[:cut + len(HH_ASSISTANT)]
        better, worse = chosen[len(head):].strip(), rejected[len(head):].strip()
        for field, text in (("chosen", better), ("rejected", worse)):
            if "\n\nHuman:" in text:
                raise RowError(field, "differs from the other response before its last assistant turn")
        prompt, messages = _prompt(head, "chosen")
        return prompt, messages, better, worse
    if 0 < n < min(len(chosen), len(rejected)) and chosen[n - 1] == " ":
        n -= 1  # as TRL's extract_prompt: the space before the first difference starts the responses
    if not chosen[:n].strip():
        raise RowError("chosen", "shares no beginning (the prompt) with rejected")
    return chosen[:n], None, chosen[n:], rejected[n:]


def _split_messages(chosen: list[dict], rejected: list[dict]) -> tuple[str, list[dict], str, str]:
    n = next((i for i, (x, y) in enumerate(zip(chosen, rejected)) if x != y), min(len(chosen), len(rejected)))
    n = min(n, len(chosen) - 1, len(rejected) - 1)  # identical lists: the last turn is the response
    if n < 1:
        raise RowError("chosen", "shares no prompt turns with rejected")
    for field, rest in (("chosen", chosen[n:]), ("rejected", rejected[n:])):
        if len(rest) != 1:
            raise RowError(field, f"differs from the other response before its last turn ({len(rest)} turns differ)")
    better, worse = single_turn(chosen[n:], "chosen"), single_turn(rejected[n:], "rejected")
    return transcript(chosen[:n]), check_prompt(chosen[:n], "chosen"), better, worse


def _rating(value, field: str) -> float | None:
    """A numeric rating; None for a missing one ("N/A", null, NaN: the completion is left out). A boolean or an
    infinite rating is a RowError: it is not a score, and JSON cannot write it back."""
    if isinstance(value, bool):
        raise RowError(field, f"must be a number, got {json.dumps(value)}")
    try:
        rating = float(value)
    except (TypeError, ValueError):  # UltraFeedback has "N/A" ratings
        return None
    if math.isinf(rating):
        raise RowError(field, f"must be a finite number, got {value!r}")
    return rating if rating == rating else None


def _completions(row: dict) -> list[tuple[str, float, str | None]]:
    """(text, rating, model) of each completion that has a text and a numeric rating."""
    completions = _required(row, "completions")
    ratings_key = "ratings" if "ratings" in row else "scores"
    ratings = row.get(ratings_key)
    items = completions if isinstance(completions, list) else []
    if isinstance(ratings, list) and any(not isinstance(item, dict) for item in items) and len(ratings) != len(items):
        raise RowError(ratings_key, f"has {len(ratings)} ratings for {len(items)} completions")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            text = next((item[k] for k in TEXT_KEYS if isinstance(item.get(k), str)), None)
            rating = next((r for r in (_rating(item.get(k), f"completions[{i}].{k}") for k in RATING_KEYS)
                           if r is not None), None)
            model = item.get("model") if isinstance(item.get("model"), str) else None
        else:
            text, model = item if isinstance(item, str) else None, None
            rating = _rating(ratings[i], f"{ratings_key}[{i}]") if isinstance(ratings, list) and i < len(ratings) \
                else None
        if text is not None and not BLANK.fullmatch(text) and rating is not None:
            out.append((text, rating, model))
    if len(out) < 2:
        raise RowError("completions", "needs at least two completions with a text and a numeric rating "
                                      f"({', '.join(RATING_KEYS)}, or a parallel `ratings` list)")
    return out


def _ultrafeedback(row: dict, fields: FieldMap, max_chars: int, seed: int) -> list[dict]:
    """Every two completions with different ratings make a pair (equal ratings make none)."""
    key = fields.prompt if fields.prompt in row else "instruction"
    prompt, messages = _prompt(_required(row, key), key)
    _text(prompt, key, max_chars)
    consumed = {key, "completions", "ratings", "scores", fields.id}
    pairs = []
    for (t1, r1, m1), (t2, r2, m2) in combinations(_completions(row), 2):
        if r1 == r2:
            continue
        (better, rb, mb), (worse, rw, mw) = ((t1, r1, m1), (t2, r2, m2)) if r1 > r2 else ((t2, r2, m2), (t1, r1, m1))
        _different(worse, better, "completions")
        extra = {"rating_a": rb, "rating_b": rw, **({"model_a": mb, "model_b": mw} if mb or mw else {})}
        pair = _preference(row, consumed, fields, seed, prompt, messages, _text(better, "completions", max_chars),
                           _text(worse, "completions", max_chars), **extra)
        if fields.id in row:
            pair["input_id"] = row[fields.id]
        pairs.append(pair)
    return pairs
