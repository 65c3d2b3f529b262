"""PNG plots of `labeler eval` metrics (matplotlib, Agg backend: no display needed)."""

from pathlib import Path

from schemas.records import EvalMetrics, GroupMetrics, ReliabilityBin

MAX_SUBCATEGORY_BARS = 20
PLOTS = {
    "reliability": "reliability.png",
    "coverage": "coverage.png",
    "maj_at_k": "maj_at_k.png",
    "groups": "groups.png",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["axes.titlesize"] = 9  # judge ids are long
    return plt


def _title(m: EvalMetrics) -> str:
    return f"{m.judge_id}\n({m.mode}, K={m.samples}), n={m.n}"


def reliability_diagram(m: EvalMetrics, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0.5, 1.0], [0.5, 1.0], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")

    def draw(bins: list[ReliabilityBin], name: str, value: float | None, marker: str) -> None:
        used = [b for b in bins if b.n]
        label = f"{name} (ECE {value:.3f})" if value is not None else name
        ax.plot([b.confidence for b in used], [b.accuracy for b in used], marker=marker, label=label)
        for b in used:
            ax.annotate(str(b.n), (b.confidence, b.accuracy), textcoords="offset points", xytext=(4, -10), fontsize=7)

    draw(m.reliability, "raw", m.ece, "o")
    draw(m.reliability_calibrated, f"temperature-scaled, {m.calibration.folds}-fold CV", m.ece_calibrated, "s")
    ax.set(xlim=(0.48, 1.02), ylim=(-0.02, 1.02), xlabel="confidence (bin mean)", ylabel="agreement with humans",
           title=f"Reliability: {_title(m)}")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def coverage_plot(m: EvalMetrics, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot([p.coverage for p in m.coverage_curve], [p.accuracy for p in m.coverage_curve], marker=".", markersize=4,
            label="one point per distinct confidence")
    if m.coverage_curve_margin:
        ax.plot([p.coverage for p in m.coverage_curve_margin], [p.accuracy for p in m.coverage_curve_margin],
                linestyle="--", linewidth=1, label="ordered by |mean reward difference| alone (no spread)")
    c = m.coverage
    ax.scatter([c.coverage], [c.accuracy], color="red", zorder=3,
               label=f"threshold {c.threshold:.3f} ({c.confidence}): coverage {c.coverage:.0%}, accuracy {c.accuracy:.0%}")
    ax.axhline(m.accuracy, color="grey", linestyle=":", linewidth=1, label=f"all labels: {m.accuracy:.0%}")
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="coverage (share of labels kept, most confident first)",
           ylabel="accuracy of kept labels", title=f"Coverage: {_title(m)}")
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def majority_plot(m: EvalMetrics, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    votes = [p.votes for p in m.maj_at_k]
    acc = [p.accuracy for p in m.maj_at_k]
    low = [_width(p.accuracy - p.ci95[0]) for p in m.maj_at_k]
    high = [_width(p.ci95[1] - p.accuracy) for p in m.maj_at_k]
    ax.errorbar(votes, acc, yerr=[low, high], marker="o", capsize=3)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set(xticks=votes, ylim=(0, 1.02), xlabel="votes (k samples per order x 2 orders)",
           ylabel="agreement with humans", title=f"maj@k: {_title(m)}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _width(x: float | None) -> float:
    """An error bar's length: a Wilson bound can sit a rounding error on the wrong side of its estimate (at 0 % or
    100 %), and matplotlib refuses a negative length."""
    return max(0.0, x or 0.0)


def groups_plot(m: EvalMetrics, path: Path) -> Path:
    """Agreement per source, category and subcategory, with 95 % Wilson intervals."""
    plt = _pyplot()
    groups: list[tuple[str, GroupMetrics]] = [(f"source: {k}", v) for k, v in m.by_source.items()]
    groups += [(f"category: {k}", v) for k, v in m.by_category.items()]
    subs = sorted(m.by_subcategory.items(), key=lambda kv: -kv[1].n)[:MAX_SUBCATEGORY_BARS]
    groups += [(f"  {k}", v) for k, v in sorted(subs)]
    groups = groups or [("all", m)]
    shown = "" if len(subs) == len(m.by_subcategory) else f"\n({len(subs)} largest of {len(m.by_subcategory)} subcategories)"
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.32 * len(groups)))
    names = [f"{name} (n={g.n})" for name, g in groups][::-1]
    acc = [g.accuracy for _, g in groups][::-1]
    err = [[_width(g.accuracy - g.ci95[0]) for _, g in groups][::-1],
           [_width(g.ci95[1] - g.accuracy) for _, g in groups][::-1]]
    ax.barh(names, acc, xerr=err, capsize=2, color="tab:blue", alpha=0.8)
    ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set(xlim=(0, 1), xlabel="agreement with humans (95 % Wilson interval)", title=f"By group: {_title(m)}{shown}")
    ax.tick_params(axis="y", labelsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def write_all(m: EvalMetrics, out: Path) -> dict[str, Path]:
    makers = {"reliability": reliability_diagram, "coverage": coverage_plot, "maj_at_k": majority_plot,
              "groups": groups_plot}
    return {name: makers[name](m, out / PLOTS[name]) for name in PLOTS}
