"""Serve the current student with vLLM, and point the routing policy at it.

    python deploy/vllm/student_endpoint.py command [--adapter] [--base-model DIR_OR_ID] [--port 8000]
        prints the `vllm serve` command for the student that student_model wrote, served under the name
        "student": its merged checkpoint (<student dir>/merged/, the adapter merged into the base weights:
        a plain model folder, no LoRA support needed), or with --adapter (or when no merged checkpoint
        was exported) its base model with the LoRA adapter, to serve several students on one base
    python deploy/vllm/student_endpoint.py point --endpoint http://vllm-student.dagster:8000/v1
        rewrites <storage root>/routing_policy/current.json so the router calls model "student" on that
        endpoint; the policy it replaces stays in routing_policy/history/, and the new one names the adapter

Both read DISTILL_STORAGE_ROOT (or --storage-root). Run them where the storage root is mounted.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from distill_pipeline import settings
from distill_pipeline.routing import read_policy, write_policy

SERVED_NAME = "student"
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM's --max-lora-rank accepts


def current_student(root: Path) -> dict:
    path = root / "student_model" / "student.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no student here; materialize student_model first (or pass --storage-root)")
    student = json.loads(path.read_text())
    if student.get("trainer") != "local":
        raise SystemExit(f"{path}: the student is {student.get('student')!r}, an OpenAI fine-tune; OpenAI serves it, "
                         "not vLLM")
    return student


def vllm_command(student: dict, base_model: str | None = None, port: int = 8000, adapter: bool = False) -> list[str]:
    if student.get("merged") and not adapter and base_model is None:
        return ["vllm", "serve", student["merged"], "--served-model-name", SERVED_NAME,
                "--max-logprobs", "20", "--port", str(port)]
    return lora_command(student, base_model, port)


def lora_command(student: dict, base_model: str | None = None, port: int = 8000) -> list[str]:
    adapter = Path(student["student"])
    config = json.loads((adapter / "adapter_config.json").read_text())
    if config.get("layers_to_transform"):
        print(f"warning: {adapter} adapts only layers {config['layers_to_transform']} (cpu/tiny preset); vLLM may "
              "refuse it. The gpu preset trains every layer.", file=sys.stderr)
    rank = next(r for r in VLLM_LORA_RANKS if r >= int(config.get("r", 8)))
    return ["vllm", "serve", base_model or student["base_model_dir"], "--enable-lora",
            "--lora-modules", f"{SERVED_NAME}={adapter}", "--max-lora-rank", str(rank),
            "--max-logprobs", "20", "--port", str(port)]


def point_policy(root: Path, endpoint: str, name: str = SERVED_NAME) -> Path:
    """Write a policy whose student is `name` on `endpoint`; returns the history copy of the new policy."""
    path = root / "routing_policy" / "current.json"
    policy = read_policy(path)
    if not policy.promoted:
        print(f"note: {path} is not promoted, so the router still sends every call to the teacher", file=sys.stderr)
    served = policy.extra.get("served_adapter") if policy.student_endpoint else policy.student
    pointed = replace(policy, student=name, student_endpoint=endpoint, created_at="",
                      extra={**policy.extra, "served_adapter": served})
    return write_policy(path, pointed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage-root", default=settings.storage_root())
    sub = parser.add_subparsers(dest="action", required=True)
    command = sub.add_parser("command", help="print the vllm serve command for the current student")
    command.add_argument("--adapter", action="store_true",
                         help="serve the base model with the LoRA adapter rather than the merged checkpoint")
    command.add_argument("--base-model", help="with the adapter: the base model vLLM loads (default: the one the "
                         "adapter was trained on)")
    command.add_argument("--port", type=int, default=8000)
    point = sub.add_parser("point", help="point the routing policy at a vLLM endpoint")
    point.add_argument("--endpoint", required=True, help="base URL of the OpenAI-compatible server, ending in /v1")
    point.add_argument("--name", default=SERVED_NAME, help="the served LoRA module's name")
    args = parser.parse_args(argv)
    root = Path(args.storage_root)
    if args.action == "command":
        print(shlex.join(vllm_command(current_student(root), args.base_model, args.port, adapter=args.adapter)))
    else:
        history = point_policy(root, args.endpoint, args.name)
        print(f"{root / 'routing_policy' / 'current.json'} now routes the student to {args.endpoint} "
              f"(model {args.name!r}); history: {history}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
