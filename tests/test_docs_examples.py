"""Every `labeler ...` example in the README and the docs names a real command with real options, and its command
runs in a test with each of those options. An example that needs what the tests cannot have is marked at the end
of its line: `# needs a GPU` or `# needs a server` (an Argilla server, an OpenAI-compatible server or a Ray cluster
elsewhere)."""

import ast
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

from labeler.cli import app

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"#.*\bneeds a (GPU|server)\b")
CLI = typer.main.get_command(app)


@dataclass(frozen=True)
class Invocation:
    path: tuple[str, ...]  # ("review", "push")
    options: frozenset[str]  # parameter names, e.g. {"threshold", "db"}
    where: str


def resolve(tokens: list[str], where: str) -> Invocation:
    """The command path and the option names of an argv after `labeler`; unknown ones raise ValueError."""
    command, path, i = CLI, [], 0
    while hasattr(command, "list_commands") and i < len(tokens) and tokens[i] in command.list_commands(None):
        command = command.get_command(None, tokens[i])
        path.append(tokens[i])
        i += 1
    by_flag = {flag: p.name for p in command.params for flag in (*p.opts, *getattr(p, "secondary_opts", ()))}
    by_flag["--help"] = "help"
    options = set()
    for token in tokens[i:]:
        flag = token.split("=", 1)[0]
        if flag.startswith("-") and len(flag) > 1 and not re.fullmatch(r"-?\d+(\.\d+)?", flag):
            if flag not in by_flag:
                raise ValueError(f"{where}: `labeler {' '.join(path)}` has no option {flag}")
            options.add(by_flag[flag])
    return Invocation(tuple(path), frozenset(options), where)


def _code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, command line) of the bash blocks, continuation lines joined."""
    lines, in_bash, pending, start = [], False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_bash = not in_bash and line.strip() in ("```bash", "```sh", "```console")
            continue
        if in_bash:
            start = start or number
            pending += line.rstrip().removesuffix("\\") + " "
            if not line.rstrip().endswith("\\"):
                lines.append((start, pending.strip()))
                pending, start = "", 0
    return lines


def _segments(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at ; && || | and command substitution), comments dropped."""
    lexer = shlex.shlex(line.replace('"$(', " $( ").replace(')"', " ) "), posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    segments = [[]]
    for token in lexer:
        if token.strip(";&|()") == "":
            segments.append([])
        elif token not in ("$", "eval") or segments[-1]:
            segments[-1].append(token)
    return [s for s in segments if s]


def doc_examples() -> list[tuple[Invocation, str, str]]:
    """(invocation, marker, where) of every `labeler` command in a bash block; marker '' when unmarked."""
    found = []
    for page in PAGES:
        for number, line in _code_lines(page.read_text()):
            where = f"{page.relative_to(ROOT)}:{number}"
            marker = MARKER.search(line)
            for tokens in _segments(line):
                if tokens[0] in ("labeler", ".venv/bin/labeler"):
                    found.append((resolve(tokens[1:], where), marker[1] if marker else "", where))
    return found


def _strings(node: ast.AST, names: dict[str, list[str]]) -> list[str]:
    """The string constants under `node`, with a name's assigned strings in place of the name (`*SERVE`)."""
    found = []
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            found.append(n.value)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            found += names.get(n.id, [])
    return found


def _assigned_strings(tree: ast.AST) -> dict[str, list[str]]:
    """name -> the string constants of every list or tuple assigned to it anywhere in the file."""
    names: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple)):
            strings = [n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.setdefault(target.id, []).extend(strings)
    return names


def invocations_in_tests() -> list[Invocation]:
    """Every CLI call in tests/: `run("annotate", ...)` (helpers.run, the `cli` fixture), `runner.invoke(app, [...])`,
    and `[sys.executable, "-m", "labeler", ...]`; list constants passed by name count (`run(*args)`)."""
    calls = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(path.read_text())
        names = _assigned_strings(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            tokens = [t for arg in node.args for t in _strings(arg, names)]
            if name == "run" and tokens[:2] == ["-m", "labeler"]:
                tokens = tokens[2:]
            elif name not in ("run", "invoke", "cli"):
                continue
            try:
                calls.append(resolve(tokens, f"{path.name}:{node.lineno}"))
            except ValueError:
                continue  # a test of a bad option
    return calls


def test_docs_have_examples_and_the_tests_have_calls():
    assert len(doc_examples()) > 50 and len(invocations_in_tests()) > 200


def test_every_doc_example_names_real_options():
    for invocation, _, _ in doc_examples():  # resolve() raised for an unknown option or command
        assert invocation.path, f"{invocation.where}: `labeler` without a command"


def test_every_option_of_a_doc_example_runs_in_a_test_or_the_line_is_marked():
    """Each unmarked example's command runs in some test with each of the example's options (not necessarily all
    of them in one test: a test that runs `annotate --mode cot` on the fake backend covers `--mode cot` of an
    example on the real model)."""
    tested: dict[tuple[str, ...], set[str]] = {}
    for call in invocations_in_tests():
        tested.setdefault(call.path, set()).update(call.options)
    uncovered = [f"{inv.where}: labeler {' '.join(inv.path)} {sorted(inv.options - tested.get(inv.path, set()))}"
                 for inv, marker, _ in doc_examples()
                 if not marker and (inv.path not in tested or not inv.options <= tested[inv.path])]
    assert uncovered == [], "no test runs these commands with these options; add one, or mark the line"


@pytest.mark.parametrize("line, expected", [
    ("labeler review push --threshold 0.8 --limit 200   # a comment", (("review", "push"), {"threshold", "limit"})),
    ('eval "$(labeler review env)"', (("review", "env"), set())),
    ("bash .ci/setup && .venv/bin/labeler annotate examples/pairs.jsonl", (("annotate",), set())),
    ("labeler export --out=x.jsonl -q", (("export",), {"out", "quiet"})),
])
def test_examples_are_read_from_shell_lines(tmp_path, monkeypatch, line, expected):
    page = tmp_path / "page.md"
    page.write_text(f"```bash\n{line}\n```\n")
    monkeypatch.setattr(f"{__name__}.PAGES", [page])
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (invocation, marker, _), = doc_examples()
    assert (invocation.path, set(invocation.options)) == expected and marker == ""
