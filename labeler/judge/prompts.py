"""Judge prompts: jinja2 template files with `system`, `user` and `assistant_prefix` blocks."""

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import jinja2

from schemas import Pair

MODES = ("direct", "cot")
POSITIONS = ("AB", "BA")
TRUNCATION_MARK = "\n[... truncated ...]\n"


@dataclass(frozen=True)
class RenderedPrompt:
    system: str
    user: str
    assistant_prefix: str


@cache
def _template(mode: str) -> tuple[jinja2.Template, str]:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    source = resources.files("labeler.judge").joinpath("templates", f"{mode}.jinja").read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
    return env.from_string(source), source


def template_hash(mode: str) -> str:
    return hashlib.sha256(_template(mode)[1].encode()).hexdigest()[:12]


def shorten(text: str, max_chars: int) -> str:
    """Keep the head and tail of an over-long field; the middle is the least informative part to lose."""
    if len(text) <= max_chars:
        return text
    half = (max_chars - len(TRUNCATION_MARK)) // 2
    return text[:half] + TRUNCATION_MARK + text[-half:]


def render(mode: str, pair: Pair, position: str, max_field_chars: int = 6000) -> RenderedPrompt:
    """Render the judge prompt for one order: position "BA" shows response_b as Response A.

    A conversation enters as its transcript (`prompt`: each turn under `[User]`, `[Assistant]`, ...), inside the
    judge's own user turn; templates also get it as `messages` (a list of {role, content}, or None)."""
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}")
    first, second = (pair.response_a, pair.response_b) if position == "AB" else (pair.response_b, pair.response_a)
    template, _ = _template(mode)
    context = template.new_context(
        {
            "prompt": shorten(pair.prompt, max_field_chars),
            "response_a": shorten(first, max_field_chars),
            "response_b": shorten(second, max_field_chars),
            "messages": [m.model_dump() for m in pair.prompt_messages] if pair.prompt_messages else None,
        }
    )
    blocks = {name: "".join(template.blocks[name](context)).strip("\n") for name in ("system", "user", "assistant_prefix")}
    return RenderedPrompt(**blocks)


def to_original(letter: str | None, position: str) -> str | None:
    """Map a verdict letter as the judge saw it back to the original pair's letter."""
    if letter is None or position == "AB":
        return letter
    return {"A": "B", "B": "A"}[letter]
