"""`distill audit <student-ref-or-trace-id>`: the two questions auditors ask.

- "What trained this model?": give a student reference (adapter path, ft: model id or job id).
- "Which models did this trace train?": give a trace (completion) id or content hash.

`distill policy show` prints the routing policy in force; `distill policy rollback` puts
the one before it back in force, from `<storage root>/routing_policy/history/`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from distill_pipeline import settings
from distill_pipeline.backends.handoffs import Handoffs
from distill_pipeline.core.audit import render_model_card


def audit(ref: str, root: Path) -> tuple[int, str]:
    layout = Handoffs(root)
    cards = layout.read_model_cards()
    if not cards:
        return 1, f"no model cards under {layout.model_cards_dir()}: materialize model_card first"
    for card, folder in cards:
        if ref in {card.student, card.job_id, str(folder), folder.name}:
            return 0, (render_model_card(card.to_dict())
                       + f"\nTraining trace ids: {layout.training_traces_path(card.job_id)}\n")
    hits = []
    for card, _ in cards:
        for row in layout.read_training_traces(card.job_id):
            if ref in (row["id"], row["content_hash"]):
                hits.append((card, row))
    if not hits:
        return 1, (f"{ref!r} is neither a student (adapter path, ft: id or job id) nor a trace that trained one; "
                   f"known students: {', '.join(c.student for c, _ in cards)}")
    lines = [f"Trace {ref} trained {len(hits)} model(s):"]
    for card, row in hits:
        gate = "passed" if (card.gate or {}).get("passed") else "failed"
        lines.append(f"- {card.student} (job {card.job_id}, {row['file']} file, intent {row['intent']}, "
                     f"partition {row['partition'] or '-'}, gate {gate})")
    return 0, "\n".join(lines) + "\n"


def policy(action: str, root: Path) -> tuple[int, str]:
    from distill_pipeline.backends.policy_store import rollback_policy
    from distill_pipeline.core.artifacts import PolicyError

    layout = Handoffs(root)
    path = layout.policy_path()
    try:
        if action == "show":
            current = layout.read_policy()
            return 0, json.dumps(current.to_dict(), indent=2, sort_keys=True) + "\n"
        restored, source = rollback_policy(path)
    except (PolicyError, FileNotFoundError) as err:
        return 1, f"{err}\n"
    return 0, (f"rolled back: {path} is now the policy of {restored.created_at or 'unknown date'} ({source.name}): "
               f"student {restored.student}, threshold {restored.threshold:g}, promoted {restored.promoted}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    audit_cmd = commands.add_parser("audit", help="what trained a model / which models a trace trained")
    audit_cmd.add_argument("ref", help="a student reference (adapter path, ft: id, job id) or a trace id")
    audit_cmd.add_argument("--storage-root", default=None, help="default: DISTILL_STORAGE_ROOT")
    policy_cmd = commands.add_parser("policy", help="the routing policy in force: show it, or roll it back")
    policy_cmd.add_argument("action", choices=("show", "rollback"))
    policy_cmd.add_argument("--storage-root", default=None, help="default: DISTILL_STORAGE_ROOT")
    args = parser.parse_args(argv)
    root = Path(args.storage_root or settings.storage_root())
    code, text = policy(args.action, root) if args.command == "policy" else audit(args.ref, root)
    (sys.stdout if code == 0 else sys.stderr).write(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
