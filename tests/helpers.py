"""Small shared test helpers (fixtures live in conftest.py)."""

import json
from pathlib import Path


def write_pairs(path: Path, n: int, labeled: bool = False, start: int = 0) -> Path:
    with path.open("w") as f:
        for i in range(start, start + n):
            row = {"id": f"p{i:03d}", "prompt": f"What is {i} + {i}?", "response_a": f"It is {2 * i}.",
                   "response_b": f"It is {2 * i + 1}.", "source": "arith"}
            if labeled:
                row["label"] = "A"
            f.write(json.dumps(row) + "\n")
    return path
