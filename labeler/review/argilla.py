"""The only module that talks to Argilla (SDK 2.8): push doubtful labels as records, pull reviewers' answers.

Records are keyed by pair id (Argilla's record `id`, stored as its external id), so pushing again updates a
record instead of adding a second one. Each batch is marked as pushed in the store only after the server
took it: a push that dies mid-way is finished by running it again, without duplicates.
"""

import contextlib
import io
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from labeler.review import routing
from labeler.errors import LabelerError
from labeler.extras import require
from labeler.progress import silent
from labeler.store import Agreement, AnswerCounts, Store
from schemas import ReviewAnswer, ReviewRecord

PREFERENCE = "preference"
BETTER_RATIONALE = "better_rationale"
LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie"}
GUIDELINES = """Read the prompt and both responses, then pick the better response (or Tie).

The pre-selected answer is the judge model's label; its score is the judge's confidence. Records come here
because the judge was unsure (low confidence, the two presentation orders disagreed, or the votes were
tied), or as a random audit of confident labels. Judge each pair on its merits either way.

If the judge's rationale is wrong or thin, write a better one: it is kept for retraining the judge.
Discard a record that cannot be judged (broken text, both responses unusable)."""
PAGE = 500


@dataclass
class PushResult:
    dataset: str
    newly_routed: Counter = field(default_factory=Counter)
    pushed: int = 0
    left: int = 0
    requeued: int = 0
    ui_url: str = ""


@dataclass
class PullResult:
    dataset: str
    counts: AnswerCounts
    agreement: Agreement


def connect(url: str, api_key: str):
    """An SDK client, or one clear error for an unreachable server or a rejected key."""
    require("review", "pushing to and pulling from Argilla")
    import argilla as rg
    from argilla._exceptions import ArgillaCredentialsError, ArgillaError

    url = url.rstrip("/")
    try:
        reply = httpx.get(f"{url}/api/v1/version", timeout=10)
    except httpx.HTTPError as exc:
        raise LabelerError(f"cannot reach Argilla at {url} ({_one_line(exc)}); "
                           "start one with `labeler review serve` or check --url") from None
    if reply.status_code != 200:
        raise LabelerError(f"{url} does not look like an Argilla server "
                           f"(GET /api/v1/version answered {reply.status_code})")
    try:
        with _quiet():
            return rg.Argilla(api_url=url, api_key=api_key, retries=1)
    except ArgillaCredentialsError:
        raise LabelerError(f"Argilla at {url} rejected the API key (check --api-key or ARGILLA_API_KEY)") from None
    except (ArgillaError, httpx.HTTPError) as exc:
        raise LabelerError(f"cannot log in to Argilla at {url}: {_one_line(exc)}") from None


def push(store: Store, client, dataset: str, workspace: str, rules: routing.RoutingRules, limit: int | None = None,
         batch_size: int = 100, min_submitted: int = 1,
         progress: Callable[[int], object] | None = None, suspects: bool = False) -> PushResult:
    """Route the doubtful pairs (plus the audit sample) into the queue, then send unsent ones to `dataset`.
    `suspects`: queue the human labels `labeler audit` flagged instead (a second look at them)."""
    from argilla._exceptions import ArgillaError

    result = PushResult(dataset)
    with _argilla_errors("push failed, nothing sent"):
        remote, created = _dataset(client, dataset, workspace, create=True, min_submitted=min_submitted)
        declared = {m.name for m in remote.settings.metadata}  # a dataset made by an older labeler lacks some
    result.ui_url = f"{client.api_url.rstrip('/')}/dataset/{remote.id}/annotation-mode"
    if created:
        result.requeued = store.forget_review_pushes(dataset)
    if suspects:
        result.newly_routed = Counter({"suspect": store.queue_suspects(dataset)})
    else:
        routes = routing.route(store.review_candidates(dataset), rules)
        store.queue_for_review(dataset, routes)
        result.newly_routed = Counter(r.reason for r in routes)
    records = store.review_records_to_push(dataset, limit)
    store.release()
    with (progress or silent)(len(records)) as advance:
        for start in range(0, len(records), batch_size):
            batch = records[start:start + batch_size]
            records_out = [_to_argilla(r, declared) for r in batch]
            try:
                with _quiet():
                    remote.records.log(records_out, batch_size=len(batch))
            except (ArgillaError, httpx.HTTPError) as exc:  # a dead server shows up as an httpx transport error
                raise LabelerError(f"push stopped after {result.pushed} of {len(records)} records "
                                   f"({_one_line(exc)}); run it again to send the rest") from None
            store.mark_review_pushed(dataset, [r.pair_id for r in batch])
            store.release()  # readers (`labeler status`) get in between batches
            result.pushed += len(batch)
            advance(len(batch))
    result.left = store.review_unpushed(dataset)
    return result


def pull(store: Store, client, dataset: str, workspace: str) -> PullResult:
    """Store every submitted response as a human label; discarded records are marked, drafts ignored."""
    answers, seen = [], []
    with _argilla_errors("pull failed, nothing stored"):
        remote, _ = _dataset(client, dataset, workspace, create=False)
        usernames = _usernames(client)
        for record in _raw_records(client, remote.id):
            if not record.get("external_id"):
                continue
            seen.append(record["external_id"])
            answers.extend(a for a in (_answer(record["external_id"], r, usernames)
                                       for r in record.get("responses") or []) if a)
    counts = store.save_review_answers(dataset, answers, seen)
    return PullResult(dataset, counts, store.review_agreement(dataset))


def find_dataset(client, name: str, workspace: str, question: str, create: bool):
    """labeler's dataset `name` in `workspace` (it must ask `question`), or None where there is none yet and
    `create` is set; one clear error for a missing workspace or dataset, or a dataset labeler did not make."""
    with _quiet():
        if client.workspaces(workspace) is None:
            raise LabelerError(f"workspace {workspace!r} not found on {client.api_url} (pass --workspace)")
        remote = client.datasets(name, workspace=workspace)
    if remote is not None:
        if question not in {q.name for q in remote.questions}:
            raise LabelerError(f"dataset {name!r} in workspace {workspace!r} was not made by labeler "
                               f"(no {question!r} question); choose another --dataset")
        return remote
    if not create:
        raise LabelerError(f"dataset {name!r} not found in workspace {workspace!r} on {client.api_url} "
                           "(push to it first)")
    return None


def _dataset(client, name: str, workspace: str, create: bool, min_submitted: int = 1):
    """(dataset, created): the dataset `name` in `workspace`, made with labeler's settings if asked to."""
    import argilla as rg

    remote = find_dataset(client, name, workspace, PREFERENCE, create)
    if remote is not None:
        return remote, False
    settings = rg.Settings(
        guidelines=GUIDELINES,
        fields=[rg.TextField("prompt", title="Prompt", use_markdown=True),
                rg.TextField("response_a", title="Response A", use_markdown=True),
                rg.TextField("response_b", title="Response B", use_markdown=True),
                rg.TextField("judge_rationale", title="Judge's rationale", use_markdown=True, required=False)],
        questions=[rg.LabelQuestion(PREFERENCE, title="Which response is better?", labels=LABELS),
                   rg.TextQuestion(BETTER_RATIONALE, title="A better rationale (optional)", required=False)],
        # Float metadata only: integer range filters do not work on every search backend (noida-db).
        metadata=[rg.FloatMetadataProperty("confidence", title="Judge confidence"),
                  rg.TermsMetadataProperty("route_reason", title="Why it is here"),
                  rg.TermsMetadataProperty("judge", title="Judge version"),
                  # a reward judge's preference strength: |mean reward difference| and its spread over the heads
                  rg.FloatMetadataProperty("strength", title="Judge's reward difference"),
                  rg.FloatMetadataProperty("spread", title="Spread over the judge's heads")],
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )
    with _quiet():
        return rg.Dataset(name=name, workspace=workspace, settings=settings, client=client).create(), True


def _to_argilla(r: ReviewRecord, declared: set[str]):
    import argilla as rg

    agent = agent_name(r.judge_id, r.judge_key)
    fields = {"prompt": r.prompt, "response_a": r.response_a, "response_b": r.response_b}
    if r.judge_rationale.strip():
        fields["judge_rationale"] = r.judge_rationale
    suggestions = [rg.Suggestion(PREFERENCE, r.judge_label, score=r.confidence, agent=agent)] if r.judge_label else []
    metadata = {"confidence": float(r.confidence), "route_reason": r.route_reason, "judge": agent}
    if r.margin is not None:
        metadata |= {"strength": abs(float(r.margin)), "spread": float(r.margin_sd or 0.0)}
    return rg.Record(id=r.pair_id, fields=fields, suggestions=suggestions,
                     metadata={k: v for k, v in metadata.items() if k in declared})


def agent_name(judge_id: str, judge_key: str) -> str:
    """The judge as a suggestion's agent (Argilla allows only some characters there)."""
    return re.sub(r"[^a-zA-Z0-9\-_:./ ]", "_", f"{judge_id}/{judge_key}")


def _raw_records(client, dataset_id) -> Iterator[dict]:
    """Records with all responses as raw JSON: the SDK's `Record` cannot hold a discarded response whose
    values are null (the server stores those when a client discards without `"values": {}`)."""
    offset = 0
    while True:
        reply = client.http_client.get(f"/api/v1/datasets/{dataset_id}/records",
                                       params={"offset": offset, "limit": PAGE, "include": ["responses"]})
        reply.raise_for_status()
        items = reply.json()["items"]
        yield from items
        if len(items) < PAGE:
            return
        offset += len(items)


def _answer(pair_id: str, response: dict, usernames: dict[str, str]) -> ReviewAnswer | None:
    status = response.get("status")
    values = response.get("values") or {}
    label = (values.get(PREFERENCE) or {}).get("value")
    if status not in ("submitted", "discarded") or (status == "submitted" and label not in LABELS):
        return None  # a draft, or a submission without a preference (not possible with our required question)
    note = ((values.get(BETTER_RATIONALE) or {}).get("value") or "").strip() or None
    user_id = str(response.get("user_id"))
    return ReviewAnswer(pair_id=pair_id, reviewer=usernames.get(user_id, user_id), status=status,
                        label=label if status == "submitted" else None, note=note if status == "submitted" else None,
                        answered_at=datetime.fromisoformat(response.get("updated_at") or response["inserted_at"]))


def _usernames(client) -> dict[str, str]:
    """User id -> username; an admin key may not list users, and then the ids stand in for the names."""
    try:
        with _quiet():
            return {str(u.id): u.username for u in client.users}
    except Exception:  # noqa: BLE001 - the SDK raises several types for "forbidden"; names are a nicety
        return {}


@contextlib.contextmanager
def _argilla_errors(what: str):
    """SDK and HTTP failures become one `Error:` line; a 403 says which kind of key is needed."""
    from argilla._exceptions import ArgillaError, ForbiddenError

    try:
        yield
    except (ForbiddenError, httpx.HTTPStatusError) as exc:
        status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
        if status == 403:
            raise LabelerError(f"{what}: this API key's user may not do that here "
                               "(pull and creating datasets need an owner or admin key)") from None
        raise LabelerError(f"{what}: {_one_line(exc)}") from None
    except (ArgillaError, httpx.HTTPError) as exc:
        raise LabelerError(f"{what}: {_one_line(exc)}") from None


@contextlib.contextmanager
def _quiet():
    """The SDK prints tqdm bars and warnings (e.g. "dataset not found") to stderr; our CLI reports instead."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
