"""The OpenAI trainer: supervised fine-tuning through the Files and Fine-tuning APIs.

`submit` is idempotent by a key the caller derives from the training files and the hyperparameters: it
first looks for a job carrying `metadata["distill_key"] == key` (a running or succeeded one is reused, a
failed or cancelled one is not), otherwise uploads each file at most once (named after its sha256, so a
rerun finds the upload) and creates the job. `jobs.create` is never retried blindly: the SDK's own retries
are off for that one call, and before each further try the trainer looks for the job by its key again, so
a create that reached OpenAI but whose answer was lost never becomes a second paid job.

`wait` follows a job to its end with bounded back-off polling, logging status changes, new events and
checkpoint metrics; a restart simply calls `wait` on the same job id again.

OpenAI is winding down self-serve fine-tuning (no new users since May 2026; new jobs stop on 2027-01-06).
When it refuses with HTTP 403 `training_not_available`, `submit` raises `TrainingNotAvailable`, which names
the way forward: the local LoRA trainer (`DISTILL_TRAINER=local`). Any other refusal of the credentials (HTTP 401,
or 403 with another code) raises `OpenAIAccessDenied`, which says which one it was and what to check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import openai

from distill_pipeline.backends.openai_source import _describe, _retry_after
from distill_pipeline.backends.storage import sha256_file
from distill_pipeline.core.presets import DEFAULT_SEED

T = TypeVar("T")

KEY_FIELD = "distill_key"
DEAD_STATES = {"failed", "cancelled"}
TERMINAL_STATES = {"succeeded", *DEAD_STATES}
RETRYABLE_STATUS = {408, 409, 429}
LAST_EVENTS = 10  # event messages kept in wait()'s result
EVENT_PAGE = 100


class TrainingNotAvailable(RuntimeError):
    """OpenAI refused to fine-tune for this organisation (HTTP 403 training_not_available)."""


class OpenAIAccessDenied(RuntimeError):
    """OpenAI refused the credentials (HTTP 401) or this use of them (HTTP 403 other than training_not_available)."""


def access_denied(err: openai.APIStatusError, doing: str, retry: str) -> OpenAIAccessDenied:
    """What was refused, why, and what to do next, for a 401 or a 403 while `doing` something."""
    code = _error_code(err)
    body = err.body if isinstance(err.body, dict) else {}
    said = body.get("message") if isinstance(body.get("message"), str) else err.message  # OpenAI's own words
    refusal = f"HTTP {err.status_code}{' ' + code if code else ''}: {said}"
    if err.status_code == 401:
        cause = (f"OpenAI rejected the API key while {doing} ({refusal}). The key is missing, mistyped, revoked, "
                 "or belongs to another endpoint than OPENAI_BASE_URL.")
        check = ("Set OPENAI_API_KEY (and OPENAI_BASE_URL, if you use one) to a valid key for that endpoint in the "
                 "environment the Dagster code location runs in")
    else:
        cause = (f"OpenAI refused {doing} for this key ({refusal}). The key is valid but not allowed to do this: "
                 "a restricted key without write access to Files and Fine-tuning, a project without access to the "
                 "base model, or an organisation or region fine-tuning is not offered to.")
        check = ("Give the key's project fine-tuning permission and access to the base model on the OpenAI "
                 "dashboard, or use a key that has them")
    return OpenAIAccessDenied(f"{cause} Next step: {check}, then {retry}; or set DISTILL_TRAINER=local to train "
                              "the student locally (LoRA on an open model, no OpenAI account needed).")


class FineTuneFailed(RuntimeError):
    """The job ended failed or cancelled; the message carries OpenAI's own error (code, message, param)."""

    def __init__(self, job_id: str, status: str, code: str | None, message: str | None, param: str | None) -> None:
        self.job_id, self.status, self.code, self.error_message, self.param = job_id, status, code, message, param
        if code or message:
            reason = f"{code or 'error'}: {message or '(no message)'}" + (f" (param: {param})" if param else "")
        else:
            reason = "OpenAI gave no error details"
        super().__init__(
            f"OpenAI fine-tuning job {job_id} {status}: {reason}. A {status} job is never reused: fix the cause and "
            "rematerialize fine_tune_job to submit a new one (or set DISTILL_TRAINER=local to train locally).")


def upload_name(path: Path, role: str) -> tuple[str, str]:
    """(sha256 of the file, the name it is uploaded under: distill-<sha256[:16]>-<role>.jsonl)."""
    sha = sha256_file(path)
    return sha, f"distill-{sha[:16]}-{role}.jsonl"


class OpenAITrainer:
    """Submit (or find) an OpenAI supervised fine-tuning job and follow it to the finished `ft:` model.

    Retries: the client's own `max_retries` come first (the SDK honours Retry-After) for every call except
    `jobs.create`; after that each call gets up to `extra_attempts` more tries here, waiting Retry-After on
    429, or an exponential back-off from `retry_s` on 5xx, 408/409, timeouts and connection errors.

    `sleep` is the only way this class waits (tests inject one). The `timeout_s` of `wait` counts the larger
    of the wall-clock time and the time asked of `sleep`, so an injected sleep drives it too.
    """

    def __init__(
        self,
        client: openai.OpenAI,
        log: Callable[[str], None] = print,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_s: float = 30.0,
        max_poll_s: float = 300.0,
        timeout_s: float = 6 * 3600,
        extra_attempts: int = 3,
        retry_s: float = 2.0,
    ) -> None:
        if poll_s <= 0 or max_poll_s < poll_s:
            raise ValueError(f"need 0 < poll_s <= max_poll_s (got poll_s={poll_s}, max_poll_s={max_poll_s})")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive (got {timeout_s})")
        self.client = client
        self.log = log
        self.sleep = sleep
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s
        self.timeout_s = timeout_s
        self.extra_attempts = max(extra_attempts, 0)
        self.retry_s = retry_s
        self._slept = 0.0

    # -- submit ------------------------------------------------------------------------------------------

    def submit(self, train_path: Path, validation_path: Path, *, model: str, suffix: str, key: str,
               seed: int = DEFAULT_SEED, hyperparameters: dict | None = None) -> dict:
        """The job for `key`: an existing running or succeeded one, else a new one. Returns the job as JSON."""
        try:
            existing = self._find_job(key)
            if existing is not None:
                self.log(f"fine-tuning job {existing.id} already exists for key {key} ({existing.status}); "
                         "reusing it, nothing uploaded or submitted")
                return existing.model_dump(mode="json")
            train_sha, train_file = self._upload(Path(train_path), "train")
            validation_sha, validation_file = self._upload(Path(validation_path), "validation")
            params: dict[str, Any] = {
                "model": model,
                "training_file": train_file,
                "validation_file": validation_file,
                "suffix": suffix,
                "seed": seed,
                "method": {"type": "supervised", "supervised": {"hyperparameters": dict(hyperparameters or {})}},
                "metadata": {KEY_FIELD: key, "distill_train_sha256": train_sha,
                             "distill_validation_sha256": validation_sha},
            }
            job = self._create_job(key, params)
        except openai.PermissionDeniedError as err:
            if _error_code(err) == "training_not_available":
                raise TrainingNotAvailable(
                    f"OpenAI refused to fine-tune (HTTP 403 training_not_available: {err.message}). OpenAI is "
                    "winding down self-serve fine-tuning: no new users since May 2026, and new jobs stop on "
                    "2027-01-06. Train the student locally instead: set DISTILL_TRAINER=local (LoRA on an open "
                    "model, the default) and rematerialize fine_tune_job.") from err
            raise access_denied(err, f"fine-tuning {model}", "rematerialize fine_tune_job") from err
        except openai.AuthenticationError as err:
            raise access_denied(err, f"fine-tuning {model}", "rematerialize fine_tune_job") from err
        self.log(f"submitted fine-tuning job {job.id} on {model} (suffix {suffix!r}, key {key}): {job.status}")
        return job.model_dump(mode="json")

    def _find_job(self, key: str) -> Any | None:
        """The newest job with this key that has not failed or been cancelled, if any."""
        dead = []
        for job in self._list(lambda: self.client.fine_tuning.jobs.list(metadata={KEY_FIELD: key}, limit=100),
                              "listing fine-tuning jobs"):
            if (job.metadata or {}).get(KEY_FIELD) != key:
                continue  # a server that ignores the metadata filter lists every job
            if job.status in DEAD_STATES:
                dead.append(f"{job.id} ({job.status})")
                continue
            return job
        if dead:
            self.log(f"earlier jobs for key {key} ended without a model and are not reused: {', '.join(dead)}")
        return None

    def _upload(self, path: Path, role: str) -> tuple[str, str]:
        """(sha256, file id): an earlier upload of the same bytes under the same name, else a new upload."""
        sha, name = upload_name(path, role)
        size = path.stat().st_size
        for uploaded in self._list(lambda: self.client.files.list(purpose="fine-tune", order="desc"),
                                   "listing uploaded files"):
            if uploaded.filename == name and uploaded.bytes == size and uploaded.status != "error":
                self.log(f"{role} file {path.name} already uploaded as {uploaded.id} ({name})")
                return sha, uploaded.id
        data = path.read_bytes()
        uploaded = self._call(lambda: self.client.files.create(file=(name, data), purpose="fine-tune"),
                              f"uploading {name}")
        self.log(f"uploaded {role} file {path.name} ({size} bytes) as {uploaded.id} ({name})")
        return sha, uploaded.id

    def _create_job(self, key: str, params: dict[str, Any]) -> Any:
        """jobs.create without blind retries: before each retry, look for the job the lost answer may have made."""
        no_retries = self.client.with_options(max_retries=0)
        tries = self.client.max_retries + self.extra_attempts
        for attempt in range(tries + 1):
            try:
                return no_retries.fine_tuning.jobs.create(**params)
            except openai.APIStatusError as err:
                if attempt == tries or not _retryable(err):
                    raise
                wait, problem = self._retry_wait(err, attempt), _describe(err)
            except openai.APIConnectionError as err:
                if attempt == tries:
                    raise
                wait, problem = self._retry_wait(err, attempt), _describe(err)
            self.log(f"WARNING: creating the fine-tuning job: {problem}; checking whether it was created anyway, "
                     f"then retry {attempt + 1} of {tries} in {wait:.2f}s")
            self._nap(wait)
            found = self._find_job(key)
            if found is not None:
                return found
        raise AssertionError("unreachable")  # pragma: no cover

    # -- wait --------------------------------------------------------------------------------------------

    def wait(self, job_id: str) -> dict:
        """Follow the job to its end; the finished model and what training reported, or FineTuneFailed."""
        self._slept = 0.0
        start = time.monotonic()
        interval = self.poll_s
        status: str | None = None
        seen_events: set[str] = set()
        messages: list[str] = []
        checkpoints: dict[str, Any] = {}
        while True:
            job = self._retrieve(job_id)
            if job.status != status:
                self.log(f"fine-tuning job {job_id}: {status + ' -> ' if status else ''}{job.status}")
                if status is not None:
                    interval = self.poll_s  # a new phase: look again soon
                status = job.status
            self._log_events(job_id, seen_events, messages)
            if status in ("running", *TERMINAL_STATES):
                self._log_checkpoints(job_id, checkpoints)
            if status == "succeeded":
                return self._result(job, messages, checkpoints)
            if status in DEAD_STATES:
                error = job.error
                raise FineTuneFailed(job_id, status, getattr(error, "code", None), getattr(error, "message", None),
                                     getattr(error, "param", None))
            elapsed = max(time.monotonic() - start, self._slept)
            if elapsed >= self.timeout_s:
                raise TimeoutError(
                    f"fine-tuning job {job_id} is still {status} on OpenAI's side after {elapsed:.0f}s of "
                    f"following it (timeout_s={self.timeout_s:g}); the job keeps running there. Rerun "
                    "student_model to resume following the same job: no new job is submitted.")
            self._nap(min(interval, self.timeout_s - elapsed))
            interval = min(interval * 2, self.max_poll_s)

    def _retrieve(self, job_id: str) -> Any:
        try:
            return self._call(lambda: self.client.fine_tuning.jobs.retrieve(job_id), f"retrieving job {job_id}")
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            raise access_denied(err, f"following fine-tuning job {job_id}",
                                "rematerialize student_model to resume following the same job (no new job is "
                                "submitted)") from err
        except openai.NotFoundError as err:
            raise RuntimeError(
                f"fine-tuning job {job_id} was not found by this OpenAI endpoint ({_describe(err)}): check "
                "OPENAI_API_KEY / OPENAI_BASE_URL point at the organisation that owns it, or rematerialize "
                "fine_tune_job") from err
        except openai.APIError as err:
            raise RuntimeError(
                f"following fine-tuning job {job_id} failed: {_describe(err)}. The job itself keeps running on "
                "OpenAI's side: rerun student_model to resume following the same job (no new job is submitted)."
            ) from err

    def _log_events(self, job_id: str, seen: set[str], messages: list[str]) -> None:
        """Log events not logged yet (oldest first); step-metrics events are condensed to the newest one."""
        new: list[Any] = []
        try:
            page = self._call(lambda: self.client.fine_tuning.jobs.list_events(job_id, limit=EVENT_PAGE),
                              f"listing events of {job_id}")
            while True:
                fresh = [event for event in page.data if event.id not in seen]
                new.extend(fresh)
                # Events come newest first: once a page holds one already seen, the rest are older still.
                if len(fresh) < len(page.data) or not page.has_next_page():
                    break
                page = self._call(page.get_next_page, f"listing events of {job_id}")
        except openai.APIError as err:
            self.log(f"WARNING: events of {job_id} could not be listed ({_describe(err)}); carrying on")
        new.reverse()
        metrics = [event for event in new if event.type == "metrics"]
        for event in new:
            seen.add(event.id)
            messages.append(event.message)
            if event.type == "metrics" and event is not metrics[-1]:
                continue
            level = "" if event.level == "info" else f"{event.level.upper()}: "
            self.log(f"{job_id} event: {level}{event.message}")
        if len(metrics) > 1:
            self.log(f"{job_id}: {len(metrics)} step-metrics events since the last poll; the newest is shown")

    def _log_checkpoints(self, job_id: str, checkpoints: dict[str, Any]) -> None:
        try:
            listed = list(self._list(lambda: self.client.fine_tuning.jobs.checkpoints.list(job_id, limit=100),
                                     f"listing checkpoints of {job_id}"))
        except openai.APIError as err:
            self.log(f"WARNING: checkpoints of {job_id} could not be listed ({_describe(err)}); carrying on")
            return
        for checkpoint in sorted(listed, key=lambda c: c.step_number):
            if checkpoint.id in checkpoints:
                continue
            checkpoints[checkpoint.id] = checkpoint
            metrics = checkpoint.metrics.model_dump(exclude_none=True) if checkpoint.metrics else {}
            shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
                              if k != "step")
            self.log(f"{job_id} checkpoint step {checkpoint.step_number}: {checkpoint.fine_tuned_model_checkpoint}"
                     f"{' (' + shown + ')' if shown else ''}")

    def _result(self, job: Any, messages: list[str], checkpoints: dict[str, Any]) -> dict:
        hyperparameters = None
        supervised = job.method.supervised if job.method is not None else None
        if supervised is not None and supervised.hyperparameters is not None:
            hyperparameters = supervised.hyperparameters.model_dump(mode="json", exclude_none=True)
        elif job.hyperparameters is not None:
            hyperparameters = job.hyperparameters.model_dump(mode="json", exclude_none=True)
        self.log(f"fine-tuning job {job.id} succeeded: {job.fine_tuned_model} ({job.trained_tokens} trained tokens)")
        return {
            "fine_tuned_model": job.fine_tuned_model,
            "job_id": job.id,
            "status": job.status,
            "trained_tokens": job.trained_tokens,
            "events": messages[-LAST_EVENTS:],
            "checkpoints": [
                {"step": c.step_number, "checkpoint": c.fine_tuned_model_checkpoint,
                 "metrics": c.metrics.model_dump(mode="json", exclude_none=True) if c.metrics else {}}
                for c in sorted(checkpoints.values(), key=lambda c: c.step_number)],
            "result_files": list(job.result_files or []),
            "base_model": job.model,
            "training_file": job.training_file,
            "validation_file": job.validation_file,
            "seed": job.seed,
            "hyperparameters": hyperparameters,
            "metadata": dict(job.metadata or {}),
            "created_at": job.created_at,
            "finished_at": job.finished_at,
        }

    # -- plumbing ----------------------------------------------------------------------------------------

    def _list(self, first: Callable[[], Any], what: str) -> Iterator[Any]:
        """Every item of a cursor-paginated listing, each page fetched with the retries of `_call`."""
        page = self._call(first, what)
        yield from page.data
        while page.has_next_page():
            page = self._call(page.get_next_page, what)
            yield from page.data

    def _call(self, fn: Callable[[], T], what: str) -> T:
        """fn() with up to `extra_attempts` more tries on rate limits, server errors and timeouts."""
        for attempt in range(self.extra_attempts + 1):
            try:
                return fn()
            except openai.APIStatusError as err:
                if attempt == self.extra_attempts or not _retryable(err):
                    raise
                wait, problem = self._retry_wait(err, attempt), _describe(err)
            except openai.APIConnectionError as err:  # includes APITimeoutError
                if attempt == self.extra_attempts:
                    raise
                wait, problem = self._retry_wait(err, attempt), _describe(err)
            self.log(f"WARNING: {what}: {problem}; retry {attempt + 1} of {self.extra_attempts} in {wait:.2f}s")
            self._nap(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_wait(self, err: openai.APIError, attempt: int) -> float:
        if isinstance(err, openai.APIStatusError):
            asked = _retry_after(err.response)
            if asked is not None:
                return asked
        return min(self.retry_s * (2 ** attempt), self.max_poll_s)

    def _nap(self, seconds: float) -> None:
        if seconds > 0:
            self._slept += seconds
            self.sleep(seconds)


def _retryable(err: openai.APIStatusError) -> bool:
    return err.status_code in RETRYABLE_STATUS or err.status_code >= 500


def _error_code(err: openai.APIStatusError) -> str | None:
    code = getattr(err, "code", None)
    if code:
        return str(code)
    body = err.body if isinstance(err.body, dict) else {}
    error = body.get("error", body)
    return error.get("code") if isinstance(error, dict) else None
