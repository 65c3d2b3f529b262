"""The options that take one of a fixed set of words (--mode, --backend, --method, --format, --dtype), as
`Literal` types built from the lists the libraries check against: typer lists the words in --help and refuses any
other with the same usage error everywhere (`Invalid value for '--mode': 'x' is not one of 'direct', 'cot'.`,
exit 2). The value a command receives stays a plain string."""

from typing import Literal

from labeler.judge.backends import BACKENDS
from labeler.judge.backends.devices import DTYPES
from labeler.judge.prompts import MODES
from trainer.config import METHODS

EXPORT_FORMATS = ("jsonl", "parquet")  # labeler.pipeline.FORMATS (tests/test_cli_output.py checks they match)

Mode = Literal[MODES]  # type: ignore[valid-type]
Backend = Literal[tuple(BACKENDS)]  # type: ignore[valid-type]
Dtype = Literal[DTYPES]  # type: ignore[valid-type]
Method = Literal[METHODS]  # type: ignore[valid-type]
ExportFormat = Literal[EXPORT_FORMATS]  # type: ignore[valid-type]
