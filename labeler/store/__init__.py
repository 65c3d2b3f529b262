"""The store: one DuckDB file. All SQL of labeler lives in this package."""

from pathlib import Path

from labeler.store import audits as _audits
from labeler.store import calibrations as _calibrations
from labeler.store import evaluation as _evaluation
from labeler.store import exports as _exports
from labeler.store import judges as _judges
from labeler.store import judgments as _judgments
from labeler.store import leases as _leases
from labeler.store import pairs as _pairs
from labeler.store import rank_review as _rank_review
from labeler.store import rankings as _rankings
from labeler.store import reports as _reports
from labeler.store import staging as _staging
from labeler.store import review as _review
from labeler.store.db import connect, transaction
from labeler.store.pairs import FieldMap, IngestCounts
from labeler.store.review import Agreement, AnswerCounts
from schemas import (CalibrationRecord, EvalRow, Judgment, Pair, QuarantineRow, ReviewAnswer, ReviewQueue,
                     ReviewRecord, RoutingCandidate, Sample, StatusReport)

__all__ = ["Store", "FieldMap", "IngestCounts", "Agreement", "AnswerCounts"]


class Store:
    """A thin object over one DuckDB connection; every method is one unit of work."""

    def __init__(self, path: str | Path, create: bool = True, read_only: bool = False):
        """`create`: a new (or empty) file becomes a store; else only a labeler store is opened. `read_only`: for
        the commands that only read (a store on a read-only filesystem, a file another reader holds)."""
        self.path = Path(path)
        self.create, self.read_only = create, read_only
        self._con = None
        if not read_only:
            _reports.mark_stale_runs(self.con)
        self.release()

    @property
    def con(self):
        """Opened on demand: long jobs `release()` it between batches so other processes can read the file."""
        if self._con is None:
            self._con = connect(self.path, create=self.create, read_only=self.read_only)
        return self._con

    def release(self) -> None:
        """Close the connection (DuckDB holds a file lock while it is open); the next call reopens it."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def close(self) -> None:
        self.release()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ingest: stage a file (or an Arrow table) as JSON rows, maybe convert them to our layout, then check them
    def stage(self, kind: str, source) -> None:
        """`source`: a path for kind jsonl / json-array / parquet / csv, a pyarrow Table for kind arrow."""
        if kind == "arrow":
            _staging.stage_arrow(self.con, source)
        else:
            _staging.STAGERS[kind](self.con, source)

    def staged_columns(self) -> list[str]:
        return _staging.staged_columns(self.con)

    def staged_has_lists(self) -> bool:
        return _staging.staged_has_lists(self.con)

    def convert_staged(self, convert) -> int:
        return _staging.convert_staged(self.con, convert)

    def check_staged(self, fields: FieldMap, max_chars: int) -> None:
        _pairs.validate_staged(self.con, fields, max_chars)
        _pairs.resolve_staged(self.con)

    def file_column_types(self, kind: str, path: Path) -> dict[str, str]:
        return _staging.file_column_types(self.con, kind, path)

    def staged_problems(self, id_field: str) -> list[tuple]:
        return _pairs.staged_problems(self.con, id_field)

    def commit_staged(self, file_label: str, id_field: str) -> IngestCounts:
        with transaction(self.con):
            return _pairs.commit_staged(self.con, file_label, id_field)

    def quarantine_rows(self, file_label: str | None = None) -> list[QuarantineRow]:
        return _pairs.quarantine_rows(self.con, file_label)

    def quarantine_for_file(self, file_label: str) -> list[tuple]:
        return _pairs.quarantine_for_file(self.con, file_label)

    # N responses per prompt (labeler rank): groups, the pairs compared, the responses' scores
    def save_groups(self, file_label: str, found) -> int:
        """`found`: (line, schemas.rankings.Group) of the input just committed; links its gold pairs too."""
        with transaction(self.con):
            new = _rankings.save_groups(self.con, file_label, found)
            _rankings.link_staged_pairs(self.con)
            return new

    def groups(self, group_ids: list[str] | None = None):
        return _rankings.groups(self.con, group_ids)

    def unranked_groups(self, judge_key: str, limit: int | None = None) -> list[str]:
        return _rankings.unranked(self.con, judge_key, limit)

    def group_pairs(self, group_ids: list[str]) -> dict[str, dict[tuple[int, int], str]]:
        return _rankings.group_pairs(self.con, group_ids)

    def add_group_pairs(self, wanted: list[tuple[str, int, int]]) -> None:
        with transaction(self.con):
            _rankings.add_pairs(self.con, wanted)

    def link_group_pairs(self, links: list[tuple[str, int, int, str]]) -> None:
        with transaction(self.con):
            _rankings.link_pairs(self.con, links)

    def pairs_by_id(self, pair_ids: list[str]) -> list[tuple]:
        return _rankings.pairs_by_id(self.con, pair_ids)

    def pair_outcomes(self, judge_key: str, pair_ids: list[str]) -> dict[str, tuple]:
        return _rankings.outcomes(self.con, judge_key, pair_ids)

    def save_scores(self, run_id: str, scores, groups: int) -> None:
        with transaction(self.con):
            _rankings.save_scores(self.con, scores)
            _judgments.advance_run(self.con, run_id, groups)

    def rank_scores(self, judge_key: str | None = None):
        """group id -> its latest ranking's scores (list of schemas.rankings.ResponseScore)."""
        return _rankings.scores(self.con, judge_key)

    def human_group_pairs(self, group_ids: list[str], ties: bool = False) -> list[tuple[str, int, int, str]]:
        return _rankings.human_pairs(self.con, group_ids, ties)

    # judging
    def pending_pairs(self, judge_key: str, limit: int | None = None, skip_human: bool = False,
                      pair_ids: list[str] | None = None) -> list[Pair]:
        return _judgments.pending_pairs(self.con, judge_key, limit, skip_human, pair_ids)

    def claim_pairs(self, judge_key: str, run_id: str, candidates: list[str], limit: int) -> tuple[list[str], int]:
        with transaction(self.con):
            return _leases.claim(self.con, judge_key, run_id, candidates, limit)

    def unfinished_run(self, judge_key: str, command: str) -> tuple[str, int, int] | None:
        return _leases.unfinished_run(self.con, judge_key, command)

    def save_batch(self, run_id: str, judgments: list[Judgment], samples: list[Sample]) -> None:
        with transaction(self.con):
            _judgments.save_judgments(self.con, judgments, samples)
            _judgments.advance_run(self.con, run_id, len(judgments))

    def save_judged(self, judgments: list[Judgment], samples: list[Sample]) -> None:
        """A batch of judgments outside a pair run's count (`labeler rank` counts its groups)."""
        with transaction(self.con):
            _judgments.save_judgments(self.con, judgments, samples)

    def samples_for(self, pair_id: str, judge_key: str) -> list[Sample]:
        return _judgments.samples_for(self.con, pair_id, judge_key)

    def start_run(self, run_id: str, command: str, n_target: int, judge_key: str | None = None,
                  judge_id: str | None = None, mode: str | None = None, samples: int | None = None,
                  params: dict | None = None) -> None:
        _judgments.start_run(self.con, run_id, command, judge_key, judge_id, mode, samples, params or {}, n_target)

    def finish_run(self, run_id: str, status: str) -> None:
        with transaction(self.con):
            _judgments.finish_run(self.con, run_id, status)
            _leases.release(self.con, run_id)

    # reports
    def status(self) -> StatusReport:
        c = self.con
        return StatusReport(
            db=str(self.path),
            pairs=_reports.scalar(c, "SELECT count(*) FROM pairs"),
            by_state=_reports.state_counts(c),
            label_balance=_reports.label_balance(c),
            human_labels=_reports.human_balance(c),
            confidence_histogram=_reports.confidence_histogram(c),
            quarantined=_reports.scalar(c, "SELECT count(*) FROM quarantine"),
            runs=_reports.recent_runs(c),
            review=_review.queue(c),
        )

    def count(self, table: str) -> int:
        if table not in {"pairs", "gold_labels", "judgments", "samples", "runs", "quarantine", "rank_groups",
                         "rank_pairs", "rank_scores"}:
            raise ValueError(table)
        return _reports.scalar(self.con, f"SELECT count(*) FROM {table}")

    def export_rows(self, min_confidence: float | None = None):
        return _exports.export_rows(self.con, min_confidence)

    def copy_export(self, out: Path, fmt: str, dpo: bool, min_confidence: float | None,
                    columns: list[str] | None = None, judge_id: str | None = None) -> int:
        return _exports.copy_export(self.con, out, fmt, dpo, min_confidence, columns, judge_id)

    def export_arrow(self, dpo: bool, min_confidence: float | None, columns: list[str] | None = None,
                     judge_id: str | None = None):
        return _exports.export_arrow(self.con, dpo, min_confidence, columns, judge_id)

    def has_judgments_by(self, judge_id: str) -> bool:
        return self.con.execute("SELECT count(*) FROM judgments WHERE judge_id = ?", [judge_id]).fetchone()[0] > 0

    def export_label_judges(self, min_confidence: float | None, judge_id: str | None = None) -> list[tuple[str, int]]:
        return _exports.label_judges(self.con, min_confidence, judge_id)

    # human review (labeler review push / pull)
    def review_candidates(self, dataset: str) -> list[RoutingCandidate]:
        return _review.candidates(self.con, dataset)

    def queue_for_review(self, dataset: str, routes) -> int:
        """`routes`: (candidate, reason) pairs; returns how many were newly queued."""
        with transaction(self.con):
            return _review.add_routes(self.con, dataset, routes)

    def queue_suspects(self, dataset: str) -> int:
        """Queue the pairs whose human label the latest audit flagged; returns how many were newly queued."""
        with transaction(self.con):
            return _audits.queue_suspects(self.con, dataset)

    def save_audit(self, judge_id: str, rows) -> None:
        with transaction(self.con):
            _audits.save(self.con, judge_id, rows)

    def suspects(self) -> dict[str, float]:
        """Pairs whose human label the latest audit flagged (and that label still stands): P(human's choice)."""
        return _audits.flagged(self.con)

    def review_records_to_push(self, dataset: str, limit: int | None = None) -> list[ReviewRecord]:
        return _review.records_to_push(self.con, dataset, limit)

    def mark_review_pushed(self, dataset: str, pair_ids: list[str]) -> None:
        _review.mark_pushed(self.con, dataset, pair_ids)

    def forget_review_pushes(self, dataset: str) -> int:
        return _review.forget_pushes(self.con, dataset)

    def review_unpushed(self, dataset: str) -> int:
        return _review.unpushed_count(self.con, dataset)

    def save_review_answers(self, dataset: str, answers: list[ReviewAnswer], seen_pair_ids: list[str]) -> AnswerCounts:
        with transaction(self.con):
            return _review.save_answers(self.con, dataset, answers, seen_pair_ids)

    def review_agreement(self, dataset: str) -> Agreement:
        return _review.agreement(self.con, dataset)

    def review_queue(self) -> ReviewQueue:
        return _review.queue(self.con)

    # ranking review (labeler review push / pull --rankings)
    def rank_review_candidates(self, dataset: str):
        """group id -> latest judge scores (schemas.rankings.ResponseScore) of groups not queued nor human-ranked."""
        return _rank_review.candidates(self.con, dataset)

    def queue_rankings_for_review(self, dataset: str, routes) -> int:
        """`routes`: schemas.rankings.RankRoute; returns how many were newly queued."""
        with transaction(self.con):
            return _rank_review.add_routes(self.con, dataset, routes)

    def rank_review_records_to_push(self, dataset: str, limit: int | None = None):
        return _rank_review.records_to_push(self.con, dataset, limit)

    def mark_rankings_pushed(self, dataset: str, group_ids: list[str]) -> None:
        _rank_review.mark_pushed(self.con, dataset, group_ids)

    def forget_ranking_pushes(self, dataset: str, n: int) -> int:
        return _rank_review.forget_pushes(self.con, dataset, n)

    def rank_review_unpushed(self, dataset: str) -> int:
        return _rank_review.unpushed_count(self.con, dataset)

    def rank_review_sizes(self, dataset: str) -> list[int]:
        return _rank_review.pushed_sizes(self.con, dataset)

    def save_ranking_answers(self, dataset: str, n: int, answers, seen_group_ids: list[str]):
        """`answers`: schemas.rankings.RankAnswer of the records of `n` responses seen on the server; returns
        labeler.store.rank_review.RankAnswerCounts."""
        with transaction(self.con):
            return _rank_review.save_answers(self.con, dataset, n, answers, seen_group_ids)

    # evaluation and calibration (labeler eval / labeler calibrate)
    def staged_pair_ids(self, labelled_only: bool = True) -> list[str]:
        """Ids of the file ingested last, in line order; call right after `ingest_file`, before `release()`."""
        return _evaluation.staged_pair_ids(self.con, labelled_only)

    def staged_row_pairs(self) -> dict[int, str]:
        """Row (from 1) -> pair id of the part ingested last; call right after ingesting it."""
        return _pairs.staged_row_pairs(self.con)

    def eval_rows(self, judge_key: str, pair_ids: list[str]) -> list[EvalRow]:
        return _evaluation.rows_for_judge_key(self.con, judge_key, pair_ids)

    def eval_samples(self, judge_key: str, pair_ids: list[str]) -> list[Sample]:
        return _evaluation.samples_for_pairs(self.con, judge_key, pair_ids)

    def calibration_rows(self, judge_id: str, mode: str, samples: int) -> list[EvalRow]:
        return _evaluation.rows_for_calibration(self.con, judge_id, mode, samples)

    def calibration(self, judge_id: str, mode: str, samples: int) -> CalibrationRecord | None:
        return _calibrations.get(self.con, judge_id, mode, samples)

    def save_calibration(self, record: CalibrationRecord) -> None:
        _calibrations.save(self.con, record)

    def delete_calibration(self, judge_id: str, mode: str, samples: int) -> int:
        return _calibrations.delete(self.con, judge_id, mode, samples)

    # judge versions and the gold split (labeler retrain / labeler judges)
    def gold_pairs(self):
        """Pairs with a human majority label (list of schemas.GoldPair), with their stored split if any."""
        return _judges.gold_pairs(self.con)

    def save_split(self, assignments: list[tuple[str, str, str]], seed: int) -> int:
        with transaction(self.con):
            return _judges.save_split(self.con, assignments, seed)

    def judged_labels(self, judge_key: str, pair_ids: list[str]) -> dict[str, str | None]:
        return _judges.judged_labels(self.con, judge_key, pair_ids)

    def label_changes(self, judge_key: str, pair_ids: list[str]) -> tuple[int, int]:
        return _judges.label_changes(self.con, judge_key, pair_ids)

    def judge_versions(self):
        return _judges.versions(self.con)

    def judge_agreements(self) -> list[tuple[str, str, float | None, int]]:
        """(judge_id, version, held-out agreement, held-out pairs) of every registered version."""
        return _judges.agreements(self.con)

    def judge_paths(self) -> list[str]:
        return _judges.paths(self.con)

    def judge_version(self, name: str):
        return _judges.version(self.con, name)

    def active_judge(self):
        return _judges.active(self.con)

    def register_judge(self, record) -> None:
        """Insert a version; when `record.active`, deactivate the others in the same transaction."""
        with transaction(self.con):
            _judges.register(self.con, record)

    def activate_judge(self, name: str | None) -> None:
        with transaction(self.con):
            _judges.activate(self.con, name)
