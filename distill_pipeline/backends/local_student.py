"""The local student: in-process transformers generation with token logprobs (a ChatModel).

Greedy decoding, batched with left padding. The adapter is merged into the base
weights before generation (faster, same answers up to rounding). With
adapter_dir=None the same class serves the untrained base model.

Timing, per call in a batch: ttft_ms is the time from the start of the batch
(tokenization included) to its first generated token, which is what every call
in the batch waited for its first token when served together; latency_ms is the
time until that call's own last token. On CPU a batch's prefill is slower than a
single prompt's, so both are pessimistic against serving one call at a time.

token_logprobs holds one natural-log probability per generated token, the
end-of-turn token included (so an empty answer still carries its confidence);
completion_tokens counts the same tokens, and text excludes the end-of-turn token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from distill_pipeline.backends.local_trainer import load_base, quiet_peft, render_chat, resolve_device_dtype
from distill_pipeline.core.chat import Completion, TokenEvent, TokenStream, clamp_logprob
from distill_pipeline.core.presets import LoraSettings


class LocalStudent:
    """A ChatModel served in-process by transformers: the base model, optionally with a merged LoRA adapter."""

    def __init__(self, base_model_dir: Path, adapter_dir: Path | None, settings: LoraSettings,
                 name: str | None = None, log: Callable[[str], None] | None = None,
                 json_schema: dict[str, Any] | Callable[[list[dict]], dict[str, Any]] | None = None) -> None:
        import torch

        self.base_model_dir = Path(base_model_dir)
        self.adapter_dir = Path(adapter_dir) if adapter_dir is not None else None
        self.settings = settings
        self.log = log
        started = time.perf_counter()
        self.device, self.dtype = resolve_device_dtype(settings.dtype)
        self.tokenizer, model = load_base(self.base_model_dir, self.dtype, self.device)
        self.tokenizer.padding_side = "left"
        if self.adapter_dir is not None:
            from peft import PeftModel

            if not (self.adapter_dir / "adapter_config.json").is_file():
                raise FileNotFoundError(f"{self.adapter_dir} holds no LoRA adapter (no adapter_config.json); pass the "
                                        "adapter/ directory the trainer wrote")
            with quiet_peft():
                model = PeftModel.from_pretrained(model, str(self.adapter_dir)).merge_and_unload()
        model.eval()
        self.model = model
        self.eos_ids = _eos_ids(self.tokenizer, model)
        self.name = name or _default_name(self.base_model_dir, self.adapter_dir)
        # Decoding constrained to the answer's JSON schema, or to a schema per request (core/decoding.py: codes the
        # request indicates, dates and times it says): xgrammar masks the tokens the grammar does not allow.
        self.json_schema = json_schema
        self._grammars: dict[str, Any] = {}  # compiled, by schema
        self._grammar_info: Any = None
        self.load_s = time.perf_counter() - started
        torch.manual_seed(settings.seed)

    def complete(self, messages: list[dict]) -> Completion:
        return self.complete_batch([messages])[0]

    def complete_batch(self, conversations: list[list[dict]]) -> list[Completion]:
        """Greedy answers for many requests, eval_batch_size at a time (similar lengths batched together)."""
        results: list[Completion | None] = [None] * len(conversations)
        prompts = [render_chat(self.tokenizer, messages, add_generation_prompt=True) for messages in conversations]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        size = self.settings.eval_batch_size
        started = time.perf_counter()
        for start in range(0, len(order), size):
            batch = order[start:start + size]
            grammars = [self._grammar(conversations[i]) for i in batch] if self.json_schema is not None else None
            for i, completion in zip(batch, self._generate([prompts[i] for i in batch], grammars), strict=True):
                results[i] = completion
            done = start + len(batch)
            if self.log and len(order) > size:
                elapsed = time.perf_counter() - started
                self.log(f"{self.name}: answered {done}/{len(order)} | elapsed {elapsed:.0f} s "
                         f"| ETA {elapsed / done * (len(order) - done):.0f} s")
        return [r for r in results if r is not None]

    def _grammar(self, messages: list[dict]) -> Any:
        schema = self.json_schema(messages) if callable(self.json_schema) else self.json_schema
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:  # a handful of distinct schemas: one per set of indicated codes and dates
            if self._grammar_info is None:
                self._grammar_info = _grammar_compiler(self.tokenizer, self.model)
            self._grammars[key] = self._grammar_info.compile_json_schema(schema, any_whitespace=False,
                                                                         separators=(",", ":"))
        return self._grammars[key]

    def stream(self, messages: list[dict]) -> TokenStream:
        """One request, token by token as served: what the router reads and the evaluation times.

        Greedy decoding with the KV cache, one token per forward pass, constrained like `complete` (the same
        tokens, one request at a time). Each token's event comes as soon as its logits are ready; closing the
        stream stops generating. ttft_ms and latency_ms are this request's own, tokenization included.
        """
        return TokenStream(self._stream(messages))

    def _stream(self, messages: list[dict]) -> Generator[TokenEvent, None, Completion]:
        import torch

        started = time.perf_counter()
        prompt = render_chat(self.tokenizer, messages, add_generation_prompt=True)
        input_ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(self.device)
        matcher = bitmask = None
        if self.json_schema is not None:
            import xgrammar

            grammar = self._grammar(messages)
            matcher = xgrammar.GrammarMatcher(grammar)
            bitmask = xgrammar.allocate_token_bitmask(1, grammar.tokenizer_info.vocab_size)
        tokens: list[int] = []
        logprobs: list[float] = []
        offsets: list[int] = []
        times: list[float] = []
        answer: list[int] = []
        text = ""  # the answer's text so far, up to its last whole character
        step_input, cache = input_ids, None
        cache_kwarg = _cache_kwarg(self.model)
        for _ in range(self.settings.max_new_tokens):
            with torch.inference_mode():  # per step: the caller runs between tokens, outside inference mode
                output = self.model(input_ids=step_input, use_cache=True, logits_to_keep=1, **{cache_kwarg: cache})
                cache = getattr(output, cache_kwarg)
                scores = output.logits[:, -1, :].float()
                if matcher is not None and bitmask is not None:
                    matcher.fill_next_token_bitmask(bitmask)
                    xgrammar.apply_token_bitmask_inplace(scores, bitmask.to(scores.device))
                logp = torch.log_softmax(scores, dim=-1)
                token = int(torch.argmax(logp, dim=-1)[0])
                logprob = clamp_logprob(float(logp[0, token]))
            ready = round((time.perf_counter() - started) * 1000, 2)
            tokens.append(token)
            logprobs.append(logprob)
            times.append(ready)
            offsets.append(len(text))
            if token in self.eos_ids:
                yield TokenEvent("", logprob, len(text), ready)
                break
            if matcher is not None:
                matcher.accept_token(token)
            answer.append(token)
            decoded = self.tokenizer.decode(answer, skip_special_tokens=True)
            piece = "" if decoded.endswith("\ufffd") else decoded[len(text):]  # half a character waits
            text += piece
            yield TokenEvent(piece, logprob, offsets[-1], ready)
            step_input = torch.tensor([[token]], device=self.device)
        final = self.tokenizer.decode(answer, skip_special_tokens=True)
        return Completion(
            text=final, token_logprobs=logprobs, token_offsets=[min(o, len(final)) for o in offsets],
            token_times_ms=times, prompt_tokens=int(input_ids.shape[1]), completion_tokens=len(tokens),
            ttft_ms=times[0] if times else 0.0, latency_ms=times[-1] if times else 0.0, model=self.name)

    def _generate(self, prompts: list[str], grammars: list[Any] | None = None) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        started = time.perf_counter()
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        input_ids = encoded["input_ids"].to(self.device)
        attention_mask = encoded["attention_mask"].to(self.device)
        recorder = _StepRecorder()
        processors: list[Any] = []
        if grammars is not None:
            from xgrammar.contrib.hf import LogitsProcessor as GrammarProcessor

            processors.append(GrammarProcessor(grammars))  # one per generate() call: it keeps per-row state
        processors.append(recorder)  # after the grammar, so the recorded logprobs are the constrained ones
        config = GenerationConfig(
            max_new_tokens=self.settings.max_new_tokens, do_sample=False, num_beams=1,
            eos_token_id=sorted(self.eos_ids), pad_token_id=self.tokenizer.pad_token_id,
            output_scores=True, return_dict_in_generate=True,
        )
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids, attention_mask=attention_mask, generation_config=config,
                logits_processor=LogitsProcessorList(processors),
            )
        generated = output.sequences[:, input_ids.shape[1]:].tolist()
        logprobs = _chosen_logprobs(output.scores, output.sequences[:, input_ids.shape[1]:])
        completions = []
        for row, tokens in enumerate(generated):
            count = len(tokens)
            for position, token in enumerate(tokens):
                if token in self.eos_ids:
                    count = position + 1
                    break
            answer = [t for t in tokens[:count] if t not in self.eos_ids]
            text = self.tokenizer.decode(answer, skip_special_tokens=True)
            finished = recorder.times[min(count, len(recorder.times)) - 1] if recorder.times else time.perf_counter()
            completions.append(Completion(
                text=text,
                token_logprobs=[clamp_logprob(v) for v in logprobs[row][:count]],
                token_offsets=_token_offsets(self.tokenizer, tokens[:count], self.eos_ids, len(text)),
                prompt_tokens=int(attention_mask[row].sum()),
                completion_tokens=count,
                ttft_ms=round((recorder.times[0] - started) * 1000, 2) if recorder.times else 0.0,
                token_times_ms=[round((t - started) * 1000, 2) for t in recorder.times[:count]],
                latency_ms=round((finished - started) * 1000, 2),
                model=self.name,
            ))
        return completions


def _cache_kwarg(model: Any) -> str:
    """The forward argument (and output field) of the KV cache: `cache` from transformers 5.x, before that
    `past_key_values`."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _grammar_compiler(tokenizer: Any, model: Any) -> Any:
    try:
        import xgrammar
    except ImportError as err:  # pragma: no cover - xgrammar is in the [local] extra
        raise RuntimeError("constrained decoding needs xgrammar: pip install 'distill-pipeline[local]'") from err
    vocab_size = int(model.get_output_embeddings().weight.shape[0])  # may exceed len(tokenizer): padding rows
    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    return xgrammar.GrammarCompiler(info)  # compact JSON, in the schema's key order: as the teacher writes


def _token_offsets(tokenizer: Any, tokens: list[int], eos_ids: set[int], text_length: int) -> list[int]:
    """Where each generated token starts in the decoded answer (end-of-turn tokens start at its end)."""
    offsets: list[int] = []
    answer: list[int] = []
    for token in tokens:
        if token in eos_ids:
            offsets.append(text_length)
            continue
        offsets.append(min(len(tokenizer.decode(answer, skip_special_tokens=True)), text_length))
        answer.append(token)
    return offsets


class _StepRecorder:
    """A pass-through logits processor that notes when each new token's scores are ready."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if scores.is_cuda:  # the GPU runs ahead of Python: wait until these scores really exist
            import torch

            torch.cuda.synchronize(scores.device)
        self.times.append(time.perf_counter())
        return scores


def _chosen_logprobs(scores: tuple[Any, ...], tokens: Any) -> list[list[float]]:
    """Per row, the log-probability of each generated token under the model's next-token distribution."""
    import torch

    columns = []
    for step, step_scores in enumerate(scores):
        logp = torch.log_softmax(step_scores.float(), dim=-1)
        columns.append(logp.gather(1, tokens[:, step:step + 1]).squeeze(1))
    if not columns:
        return [[] for _ in range(tokens.shape[0])]
    return torch.stack(columns, dim=1).tolist()


def _eos_ids(tokenizer: Any, model: Any) -> set[int]:
    ids = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    for value in (tokenizer.eos_token_id, configured):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def _default_name(base_model_dir: Path, adapter_dir: Path | None) -> str:
    if adapter_dir is None:
        return f"local:{base_model_dir.name}"
    owner = adapter_dir.parent.name if adapter_dir.name == "adapter" else adapter_dir.name
    return f"local:{base_model_dir.name}+lora:{owner}"
