"""Task specs the tests share: a minimal valid spec, and the bundled one with its LLM judge switched on."""

from pathlib import Path

from distill_pipeline import settings

MINIMAL = """\
name: tiny
output:
  type: json
  schema:
    type: object
    properties:
      intent: {type: string, enum: [greet, bye]}
graders:
  - name: schema
    type: json_schema
metric: field_f1
teacher_model: big-model
prices:
  big-model: {input: 2.5, output: 10}
  student: {input: 0.02, output: 0.04}
"""


def judged_task_spec(tmp: Path) -> Path:
    """The bundled task with its LLM judge on, so curation calls a chat model (and uses the key) too."""
    text = settings.DEFAULT_TASK_SPEC.read_text(encoding="utf-8")
    judged = text.replace("type: llm_judge\n    required: false\n    enabled: false",
                          "type: llm_judge\n    required: false\n    enabled: true")
    assert judged != text
    path = tmp / "task.yaml"
    path.write_text(judged, encoding="utf-8")
    return path
