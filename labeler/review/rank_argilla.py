"""Rankings in Argilla (SDK 2.8): push uncertain rankings as `RankingQuestion` records, pull reviewers' orders.

A dataset's fields and ranking values are fixed when it is made, and prompts have different numbers of
responses, so the rankings of N responses go to their own dataset, `<dataset>-rankings-<N>` (fields prompt,
response_1..response_N): no empty slot to drag around. Records are keyed by group id, each batch is marked as
pushed only after the server took it (as for pairs: a push that dies mid-way is finished by running it again).
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from labeler.errors import LabelerError
from labeler.progress import silent
from labeler.review import routing
from labeler.review.argilla import (_argilla_errors, _one_line, _quiet, _raw_records, _usernames, agent_name,
                                    find_dataset)
from labeler.store import Store
from labeler.store.rank_review import RankAnswerCounts, dataset_name
from schemas.rankings import RankAnswer, RankReviewRecord

RANKING = "ranking"
GUIDELINES = """Read the prompt and every response, then drag the responses into order: best first.

The pre-set order is the judge model's ranking. Prompts come here because the judge could not tell its best
two responses apart (their scores are within its uncertainty), or as a random audit of confident rankings.
Give two responses the same rank only when neither is better. Your order is stored as a preference on every
pair of responses, which retrains the judge.
Discard a record that cannot be judged (broken text, every response unusable)."""


@dataclass
class RankPushResult:
    datasets: dict[str, int] = field(default_factory=dict)  # Argilla dataset -> records pushed this run
    newly_routed: Counter = field(default_factory=Counter)
    left: int = 0
    requeued: int = 0
    ui_urls: dict[str, str] = field(default_factory=dict)

    @property
    def pushed(self) -> int:
        return sum(self.datasets.values())


@dataclass
class RankPullResult:
    datasets: list[str]
    counts: RankAnswerCounts


def push(store: Store, client, dataset: str, workspace: str, rules: routing.RoutingRules, limit: int | None = None,
         batch_size: int = 100, min_submitted: int = 1,
         progress: Callable[[int], object] | None = None) -> RankPushResult:
    """Route the uncertain rankings (plus the audit sample) into the queue, then send unsent ones, by N."""
    from argilla._exceptions import ArgillaError

    result = RankPushResult()
    routes = routing.route_rankings(store.rank_review_candidates(dataset), rules)
    store.queue_rankings_for_review(dataset, routes)
    result.newly_routed = Counter(r.route_reason for r in routes)
    records = store.rank_review_records_to_push(dataset, limit)
    remotes = {}
    with _argilla_errors("push failed, nothing sent"):
        for n in sorted({r.n for r in records} | set(store.rank_review_sizes(dataset))):
            remote, created = _dataset(client, dataset_name(dataset, n), workspace, n, True, min_submitted)
            remotes[n] = remote
            if created:
                result.requeued += store.forget_ranking_pushes(dataset, n)
    if result.requeued:
        records = store.rank_review_records_to_push(dataset, limit)
    store.release()
    done = 0
    with (progress or silent)(len(records)) as advance:
        for n in sorted({r.n for r in records}):
            name, of_n = dataset_name(dataset, n), [r for r in records if r.n == n]
            result.ui_urls[name] = f"{client.api_url.rstrip('/')}/dataset/{remotes[n].id}/annotation-mode"
            for start in range(0, len(of_n), batch_size):
                batch = of_n[start:start + batch_size]
                try:
                    with _quiet():
                        remotes[n].records.log([_to_argilla(r) for r in batch], batch_size=len(batch))
                except (ArgillaError, httpx.HTTPError) as exc:
                    raise LabelerError(f"push stopped after {done} of {len(records)} ranking records "
                                       f"({_one_line(exc)}); run it again to send the rest") from None
                store.mark_rankings_pushed(dataset, [r.group_id for r in batch])
                store.release()
                done += len(batch)
                result.datasets[name] = result.datasets.get(name, 0) + len(batch)
                advance(len(batch))
    result.left = store.rank_review_unpushed(dataset)
    return result


def pull(store: Store, client, dataset: str, workspace: str) -> RankPullResult:
    """Store every submitted order as human labels on the group's pairs; discarded records store nothing."""
    sizes = store.rank_review_sizes(dataset)
    if not sizes:
        raise LabelerError(f"no rankings were pushed to review under {dataset!r} from this database "
                           "(run `labeler review push --rankings` first)")
    found = []
    with _argilla_errors("pull failed, nothing stored"):
        usernames = _usernames(client)
        for n in sizes:
            remote, _ = _dataset(client, dataset_name(dataset, n), workspace, n, create=False)
            answers, seen = [], []
            for record in _raw_records(client, remote.id):
                if record.get("external_id"):
                    seen.append(record["external_id"])
                    answers.extend(a for a in (_answer(record["external_id"], n, r, usernames)
                                               for r in record.get("responses") or []) if a)
            found.append((n, answers, seen))
    total = RankAnswerCounts()
    for n, answers, seen in found:
        counts = store.save_ranking_answers(dataset, n, answers, seen)
        for name in vars(total):
            setattr(total, name, getattr(total, name) + getattr(counts, name))
    return RankPullResult([dataset_name(dataset, n) for n in sizes], total)


def _dataset(client, name: str, workspace: str, n: int, create: bool, min_submitted: int = 1):
    """(dataset, created): the ranking dataset of `n` responses, made with labeler's settings if asked to."""
    import argilla as rg

    remote = find_dataset(client, name, workspace, RANKING, create)
    if remote is not None:
        return remote, False
    settings = rg.Settings(
        guidelines=GUIDELINES,
        fields=[rg.TextField("prompt", title="Prompt", use_markdown=True),
                *(rg.TextField(_slot(i), title=f"Response {i + 1}", use_markdown=True) for i in range(n))],
        questions=[rg.RankingQuestion(RANKING, title="Order the responses, best first",
                                      values={_slot(i): f"Response {i + 1}" for i in range(n)})],
        metadata=[rg.TermsMetadataProperty("judge", title="Judge version"),
                  rg.TermsMetadataProperty("route_reason", title="Why it is here"),
                  rg.FloatMetadataProperty("n", title="Responses"),  # float: see argilla.py (noida-db)
                  rg.FloatMetadataProperty("margin", title="Judge's score margin, best over second"),
                  rg.FloatMetadataProperty("z", title="That margin in standard errors")],
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )
    with _quiet():
        return rg.Dataset(name=name, workspace=workspace, settings=settings, client=client).create(), True


def _slot(i: int) -> str:
    return f"response_{i + 1}"


def _to_argilla(r: RankReviewRecord):
    import argilla as rg

    agent = agent_name(r.judge_id, r.judge_key)
    fields = {"prompt": r.prompt, **{_slot(i): text for i, text in enumerate(r.responses)}}
    metadata = {"judge": agent, "route_reason": r.route_reason, "n": float(r.n), "margin": float(r.margin)}
    if r.z is not None and r.z != float("inf"):
        metadata["z"] = float(r.z)
    return rg.Record(id=r.group_id, fields=fields, metadata=metadata,
                     suggestions=[rg.Suggestion(RANKING, [_slot(i) for i in r.judge_order], agent=agent)])


def _answer(group_id: str, n: int, response: dict, usernames: dict[str, str]) -> RankAnswer | None:
    """A submitted order (every response ranked) or a discard; drafts and incomplete orders are None."""
    status = response.get("status")
    if status not in ("submitted", "discarded"):
        return None
    ranks = None
    if status == "submitted":
        items = ((response.get("values") or {}).get(RANKING) or {}).get("value") or []
        slots = {_slot(i): i for i in range(n)}
        ranks = {slots[item["value"]]: int(item["rank"]) for item in items
                 if item.get("value") in slots and item.get("rank") is not None}
        if len(ranks) != n:
            return None
    user_id = str(response.get("user_id"))
    return RankAnswer(group_id=group_id, reviewer=usernames.get(user_id, user_id), status=status, ranks=ranks,
                      answered_at=datetime.fromisoformat(response.get("updated_at") or response["inserted_at"]))
