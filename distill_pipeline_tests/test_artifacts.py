"""What one asset hands another: one type, one writer, one reader."""

import json

import pytest

from distill_pipeline.backends.storage import StorageLayout
from distill_pipeline.core.artifacts import StudentInfo

LOCAL = StudentInfo(trainer="local", student="/s/student_model/local-1/adapter", job_id="local-1", key="k1",
                    base_model_dir="/s/base_models/tiny-llama-v1", preset="tiny", merged=None)
OPENAI = StudentInfo(trainer="openai", student="ft:gpt-4o-mini-2024-07-18:org:distill:abc", job_id="ftjob-1",
                     key="k2", manifest={"fine_tuned_model": "ft:gpt-4o-mini-2024-07-18:org:distill:abc"})


@pytest.mark.parametrize("student", [LOCAL, OPENAI], ids=["local", "openai"])
def test_the_student_reads_back_as_it_was_written(tmp_path, student):
    layout = StorageLayout(tmp_path)
    layout.write_student(student)
    assert layout.read_student() == student


def test_student_json_keeps_the_keys_each_trainer_wrote_before_the_type():
    assert LOCAL.to_dict() == {"trainer": "local", "student": LOCAL.student, "base_model_dir": LOCAL.base_model_dir,
                               "job_id": "local-1", "key": "k1", "preset": "tiny", "merged": None}
    assert OPENAI.to_dict() == {"trainer": "openai", "student": OPENAI.student, "job_id": "ftjob-1", "key": "k2",
                                "manifest": OPENAI.manifest}


def test_a_student_json_missing_a_field_names_it(tmp_path):
    layout = StorageLayout(tmp_path)
    layout.student_path().parent.mkdir(parents=True)
    layout.student_path().write_text(json.dumps({k: v for k, v in LOCAL.to_dict().items() if k != "preset"}))
    with pytest.raises(KeyError, match="student.json lacks preset"):
        layout.read_student()


def test_reading_a_student_that_was_never_trained_says_to_materialize_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="student_model has not been materialized"):
        StorageLayout(tmp_path).read_student()
