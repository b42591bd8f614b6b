"""The production trace source: OpenAI Stored Completions, one UTC day at a time.

Lists the stored completions that match a metadata filter (and optionally a model) with the SDK's own
cursor pagination, keeps the ones created within the day, stops paging once the listing has passed the
day, and fetches each kept completion's request messages concurrently (a bounded thread pool). Every
record has the JSONL export shape (the stored completion plus `request_messages`), so `core.capture`
turns the API and an export of the same completions into the same rows.

Nothing is dropped: a malformed item, or a completion whose messages could not be fetched after the
retries, is still yielded and the parser quarantines it with the reason.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import openai

from distill_pipeline.core.capture import RawRecord

LISTING = "openai:chat.completions"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
CAPTURE_ERROR_KEY = "capture_error"  # set on a record whose request messages could not be fetched
MAX_RETRY_AFTER_S = 120.0

T = TypeVar("T")


class StoredCompletionsError(RuntimeError):
    """Listing the stored completions failed for good; the day's capture cannot be complete."""


def make_client(api_key: str | None, base_url: str | None = None, timeout: float = 60.0,
                max_retries: int = 2) -> openai.OpenAI:
    """An OpenAI client built only from what the caller passes (e.g. a Dagster EnvVar); the key is never logged.

    `base_url` None means the public OpenAI API (the SDK's OPENAI_BASE_URL fallback is not consulted).
    """
    if not api_key:
        raise ValueError(
            "make_client: no OpenAI API key was passed. Give the resource its key (for example "
            "dg.EnvVar('OPENAI_API_KEY')); this helper never reads the environment itself. For an "
            "OpenAI-compatible endpoint without authentication, pass any placeholder such as 'none'.")
    return openai.OpenAI(api_key=api_key, base_url=base_url or DEFAULT_BASE_URL, timeout=timeout,
                         max_retries=max_retries)


def day_bounds(day: str) -> tuple[int, int]:
    """[start, end) of a UTC day as Unix seconds."""
    try:
        start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"day must be a date written YYYY-MM-DD (got {day!r})") from None
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp())


def _as_dict(item: Any) -> Any:
    """The object exactly as the API sent it (fields the API did not send stay absent)."""
    if isinstance(item, openai.BaseModel):
        return item.model_dump(mode="json", exclude_unset=True, warnings=False)
    return item


def _created(item: Any) -> int | None:
    value = item.get("created") if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value)


def _retry_after(response: Any) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, retry-after seconds or an HTTP date)."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if math.isfinite(seconds) and seconds >= 0:
            return min(seconds, MAX_RETRY_AFTER_S)
    return None


def _describe(err: Exception) -> str:
    if isinstance(err, openai.APIStatusError):
        code = f" {err.code}" if getattr(err, "code", None) else ""
        return f"HTTP {err.status_code}{code} ({type(err).__name__}: {err.message})"
    return f"{type(err).__name__}: {err}"


class _Log:
    """`log` may be a logger-like object (logging.Logger, Dagster's context.log) or one callable (context.log.info)."""

    def __init__(self, log: Any) -> None:
        log = log if log is not None else logging.getLogger(__name__)
        if hasattr(log, "info") and hasattr(log, "warning"):
            self.info, self.warning = log.info, log.warning
        elif callable(log):
            self.info, self.warning = log, lambda message: log(f"WARNING: {message}")
        else:
            raise TypeError(f"log must be a logger or a callable taking a message (got {type(log).__name__})")


@dataclass
class _Listed:
    raw: Any  # the completion as listed
    created: int  # its creation time, or the one it is attributed to when its own is unreadable
    position: int  # index in the listing
    messages: Future[dict[str, Any]] | None = None

    @property
    def sort_key(self) -> tuple[int, str, int]:
        completion_id = self.raw.get("id") if isinstance(self.raw, dict) else None
        return (self.created, completion_id if isinstance(completion_id, str) else "", self.position)


class OpenAIStoredCompletionsSource:
    """`TraceSource` over the Stored Completions API (`client.chat.completions.list` + `.messages.list`).

    Retries: the client's own `max_retries` come first (the SDK honours Retry-After); after that each call
    gets at most `extra_attempts` more tries here, waiting Retry-After on 429 or an exponential back-off
    from `backoff_s` on 5xx, 408/409, timeouts and connection errors.

    `order="asc"` lists from the oldest stored completion and stops after the day; `order="desc"` lists
    from the newest and stops before it, which reads far fewer pages for recent days (stored completions
    live 30 days, so yesterday is near the newest end). Both give the same records.
    """

    name = "openai"

    def __init__(
        self,
        client: openai.OpenAI,
        metadata: dict[str, str],
        model: str | None = None,
        concurrency: int = 16,
        page_size: int = 100,
        log: Any = None,  # a logger (logging.Logger, context.log) or a callable such as context.log.info
        *,
        order: Literal["asc", "desc"] = "asc",
        extra_attempts: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1 (got {concurrency})")
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be between 1 and 100, the API's limit (got {page_size})")
        if order not in ("asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc' (got {order!r})")
        self.client = client
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.model = model
        self.concurrency = concurrency
        self.page_size = page_size
        self.log = _Log(log)
        self.order = order
        self.extra_attempts = max(extra_attempts, 0)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"OpenAIStoredCompletionsSource(metadata={self.metadata!r}, model={self.model!r})"

    # -- the protocol ------------------------------------------------------------------------------------

    def records(self, day: str) -> Iterator[RawRecord]:
        start, end = day_bounds(day)
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="stored-completion-messages")
        try:
            listed: list[_Listed] = []
            for entry in self._list_day(day, start, end):
                if isinstance(entry.raw, dict) and isinstance(entry.raw.get("id"), str) and entry.raw["id"]:
                    entry.messages = pool.submit(self._with_messages, entry.raw)
                listed.append(entry)
            listed.sort(key=lambda e: e.sort_key)
            total = len(listed)
            self.log.info(f"stored completions {day}: listing done, {total} in the day; their request messages "
                          f"are fetched {self.concurrency} at a time")
            step = max(total // 10, 1)
            failed = 0
            for line, entry in enumerate(listed, start=1):
                raw = entry.messages.result() if entry.messages is not None else entry.raw
                if isinstance(raw, dict) and CAPTURE_ERROR_KEY in raw:
                    failed += 1
                if not isinstance(raw, dict):
                    raw = json.dumps(raw)  # not an object: the parser quarantines it as such
                yield RawRecord(LISTING, line, raw)
                if line % step == 0 or line == total:
                    self.log.info(f"stored completions {day}: request messages {line}/{total} fetched")
            if failed:
                self.log.warning(f"stored completions {day}: {failed} of {total} without request messages after "
                                 "retries; they go to quarantine")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- listing -----------------------------------------------------------------------------------------

    def _list_day(self, day: str, start: int, end: int) -> Iterator[_Listed]:
        """The listed completions that belong to the day, paging only as far as the day reaches.

        An item without a readable `created` belongs to the day of the item before it in time (the first
        one after it when it has none), so it lands in exactly one day and the parser quarantines it.
        """
        ascending = self.order == "asc"
        params: dict[str, Any] = {"order": self.order, "limit": self.page_size}
        if self.metadata:
            params["metadata"] = self.metadata
        if self.model:
            params["model"] = self.model
        filters = f"metadata={self.metadata}" + (f", model={self.model}" if self.model else "")

        def in_day(created: int) -> bool:
            return start <= created < end

        position = 0
        pending: list[tuple[Any, int]] = []  # items with unreadable created, waiting for a neighbour
        neighbour: int | None = None  # last readable created seen
        kept = 0
        page_number = 1
        page = self._listing_call(lambda: self.client.chat.completions.list(**params), day, page_number, filters)
        while True:
            beyond = False
            for item in page.data:
                raw = _as_dict(item)
                created = _created(raw)
                if created is None:
                    if ascending and neighbour is not None:
                        if in_day(neighbour):
                            kept += 1
                            yield _Listed(raw, neighbour, position)
                    else:
                        pending.append((raw, position))
                    position += 1
                    continue
                for waiting, waiting_position in pending:
                    if in_day(created):
                        kept += 1
                        yield _Listed(waiting, created, waiting_position)
                pending = []
                neighbour = created
                if in_day(created):
                    kept += 1
                    yield _Listed(raw, created, position)
                elif (created >= end) if ascending else (created < start):
                    beyond = True  # the rest of the listing is past the day; finish this page only
                position += 1
            self.log.info(f"stored completions {day}: page {page_number} listed {len(page.data)}, "
                          f"{kept} in the day so far")
            if beyond:
                break
            next_page = self._next_page(page)
            if next_page is None:
                break
            page_number += 1
            page = self._listing_call(next_page, day, page_number, filters)
        if pending:
            if neighbour is None:
                self.log.warning(f"stored completions {day}: {len(pending)} listed item(s) have no readable "
                                 "creation time and no dated neighbour; they are attributed to this day")
            for waiting, waiting_position in pending:
                if neighbour is None or in_day(neighbour):
                    yield _Listed(waiting, neighbour if neighbour is not None else start, waiting_position)

    def _next_page(self, page: Any) -> Callable[[], Any] | None:
        if page.has_next_page():
            return page.get_next_page
        if page.has_more and page.data:
            # The SDK takes its cursor from the last item's id; a malformed last item has none, so
            # continue after the last item that has one rather than stop short of the day.
            ids = [item.get("id") for item in map(_as_dict, page.data) if isinstance(item, dict)]
            ids = [i for i in ids if isinstance(i, str) and i]
            if not ids:
                raise StoredCompletionsError(
                    "a page of stored completions says it has more but none of its items has an id to continue "
                    "after; the listing cannot be completed")
            params: dict[str, Any] = {"order": self.order, "limit": self.page_size, "after": ids[-1]}
            if self.metadata:
                params["metadata"] = self.metadata
            if self.model:
                params["model"] = self.model
            return lambda: self.client.chat.completions.list(**params)
        return None

    def _listing_call(self, fn: Callable[[], T], day: str, page_number: int, filters: str) -> T:
        try:
            return self._call(fn, f"listing stored completions page {page_number}")
        except openai.APIError as err:
            raise StoredCompletionsError(
                f"listing stored completions ({filters}) for {day} failed on page {page_number} after "
                f"{self.extra_attempts + 1} attempts (each with the client's own retries): {_describe(err)}. "
                "Nothing was captured for the day; rerun the partition once the API answers."
            ) from err

    # -- request messages --------------------------------------------------------------------------------

    def _with_messages(self, completion: dict[str, Any]) -> dict[str, Any]:
        """The export shape: the completion plus its request messages, or a capture_error saying why not."""
        completion_id = completion["id"]
        try:
            messages = self._request_messages(completion_id)
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise  # a credentials problem is not a bad trace: fail the run instead of quarantining the day
        except openai.APIError as err:
            reason = (f"request_messages of {completion_id} could not be fetched: {_describe(err)} "
                      f"(gave up after {self.extra_attempts + 1} attempts)")
            return {**completion, CAPTURE_ERROR_KEY: reason}
        return {**completion, "request_messages": messages}

    def _request_messages(self, completion_id: str) -> list[Any]:
        what = f"request messages of {completion_id}"
        page = self._call(lambda: self.client.chat.completions.messages.list(
            completion_id, limit=self.page_size, order="asc"), what)
        messages = [_as_dict(m) for m in page.data]
        while page.has_next_page():
            page = self._call(page.get_next_page, what)
            messages.extend(_as_dict(m) for m in page.data)
        return messages

    # -- retries -----------------------------------------------------------------------------------------

    def _call(self, fn: Callable[[], T], what: str) -> T:
        """fn() with up to `extra_attempts` more tries on rate limits, server errors and timeouts."""
        for attempt in range(self.extra_attempts + 1):
            try:
                return fn()
            except (openai.AuthenticationError, openai.PermissionDeniedError):
                raise
            except openai.APIStatusError as err:
                status = err.status_code
                if attempt == self.extra_attempts or not (status in (408, 409, 429) or status >= 500):
                    raise
                wait = _retry_after(err.response)
                if wait is None:
                    wait = self._backoff(attempt)
                problem = _describe(err)
            except openai.APIConnectionError as err:  # includes APITimeoutError
                if attempt == self.extra_attempts:
                    raise
                wait, problem = self._backoff(attempt), _describe(err)
            self.log.warning(f"{what}: {problem}; retry {attempt + 1} of {self.extra_attempts} in {wait:.2f}s")
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_s * (2 ** attempt), self.max_backoff_s)
