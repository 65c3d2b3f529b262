"""Judge prompts: jinja2 templates with `system`, `user` and `assistant_prefix` blocks. The shipped ones are files
in `templates/`; a user's own (`--template FILE`) has the same blocks, and `--criteria TEXT` changes what the
judge is asked to prefer. User text (the pair, the criteria) enters as data, never as template source."""

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

from schemas import Pair

MODES = ("direct", "cot")
POSITIONS = ("AB", "BA")
BLOCKS = ("system", "user", "assistant_prefix")
VARIABLES = ("prompt", "response_a", "response_b", "messages", "criteria")
TRUNCATION_MARK = "\n[... truncated ...]\n"
# What the shipped templates ask the judge to prefer; `--criteria` takes its place.
DEFAULT_CRITERIA = "more helpful, correct, honest, harmless, and faithful to every instruction in the request"


@dataclass(frozen=True)
class RenderedPrompt:
    system: str
    user: str
    assistant_prefix: str


def _env() -> jinja2.Environment:
    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


def builtin_source(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    return resources.files("labeler.judge").joinpath("templates", f"{mode}.jinja").read_text(encoding="utf-8")


def check_source(source: str) -> set[str]:
    """The variables a judge template uses; ValueError when it cannot judge: a syntax error, a missing block, an
    unknown variable, or no place for the two responses."""
    try:
        ast = _env().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    missing = [b for b in BLOCKS if b not in {node.name for node in ast.find_all(jinja2.nodes.Block)}]
    if missing:
        raise ValueError(f"the template has no {', '.join(missing)} block (a judge template defines the blocks "
                         f"{', '.join(BLOCKS)}, as labeler/judge/templates/*.jinja do)")
    used = jinja2.meta.find_undeclared_variables(ast)
    unknown = sorted(used - set(VARIABLES))
    if unknown:
        raise ValueError(f"the template uses unknown variable(s) {', '.join(unknown)} (known: {', '.join(VARIABLES)})")
    absent = [v for v in ("response_a", "response_b") if v not in used]
    if absent or not used & {"prompt", "messages"}:
        raise ValueError("the template must show {{ prompt }} (or messages), {{ response_a }} and {{ response_b }}")
    return used


@dataclass(frozen=True)
class PromptTemplate:
    """A judge template: its jinja source and the criteria it is rendered with (None: the shipped wording)."""

    source: str
    criteria: str | None = None

    @property
    def hash(self) -> str:
        """Part of the judge key. The shipped templates without criteria hash as before criteria existed."""
        text = self.source if self.criteria is None else f"{self.source}\0criteria\0{self.criteria}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def prompt_template(mode: str, source: str | None = None, criteria: str | None = None) -> PromptTemplate:
    """The template a judge uses: `source` (a user's template) or the shipped one for `mode`, asking for `criteria`.
    ValueError when the template cannot judge, or `criteria` has no place in it."""
    if criteria is not None and not criteria.strip():
        raise ValueError("criteria must not be empty")
    if source is None:
        source = builtin_source(mode)
        if criteria is not None:  # the shipped wording gives way to the user's, which stays a variable
            source = source.replace(DEFAULT_CRITERIA, "{{ criteria }}")
    used = check_source(source)
    if criteria is not None and "criteria" not in used:
        raise ValueError("criteria need a template that uses {{ criteria }}")
    return PromptTemplate(source, criteria)


@cache
def _compiled(source: str) -> jinja2.Template:
    return _env().from_string(source)


def template_hash(mode: str) -> str:
    return PromptTemplate(builtin_source(mode)).hash


def shorten(text: str, max_chars: int) -> str:
    """Keep the head and tail of an over-long field; the middle is the least informative part to lose."""
    if len(text) <= max_chars:
        return text
    half = (max_chars - len(TRUNCATION_MARK)) // 2
    return text[:half] + TRUNCATION_MARK + text[-half:]


def render(mode: str, pair: Pair, position: str, max_field_chars: int = 6000,
           template: PromptTemplate | None = None) -> RenderedPrompt:
    """Render the judge prompt for one order: position "BA" shows response_b as Response A.

    A conversation enters as its transcript (`prompt`: each turn under `[User]`, `[Assistant]`, ...), inside the
    judge's own user turn; templates also get it as `messages` (a list of {role, content}, or None)."""
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}")
    first, second = (pair.response_a, pair.response_b) if position == "AB" else (pair.response_b, pair.response_a)
    template = template or PromptTemplate(builtin_source(mode))
    compiled = _compiled(template.source)
    context = compiled.new_context(
        {
            "prompt": shorten(pair.prompt, max_field_chars),
            "response_a": shorten(first, max_field_chars),
            "response_b": shorten(second, max_field_chars),
            "messages": [m.model_dump() for m in pair.prompt_messages] if pair.prompt_messages else None,
            "criteria": template.criteria or DEFAULT_CRITERIA,
        }
    )
    blocks = {name: "".join(compiled.blocks[name](context)).strip("\n") for name in BLOCKS}
    return RenderedPrompt(**blocks)


def to_original(letter: str | None, position: str) -> str | None:
    """Map a verdict letter as the judge saw it back to the original pair's letter."""
    if letter is None or position == "AB":
        return letter
    return {"A": "B", "B": "A"}[letter]
