"""The ``POST /v1/completions`` handler as a pure function (OpenAI's legacy completions API,
the subset the original Basaran server answered): ``prompt``, ``max_tokens``, ``seed`` and ``n``
→ ``choices[i].text``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from substratus_workload import ngram

DEFAULT_MAX_TOKENS = 16
MAX_TOKENS = 4096


class RequestError(ValueError):
    """A request this server refuses (HTTP 400); the message says which field is wrong."""


def _int_field(body: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RequestError(f"'{name}' must be an integer from {low} to {high}")
    return value


def complete(model: ngram.Model, model_name: str, body: object) -> dict[str, Any]:
    """The response body for a request body (already parsed JSON)."""
    if not isinstance(body, Mapping):
        raise RequestError("the body must be a JSON object")
    prompt = body.get("prompt", "")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise RequestError("'prompt' must be a string")
    max_tokens = _int_field(body, "max_tokens", DEFAULT_MAX_TOKENS, 0, MAX_TOKENS)
    seed = _int_field(body, "seed", 0, 0, 2**31)
    n = _int_field(body, "n", 1, 1, 16)
    texts = [ngram.generate(model, prompt, max_tokens, seed=seed + index) for index in range(n)]
    choices = [
        {
            "text": text,
            "index": index,
            "logprobs": None,
            "finish_reason": "length" if len(text) == max_tokens else "stop",
        }
        for index, text in enumerate(texts)
    ]
    completion_tokens = sum(len(text) for text in texts)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": choices,
        "usage": {
            "prompt_tokens": len(prompt),
            "completion_tokens": completion_tokens,
            "total_tokens": len(prompt) + completion_tokens,
        },
    }
