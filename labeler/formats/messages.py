"""Chat messages in input rows: check a `[{role, content}, ...]` list, and write the readable transcript kept in
the `prompt` column (what Argilla shows and the judge template receives as `prompt`)."""

import json
import re

from labeler.errors import RowError

HH_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")
HH_ROLES = {"Human": "user", "Assistant": "assistant"}
ROLES = ("system", "user", "assistant")  # what a judge prompt can show; `tool`, `wizard`, ... are refused


def json_type(value) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
                       (dict, "object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def is_messages(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def as_messages(value, field: str) -> list[dict]:
    """A non-empty list of `{role, content}` with string content, as `[{"role", "content"}]` (other keys dropped)."""
    if not isinstance(value, list) or not value:
        raise RowError(field, f"must be a non-empty list of messages, got {json_type(value) if value != [] else 'empty array'}")
    out = []
    for i, message in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(message, dict):
            raise RowError(where, f"must be a message object with role and content, got {json_type(message)}")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role.strip():
            raise RowError(f"{where}.role", "missing" if role is None else f"must be a non-empty string, got {json_type(role)}")
        if not isinstance(content, str):
            raise RowError(f"{where}.content", f"must be a string, got {json_type(content)}")
        if role.strip().lower() not in ROLES:  # also a role that fakes a transcript header ("user]\n[Assistant")
            raise RowError(f"{where}.role", f"must be one of {', '.join(ROLES)}, got {json.dumps(role)[:60]}")
        out.append({"role": role.strip().lower(), "content": content})
    return out


def check_prompt(messages: list[dict], field: str) -> list[dict]:
    """A prompt conversation: an optional system message first, then turns that end with the user's."""
    roles = [m["role"] for m in messages]
    if "system" in roles[1:]:
        raise RowError(f"{field}[{roles.index('system', 1)}].role", "a system message may only come first")
    if not roles or roles[-1] != "user":
        got = roles[-1] if roles else "none"
        raise RowError(field, f"must end with a user message (the turn the responses answer), got {got}")
    return messages


def transcript(messages: list[dict]) -> str:
    """One user message is its text alone; a conversation is its turns in order, each under `[Role]`:

        [System]
        Answer briefly.

        [User]
        Hi!
    """
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"[{m['role'].capitalize()}]\n{m['content'].strip()}" for m in messages)


def single_turn(value, field: str, prompt: list[dict] | None = None) -> str:
    """A response: a string, or a message list that is the prompt (optional) plus one assistant message."""
    if isinstance(value, str):
        return value
    messages = as_messages(value, field)
    if prompt and messages[:len(prompt)] == prompt and len(messages) > len(prompt):
        messages = messages[len(prompt):]
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = ", ".join(m["role"] for m in messages)
        raise RowError(field, f"must be one assistant message, got {len(messages)} message(s) ({roles})")
    return messages[0]["content"]


def is_hh(text: str) -> bool:
    """An Anthropic HH-style transcript: `\\n\\nHuman: ... \\n\\nAssistant: ...`."""
    return text.startswith("\n\nHuman:") or text.startswith("Human:")


def hh_messages(text: str) -> list[dict]:
    """`\\n\\nHuman: q\\n\\nAssistant: a\\n\\nHuman: q2` -> user / assistant / user messages (a trailing empty
    `Assistant:` turn, where the response would follow, is left out)."""
    text = text if text.startswith("\n\n") else "\n\n" + text
    parts = HH_TURN.split(text)
    messages = [{"role": HH_ROLES[role], "content": content.strip()} for role, content in zip(parts[1::2], parts[2::2])]
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages
