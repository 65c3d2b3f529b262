"""labeler: turn unlabeled prompt/response pairs into preference labels with a GenRM judge.

The stages are functions here (`labeler.api`, loaded on first use so `import labeler` stays light):
`labeler.ingest`, `labeler.annotate`, `labeler.rank`, `labeler.export`, `labeler.evaluate`, `labeler.retrain`,
`labeler.status`.
"""

__version__ = "0.1.0"
__all__ = ["annotate", "evaluate", "export", "ingest", "rank", "retrain", "status"]


def __getattr__(name: str):
    if name in __all__:
        from labeler import api

        globals().update({n: getattr(api, n) for n in __all__})
        return globals()[name]
    raise AttributeError(f"module 'labeler' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
