"""Optional parts of labeler (`pip install 'labeler[EXTRA]'`): a code path that needs one calls `require` before any
work, so a missing extra is one `Error:` line naming the install command, not a traceback half-way through."""

import importlib.util
import sys

from labeler.errors import LabelerError

# extra -> the modules it brings (as imported); pyproject.toml's [project.optional-dependencies] declares them.
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("trl", "peft"),
    "review": ("argilla",),
    "plots": ("matplotlib",),
    "ray": ("ray",),
    "vllm": ("vllm",),
    "gguf": ("llama_cpp",),
}


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here (found without importing them)."""
    return [name for name in EXTRAS[extra] if not _installed(name)]


def _installed(name: str) -> bool:
    if sys.modules.get(name) is not None:  # already imported (a module put there by hand may carry no spec)
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def require(extra: str, needed_by: str) -> None:
    """Raise a one-line LabelerError when `extra` is not installed; `needed_by` says what needs it."""
    absent = missing(extra)
    if absent:
        raise LabelerError(f"{needed_by} needs the {extra} extra ({', '.join(absent)} not installed): "
                           f"pip install 'labeler[{extra}]'")
