"""Regenerate schemas/json/*.schema.json: `python -m schemas`."""

import json
from pathlib import Path

from schemas import ALL_MODELS

JSON_DIR = Path(__file__).parent / "json"


def render(name: str) -> str:
    return json.dumps(ALL_MODELS[name].model_json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    JSON_DIR.mkdir(exist_ok=True)
    for name in ALL_MODELS:
        (JSON_DIR / f"{name}.schema.json").write_text(render(name))
    print(f"wrote {len(ALL_MODELS)} schemas to {JSON_DIR}")


if __name__ == "__main__":
    main()
