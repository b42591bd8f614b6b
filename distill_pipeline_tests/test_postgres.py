"""Dagster on PostgreSQL: deploy/dagster.yaml against a real server on loopback.

The fixture starts a throwaway PostgreSQL server (initdb into a temporary folder, password
authentication, 127.0.0.1 only), the test copies deploy/dagster.yaml unchanged into a temporary
DAGSTER_HOME, sets the DAGSTER_PG_* variables it reads, materializes one bundled day of
`teacher_traces` with `DagsterInstance.get()`, and reads the materialization back through a fresh
instance and straight from the database. Skipped, with the reason, where no server binaries exist;
`make test` installs Debian's postgresql when it runs as root (as CI does).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

from distill_pipeline.definitions import ASSET_CHECKS, ASSETS
from distill_pipeline.settings import REPO_ROOT
from distill_pipeline_tests.conftest import expected_counts

pytestmark = pytest.mark.postgres

DEPLOY = REPO_ROOT / "deploy"
DAY = "2026-10-01"
START_TIMEOUT_S = 60


def postgres_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/<ver>/bin."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in path.parent.name.split(".") if p.isdigit())

    candidates += sorted((p.parent for p in Path("/usr/lib/postgresql").glob("*/bin")), key=version, reverse=True)
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def connect(self, dbname: str):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname=dbname, connect_timeout=10)

    def create_database(self, name: str) -> None:
        conn = self.connect("postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    pytest.importorskip("dagster_postgres", reason="dagster-postgres is not installed: pip install '.[postgres]'")
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/*/bin: "
                    "install Debian's postgresql package (`make test` does, as root)")
    as_root = os.geteuid() == 0
    runuser = shutil.which("runuser")
    if as_root and not runuser:
        pytest.skip("running as root without `runuser`: PostgreSQL refuses to run as root")

    def run(*args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
        command = [runuser, "-u", "postgres", "--", *args] if as_root else list(args)
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    # Not pytest's tmp_path: as root that lives in a 0700 folder the postgres user cannot enter.
    base = Path(tempfile.mkdtemp(prefix="distill-pg-"))
    data, log = base / "data", base / "server.log"
    server = PostgresServer("127.0.0.1", free_port(), "dagster", secrets.token_hex(16))
    pwfile = base / "pwfile"
    pwfile.write_text(server.password + "\n")
    if as_root:
        shutil.chown(base, "postgres")
        shutil.chown(pwfile, "postgres")
    try:
        init = run(str(bindir / "initdb"), "-D", str(data), "-U", server.user, "--pwfile", str(pwfile),
                   "--auth", "scram-sha-256", "-E", "UTF8", "--no-locale")
        assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
        options = (f"-p {server.port} -k {base} -c listen_addresses={server.host} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        start = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
                    "-t", str(START_TIMEOUT_S), "start", timeout=START_TIMEOUT_S + 15)
        server_log = log.read_text(errors="replace") if log.exists() else ""
        assert start.returncode == 0, f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{server_log}"
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_home(postgres: PostgresServer, tmp_path: Path, monkeypatch) -> Path:
    """A DAGSTER_HOME holding deploy/dagster.yaml byte for byte, and the variables that file reads."""
    db = f"dagster_{secrets.token_hex(4)}"
    postgres.create_database(db)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    for name, value in {"DAGSTER_HOME": home, "DAGSTER_PG_HOST": postgres.host, "DAGSTER_PG_PORT": postgres.port,
                        "DAGSTER_PG_USERNAME": postgres.user, "DAGSTER_PG_PASSWORD": postgres.password,
                        "DAGSTER_PG_DB": db, "DAGSTER_COMPUTE_LOGS_DIR": tmp_path / "compute_logs"}.items():
        monkeypatch.setenv(name, str(value))
    return home


def test_a_partition_materialized_on_postgres_reads_back_with_its_counts(postgres, postgres_home, resources):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        result = dg.materialize(ASSETS + ASSET_CHECKS, selection=["teacher_traces"], partition_key=DAY,
                                resources=resources, instance=instance)
        assert result.success
        run_id = result.run_id

    # A fresh instance from the same file: what a webserver or daemon on another machine would see.
    expected_rows = sum(expected_counts(DAY).values())
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("teacher_traces"))
        assert event is not None and event.run_id == run_id
        assert event.dagster_event.partition == DAY
        assert event.asset_materialization.metadata["input_rows"].value == expected_rows
        assert instance.get_materialized_partitions(dg.AssetKey("teacher_traces")) == {DAY}
        assert instance.get_run_by_id(run_id).is_success

    # It is in PostgreSQL, not in a SQLite file under DAGSTER_HOME.
    conn = postgres.connect(os.environ["DAGSTER_PG_DB"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT partition FROM event_logs WHERE run_id = %s AND asset_key LIKE %s "
                        "AND dagster_event_type = 'ASSET_MATERIALIZATION'", (run_id, "%teacher_traces%"))
            assert cur.fetchall() == [(DAY,)]
    finally:
        conn.close()
    assert not list(postgres_home.rglob("*.db"))


def test_the_k8s_instance_file_validates_against_dagster_k8s(tmp_path, monkeypatch):
    """deploy/dagster-k8s.yaml: the same storage; a run launcher and compute logs their libraries accept."""
    k8s = pytest.importorskip("dagster_k8s", reason="dagster-k8s is not installed: pip install '.[k8s]'")
    s3 = pytest.importorskip("dagster_aws.s3.compute_log_manager", reason="dagster-aws is not installed")
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config

    monkeypatch.setenv("DISTILL_STORAGE_BUCKET", "distill-bucket")
    shutil.copyfile(DEPLOY / "dagster-k8s.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # the instance schema, as Dagster reads the file
    assert config["storage"] == yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["storage"]
    launcher, logs = config["run_launcher"], config["compute_logs"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    for cls, section in ((k8s.K8sRunLauncher, launcher), (s3.S3ComputeLogManager, logs)):
        outcome = process_config(cls.config_type(), section["config"])
        assert outcome.success, f"{cls.__name__}: {outcome.errors}"


# ---------------------------------------------------------------------------- the rest of deploy/


def snake_keys(value):
    """Kubernetes YAML (camelCase) as the python client's models name the fields (snake_case)."""
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower() if isinstance(k, str) and "/" not in k and "." not in k
                else k: snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def k8s_model(kind: str, value: dict):
    """The manifest fragment as a kubernetes client model; unknown or misspelt fields raise."""
    kubernetes = pytest.importorskip("kubernetes", reason="the kubernetes client comes with '.[k8s]'")
    models = pytest.importorskip("dagster_k8s.models", reason="dagster-k8s is not installed: pip install '.[k8s]'")
    return models.k8s_model_from_dict(getattr(kubernetes.client, kind), snake_keys(value))


def test_the_helm_values_serve_this_code_location_from_this_repos_image():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == "distill_pipeline.definitions"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True  # runs get the volume and env too
    env = {e["name"]: e["value"] for e in deployment["env"]}
    (mount,) = deployment["volumeMounts"]
    assert env["DISTILL_STORAGE_ROOT"].startswith(mount["mountPath"] + "/")
    assert {"name": "distill-secrets"} in deployment["envSecrets"]
    assert "OPENAI_API_KEY" not in env  # secrets only from the Secret
    postgres = values["postgresql"]
    assert postgres["enabled"] is False and postgres["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    for volume in deployment["volumes"]:
        k8s_model("V1Volume", volume)
    k8s_model("V1VolumeMount", mount)
    k8s_model("V1PodSecurityContext", deployment["podSecurityContext"])
    run_k8s = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    k8s_model("V1Container", {"name": "run", **run_k8s["containerConfig"]})
    k8s_model("V1PodSpec", {"containers": [], **run_k8s["podSpecConfig"]})
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "'.[local,postgres,k8s]'" in dockerfile
    assert not [line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT")]  # the chart sends args


def test_the_gpu_trainer_tag_and_run_config_are_valid():
    """deploy/k8s/gpu-trainer.yaml: a dagster-k8s/config tag dagster-k8s accepts, and run config retrain_job accepts."""
    job_module = pytest.importorskip("dagster_k8s.job", reason="dagster-k8s is not installed: pip install '.[k8s]'")
    from distill_pipeline.definitions import defs

    doc = yaml.safe_load((DEPLOY / "k8s" / "gpu-trainer.yaml").read_text())
    tag = doc["tags"]["dagster-k8s/config"]
    config = job_module.get_user_defined_k8s_config({"dagster-k8s/config": json.dumps(tag)})
    container = k8s_model("V1Container", {"name": "run", **config.container_config})
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert {"name": "DISTILL_PRESET", "value": "gpu"} in tag["container_config"]["env"]
    pod = k8s_model("V1PodSpec", {"containers": [], **config.pod_spec_config})
    assert pod.tolerations and pod.node_selector
    assert dg.validate_run_config(defs.resolve_job_def("retrain_job"), doc["run_config"])


def test_the_kubernetes_manifests_are_valid_objects():
    for path in [DEPLOY / "k8s" / "storage.yaml", DEPLOY / "vllm" / "vllm-student.yaml"]:
        for doc in yaml.safe_load_all(path.read_text()):
            kind = {"PersistentVolumeClaim": "V1PersistentVolumeClaim", "Deployment": "V1Deployment",
                    "Service": "V1Service"}[doc["kind"]]
            k8s_model(kind, doc)
    (deployment, _) = yaml.safe_load_all((DEPLOY / "vllm" / "vllm-student.yaml").read_text())
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0].endswith("/merged") and args[args.index("--served-model-name") + 1] == "student"


def _student_endpoint():
    spec = importlib.util.spec_from_file_location("student_endpoint", DEPLOY / "vllm" / "student_endpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_vllm_helper_serves_the_adapter_and_points_the_policy_at_it(tmp_path):
    from distill_pipeline.routing import read_policy, write_policy

    helper = _student_endpoint()
    adapter = tmp_path / "student_model" / "local-abc" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 16, "layers_to_transform": None}))
    (tmp_path / "student_model" / "student.json").write_text(json.dumps(
        {"trainer": "local", "student": str(adapter), "base_model_dir": "/models/llama-8b", "preset": "gpu"}))
    command = helper.vllm_command(helper.current_student(tmp_path))  # no merged export: the adapter on its base
    assert command[:3] == ["vllm", "serve", "/models/llama-8b"] and "--enable-lora" in command
    assert command[command.index("--lora-modules") + 1] == f"student={adapter}"
    assert command[command.index("--max-lora-rank") + 1] == "16"
    merged = {**helper.current_student(tmp_path), "merged": str(adapter.parent / "merged")}
    assert helper.vllm_command(merged) == ["vllm", "serve", str(adapter.parent / "merged"), "--served-model-name",
                                           "student", "--max-logprobs", "20", "--port", "8000"]
    assert "--enable-lora" in helper.vllm_command(merged, adapter=True)

    policy_path = tmp_path / "routing_policy" / "current.json"
    write_policy(policy_path, {"student": str(adapter), "teacher_model": "gpt-4o", "threshold": -0.5,
                               "promoted": True, "created_at": "2026-11-01T00:00:00+00:00"})
    helper.point_policy(tmp_path, "http://vllm-student.dagster:8000/v1")
    policy = read_policy(policy_path)
    assert (policy.student, policy.student_endpoint) == ("student", "http://vllm-student.dagster:8000/v1")
    assert policy.promoted and policy.threshold == -0.5 and policy.extra["served_adapter"] == str(adapter)
    assert len(list((policy_path.parent / "history").glob("*.json"))) == 2  # the previous policy is kept
