"""Whose model labels an export holds: `export --judge NAME` picks one judge, labels of several judges need
`--mixed`, and a judge measured as a first pass (agreement with people under 60 %, the starter) gets one warning
line with its measured agreement."""

from collections.abc import Callable

from labeler.errors import LabelerError, flag, option
from labeler.store import Store

STARTER = "starter"  # labeler.judge.backends.starter.STARTER, without importing torch-side code here
FIRST_PASS_AGREEMENT = 0.6  # a judge measured below this writes a first pass for review, not labels (README)


def checked_judge(store: Store, judge: str | None, min_confidence: float | None, mixed: bool,
                  warn: Callable[[str], None] | None) -> str | None:
    """The judge id `judge` names; refuses labels of several judges without `mixed`; warns of first-pass judges."""
    judge_id = export_judge_id(store, judge) if judge is not None else None
    for line in first_pass_warnings(store, _label_judges(store, min_confidence, judge_id, mixed)):
        (warn or (lambda message: None))(line)
    return judge_id


def _judge_names(store: Store) -> dict[str, tuple[str, float | None, str]]:
    """judge_id -> (version name, measured agreement, on what) of the starter and every trained version."""
    from labeler.judge.backends import starter

    names = {}
    if starter.available():  # the README's figure: the dev pairs, else the training run's held-out split
        shipped = starter.manifest()
        judge, dev = shipped["judge"], (shipped.get("dev_metrics") or {}).get("overall")
        names[judge["judge_id"]] = ((STARTER, dev["accuracy"], f"{dev['n']} dev pairs") if dev else
                                    (STARTER, judge.get("heldout_agreement"), f"{judge.get('heldout_n')} held-out pairs"))
    for judge_id, version, agreement, n in store.judge_agreements():
        names[judge_id] = (version, agreement, f"{n} held-out pairs")
    return names


def export_judge_id(store: Store, name: str) -> str:
    """`export --judge NAME`: a version name (`starter`, `v002-star-dpo`) or a judge id as exports show it."""
    names = _judge_names(store)
    found = [judge_id for judge_id, (version, _, _) in names.items() if version == name]
    if found:
        return found[0]
    if name in names or store.has_judgments_by(name):
        return name
    known = sorted({version for version, _, _ in names.values()})
    raise LabelerError(f"{option('judge', name)}: no such judge version or judge id (versions: {', '.join(known)}; "
                       "judge ids: the judge_id column of an export)")


def _label_judges(store: Store, min_confidence: float | None, judge_id: str | None,
                  mixed: bool) -> list[tuple[str, int]]:
    judges = store.export_label_judges(min_confidence, judge_id)
    if len(judges) > 1 and not mixed:
        names = _judge_names(store)
        listed = ", ".join(f"{names.get(j, (j,))[0]} ({n})" for j, n in judges)
        raise LabelerError(f"the model labels come from {len(judges)} judges: {listed}; export one judge's labels "
                           f"with {option('judge', 'NAME')}, or all of them with {flag('mixed')}")
    return judges


def first_pass_warnings(store: Store, judges: list[tuple[str, int]]) -> list[str]:
    """One line per judge in the export that the README calls a first pass: the starter, and any judge whose
    measured agreement with people is under FIRST_PASS_AGREEMENT."""
    names, lines = _judge_names(store), []
    for judge_id, n in judges:
        version, agreement, measured_on = names.get(judge_id, (None, None, ""))
        if agreement is not None and (version == STARTER or agreement < FIRST_PASS_AGREEMENT):
            lines.append(f"warning: {n} label(s) from judge {version}, which agreed with people {agreement:.1%} of "
                         f"the time ({measured_on}): a first pass to review, not final labels")
    return lines
