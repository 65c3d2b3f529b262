"""Write examples/quickstart.ipynb from examples/quickstart.py: each `# %%` block becomes a cell (`# %% [markdown]`
blocks are markdown cells with the leading `# ` removed), so the notebook runs exactly the script's code.
tests/test_quickstart.py checks that the committed notebook is what this writes.

    .venv/bin/python examples/build_notebook.py
"""

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPT, NOTEBOOK = HERE / "quickstart.py", HERE / "quickstart.ipynb"


def cells(source: str) -> list[dict]:
    out = []
    for block in re.split(r"^# %%", source, flags=re.M)[1:]:
        header, _, body = block.partition("\n")
        body = body.strip("\n")
        if header.strip() == "[markdown]":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            out.append({"cell_type": "markdown", "metadata": {}, "source": text.splitlines(keepends=True)})
        else:
            out.append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                        "source": body.splitlines(keepends=True)})
    return out


def notebook(source: str) -> str:
    nb = {"cells": cells(source), "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i}"
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    NOTEBOOK.write_text(notebook(SCRIPT.read_text()))
    print(f"wrote {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
