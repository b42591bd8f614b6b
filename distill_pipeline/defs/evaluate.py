"""Evaluate and route: student vs teacher on the holdout, the promotion gate, the routing policy."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from distill_pipeline.backends.handoffs import Handoffs
from distill_pipeline.backends.serving import time_single_requests
from distill_pipeline.backends.trainers import JsonSchema, Log, is_local_adapter, local_student
from distill_pipeline.core.artifacts import EvalReport, StudentInfo
from distill_pipeline.core.chat import ChatModel, Completion
from distill_pipeline.core.evaluation import (
    GateConfig,
    build_record,
    build_records,
    champion_summary,
    gate,
    summarise,
)
from distill_pipeline.core.general import check_answer
from distill_pipeline.core.graders import build_graders
from distill_pipeline.core.latency import served_summary
from distill_pipeline.core.presets import EVAL_SIZES, SINGLE_REQUESTS, LoraSettings, preset
from distill_pipeline.core.report import readable, render_markdown
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings
from distill_pipeline.defs.util import png_markdown

HEADLINE_KEYS = ("base_score", "student_score", "teacher_score", "routed_score", "recommended_threshold",
                 "teacher_share", "student_ttft_p50_ms", "teacher_ttft_p50_ms", "student_cost_per_call",
                 "teacher_cost_per_call", "all_structured_right", "routing_auroc", "champion_score",
                 "student_ttft_single_p50_ms", "student_ttft_single_p95_ms", "routed_ttft_p50_ms", "ttft_ratio",
                 "cost_ratio")


class EvalConfig(dg.Config):
    max_examples: int | None = None  # None: the preset's size
    base_examples: int | None = None
    general_examples: int | None = None
    tolerance: float = 0.02  # routed score may trail the teacher by this much
    max_teacher_share: float = 0.5
    intent_floor: float = 0.8
    min_schema_pass_rate: float = 0.95
    champion_tolerance: float = 0.01  # a challenger may trail the student in force by this much
    structured_ratio: float = 0.99  # routed structured-field accuracy must reach this share of the teacher's
    # decode the local student constrained by the task's JSON schema and code set (the Router does the same)
    constrained_decoding: bool = True
    single_requests: int | None = None  # requests timed one at a time (streaming, after a warm-up); None: preset's


def gate_config(config: EvalConfig) -> GateConfig:
    return GateConfig(tolerance=config.tolerance, max_teacher_share=config.max_teacher_share,
                      intent_floor=config.intent_floor, min_schema_pass_rate=config.min_schema_pass_rate,
                      champion_tolerance=config.champion_tolerance)


def champion_in_force(layout: Handoffs, info: StudentInfo, settings: LoraSettings, log: Log,
                      json_schema: JsonSchema) -> tuple[str, ChatModel] | None:
    """The promoted student in force, when it is another local adapter that still exists; else None."""
    from distill_pipeline.core.artifacts import PolicyError

    if not layout.policy_path().exists():
        return None
    try:
        policy = layout.read_policy()
    except PolicyError:
        return None
    if (not policy.promoted or policy.student == info.student or policy.student_endpoint
            or not is_local_adapter(policy.student)):
        return None
    return policy.student, local_student(info, Path(policy.student), settings, log, json_schema)


def answer_all(model, requests: list[list[dict]], log, label: str, *, constrained: bool = True) -> list[Completion]:
    """The model's answers; with constrained=False the task's output schema is lifted for these requests (the
    general-purpose holdout asks for free text, which no answer forced into the task's JSON could match)."""
    if not requests:
        return []
    log(f"{label}: answering {len(requests)} held-out requests")
    schema = getattr(model, "json_schema", None)
    if not constrained and schema is not None:
        model.json_schema = None
    try:
        if hasattr(model, "complete_batch"):
            return model.complete_batch(requests)
        return [model.complete(messages) for messages in requests]
    finally:
        if schema is not None:
            model.json_schema = schema


@dg.asset(
    deps=["student_model", "eval_holdout"],
    kinds={"pytorch"},
    group_name="evaluate",
    code_version="1",
    description="Student vs teacher (and the untrained base model) on the held-out pass cases: task score per "
    "intent, hallucination rate, forgetting, TTFT and latency, cost per call, and the confidence routing sweep.",
)
def student_eval_report(context: dg.AssetExecutionContext, config: EvalConfig, pipeline: PipelineSettings,
                        openai: OpenAIResource) -> dg.MaterializeResult:
    from distill_pipeline.backends.chat_models import ReplayTeacher
    from distill_pipeline.backends.plots import write_report_plots

    task = pipeline.load_task()
    layout = pipeline.layout
    sizes = EVAL_SIZES[pipeline.preset]
    n, n_base, n_general = (config.max_examples or sizes[0], config.base_examples or sizes[1],
                            config.general_examples or sizes[2])
    holdout = layout.read_holdout_domain()[:n]
    general = layout.read_holdout_general()[:n_general]
    decoding = task.decoding_rules if config.constrained_decoding else None
    json_schema = decoding.for_messages if decoding is not None else None
    info = layout.read_student()
    models = pipeline.fine_tuner(openai, context.log.info, kind=info.trainer)  # the trainer that made the student
    settings = preset(info.preset or pipeline.preset)
    requests = [t.request_messages for t in holdout]

    student = models.student(info, settings, json_schema)
    student_answers = answer_all(student, requests, context.log.info, "student")
    general_student = answer_all(student, [g.request_messages for g in general], context.log.info, "student/general",
                                 constrained=False)
    n_single = min(config.single_requests or SINGLE_REQUESTS[pipeline.preset], len(requests))
    single = time_single_requests(student, requests[:n_single], warmup=requests[n_single:n_single + 1] or requests[:1],
                                  log=context.log.info)  # as the router serves it: the latency a caller feels
    del student
    base = models.base(info, settings, json_schema)
    base_answers = answer_all(base, requests[:n_base], context.log.info, "base") if base else []
    general_base = answer_all(base, [g.request_messages for g in general], context.log.info,
                              "base/general", constrained=False) if base else []
    del base
    teacher = ReplayTeacher(holdout, default_ttft_ms=None)
    teacher_answers = [teacher.complete(m) for m in requests]

    graders = build_graders(task)
    records = [build_record(t, student=s, teacher=r, task=task, graders=graders,
                            base=base_answers[i] if i < len(base_answers) else None)
               for i, (t, s, r) in enumerate(zip(holdout, student_answers, teacher_answers, strict=True))]
    champion = None
    in_force = champion_in_force(layout, info, settings, context.log.info, json_schema)
    if in_force is not None:  # the student serving now, on the same held-out calls: the one to beat
        name, model = in_force
        champion_answers = answer_all(model, requests, context.log.info, "champion")
        del model
        champion = champion_summary(build_records(holdout, student=champion_answers, teacher=teacher_answers,
                                                  task=task, graders=graders), name, task.field_rules)
    general_scores = [(float(check_answer(g.check, b.text)) if general_base else 0.0,
                       float(check_answer(g.check, s.text)))
                      for g, s, b in zip(general, general_student, general_base or general_student, strict=True)]
    summary = summarise(records, teacher_only_intents=task.teacher_only_intents, prices=task.price_table(),
                        rare_intent_share=task.rare_intent_share, tolerance=config.tolerance,
                        general_scores=general_scores if general_base else (), rules=task.field_rules,
                        structured_ratio=config.structured_ratio, champion=champion)
    summary.update(served_summary(summary, [(t.intent, s, r.ttft_ms) for t, s, r in
                                            zip(holdout, single, teacher_answers, strict=False)], task.field_rules))
    verdict = gate(summary, gate_config(config))
    markdown = render_markdown(summary, verdict)
    plots = write_report_plots(summary, [r.student_ttft_ms for r in records], [r.teacher_ttft_ms for r in records],
                               layout.report_dir())
    report = EvalReport(summary=summary, gate=verdict.to_dict(), gate_config=gate_config(config).__dict__,
                        student=info, run_id=context.run.run_id,
                        decoding=decoding.to_dict() if decoding is not None else None,
                        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        records=[r.__dict__ for r in records], plots={k: str(v) for k, v in plots.items()})
    written = layout.write_report(report, markdown)
    context.log.info(f"student {summary['student_score']:.3f} vs teacher {summary['teacher_score']:.3f}; "
                     f"gate {'passed' if verdict.passed else 'failed'}")
    metadata = {key: (readable(summary[key]) if summary[key] is not None else "none") for key in HEADLINE_KEYS}
    metadata.update({
        "field_accuracy": dg.MetadataValue.json({path: {"student": readable(row["student"]),
                                                        "teacher": readable(row["teacher"]),
                                                        "base": readable(row["base"]), "rule": row["rule"]}
                                                 for path, row in summary["field_accuracy"].items()}),
        "routing_signal": summary["routing_signal"],
        "routing_auroc_by_signal": dg.MetadataValue.json({k: readable(v) for k, v in
                                                          summary["routing_auroc_by_signal"].items()}),
        "constrained_decoding": decoding is not None,
        "dagster/row_count": len(records),
        "report": dg.MetadataValue.md(markdown),
        "gate_passed": verdict.passed,
        "gate_reasons": dg.MetadataValue.json(verdict.reasons),
        "student_hallucination_rate": readable(summary["student_hallucination_rate"]),
        "report_path": written.path,
        "report_sha256": written.sha256,
        **{f"plot/{name}": png_markdown(Path(path), name) for name, path in plots.items()},
    })
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(written.sha256))


@dg.asset(
    deps=[student_eval_report],
    kinds={"json"},
    group_name="evaluate",
    code_version="1",
    description="The routing policy in force (<storage root>/routing_policy/current.json): the promoted student, "
    "its logprob threshold and the teacher-only intents. Written only when the gate passes; earlier policies are "
    "kept beside it.",
    check_specs=[dg.AssetCheckSpec(
        "promotion_gate", asset="routing_policy", blocking=True,
        description="The promotion gate. Traffic is served routed, so it judges the routed system at the recommended "
        "threshold: routed score >= teacher - tolerance, teacher share <= the maximum, no intent below the floor, "
        "and the student's answers pass the schema grader often enough. Only then is a new policy written; "
        "otherwise the previous policy stays in force.")],
)
def routing_policy(context: dg.AssetExecutionContext, pipeline: PipelineSettings) -> dg.MaterializeResult:
    from distill_pipeline.core.artifacts import RoutingPolicy

    task = pipeline.load_task()
    layout = pipeline.layout
    report = layout.read_report()
    verdict = gate(report.summary, GateConfig(**report.gate_config))
    path = layout.policy_path()
    student = report.student.student
    routed, in_force = report.figure("routed_score"), report.figure("champion_score")
    check = dg.AssetCheckResult(
        check_name="promotion_gate", passed=verdict.passed,
        metadata={"reasons": dg.MetadataValue.json(verdict.reasons), "checks": dg.MetadataValue.json(verdict.checks),
                  "student_score": readable(report.figure("student_score")),
                  "routed_score": readable(routed) if routed is not None else "none",
                  "champion_score": readable(in_force) if in_force is not None else "none"},
        description="; ".join(verdict.reasons) or "the routed student meets every promotion rule")
    if not verdict.passed:
        context.log.warning("gate failed; the previous policy stays in force: " + "; ".join(verdict.reasons))
        return dg.MaterializeResult(metadata={"promoted": False, "student": student, "threshold": "none",
                                              "reasons": dg.MetadataValue.json(verdict.reasons),
                                              "path": str(path)}, check_results=[check])
    threshold = report.figure("recommended_threshold")
    policy = {
        "student": student,
        "student_endpoint": None,
        "teacher_model": task.teacher_model,
        "threshold": threshold,
        "teacher_only_intents": list(task.teacher_only_intents),
        "report": str(layout.report_path()),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "promoted": True,
        # the router reads its confidence and decodes exactly as the evaluation did
        "signal": report.summary.get("routing_signal", "structured_fields"),
        "field_rules": report.summary.get("field_rules", {}),
        "decoding": report.decoding,
        "preset": report.student.preset,
        "base_model_dir": report.student.base_model_dir,
    }
    history = layout.write_policy(RoutingPolicy.from_dict(policy))
    return dg.MaterializeResult(metadata={
        "promoted": True, "student": student, "threshold": threshold,
        "teacher_share": readable(report.figure("teacher_share")), "routed_score": readable(routed),
        "path": str(path), "history_path": str(history), "policy": dg.MetadataValue.json(policy)},
        check_results=[check])


