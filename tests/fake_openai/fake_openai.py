#!/usr/bin/env python3
"""Fake OpenAI-compatible HTTP server for ragstream integration tests and benchmarks.

Standard library only (Python 3.11+). A hand-written HTTP/1.1 server over asyncio
streams, so that it can hold thousands of concurrent streaming connections and so
that the exact bytes on the wire (SSE framing, chunk boundaries, disconnects) are
under the test's control. See README.md next to this file for the control interface.

Endpoints:
  POST /v1/chat/completions   streaming (SSE) and non-streaming chat completions
  POST /v1/embeddings         deterministic embeddings
  GET  /v1/models             one model, "fake-model"
  POST /_fake/script          queue scenarios (and/or set the default scenario)
  GET  /_fake/script          show the queue and the default scenario
  POST /_fake/reset           clear queue, default scenario and recorded requests
  GET  /_fake/requests        recorded requests (?since=SEQ for newer ones only)
  GET  /_fake/stats           connection / stream counters
  GET  /_fake/health          {"ok": true}

Chat completions answer with text or with tool calls (scripted, or automatic for a
question about the weather when the request offers tools), streamed as OpenAI does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import email.utils
import hashlib
import http
import json
import math
import os
import random
import re
import resource
import signal
import socket
import struct
import sys
import time
import traceback
import urllib.parse
import uuid

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
READ_SIZE = 65536
DEFAULT_MODEL = "fake-model"
DEFAULT_EMBED_DIMS = 64

# Scenario fields and their types. Values from JSON scripts arrive typed; values
# from inline [[fake: ...]] directives arrive as strings and are coerced.
SCENARIO_FIELDS: dict[str, str] = {
    # error answers instead of a completion
    "status": "int",
    "retry_after": "num",
    "error_code": "str",
    "error_type": "str",
    "error_message": "str",
    # content
    "tokens": "int",
    "text": "str",
    "answer": "strlist",
    "finish_reason": "str",
    "tool_calls": "toolcalls",
    "merge_role_chunk": "bool",
    # timing
    "gap_ms": "num",
    "first_token_ms": "num",
    "headers_delay_ms": "num",
    # failures mid-stream
    "cut_after": "int",
    "cut_rst": "bool",
    "error_event_after": "int",
    "error_event_done": "bool",
    # framing quirks
    "split": "bool",
    "split_delay_ms": "num",
    "seed": "int",
    "crlf": "bool",
    "comments": "bool",
    "content_type": "str",
    # latency measurement
    "stamp": "bool",
    "stamp_content": "bool",
}

DEFAULT_SCENARIO = {"gap_ms": 5.0}


class BadRequest(Exception):
    """Malformed HTTP: answer 400 and close the connection."""


class PeerClosed(Exception):
    """The client closed the connection."""


class ScenarioError(ValueError):
    """Invalid scenario / directive: answer 400 with an OpenAI-shaped error."""


# --------------------------------------------------------------------------- scenarios


def _coerce(key: str, value):
    kind = SCENARIO_FIELDS.get(key)
    if kind is None:
        raise ScenarioError(f"unknown scenario field {key!r}")
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)):
                return bool(value)
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(value)
                return int(value)
            return int(value)
        if kind == "num":
            if isinstance(value, bool):
                raise ValueError(value)
            v = float(value)
            if not math.isfinite(v):
                raise ValueError(value)
            return v
        if kind == "str":
            return value if isinstance(value, str) else json.dumps(value)
        if kind == "strlist":
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise ValueError(value)
            return list(value)
        if kind == "toolcalls":
            return _coerce_tool_calls(value)
    except ScenarioError:
        raise
    except (TypeError, ValueError):
        raise ScenarioError(f"bad value for scenario field {key!r}: {value!r}") from None
    raise AssertionError(kind)


def _coerce_tool_calls(value) -> list[dict]:
    """`tool_calls`: a list of {"name": str, "arguments": str (JSON text), "id": str}; only
    "name" is required ("arguments" defaults to "{}", "id" to call_<seq>_<index>). The
    arguments are not checked to be valid JSON: a test may want a model's broken JSON."""
    if not isinstance(value, list):
        raise ScenarioError(f"'tool_calls' must be a list of {{name, arguments, id}} objects, not {value!r}")
    out = []
    for i, call in enumerate(value):
        if not isinstance(call, dict):
            raise ScenarioError(f"tool_calls[{i}] must be an object, not {call!r}")
        unknown = set(call) - {"name", "arguments", "id"}
        if unknown:
            raise ScenarioError(f"tool_calls[{i}] has unknown keys {sorted(unknown)}")
        if not isinstance(call.get("name"), str) or not call["name"]:
            raise ScenarioError(f"tool_calls[{i}].name must be a non-empty string")
        if not isinstance(call.get("arguments", ""), str):
            raise ScenarioError(f"tool_calls[{i}].arguments must be a string (JSON text), "
                                f"not {call['arguments']!r}")
        if "id" in call and (not isinstance(call["id"], str) or not call["id"]):
            raise ScenarioError(f"tool_calls[{i}].id must be a non-empty string")
        out.append({"name": call["name"], "arguments": call.get("arguments", "{}"),
                    **({"id": call["id"]} if "id" in call else {})})
    return out


def normalize_scenario(obj) -> dict:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise ScenarioError("a scenario must be a JSON object")
    return {k: _coerce(k, v) for k, v in obj.items()}


_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIRECTIVE_START = "[[fake:"


def _parse_directive_body(s: str, i: int) -> tuple[dict, int]:
    """Parse `key=value, key=value]]` starting at s[i]; return (fields, index after ']]').

    A value is either JSON (when it starts with '"', '[' or '{', so it may contain
    commas, e.g. text="a, b" or answer=["x","y"]) or a bare word up to ',' / ']]'.
    A bare key without '=' means true (e.g. [[fake: split, crlf]])."""
    out: dict = {}
    n = len(s)
    decoder = json.JSONDecoder()
    while True:
        while i < n and s[i] in " \t\r\n,":
            i += 1
        if s.startswith("]]", i):
            return out, i + 2
        if i >= n:
            raise ScenarioError("unterminated [[fake: ...]] directive")
        m = _KEY_RE.match(s, i)
        if not m:
            raise ScenarioError(f"bad [[fake:]] directive near {s[i:i + 20]!r}")
        key = m.group()
        i = m.end()
        while i < n and s[i] in " \t":
            i += 1
        if i < n and s[i] == "=":
            i += 1
            while i < n and s[i] in " \t":
                i += 1
            if i < n and s[i] in '"[{':
                try:
                    value, i = decoder.raw_decode(s, i)
                except json.JSONDecodeError as e:
                    raise ScenarioError(f"bad JSON value for {key!r} in directive: {e}") from None
            else:
                j = i
                while j < n and s[j] != "," and not s.startswith("]]", j):
                    j += 1
                value = s[i:j].strip()
                i = j
        else:
            value = True
        out[key] = _coerce(key, value)


def extract_directives(text: str) -> tuple[dict, str]:
    """Return (merged directive fields, text with all directives removed)."""
    fields: dict = {}
    parts = []
    pos = 0
    while True:
        start = text.find(_DIRECTIVE_START, pos)
        if start < 0:
            parts.append(text[pos:])
            break
        parts.append(text[pos:start])
        found, pos = _parse_directive_body(text, start + len(_DIRECTIVE_START))
        fields.update(found)
    return fields, "".join(parts)


def message_text(content) -> str:
    """Text of a chat message's content: a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def last_user_text(messages) -> str:
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                return message_text(m.get("content"))
    return ""


def tokenize(text: str) -> list[str]:
    """Split into roughly one word per token, keeping leading whitespace like OpenAI
    does (" is", " a"); "".join(tokenize(t)) == t always holds."""
    toks = re.findall(r"\s*\S+", text)
    rest = text[sum(len(t) for t in toks):]  # trailing whitespace, if any
    if rest:
        if toks:
            toks[-1] += rest
        else:
            toks = [rest]
    return toks


def default_answer(question: str) -> str:
    q = " ".join(question.split())[:40]
    return f"This is a fake answer to: {q}."


def answer_tokens(sc: dict, default_text: str) -> list[str]:
    if "answer" in sc:
        toks = list(sc["answer"])
    elif "text" in sc:
        toks = tokenize(sc["text"])
    elif "tokens" in sc:
        return [f"tok{i} " for i in range(max(0, sc["tokens"]))]
    else:
        toks = tokenize(default_text)
    if "tokens" in sc:
        # An explicit text/answer plus a count: cycle through the text's tokens.
        n = max(0, sc["tokens"])
        toks = [toks[i % len(toks)] for i in range(n)] if toks else [f"tok{i} " for i in range(n)]
    return toks


def _count_words(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


def count_prompt_tokens(messages, tools=None) -> int:
    """Deterministic, roughly tiktoken-sized count. Like OpenAI's, it includes the tool
    definitions and the tool calls of assistant messages."""
    total = 3
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict):
                total += 3 + _count_words(message_text(m.get("content")))
                if isinstance(m.get("tool_calls"), list):
                    total += _count_words(jdump(m["tool_calls"]))
    if isinstance(tools, list) and tools:
        total += _count_words(jdump(tools))
    return total


def error_body(message: str, type_: str, code, param=None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# --------------------------------------------------------------------------- tools


def _json_type(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


class InvalidRequest(Exception):
    """An OpenAI-style 400: (message, param, code)."""

    def __init__(self, message: str, param: str | None, code: str | None):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _bad_type(param: str, expected: str, value) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
                          param, "invalid_type")


_TOOL_NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")
_TOOL_CHOICES = ("none", "auto", "required")


def validate_tool_request(body: dict) -> None:
    """OpenAI's basic checks of `tools`, `tool_choice`, `parallel_tool_calls` and of the
    tool-call messages; raises InvalidRequest. The messages and parameters are those of
    the real API (its 400 invalid_request_error), `param` included."""
    tools = body.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad_type("tools", "an array", tools)
        if not tools:
            raise InvalidRequest("Invalid 'tools': empty array. Expected an array with minimum length 1, "
                                 "but got an empty array instead.", "tools", "empty_array")
        for i, tool in enumerate(tools):
            p = f"tools[{i}]"
            if not isinstance(tool, dict):
                raise _bad_type(p, "an object", tool)
            if "type" not in tool:
                raise _missing(f"{p}.type")
            if tool["type"] != "function":
                raise InvalidRequest(f"Invalid value: {jdump(tool['type'])}. Supported values are: 'function'.",
                                     f"{p}.type", "invalid_value")
            fn = tool.get("function")
            if fn is None:
                raise _missing(f"{p}.function")
            if not isinstance(fn, dict):
                raise _bad_type(f"{p}.function", "an object", fn)
            name = fn.get("name")
            if name is None:
                raise _missing(f"{p}.function.name")
            if not isinstance(name, str):
                raise _bad_type(f"{p}.function.name", "a string", name)
            if not _TOOL_NAME_RE.fullmatch(name):
                raise InvalidRequest(f"Invalid '{p}.function.name': string does not match pattern. Expected a "
                                     f"string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                                     f"{p}.function.name", "invalid_value")
            if len(name) > 64:
                raise InvalidRequest(f"Invalid '{p}.function.name': string too long. Expected a string with "
                                     f"maximum length 64, but got a string with length {len(name)} instead.",
                                     f"{p}.function.name", "string_above_max_length")
            if fn.get("description") is not None and not isinstance(fn["description"], str):
                raise _bad_type(f"{p}.function.description", "a string", fn["description"])
            if fn.get("parameters") is not None and not isinstance(fn["parameters"], dict):
                raise _bad_type(f"{p}.function.parameters", "an object", fn["parameters"])
            if fn.get("strict") is not None and not isinstance(fn["strict"], bool):
                raise _bad_type(f"{p}.function.strict", "a boolean", fn["strict"])
            names.append(name)

    choice = body.get("tool_choice")
    if choice is not None:
        if tools is None:
            raise InvalidRequest("Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
                                 "'tools' are specified.", "tool_choice", None)
        if isinstance(choice, str):
            if choice not in _TOOL_CHOICES:
                raise InvalidRequest(f"Invalid value: {jdump(choice)}. Supported values are: 'none', 'auto', "
                                     f"and 'required'.", "tool_choice", "invalid_value")
        elif isinstance(choice, dict):
            if choice.get("type") != "function":
                raise InvalidRequest(f"Invalid value: {jdump(choice.get('type'))}. Supported values are: "
                                     f"'function'.", "tool_choice.type", "invalid_value")
            fn = choice.get("function")
            if not isinstance(fn, dict):
                raise _missing("tool_choice.function") if fn is None else _bad_type("tool_choice.function",
                                                                                  "an object", fn)
            if not isinstance(fn.get("name"), str):
                raise _missing("tool_choice.function.name") if fn.get("name") is None else _bad_type(
                    "tool_choice.function.name", "a string", fn["name"])
            if fn["name"] not in names:
                raise InvalidRequest(f"Invalid value for 'tool_choice': function {jdump(fn['name'])} was not "
                                     f"found in 'tools'.", "tool_choice", None)
        else:
            raise _bad_type("tool_choice", "one of a string or an object", choice)

    ptc = body.get("parallel_tool_calls")
    if ptc is not None:
        if not isinstance(ptc, bool):
            raise _bad_type("parallel_tool_calls", "a boolean", ptc)
        if tools is None:
            raise InvalidRequest("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only "
                                 "allowed when 'tools' are specified.", "parallel_tool_calls", None)

    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    # An assistant message with tool_calls must be followed by one tool message per call
    # (in any order), and a tool message must answer a call of that assistant message.
    open_calls: list[str] | None = None  # ids still unanswered; None outside a tool run
    open_at = 0
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role == "tool":
            if m.get("tool_call_id") is None:
                raise _missing(f"messages[{i}].tool_call_id")
            if not isinstance(m["tool_call_id"], str):
                raise _bad_type(f"messages[{i}].tool_call_id", "a string", m["tool_call_id"])
            if m.get("content") is None:
                raise _missing(f"messages[{i}].content")
            if open_calls is None:
                raise InvalidRequest("Invalid parameter: messages with role 'tool' must be a response to a "
                                     "preceeding message with 'tool_calls'.", f"messages.[{i}].role", None)
            if m["tool_call_id"] in open_calls:
                open_calls.remove(m["tool_call_id"])
            else:
                raise InvalidRequest(f"Invalid parameter: 'tool_call_id' of {jdump(m['tool_call_id'])} not found "
                                     f"in 'tool_calls' of previous message.", f"messages.[{i}].tool_call_id", None)
            continue
        if open_calls:
            break
        open_calls = None
        if role == "assistant" and m.get("tool_calls") is not None:
            calls = m["tool_calls"]
            p = f"messages[{i}].tool_calls"
            if not isinstance(calls, list):
                raise _bad_type(p, "an array", calls)
            if not calls:
                raise InvalidRequest(f"Invalid '{p}': empty array. Expected an array with minimum length 1, "
                                     f"but got an empty array instead.", p, "empty_array")
            open_calls, open_at = [], i
            for j, call in enumerate(calls):
                q = f"{p}[{j}]"
                if not isinstance(call, dict):
                    raise _bad_type(q, "an object", call)
                for key in ("id", "type", "function"):
                    if call.get(key) is None:
                        raise _missing(f"{q}.{key}")
                if not isinstance(call["id"], str):
                    raise _bad_type(f"{q}.id", "a string", call["id"])
                if call["type"] != "function":
                    raise InvalidRequest(f"Invalid value: {jdump(call['type'])}. Supported values are: "
                                         f"'function'.", f"{q}.type", "invalid_value")
                fn = call["function"]
                if not isinstance(fn, dict):
                    raise _bad_type(f"{q}.function", "an object", fn)
                for key in ("name", "arguments"):
                    if fn.get(key) is None:
                        raise _missing(f"{q}.function.{key}")
                    if not isinstance(fn[key], str):
                        raise _bad_type(f"{q}.function.{key}", "a string", fn[key])
                open_calls.append(call["id"])
    if open_calls:
        raise InvalidRequest("An assistant message with 'tool_calls' must be followed by tool messages "
                             "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                             f"response messages: {', '.join(open_calls)}", f"messages.[{open_at}].role", None)


_CITY_RE = re.compile(r"\bin\s+(\S+)", re.IGNORECASE)


def auto_tool_calls(body: dict, text: str) -> list[dict] | None:
    """The automatic tool use (see the README): with `tools` in the request and
    `tool_choice` not "none", call a tool if the (directive-free) text of the last user
    message says "weather", or if `tool_choice` forces a call. Returns [{name, arguments}]
    or None for a text answer. The request is validated already."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    choice = body.get("tool_choice")
    if choice == "none":
        return None
    names = [t["function"]["name"] for t in tools]
    if isinstance(choice, dict):
        name = choice["function"]["name"]
    elif "weather" in text.lower():
        name = next((n for n in names if "weather" in n.lower()), names[0])
    elif choice == "required":
        name = names[0]
    else:
        return None
    m = _CITY_RE.search(text)
    city = re.sub(r"^\W+|\W+$", "", m.group(1)) if m else ""
    args = json.dumps({"city": city or "Paris"}, ensure_ascii=False, separators=(",", ":"))
    return [{"name": name, "arguments": args}]


def tool_result_answer(content) -> str:
    t = " ".join(message_text(content).split())[:60]
    return f"Tool said: {t}."


def argument_pieces(arguments: str, rng: random.Random) -> list[str]:
    """Split a tool call's arguments into pieces of 3 to 8 characters, as OpenAI streams
    them. The Python string is split (so a piece never ends inside a \\uXXXX escape or a
    surrogate pair once JSON-encoded)."""
    pieces = []
    i = 0
    while i < len(arguments):
        n = rng.randint(3, 8)
        pieces.append(arguments[i:i + n])
        i += n
    return pieces


_DEFAULT_ERROR_MESSAGES = {
    400: "Bad request (fake).",
    401: "Incorrect API key provided (fake).",
    403: "Forbidden (fake).",
    404: "The model does not exist (fake).",
    429: "Rate limit reached for requests (fake).",
    500: "The server had an error while processing your request. Sorry about that! (fake)",
    502: "Bad gateway (fake).",
    503: "The engine is currently overloaded, please try again later. (fake)",
    504: "Gateway timeout (fake).",
}


def scenario_error(sc: dict) -> dict:
    status = sc["status"]
    code = sc.get("error_code")
    if code is None:
        code = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status)
    type_ = sc.get("error_type")
    if type_ is None:
        if code == "insufficient_quota":
            type_ = "insufficient_quota"
        elif code == "rate_limit_exceeded" or status == 429:
            type_ = "requests"
        elif status >= 500:
            type_ = "server_error"
        else:
            type_ = "invalid_request_error"
    message = sc.get("error_message")
    if message is None:
        if code == "insufficient_quota":
            message = "You exceeded your current quota, please check your plan and billing details. (fake)"
        else:
            message = _DEFAULT_ERROR_MESSAGES.get(status, f"Error {status} (fake).")
    return error_body(message, type_, code)


def embedding_for(text: str, dims: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    rng = random.Random(seed)
    v = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


def jdump(obj) -> str:
    # Compact separators like OpenAI; ensure_ascii so non-ASCII arrives as \uXXXX
    # escapes (surrogate pairs for astral characters such as emoji).
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"))


async def sleep_ms(ms) -> None:
    if ms and ms > 0:
        await asyncio.sleep(ms / 1000.0)


# --------------------------------------------------------------------------- HTTP plumbing


class Conn:
    """A client connection with our own read buffer.

    StreamReader has no peek/unread, and while a response is streaming we keep a
    task reading the socket to notice the client closing. Any bytes that task
    receives (a pipelined next request) are kept in self.buf for the parser."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.eof = False

    async def fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = await self.reader.read(READ_SIZE)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def read_until(self, sep: bytes, limit: int) -> bytes:
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                end = i + len(sep)
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return out
            if len(self.buf) > limit:
                raise BadRequest("header section too large")
            start = max(0, len(self.buf) - len(sep) + 1)
            if not await self.fill():
                raise PeerClosed(bool(self.buf))

    async def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not await self.fill():
                raise PeerClosed(True)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def wait_peer_close(self) -> None:
        """Return when the client closes (EOF or reset); keeps any data it reads."""
        while await self.fill():
            if len(self.buf) > MAX_BODY_BYTES:  # a client flooding us: give up
                break


class Request:
    def __init__(self, method, target, version, headers, body):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value) as received
        self.body = body
        split = urllib.parse.urlsplit(target)
        self.path = split.path
        self.query = urllib.parse.parse_qs(split.query)
        self.h: dict[str, str] = {}
        for name, value in headers:
            k = name.lower()
            self.h[k] = f"{self.h[k]}, {value}" if k in self.h else value
        tokens = {t.strip().lower() for t in self.h.get("connection", "").split(",")}
        if version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in tokens
        else:
            self.keep_alive = "close" not in tokens


async def read_request(conn: Conn) -> Request | None:
    """Read one request; None on a clean close between requests."""
    try:
        head = await conn.read_until(b"\r\n\r\n", MAX_HEADER_BYTES)
    except PeerClosed as e:
        if e.args and e.args[0]:
            raise BadRequest("connection closed inside request headers") from None
        return None
    lines = head.decode("latin-1").split("\r\n")
    while lines and lines[0] == "":  # tolerate stray CRLFs between requests
        lines.pop(0)
    if not lines:
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {lines[0]!r}")
    method, target, version = parts
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"bad header line {line!r}")
        headers.append((name, value.strip()))
    req = Request(method, target, version, headers, b"")

    chunked = "chunked" in req.h.get("transfer-encoding", "").lower()
    length = 0
    if not chunked and "content-length" in req.h:
        try:
            length = int(req.h["content-length"])
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise BadRequest("bad Content-Length")
    # libcurl sends "Expect: 100-continue" for large POST bodies and waits (1 s by
    # default) for this interim response before sending the body.
    if req.h.get("expect", "").lower() == "100-continue" and (chunked or length > 0):
        conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await conn.writer.drain()
    try:
        if chunked:
            req.body = await read_chunked_body(conn)
        elif length:
            req.body = await conn.read_exact(length)
    except PeerClosed:
        raise BadRequest("connection closed inside request body") from None
    return req


async def read_chunked_body(conn: Conn) -> bytes:
    body = bytearray()
    while True:
        line = await conn.read_until(b"\r\n", MAX_HEADER_BYTES)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            # Optional trailers, then an empty line.
            while (await conn.read_until(b"\r\n", MAX_HEADER_BYTES)) != b"\r\n":
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            raise BadRequest("body too large")
        body += await conn.read_exact(size)
        if await conn.read_exact(2) != b"\r\n":
            raise BadRequest("bad chunk terminator")


def reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason_phrase(status)}", f"Date: {email.utils.formatdate(usegmt=True)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def json_response_bytes(status: int, obj, keep_alive: bool, extra_headers=()) -> bytes:
    body = (jdump(obj) + "\n").encode("ascii")
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Connection", "keep-alive" if keep_alive else "close"),
        *extra_headers,
    ]
    return response_head(status, headers) + body


class SSEWriter:
    """Writes SSE events as HTTP chunks, applying the scenario's framing quirks."""

    def __init__(self, writer: asyncio.StreamWriter, sc: dict, rng: random.Random):
        self.writer = writer
        self.nl = "\r\n" if sc.get("crlf") else "\n"
        self.split = bool(sc.get("split"))
        self.split_delay_ms = sc.get("split_delay_ms", 1.0)
        self.comments = bool(sc.get("comments"))
        self.rng = rng
        self.carry = b""  # split mode: tail of the previous event, sent with the next one

    async def event_json(self, obj) -> None:
        await self.event(jdump(obj))

    async def event(self, data: str) -> None:
        if self.comments:
            await self._send(f": keep-alive{self.nl}{self.nl}".encode("ascii"))
        await self._send(f"data: {data}{self.nl}{self.nl}".encode("utf-8"))

    async def end(self) -> None:
        if self.carry:
            await self._chunk(self.carry)
            self.carry = b""
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    async def _chunk(self, data: bytes) -> None:
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self.writer.drain()

    async def _send(self, event: bytes) -> None:
        if not self.split:
            await self._chunk(event)
            return
        data = self.carry + event
        self.carry = b""
        base = len(data) - len(event)
        rng = self.rng
        cuts = {rng.randrange(1, len(data)) for _ in range(rng.randint(1, 3))}
        # Deliberately nasty cut points: inside "data:", inside a \uXXXX escape,
        # and between the two line terminators that end the event.
        if rng.random() < 0.5:
            cuts.add(base + rng.randint(1, 4))
        escapes = [m.start() for m in re.finditer(rb"\\u", data)]
        if escapes and rng.random() < 0.7:
            cuts.add(rng.choice(escapes) + rng.randint(1, 5))
        if rng.random() < 0.3:
            cuts.add(len(data) - (2 if self.nl == "\r\n" else 1))
        cuts = sorted(c for c in cuts if 0 < c < len(data))
        bounds = [0, *cuts, len(data)]
        pieces = [data[a:b] for a, b in zip(bounds, bounds[1:])]
        # Sometimes hold the tail back so that one write carries the end of this
        # event and the start of the next one.
        if len(pieces) > 1 and rng.random() < 0.3:
            self.carry = pieces.pop()
        for i, piece in enumerate(pieces):
            if i:
                await sleep_ms(self.split_delay_ms)
            await self._chunk(piece)


# --------------------------------------------------------------------------- the server


class FakeOpenAI:
    def __init__(self, require_key: str | None, max_records: int, verbose: bool):
        self.require_key = require_key
        self.verbose = verbose
        self.queue: collections.deque[dict] = collections.deque()
        self.default: dict = {}
        self.records: collections.deque[dict] = collections.deque(maxlen=max_records)
        self.seq = 0
        self.conn_tasks: set[asyncio.Task] = set()
        self.stats = {
            "connections_open": 0,
            "connections_total": 0,
            "max_connections_open": 0,
            "requests_total": 0,
            "active_streams": 0,
            "max_active_streams": 0,
        }

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"[fake_openai {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    # ---- connection loop

    async def handle_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.conn_tasks.add(task)
        st = self.stats
        st["connections_open"] += 1
        st["connections_total"] += 1
        st["max_connections_open"] = max(st["max_connections_open"], st["connections_open"])
        conn = Conn(reader, writer)
        try:
            while True:
                try:
                    req = await read_request(conn)
                except BadRequest as e:
                    writer.write(json_response_bytes(400, error_body(str(e), "invalid_request_error", None), False))
                    await writer.drain()
                    break
                if req is None:
                    break
                st["requests_total"] += 1
                self.log(f"{req.method} {req.target}")
                try:
                    keep = await self.dispatch(conn, req)
                except (ConnectionError, OSError, PeerClosed):
                    break
                except Exception:  # a bug here: report it, keep the server alive
                    traceback.print_exc()
                    with contextlib.suppress(Exception):
                        writer.write(json_response_bytes(
                            500, error_body("fake server internal error", "server_error", None), False))
                        await writer.drain()
                    break
                if not keep or conn.eof:
                    break
        except (ConnectionError, OSError, PeerClosed):
            pass
        except asyncio.CancelledError:
            pass  # server shutting down
        finally:
            st["connections_open"] -= 1
            self.conn_tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def dispatch(self, conn: Conn, req: Request) -> bool:
        """Answer one request; return whether the connection may be reused."""
        path = req.path
        if path.startswith("/_fake/"):
            return await self.control(conn, req)
        # Accept both base URLs "http://host:port/v1" and "http://host:port".
        if path.startswith("/v1/"):
            path = path[3:]
        routes = {
            "/chat/completions": ("POST", self.chat),
            "/embeddings": ("POST", self.embeddings),
            "/models": ("GET", self.models),
        }
        if path not in routes:
            return await self.send_json(conn, req, 404, error_body(
                f"Unknown request URL: {req.method} {req.path}.", "invalid_request_error", "unknown_url"))
        method, handler = routes[path]
        if req.method != method:
            return await self.send_json(conn, req, 405, error_body(
                f"Method {req.method} not allowed for {req.path}.", "invalid_request_error", None))
        record = self.new_record(req)
        if self.require_key is not None:
            auth = req.h.get("authorization", "")
            if auth != f"Bearer {self.require_key}":
                record["status"] = 401
                record["completed"] = True
                return await self.send_json(conn, req, 401, error_body(
                    "Incorrect API key provided (fake).", "invalid_request_error", "invalid_api_key"))
        return await handler(conn, req, record)

    async def send_json(self, conn: Conn, req: Request, status: int, obj, extra_headers=()) -> bool:
        conn.writer.write(json_response_bytes(status, obj, req.keep_alive, extra_headers))
        await conn.writer.drain()
        return req.keep_alive

    def new_record(self, req: Request) -> dict:
        self.seq += 1
        body = None
        if req.body:
            try:
                body = json.loads(req.body)
            except ValueError:
                body = req.body.decode("utf-8", "replace")
        headers: dict[str, str] = {}
        for name, value in req.headers:
            if name.lower() == "authorization":
                value = "<redacted>"
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        rec = {
            "seq": self.seq,
            "method": req.method,
            "path": req.path,
            "headers": headers,
            "body": body,
            "received_at": time.time(),
            "scenario": None,
            "stream": None,
            "status": None,
            "tokens_sent": 0,
            "tool_calls": None,
            "closed_by_client_at": None,
            "completed": False,
        }
        self.records.append(rec)
        return rec

    async def run_watched(self, conn: Conn, record: dict, coro) -> bool:
        """Run a response coroutine while watching for the client closing the
        connection, so that a close is noticed promptly even while the response is
        sleeping (first_token_ms, gap_ms), and the response is then abandoned."""
        work = asyncio.create_task(coro)
        watch = asyncio.create_task(conn.wait_peer_close())
        try:
            await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            watch.cancel()
            raise
        if work.done():
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            exc = work.exception()
            if exc is None:
                return work.result()
            if isinstance(exc, (ConnectionError, OSError, PeerClosed)):
                self.mark_closed(record)
                return False
            raise exc
        # The client went away first.
        self.mark_closed(record)
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await work
        return False

    def mark_closed(self, record: dict) -> None:
        if record["closed_by_client_at"] is None and not record["completed"]:
            record["closed_by_client_at"] = time.time()
            self.log(f"request #{record['seq']}: client closed the connection")

    # ---- OpenAI endpoints

    async def chat(self, conn: Conn, req: Request, record: dict) -> bool:
        body = record["body"]
        if not isinstance(body, dict):
            record["status"] = 400
            record["completed"] = True
            return await self.send_json(conn, req, 400, error_body(
                "We could not parse the JSON body of your request.", "invalid_request_error", None))
        messages = body.get("messages")
        try:
            validate_tool_request(body)
        except InvalidRequest as e:
            record["status"] = 400
            record["completed"] = True
            return await self.send_json(conn, req, 400, error_body(
                e.message, "invalid_request_error", e.code, e.param))
        try:
            inline, question = extract_directives(last_user_text(messages))
        except ScenarioError as e:
            record["status"] = 400
            record["completed"] = True
            return await self.send_json(conn, req, 400, error_body(str(e), "invalid_request_error", "fake_directive"))
        last = messages[-1] if isinstance(messages, list) and messages and isinstance(messages[-1], dict) else {}
        last_role = last.get("role")
        if last_role == "tool":
            # The last user message asked for these calls and they have been answered: asking
            # again would loop a client that runs tools until it gets text.
            inline.pop("tool_calls", None)
        sc = dict(DEFAULT_SCENARIO)
        sc.update(self.default)
        if self.queue:
            sc.update(self.queue.popleft())
        sc.update(inline)
        record["scenario"] = sc
        stream = bool(body.get("stream"))
        record["stream"] = stream
        if "status" in sc:
            coro = self.chat_error(conn, req, record, sc)
        else:
            answer = self.plan_answer(record, sc, body, question, last)
            if stream:
                coro = self.chat_stream(conn, req, record, sc, body, answer)
            else:
                coro = self.chat_plain(conn, req, record, sc, body, answer)
        return await self.run_watched(conn, record, coro)

    def plan_answer(self, record: dict, sc: dict, body: dict, question: str, last: dict) -> dict:
        """What the completion says: content tokens and/or tool calls, and the steps
        (chunk deltas) that stream them."""
        explicit_text = any(k in sc for k in ("text", "answer", "tokens"))
        if "tool_calls" in sc:
            calls = sc["tool_calls"]  # [] means: a text answer, no automatic tool call
        elif not explicit_text and last.get("role") == "user":
            calls = auto_tool_calls(body, question) or []
        else:
            calls = []
        if last.get("role") == "tool":
            default_text = tool_result_answer(last.get("content"))
        else:
            default_text = default_answer(question)
        tokens = answer_tokens(sc, default_text) if (explicit_text or not calls) else []
        seq = record["seq"]
        calls = [{"id": c.get("id") or f"call_{seq}_{i}", "name": c["name"], "arguments": c["arguments"]}
                 for i, c in enumerate(calls)]
        record["tool_calls"] = calls or None
        # Steps: one chunk delta each; a content token, the head of a tool call (id, type,
        # name, empty arguments) or a piece of its arguments. The calls follow one another
        # with increasing index, as OpenAI streams parallel calls.
        steps = [{"content": t} for t in tokens]
        rng = random.Random(f"tool-args:{sc.get('seed', seq)}") if calls else None
        for i, c in enumerate(calls):
            steps.append({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                          "function": {"name": c["name"], "arguments": ""}}]})
            steps += [{"tool_calls": [{"index": i, "function": {"arguments": piece}}]}
                      for piece in argument_pieces(c["arguments"], rng)]
        return {
            "tokens": tokens,
            "calls": calls,
            "steps": steps,
            "finish_reason": sc.get("finish_reason", "tool_calls" if calls else "stop"),
            "model": body.get("model") if isinstance(body.get("model"), str) else DEFAULT_MODEL,
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "created": int(time.time()),
        }

    async def chat_error(self, conn: Conn, req: Request, record: dict, sc: dict) -> bool:
        await sleep_ms(sc.get("headers_delay_ms"))
        extra = []
        if "retry_after" in sc:
            ra = sc["retry_after"]
            extra.append(("Retry-After", str(int(ra)) if float(ra).is_integer() else str(ra)))
        record["status"] = sc["status"]
        keep = await self.send_json(conn, req, sc["status"], scenario_error(sc), extra)
        record["completed"] = True
        return keep

    async def chat_plain(self, conn, req, record, sc, body, answer) -> bool:
        steps, calls = answer["steps"], answer["calls"]
        # Simulate generation time as if streaming had happened.
        await sleep_ms(sc.get("headers_delay_ms", 0) + sc.get("first_token_ms", 0)
                       + sc.get("gap_ms", 0) * max(0, len(steps) - 1))
        prompt_tokens = count_prompt_tokens(body.get("messages"), body.get("tools"))
        message = {"role": "assistant", "content": "".join(answer["tokens"])}
        if calls:
            if not answer["tokens"]:
                message["content"] = None
            message["tool_calls"] = [{"id": c["id"], "type": "function",
                                      "function": {"name": c["name"], "arguments": c["arguments"]}}
                                     for c in calls]
        obj = {
            "id": answer["id"],
            "object": "chat.completion",
            "created": answer["created"],
            "model": answer["model"],
            "system_fingerprint": "fp_fake",
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": answer["finish_reason"],
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(steps),
                "total_tokens": prompt_tokens + len(steps),
            },
        }
        data = json_response_bytes(200, obj, req.keep_alive)
        record["status"] = 200
        if "cut_after" in sc:
            # Headers and part of the body, then close: the client sees a short body.
            head_len = data.index(b"\r\n\r\n") + 4
            conn.writer.write(data[:head_len + (len(data) - head_len) // 2])
            await conn.writer.drain()
            self.cut(conn, sc)
            return False
        conn.writer.write(data)
        await conn.writer.drain()
        record["tokens_sent"] = len(steps)
        record["completed"] = True
        return req.keep_alive

    def cut(self, conn: Conn, sc: dict) -> None:
        """Drop the connection without finishing the response."""
        transport = conn.writer.transport
        if sc.get("cut_rst"):
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    # Linger 0: close() sends RST instead of FIN.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()

    async def chat_stream(self, conn, req, record, sc, body, answer) -> bool:
        steps, tokens = answer["steps"], answer["tokens"]
        cid, created, model = answer["id"], answer["created"], answer["model"]
        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
        rng = random.Random(sc.get("seed", record["seq"]))
        started = time.monotonic()
        st = self.stats
        st["active_streams"] += 1
        st["max_active_streams"] = max(st["max_active_streams"], st["active_streams"])
        try:
            await sleep_ms(sc.get("headers_delay_ms"))
            headers = [
                ("Content-Type", sc.get("content_type", "text/event-stream; charset=utf-8")),
                ("Transfer-Encoding", "chunked"),
                ("Connection", "keep-alive" if req.keep_alive else "close"),
                ("Cache-Control", "no-cache, must-revalidate"),
                ("x-request-id", "req_" + uuid.uuid4().hex),
                ("openai-processing-ms", str(int((time.monotonic() - started) * 1000))),
            ]
            conn.writer.write(response_head(200, headers))
            record["status"] = 200
            out = SSEWriter(conn.writer, sc, rng)

            def chunk(delta: dict, finish_reason=None) -> dict:
                obj = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
                }
                if include_usage:
                    obj["usage"] = None
                return obj

            # The role chunk. An answer that is only tool calls has "content": null there,
            # as OpenAI sends; merge_role_chunk puts the role into the first tool call's chunk.
            role = {"role": "assistant", "content": "" if tokens or not steps else None}
            merge_role = bool(sc.get("merge_role_chunk")) and not tokens and bool(steps)
            if not merge_role:
                await out.event_json(chunk(role))
            cut_after = sc.get("cut_after")
            error_after = sc.get("error_event_after")
            for i in range(len(steps) + 1):
                # The delay comes first, so a cut or error happens at the moment
                # the next token would have been sent.
                await sleep_ms(sc.get("first_token_ms") if i == 0 else sc.get("gap_ms"))
                if cut_after is not None and i >= cut_after:
                    self.cut(conn, sc)
                    return False
                if error_after is not None and i >= error_after:
                    await out.event_json({"error": {
                        "message": sc.get("error_message", f"Fake upstream error after {i} tokens."),
                        "type": sc.get("error_type", "server_error"),
                        "param": None,
                        "code": sc.get("error_code", "upstream_test"),
                    }})
                    if sc.get("error_event_done"):
                        await out.event("[DONE]")
                    await out.end()
                    record["completed"] = True
                    return req.keep_alive
                if i == len(steps):
                    break
                now = time.time()
                delta = steps[i]
                if "content" in delta and sc.get("stamp_content"):
                    delta = {"content": f"|{now:.6f}|"}
                if i == 0 and merge_role:
                    delta = {**role, **delta}
                obj = chunk(delta)
                if sc.get("stamp"):
                    obj["x_sent_at"] = round(now, 6)
                await out.event_json(obj)
                record["tokens_sent"] += 1

            await out.event_json(chunk({}, answer["finish_reason"]))
            if include_usage:
                prompt_tokens = count_prompt_tokens(body.get("messages"), body.get("tools"))
                await out.event_json({
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": record["tokens_sent"],
                        "total_tokens": prompt_tokens + record["tokens_sent"],
                    },
                })
            await out.event("[DONE]")
            await out.end()
            record["completed"] = True
            return req.keep_alive
        finally:
            st["active_streams"] -= 1

    async def embeddings(self, conn: Conn, req: Request, record: dict) -> bool:
        body = record["body"]
        record["completed"] = True
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        dims = body.get("dimensions", DEFAULT_EMBED_DIMS) if isinstance(body, dict) else None
        if (not isinstance(inputs, list) or not inputs
                or not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 8192):
            record["status"] = 400
            return await self.send_json(conn, req, 400, error_body(
                "'input' must be a non-empty string or list, 'dimensions' an integer in [1, 8192].",
                "invalid_request_error", None))
        # An inline [[fake: headers_delay_ms=N]] in any input delays the answer: a slow
        # embeddings endpoint (the vectors are of the text as sent, directive included).
        delay = 0.0
        for item in inputs:
            if isinstance(item, str) and _DIRECTIVE_START in item:
                try:
                    found, _ = extract_directives(item)
                except ScenarioError:
                    found = {}
                delay = max(delay, float(found.get("headers_delay_ms", 0) or 0))
        await sleep_ms(delay)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        n_tokens = 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else jdump(item)  # token arrays: hash their JSON
            n_tokens += max(1, len(re.findall(r"\w+|[^\w\s]", text)))
            vec = embedding_for(text, dims)
            if as_base64:
                emb = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode("ascii")
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        model = body.get("model") if isinstance(body.get("model"), str) else DEFAULT_MODEL
        record["status"] = 200
        return await self.send_json(conn, req, 200, {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
        })

    async def models(self, conn: Conn, req: Request, record: dict) -> bool:
        record["status"] = 200
        record["completed"] = True
        return await self.send_json(conn, req, 200, {
            "object": "list",
            "data": [{"id": DEFAULT_MODEL, "object": "model", "created": 1700000000, "owned_by": "fake"}],
        })

    # ---- control endpoints

    async def control(self, conn: Conn, req: Request) -> bool:
        path, method = req.path, req.method
        if path == "/_fake/health" and method == "GET":
            return await self.send_json(conn, req, 200, {"ok": True})
        if path == "/_fake/stats" and method == "GET":
            return await self.send_json(conn, req, 200, dict(self.stats, queued=len(self.queue)))
        if path == "/_fake/requests" and method == "GET":
            since = 0
            with contextlib.suppress(ValueError, IndexError, KeyError):
                since = int(req.query["since"][0])
            return await self.send_json(conn, req, 200, [r for r in self.records if r["seq"] > since])
        if path == "/_fake/reset" and method == "POST":
            self.queue.clear()
            self.default = {}
            self.records.clear()
            self.seq = 0
            return await self.send_json(conn, req, 200, {"ok": True})
        if path == "/_fake/script" and method == "GET":
            return await self.send_json(conn, req, 200, {"scenarios": list(self.queue), "default": self.default})
        if path == "/_fake/script" and method == "POST":
            try:
                obj = json.loads(req.body or b"{}")
                if not isinstance(obj, dict):
                    raise ScenarioError("body must be a JSON object")
                unknown = set(obj) - {"scenarios", "default", "replace"}
                if unknown:
                    raise ScenarioError(f"unknown keys {sorted(unknown)}")
                scenarios = obj.get("scenarios", [])
                if not isinstance(scenarios, list):
                    raise ScenarioError("'scenarios' must be a list")
                scenarios = [normalize_scenario(s) for s in scenarios]
                default = normalize_scenario(obj["default"]) if "default" in obj else None
            except (ValueError, ScenarioError) as e:
                return await self.send_json(conn, req, 400, error_body(str(e), "invalid_request_error", "fake_script"))
            if obj.get("replace"):
                self.queue.clear()
            self.queue.extend(scenarios)
            if default is not None:
                self.default = default
            return await self.send_json(conn, req, 200, {"ok": True, "queued": len(self.queue)})
        return await self.send_json(conn, req, 404, error_body(
            f"Unknown control endpoint: {method} {path}.", "invalid_request_error", "unknown_url"))


# --------------------------------------------------------------------------- main


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)  # atomic: readers never see a half-written file


async def amain(args) -> int:
    app = FakeOpenAI(args.require_key, args.max_records, args.verbose)
    server = await asyncio.start_server(app.handle_conn, args.host, args.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"listening on {args.host}:{port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    server.close()
    tasks = list(app.conn_tasks)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 2)
    if args.port_file:
        # Remove our port file so a later run's waiter never reads a stale port.
        with contextlib.suppress(OSError):
            with open(args.port_file) as f:
                if f.read().strip() == str(port):
                    os.unlink(args.port_file)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Fake OpenAI-compatible server (chat completions, embeddings) for tests and benchmarks.")
    p.add_argument("--port", type=int, required=True, help="TCP port; 0 picks an ephemeral port")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port-file", help="write the bound port here (atomically) once listening")
    p.add_argument("--require-key", metavar="KEY",
                   help="require 'Authorization: Bearer KEY' on /v1/* endpoints (401 otherwise)")
    p.add_argument("--max-records", type=int, default=100000,
                   help="keep at most this many recorded requests (oldest dropped; default 100000)")
    p.add_argument("--verbose", "-v", action="store_true", help="log requests to stderr")
    args = p.parse_args(argv)
    raise_fd_limit()
    try:
        return asyncio.run(amain(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
