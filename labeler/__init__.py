"""labeler: turn unlabeled prompt/response pairs into preference labels with a GenRM judge.

The stages are functions here (`labeler.api`, loaded on first use so `import labeler` stays light):
`labeler.ingest`, `labeler.annotate`, `labeler.rank`, `labeler.export`, `labeler.evaluate`, `labeler.retrain`,
`labeler.status`, `labeler.calibrate`, `labeler.judges`, `labeler.use_judge`, `labeler.review_push`,
`labeler.review_pull`, `labeler.audit` (suspect human labels) and `labeler.default_model` (where the default model
lives). `annotate` and `export` also take and return a `datasets.Dataset` or a list of dicts.
"""

__version__ = "0.1.0"
__all__ = ["annotate", "audit", "calibrate", "clear_calibration", "default_model", "evaluate", "export", "ingest",
           "judges", "rank", "retrain", "review_pull", "review_push", "status", "use_judge"]


def __getattr__(name: str):
    if name in __all__:
        from labeler import api

        globals().update({n: getattr(api, n) for n in __all__})
        return globals()[name]
    raise AttributeError(f"module 'labeler' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
