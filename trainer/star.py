"""Training rows from gold labels: STaR chains (star-dpo, star-sft), verdict tokens (genrm-sft), response pairs (bt).

STaR (Zelikman et al. 2022; STaR-DPO in Mahan et al. 2024): sample K rationales per order with the current
judge; chains whose verdict matches the gold label are chosen, the others rejected. An order with no correct
chain gets a rationalization: the judge is told the right verdict (`templates/rationalize.jinja`) and its
justification is trained against the plain cot prompt, which never contains the hint. A reviewer's note is a
chosen chain for the AB order (its A/B are the ones the reviewer saw).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ContextManager
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources

import jinja2

from labeler.judge.backends import SamplingParams
from labeler.judge.backends.base import sample_seed
from labeler.judge.judge import CHOICES, MARKER, Judge, JudgeConfig
from labeler.judge.parse import parse_verdict
from labeler.judge.prompts import POSITIONS, render, shorten
from labeler.progress import silent
from schemas import GoldPair, Sample, TrainingRow
from trainer.config import StarConfig

SWAP = {"A": "B", "B": "A"}


@dataclass
class StarStats:
    pairs: int = 0
    orders: int = 0
    reused_pairs: int = 0
    sampled_pairs: int = 0
    correct_chains: int = 0
    wrong_chains: int = 0
    orders_rationalized: int = 0
    rationalizations_kept: int = 0
    notes_used: int = 0
    orders_without_rows: int = 0
    rows: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def seen(label: str, position: str) -> str:
    """The gold letter as the judge sees it in `position` (BA shows response_b as Response A)."""
    return label if position == "AB" else SWAP[label]


def cot_config(star: StarConfig) -> JudgeConfig:
    return JudgeConfig(mode="cot", samples=star.samples, seed=star.seed, max_new_tokens=star.max_new_tokens,
                       temperature=star.temperature, top_p=star.top_p)


def cot_prompt(judge: Judge, gold: GoldPair, position: str) -> str:
    """The training prompt: exactly what the cot judge sees at inference (no hint)."""
    r = render("cot", gold.pair, position, judge.config.max_field_chars)
    return judge.backend.render_chat(r.system, r.user, r.assistant_prefix)


def direct_prompt(judge: Judge, gold: GoldPair, position: str) -> str:
    r = render("direct", gold.pair, position, judge.config.max_field_chars)
    return judge.backend.render_chat(r.system, r.user, r.assistant_prefix)


@cache
def _rationalize_template() -> jinja2.Template:
    source = resources.files("labeler.judge").joinpath("templates", "rationalize.jinja").read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(source)


def rationalize_prompt(judge: Judge, gold: GoldPair, position: str) -> str:
    """The judge prompt plus the hint "Response X is better" (X as seen in `position`); never trained on."""
    pair, limit = gold.pair, judge.config.max_field_chars
    first, second = (pair.response_a, pair.response_b) if position == "AB" else (pair.response_b, pair.response_a)
    template = _rationalize_template()
    context = template.new_context({"prompt": shorten(pair.prompt, limit), "response_a": shorten(first, limit),
                                    "response_b": shorten(second, limit), "answer": seen(gold.label, position)})
    blocks = {n: "".join(template.blocks[n](context)).strip("\n") for n in ("system", "user", "assistant_prefix")}
    return judge.backend.render_chat(blocks["system"], blocks["user"], blocks["assistant_prefix"])


def finish_chain(text: str, letter: str) -> str | None:
    """A chain that must end with [[letter]]: kept if its last marker is that letter, completed if it has no
    marker, dropped (None) if it argues for the other side."""
    verdict = parse_verdict(text)
    if verdict == letter:
        return text.strip()
    if verdict is None and text.strip():
        return f"{text.strip()}\n[[{letter}]]"
    return None


def rationalize(judge: Judge, needs: list[tuple[GoldPair, str]], star: StarConfig, batch_size: int,
                advance: Callable[[int], None] = lambda n: None) -> dict[tuple[str, str], list[str]]:
    """(pair_id, position) -> justifications of the gold verdict, sampled with the hint in the prompt."""
    out: dict[tuple[str, str], list[str]] = {}
    params = SamplingParams(star.max_new_tokens, star.temperature, star.top_p, star.seed, force_verdict=False)
    for start in range(0, len(needs), batch_size):
        chunk = needs[start : start + batch_size]
        prompts = [rationalize_prompt(judge, g, pos) for g, pos in chunk]
        seeds = [[sample_seed(star.seed, "rationalize", g.pair.pair_id, pos, j) for j in range(star.rationalize_samples)]
                 for g, pos in chunk]
        completions = judge.backend.generate(prompts, star.rationalize_samples, params, CHOICES, MARKER, seeds)
        for (g, pos), outs in zip(chunk, completions):
            kept = [finish_chain(c.text, seen(g.label, pos)) for c in outs]
            out[(g.pair.pair_id, pos)] = list(dict.fromkeys(k for k in kept if k))
        advance(len(chunk))
    return out


def star_rows(judge: Judge, gold: list[GoldPair], samples: dict[str, list[Sample]], star: StarConfig,
              method: str, iteration: int, batch_size: int,
              progress: Callable[[int], ContextManager] | None = None) -> tuple[list[TrainingRow], StarStats]:
    """Turn sampled chains into DPO pairs (star-dpo) or correct chains (star-sft), both orders kept."""
    stats = StarStats(pairs=len(gold), orders=2 * len(gold))
    chosen: dict[tuple[str, str], list[tuple[str, str]]] = {}
    rejected: dict[tuple[str, str], list[str]] = {}
    needs: list[tuple[GoldPair, str]] = []
    for g in gold:
        for pos in POSITIONS:
            key = (g.pair.pair_id, pos)
            chains = sorted((s for s in samples.get(g.pair.pair_id, []) if s.position == pos),
                            key=lambda s: s.sample_idx)
            good = [s.text.strip() for s in chains if s.verdict == g.label and s.text.strip()]
            bad = [s.text.strip() for s in chains if s.verdict != g.label and s.text.strip()]
            stats.correct_chains += len(good)
            stats.wrong_chains += len(bad)
            chosen[key] = [(t, "sample") for t in dict.fromkeys(good)]
            rejected[key] = list(dict.fromkeys(bad))
            if star.use_notes and pos == "AB":
                notes = [finish_chain(n, g.label) for n in g.notes]
                chosen[key] += [(n, "note") for n in notes if n]
                stats.notes_used += sum(n is not None for n in notes)
            if not good and star.rationalize and (method == "star-sft" or rejected[key]):
                needs.append((g, pos))
    if needs:
        stats.orders_rationalized = len(needs)
        with (progress or silent)(len(needs)) as advance:
            for key, texts in rationalize(judge, needs, star, batch_size, advance).items():
                chosen[key] += [(t, "rationalization") for t in texts]
                stats.rationalizations_kept += len(texts)
    rows: list[TrainingRow] = []
    for g in gold:
        for pos in POSITIONS:
            key = (g.pair.pair_id, pos)
            made = _rows_for(judge, g, pos, chosen[key], rejected[key], star.max_pairs_per_order, method, iteration)
            stats.orders_without_rows += not made
            rows += made
    stats.rows = len(rows)
    return rows, stats


def _rows_for(judge: Judge, g: GoldPair, pos: str, chosen: list[tuple[str, str]], rejected: list[str], cap: int,
              method: str, iteration: int) -> list[TrainingRow]:
    if not chosen or (method == "star-dpo" and not rejected):
        return []
    prompt = cot_prompt(judge, g, pos)
    base = dict(iteration=iteration, pair_id=g.pair.pair_id, position=pos, prompt=prompt)
    if method == "star-sft":
        return [TrainingRow(**base, kind="sft", chosen=text, origin=origin) for text, origin in chosen[:cap]]
    n = min(cap, max(len(chosen), len(rejected)))
    return [TrainingRow(**base, kind="dpo", chosen=chosen[i % len(chosen)][0], origin=chosen[i % len(chosen)][1],
                        rejected=rejected[i % len(rejected)], rejected_origin="sample") for i in range(n)]


def genrm_rows(judge: Judge, gold: list[GoldPair]) -> list[TrainingRow]:
    """genrm-sft: the direct prompt (ending in "Verdict: [[") and the gold letter as seen, then "]]"."""
    return [TrainingRow(iteration=1, pair_id=g.pair.pair_id, position=pos, kind="sft",
                        prompt=direct_prompt(judge, g, pos), chosen=f"{seen(g.label, pos)}]]", origin="gold")
            for g in gold for pos in POSITIONS]


def bt_rows(gold: list[GoldPair]) -> list[TrainingRow]:
    """bt: the user request with the better and the worse response (scored apart by the reward head)."""
    rows = []
    for g in gold:
        better, worse = (g.pair.response_a, g.pair.response_b) if g.label == "A" else (g.pair.response_b,
                                                                                       g.pair.response_a)
        rows.append(TrainingRow(iteration=1, pair_id=g.pair.pair_id, position="AB", kind="bt", prompt=g.pair.prompt,
                                chosen=better, rejected=worse, origin="gold", rejected_origin="gold",
                                source=g.pair.source))
    return rows
