"""The evaluation report's charts and the trainer's loss curve, as PNG files.

Figures are built with `matplotlib.figure.Figure` and the Agg canvas, never pyplot,
so no display is needed and no global state is shared between runs. Every report
function writes its file atomically (temp file + rename) and returns its path.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

STUDENT_COLOUR = "#1f77b4"
TEACHER_COLOUR = "#ff7f0e"
BASE_COLOUR = "#9e9e9e"
COST_COLOUR = "#2ca02c"


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def plot_scores_by_intent(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Grouped bars per intent: base, student and teacher task score; rare intents marked with *."""
    intents: Mapping[str, Mapping[str, Any]] = summary.get("intents") or {}
    names = list(intents)
    labels = [name + (" *" if intents[name].get("rare") else "") for name in names]
    figure = Figure(figsize=(max(6.0, 1.1 * len(names) + 2), 4.2))
    axes = figure.add_subplot()
    width = 0.27
    series = (("base", "base_score", BASE_COLOUR), ("student", "student_score", STUDENT_COLOUR),
              ("teacher", "teacher_score", TEACHER_COLOUR))
    for offset, (label, key, colour) in zip((-width, 0.0, width), series, strict=True):
        values = [float(intents[name].get(key) or 0.0) for name in names]
        axes.bar([i + offset for i in range(len(names))], values, width, label=label, color=colour)
    axes.set_xticks(range(len(names)), labels, rotation=30, ha="right")
    axes.set_ylim(0, 1.2)
    axes.set_ylabel("task score")
    axes.set_title("Task score by intent" + ("  (* rare intent)" if any(i.get("rare") for i in intents.values())
                                             else ""))
    axes.legend(loc="upper center", ncol=3, fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def _sweep_figure(summary: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], list[float], Figure, Any]:
    """The sweep's rows by teacher share, the shares in percent, and a figure with one axes to draw them on."""
    sweep = sorted(summary.get("sweep") or [], key=lambda row: row["teacher_share"])
    figure = Figure(figsize=(7.0, 4.2))
    return sweep, [100 * row["teacher_share"] for row in sweep], figure, figure.add_subplot()


def plot_routing_sweep(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Teacher share vs blended score, cost per call on a second axis, the recommended threshold marked."""
    sweep, shares, figure, axes = _sweep_figure(summary)
    axes.plot(shares, [row["blended_score"] for row in sweep], "o-", color=STUDENT_COLOUR, label="blended score")
    labels: dict[tuple[float, float], list[str]] = {}  # thresholds that route alike share one point
    for row, share in zip(sweep, shares, strict=True):
        labels.setdefault((share, row["blended_score"]), []).append(f"{row['threshold']:g}")
    for (share, score), names in labels.items():
        axes.annotate("/".join(names), (share, score), textcoords="offset points", xytext=(4, -11), fontsize=7)
    teacher = summary.get("teacher_score")
    if teacher is not None:
        axes.axhline(teacher, color=TEACHER_COLOUR, linestyle="--", linewidth=1, label="teacher score")
        tolerance = float(summary.get("tolerance") or 0.0)
        axes.axhspan(teacher - tolerance, teacher, color=TEACHER_COLOUR, alpha=0.1)
    threshold = summary.get("recommended_threshold")
    chosen = [row for row in sweep if threshold is not None and math.isclose(row["threshold"], threshold)]
    if chosen:
        axes.plot([100 * chosen[0]["teacher_share"]], [chosen[0]["blended_score"]], marker="*", markersize=16,
                  color="crimson", linestyle="none", label=f"recommended ({threshold:g})")
    axes.set_xlabel("calls sent to the teacher (%)")
    axes.set_ylabel("blended task score")
    costs = axes.twinx()
    costs.plot(shares, [row["blended_cost_per_call"] for row in sweep], "s:", color=COST_COLOUR,
               label="cost per call")
    costs.set_ylabel("cost per call (USD)", color=COST_COLOUR)
    handles, names = axes.get_legend_handles_labels()
    more_handles, more_names = costs.get_legend_handles_labels()
    axes.legend(handles + more_handles, names + more_names, loc="lower right", fontsize=8)
    axes.set_title("Routing sweep: minimum-logprob threshold")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_field_accuracy(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Horizontal bars per answer field: base, student and teacher score under the field's rule."""
    fields: Mapping[str, Mapping[str, Any]] = summary.get("field_accuracy") or {}
    names = list(fields)
    figure = Figure(figsize=(7.5, max(3.0, 0.45 * len(names) + 1.2)))
    axes = figure.add_subplot()
    height = 0.27
    series = (("base", "base", BASE_COLOUR), ("student", "student", STUDENT_COLOUR),
              ("teacher (reference)", "teacher", TEACHER_COLOUR))
    for offset, (label, key, colour) in zip((height, 0.0, -height), series, strict=True):
        values = [float(fields[name].get(key) or 0.0) for name in names]
        axes.barh([i + offset for i in range(len(names))], values, height, label=label, color=colour)
    axes.set_yticks(range(len(names)), [f"{n} ({fields[n].get('rule', '')})" for n in names], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.05)
    axes.set_xlabel("score (exact: share right; token_f1: mean F1)")
    axes.set_title("Field by field")
    axes.legend(loc="lower left", fontsize=8)
    axes.grid(axis="x", alpha=0.3)
    return _save(figure, path)


def plot_deferral_curve(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Calls sent to the teacher vs the routed system's structured-field accuracy and all-right share."""
    sweep, shares, figure, axes = _sweep_figure(summary)
    for key, label, style in (("blended_structured_accuracy", "structured-field accuracy", "o-"),
                              ("blended_all_structured_right", "calls with every structured field right", "s--"),
                              ("blended_score", "task score", "^:")):
        points = [(x, row[key]) for x, row in zip(shares, sweep, strict=True) if row.get(key) is not None]
        if points:
            axes.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
    threshold = summary.get("recommended_threshold")
    chosen = [row for row in sweep if threshold is not None and math.isclose(row["threshold"], threshold)]
    if chosen and chosen[0].get("blended_structured_accuracy") is not None:
        axes.plot([100 * chosen[0]["teacher_share"]], [chosen[0]["blended_structured_accuracy"]], marker="*",
                  markersize=16, color="crimson", linestyle="none", label=f"recommended ({threshold:g})")
    auroc = summary.get("routing_auroc")
    axes.set_title("Deferral curve" + (f" (AUROC {auroc:.3f})" if auroc is not None else ""))
    axes.set_xlabel("calls sent to the teacher (%)")
    axes.set_ylabel("routed system")
    axes.legend(loc="lower right", fontsize=8)
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_ttft_distributions(student_ttft_ms: Sequence[float], teacher_ttft_ms: Sequence[float],
                            path: str | Path) -> Path:
    """Overlaid histograms of student and teacher time to first token, medians marked."""
    figure = Figure(figsize=(7.0, 4.0))
    axes = figure.add_subplot()
    values = [float(v) for v in (*student_ttft_ms, *teacher_ttft_ms)]
    top = max(values) if values else 1.0
    bins = [top * i / 30 for i in range(31)] if top > 0 else 30
    for label, data, colour in (("student", student_ttft_ms, STUDENT_COLOUR),
                                ("teacher", teacher_ttft_ms, TEACHER_COLOUR)):
        data = [float(v) for v in data]
        if not data:
            continue
        axes.hist(data, bins=bins, alpha=0.55, color=colour, label=f"{label} (n={len(data)})")
        ordered = sorted(data)
        middle = len(ordered) // 2
        median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        axes.axvline(median, color=colour, linestyle="--", linewidth=1)
        axes.text(median, 0.98, f" p50 {median:,.0f} ms", transform=axes.get_xaxis_transform(), fontsize=8,
                  color=colour, rotation=90, va="top", ha="right")
    axes.set_xlabel("time to first token (ms)")
    axes.set_ylabel("calls")
    axes.set_title("Time to first token: student (batched evaluation: throughput) vs teacher")
    axes.legend()
    return _save(figure, path)


VOICE_BUDGET_MS = 800  # what a voice agent can spend before the caller hears silence


def plot_ttft_served(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Student (one request at a time), teacher and routed (early fallback) TTFT side by side: p50 and p95 bars."""
    teacher = (summary.get("latency") or {}).get("teacher_ttft_ms") or {}
    series = [
        ("student\n(one request)", summary.get("student_ttft_single_p50_ms"),
         summary.get("student_ttft_single_p95_ms"), STUDENT_COLOUR),
        ("teacher\n(recorded)", summary.get("teacher_ttft_p50_ms"), teacher.get("p95"), TEACHER_COLOUR),
        ("routed\n(early fallback)", summary.get("routed_ttft_p50_ms"), summary.get("routed_ttft_p95_ms"),
         COST_COLOUR),
    ]
    figure = Figure(figsize=(7.0, 4.2))
    axes = figure.add_subplot()
    width = 0.38
    for i, (_, p50, p95, colour) in enumerate(series):
        for offset, value, alpha, name in ((-width / 2, p50, 1.0, "p50"), (width / 2, p95, 0.45, "p95")):
            if value is None:
                continue
            axes.bar(i + offset, float(value), width, color=colour, alpha=alpha)
            axes.annotate(f"{name}\n{float(value):,.0f}", (i + offset, float(value)), textcoords="offset points",
                          xytext=(0, 2), ha="center", fontsize=7)
    axes.axhline(VOICE_BUDGET_MS, color="crimson", linestyle="--", linewidth=1, label=f"{VOICE_BUDGET_MS} ms budget")
    tallest = max([float(v) for _, p50, p95, _ in series for v in (p50, p95) if v is not None] + [VOICE_BUDGET_MS])
    axes.set_ylim(0, tallest * 1.18)  # room for the labels above the bars
    axes.set_xticks(range(len(series)), [s[0] for s in series])
    axes.set_ylabel("time to first token (ms)")
    ratio = summary.get("ttft_ratio")
    axes.set_title("Time to first token as served" + (f" (student / teacher p50: {ratio:.2f})" if ratio else ""))
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def write_report_plots(summary: Mapping[str, Any], student_ttft_ms: Sequence[float],
                       teacher_ttft_ms: Sequence[float], directory: str | Path) -> dict[str, Path]:
    """Every chart under `directory`, by name (served TTFT when the summary has single-request figures)."""
    directory = Path(directory)
    return {
        "scores_by_intent": plot_scores_by_intent(summary, directory / "scores_by_intent.png"),
        "routing_sweep": plot_routing_sweep(summary, directory / "routing_sweep.png"),
        "ttft": plot_ttft_distributions(student_ttft_ms, teacher_ttft_ms, directory / "ttft.png"),
        **({"ttft_served": plot_ttft_served(summary, directory / "ttft_served.png")}
           if summary.get("student_ttft_single_p50_ms") is not None else {}),
        **({"field_accuracy": plot_field_accuracy(summary, directory / "field_accuracy.png"),
            "deferral_curve": plot_deferral_curve(summary, directory / "deferral_curve.png")}
           if summary.get("field_accuracy") else {}),
    }


def plot_loss_curve(curve: list[dict[str, Any]], validation: list[dict[str, Any]], path: Path) -> None:
    """The training run's loss per step, its running mean and the validation losses; written into the trainer's
    own temporary output folder, which is renamed into place as a whole."""
    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    steps = [p["step"] for p in curve]
    losses = [p["loss"] for p in curve]
    axes.plot(steps, losses, color="#9ab", linewidth=0.8, label="train loss (per step)")
    span = max(1, len(losses) // 20)
    if len(losses) > span:
        smooth = [sum(losses[max(0, i - span + 1): i + 1]) / len(losses[max(0, i - span + 1): i + 1])
                  for i in range(len(losses))]
        axes.plot(steps, smooth, color="#136", linewidth=1.5, label=f"train loss ({span}-step mean)")
    if validation:
        axes.plot([p["step"] for p in validation], [p["loss"] for p in validation], "o-", color="#c50",
                  label="validation loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (answer tokens)")
    axes.set_yscale("log")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
