"""Every error code the API can send is listed in docs/openapi.yaml (components.schemas.ErrorCode),
and every listed code is still sent by something.

No stack is needed: the test reads the sources. A code comes from

* a Status helper that takes one -- `Status::InvalidArgument("code", ...)`, `Upstream`,
  `Unavailable` -- or one with a fixed code -- `Status::NotFound(...)` is `not_found`, ...
  (both read from lib/core/status.h itself, so a new helper is seen);
* a Status built from a kind -- `Status(ErrorKind::kX, "code", ...)`, `Status s(ErrorKind::kX,
  "code", ...)` or `{ErrorKind::kX, "code", ...}`;
* an assignment to a variable or member named `code` or `*_code` (`timeout_code = "..."`,
  `m.error_code = "interrupted"`), which later becomes a Status or an answer's stored error;
* a function that writes an error object from a code argument (ERROR_WRITERS), a
  `Key("code")` followed by a string written directly, or a JSON literal `"code":"..."`
  (in C++ strings, and nginx's own JSON answers in nginx/*.conf).

Inside the code argument every string literal counts (`cond ? "a" : "b"`, a fallback in
`x.empty() ? "already_final" : x`, `std::string("error")`) except one passed to another call
(`StringOr(err, "code")` reads a JSON key); an argument with no literal passes a code on. A
literal joined with `+`, or one ending in `_`, is a code built at run time (`"upstream_http_"
+ status`), which no list can hold: that fails.

Some codes never reach an HTTP client (start-up and CLI failures, codes only logged):
INTERNAL_ONLY lists them, each with its reason. The runtime side -- real answers validating
against the spec, ErrorCode included -- is tests/integration/test_openapi.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness import ROOT

SPEC_PATH = ROOT / "docs" / "openapi.yaml"
STATUS_H = ROOT / "lib" / "core" / "status.h"
CPP_DIRS = ("lib", "handlers")
NGINX_DIR = ROOT / "nginx"

# Codes the sources produce that never reach an API client. Each needs its reason; an entry
# the sources no longer produce is an error (test_internal_only_list_is_current).
INTERNAL_ONLY = {
    # cluster::JetStreamLog::Append (lib/cluster/jetstream_log.cc): the log refused a write
    # expecting another last sequence; the Replicator answers the client `log_behind` instead.
    "log_moved_on": "a write the shard's log refused as stale: the client sees log_behind",
    # cluster::JetStreamLog::TakeLease / RenewLease: the lease thread's own outcomes, logged;
    # a host that loses the lease refuses writes with `standby`.
    "lease_taken": "another host holds the shard's lease: logged by the lease thread",
    "lease_lost": "the lease moved or lapsed before a renewal: logged, writes refused as standby",
    # cluster::TenantMover (lib/cluster/tenant_mover.cc), the target's side of a tenant move:
    # reported in the key-value bucket, which `ragstream cluster move` prints; no HTTP route.
    "bad_move_plan": "a move plan in the bucket lacks a field: reported to the move's CLI",
    "move_mismatch": "the target's store differs in layout, embedder or shards: reported to the CLI",
    "tenant_exists": "the target already holds records of the tenant: reported to the move's CLI",
    # cluster::JetStreamLog's move plan (create-only, updated against its revision): the
    # `ragstream cluster move` command prints them.
    "move_exists": "a move plan for the shard is there already: printed by the move's CLI",
    "move_changed": "the move plan changed under the CLI (an --abort): printed by the move's CLI",
    # rag::MigrateStore (lib/rag/store_migration.cc), run by the `ragstream migrate` command on
    # the host; the CLI prints it. No HTTP route reaches it.
    "unknown_layout": "ragstream migrate on a store of an unknown layout: the command fails",
    "migration_raced": "two ragstream migrate runs on one store: the second fails",
    # LoadConfig() (lib/core/config.cc) and OpenAiEmbedder::Create run once at start-up;
    # handlers/main.cc prints the message and exits 2.
    "invalid_config": "configuration error at start-up: the worker exits",
    # ApiKeys::Load (lib/core/api_keys.cc), called once by handlers/main.cc before serving.
    "invalid_api_keys_file": "bad RAGSTREAM_API_KEYS_FILE at start-up: the worker exits",
    # OpenListenSocket (lib/fcgi/server.cc) opens the --listen socket; main.cc logs and exits.
    "invalid_listen": "bad --listen option at start-up: the worker exits",
    # DocumentStore::CheckIndexIdentity, called once by handlers/main.cc, which logs and exits 2.
    "old_store_layout": "store made by an older version, found at start-up: the worker exits",
    "index_mismatch": "index made with another embedder, found at start-up: the worker exits",
    # Metrics::Open (lib/core/metrics.cc) at start-up; main.cc logs "metrics disabled" and
    # GET /metrics then answers metrics_unavailable.
    "metrics_full": "start-up only: metrics are disabled, clients see metrics_unavailable",
    # Env::Grow (lib/store/lmdb.cc): every caller only tests Grow().ok() and keeps the
    # store_full status it already had.
    "store_busy": "Env::Grow's status is only tested with .ok(); the client gets store_full",
    # OpenAiChatModel (lib/llm/openai_client.cc): a stream the parser rejects is recorded as
    # stream_error_code, which is only logged; the client gets upstream_error.
    "upstream_bad_stream": "only logged; the client gets upstream_error",
}

# Functions that write an error object from a code argument: name -> the code argument's index.
ERROR_WRITERS = {"WriteErrorObject": 1}

# Fewer codes than this means a pattern stopped matching the sources.
MIN_CODES = 30

STRING_RE = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
RAW_STRING_RE = re.compile(r'R"([^()\\\s]{0,16})\(')  # R"delim( ... )delim"
CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


# --------------------------------------------------------------------------- C++ reading


def strip_comments(text: str) -> str:
    """`text` with C++ comments blanked (newlines kept, so offsets keep their line) and raw
    string literals (R"d(...)d") turned into blanks between quotes."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif (m := RAW_STRING_RE.match(text, i)) and not re.match(r"\w", text[i - 1:i]):
            end = text.find(")" + m.group(1) + '"', m.end())
            end = n if end < 0 else end + len(m.group(1)) + 2
            body = text[i:end]
            # Keep it a string literal, but with nothing in it that could look like code.
            out.append(" " + '"' + re.sub(r"[^\n]", " ", body[2:-1]) + '"')
            i = end
        elif c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


_CLOSE = {"(": ")", "[": "]", "{": "}"}


def after_literal(text: str, i: int) -> int:
    """Offset just past the string or character literal whose quote is at `i`."""
    j = i + 1
    while j < len(text) and text[j] != text[i]:
        j += 2 if text[j] == "\\" else 1
    return j + 1


def call_args(text: str, start: int) -> list[tuple[int, str]]:
    """The top-level, comma-separated arguments of the call or braced list whose opening
    bracket is just before `start`, each as (offset, text)."""
    args, depth, i, arg_start = [], 0, start, start
    while i < len(text):
        c = text[i]
        if c == '"' or c == "'":
            i = after_literal(text, i)
            continue
        if c in _CLOSE:
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append((arg_start, text[arg_start:i]))
                return args
            depth -= 1
        elif c == "," and depth == 0:
            args.append((arg_start, text[arg_start:i]))
            arg_start = i + 1
        i += 1
    args.append((arg_start, text[arg_start:]))
    return args


def expression_end(text: str, start: int) -> int:
    """Offset of the `;` ending the expression that starts at `start`."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c == '"' or c == "'":
            i = after_literal(text, i)
            continue
        if c in _CLOSE:
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return i
        elif c == ";" and depth == 0:
            return i
        i += 1
    return i


def status_helpers(text: str) -> tuple[dict[str, str], dict[str, int]]:
    """From lib/core/status.h: helpers with a fixed code (name -> code) and helpers that
    take one (name -> index of the `code` parameter)."""
    fixed, taking = {}, {}
    for m in re.finditer(r"static\s+Status\s+(\w+)\(([^)]*)\)\s*\{\s*return\s*\{"
                         r"\s*ErrorKind::k\w+\s*,\s*([^,]+),", text):
        name, params, code = m.group(1), m.group(2), m.group(3).strip()
        literal = STRING_RE.fullmatch(code)
        if literal:
            fixed[name] = literal.group(1)
        elif re.fullmatch(r"std::move\(\s*code\s*\)|code", code):
            names = [p.split()[-1].lstrip("&*") for p in params.split(",") if p.strip()]
            taking[name] = names.index("code")
    return fixed, taking


class Found:
    """Codes with where they were seen, and the problems met while reading."""

    def __init__(self) -> None:
        self.codes: dict[str, list[str]] = {}
        self.problems: list[str] = []

    def add(self, code: str, where: str) -> None:
        self.codes.setdefault(code, []).append(where)

    def where(self, code: str) -> str:
        return ", ".join(self.codes[code][:3]) + (" ..." if len(self.codes[code]) > 3 else "")


# Calls whose string argument is still the code itself (`std::string("error")`).
STRING_WRAPPERS = {"string", "string_view"}


def enclosing_call(expr: str, pos: int) -> str | None:
    """The name of the call whose parentheses hold offset `pos` of `expr` (None at the top
    level, "" inside parentheses that are not a call)."""
    stack: list[str] = []
    i = 0
    while i < pos:
        c = expr[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < len(expr) and expr[j] != c:
                j += 2 if expr[j] == "\\" else 1
            i = j + 1
            continue
        if c == "(":
            name = re.search(r"(\w*)\s*$", expr[:i]).group(1)
            stack.append(name)
        elif c in "[{":
            stack.append("")
        elif c in ")]}" and stack:
            stack.pop()
        i += 1
    return stack[-1] if stack else None


def _literals_of(expr: str, base: int, text: str, rel: str, found: Found) -> None:
    """Every string literal of a code expression is a code (at its top level, in a ternary,
    in std::string(...)); one joined with `+` or ending in `_` is a code built at run time.
    A literal passed to another call (`StringOr(err, "code")`, a lookup key) is not."""
    for m in STRING_RE.finditer(expr):
        call = enclosing_call(expr, m.start())
        if call and call not in STRING_WRAPPERS:
            continue
        value = m.group(1)
        line = text.count("\n", 0, base + m.start()) + 1
        where = f"{rel}:{line}"
        before, after = expr[:m.start()].rstrip(), expr[m.end():].lstrip()
        if value.endswith("_") or before.endswith("+") or after.startswith("+"):
            found.problems.append(
                f"{where}: a code built at run time cannot be listed: {expr.strip()!r} "
                f"(use fixed codes; put the variable part in the message)")
            continue
        if not CODE_RE.match(value):
            found.problems.append(f"{where}: {value!r} does not look like an error code "
                                  f"(lower-case snake_case)")
            continue
        found.add(value, where)


def scan_cpp(text: str, rel: str, fixed: dict[str, str], taking: dict[str, int],
             found: Found) -> None:
    text = strip_comments(text)
    line_of = lambda pos: text.count("\n", 0, pos) + 1  # noqa: E731

    # Status::Helper(...)
    for m in re.finditer(r"\bStatus::(\w+)\s*\(", text):
        name = m.group(1)
        if name in fixed:
            found.add(fixed[name], f"{rel}:{line_of(m.start())}")
        elif name in taking:
            args = call_args(text, m.end())
            if len(args) > taking[name]:
                off, expr = args[taking[name]]
                _literals_of(expr, off, text, rel, found)
    # Status(ErrorKind::kX, code, ...), Status s(ErrorKind::kX, ...), {ErrorKind::kX, ...}
    for m in re.finditer(r"[({]\s*ErrorKind::k\w+\s*,", text):
        args = call_args(text, m.end())
        off, expr = args[0]
        _literals_of(expr, off, text, rel, found)
    # code = ..., timeout_code = ..., m.error_code = ... (not ==, and not a member `x.code`)
    for m in re.finditer(r"(?:(?<![.>\w])code|\b\w+_code)\s*=(?!=)", text):
        end = expression_end(text, m.end())
        _literals_of(text[m.end():end], m.end(), text, rel, found)
    # Functions that write an error object from a code argument.
    for name, index in ERROR_WRITERS.items():
        for m in re.finditer(rf"\b{name}\s*\(", text):
            if re.search(r"\bvoid\s*$", text[max(0, m.start() - 40):m.start()]):
                continue  # its definition
            args = call_args(text, m.end())
            if len(args) > index:
                off, expr = args[index]
                _literals_of(expr, off, text, rel, found)
    # w.Key("code"); w.String("...") / WriteString(w, "...")
    for m in re.finditer(r'Key\(\s*"code"\s*\)\s*;\s*(?:\w+\s*(?:\.|->)\s*)?(\w+)\s*\(', text):
        args = call_args(text, m.end())
        off, expr = args[-1] if m.group(1) == "WriteString" else args[0]
        _literals_of(expr, off, text, rel, found)
    # A JSON literal written by hand: "{\"error\":{\"code\":\"...\"
    for m in re.finditer(r'\\"code\\"\s*:\s*\\"([^"\\]*)\\"', text):
        found.add(m.group(1), f"{rel}:{line_of(m.start())}")


def scan_nginx(text: str, rel: str, found: Found) -> None:
    for m in re.finditer(r'"code"\s*:\s*"([^"]*)"', text):
        found.add(m.group(1), f"{rel}:{text.count(chr(10), 0, m.start()) + 1}")


def scan_sources() -> Found:
    fixed, taking = status_helpers(STATUS_H.read_text(encoding="utf-8"))
    found = Found()
    for d in CPP_DIRS:
        for path in sorted((ROOT / d).rglob("*")):
            if path.suffix not in (".cc", ".h") or path == STATUS_H:
                continue
            scan_cpp(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), fixed, taking,
                     found)
    for path in sorted(NGINX_DIR.glob("*.conf*")):
        scan_nginx(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), found)
    return found


# --------------------------------------------------------------------------- the spec


def load_spec() -> dict:
    with open(SPEC_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def spec() -> dict:
    return load_spec()


@pytest.fixture(scope="module")
def found() -> Found:
    return scan_sources()


def listed_codes(spec: dict) -> list[str]:
    schema = spec["components"]["schemas"].get("ErrorCode")
    assert schema, "docs/openapi.yaml has no components.schemas.ErrorCode"
    assert schema.get("type") == "string" and isinstance(schema.get("enum"), list), schema
    return schema["enum"]


# --------------------------------------------------------------------------- tests


def test_status_helpers_are_read():
    fixed, taking = status_helpers(STATUS_H.read_text(encoding="utf-8"))
    assert {"NotFound": "not_found", "Internal": "internal_error", "StoreFull": "store_full",
            "Cancelled": "cancelled"}.items() <= fixed.items(), fixed
    assert {"InvalidArgument": 0, "Upstream": 0, "Unavailable": 0}.items() <= taking.items(), taking


def test_scanner_finds_the_codes(found):
    assert len(found.codes) >= MIN_CODES, (
        f"only {len(found.codes)} codes found in {', '.join(CPP_DIRS)} and nginx/: a pattern of "
        f"this test no longer matches the sources: {sorted(found.codes)}")


def test_no_code_is_built_at_run_time(found):
    assert not found.problems, "\n".join(found.problems)


def test_every_code_is_listed(spec, found):
    listed = set(listed_codes(spec))
    missing = [f"{code!r} (found at {found.where(code)}) is not in components.schemas.ErrorCode "
               f"of docs/openapi.yaml: add it there (with its HTTP status and meaning), or to "
               f"INTERNAL_ONLY in {Path(__file__).name} with the reason no client sees it"
               for code in sorted(set(found.codes) - listed - set(INTERNAL_ONLY))]
    assert not missing, "\n".join(missing)


def test_every_listed_code_is_produced(spec, found):
    stale = [f"{code!r} is in components.schemas.ErrorCode of docs/openapi.yaml, but nothing in "
             f"{', '.join(CPP_DIRS)} or nginx/ produces it: remove it, or teach this test where "
             f"it comes from" for code in listed_codes(spec) if code not in found.codes]
    assert not stale, "\n".join(stale)


def test_internal_only_list_is_current(spec, found):
    listed = set(listed_codes(spec))
    problems = [f"INTERNAL_ONLY names {code!r}, which is also in ErrorCode: it is one or the other"
                for code in sorted(set(INTERNAL_ONLY) & listed)]
    problems += [f"INTERNAL_ONLY names {code!r}, which nothing produces any more: remove it"
                 for code in sorted(set(INTERNAL_ONLY) - set(found.codes))]
    assert not problems, "\n".join(problems)


def test_catalogue_is_whole(spec):
    """One enum, no duplicates, a table row per code, and the error schemas use it."""
    codes = listed_codes(spec)
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    assert not dupes, f"ErrorCode lists {dupes} more than once"
    description = spec["components"]["schemas"]["ErrorCode"].get("description", "")
    rows = re.findall(r"^\|\s*`([a-z0-9_]+)`\s*\|\s*([^|]+?)\s*\|", description, re.M)
    described = [code for code, _ in rows]
    problems = [f"ErrorCode's description has no table row for {c!r}"
                for c in codes if c not in described]
    problems += [f"ErrorCode's description has a row for {c!r}, which its enum does not list"
                 for c in described if c not in codes]
    problems += [f"ErrorCode's row for {c!r} gives no HTTP status ({http!r})"
                 for c, http in rows if not re.match(r"(\d{3}|answer)\b", http)]
    for name in ("ErrorDetail", "OpenAIErrorDetail"):
        code = spec["components"]["schemas"][name]["properties"]["code"]
        if code.get("$ref") != "#/components/schemas/ErrorCode":
            problems.append(f"components.schemas.{name}.properties.code is not ErrorCode")
    assert not problems, "\n".join(problems)


def test_scanner_self_check():
    """The patterns see what they should, and the run-time check fires."""
    fixed, taking = status_helpers(STATUS_H.read_text(encoding="utf-8"))
    source = """
      // return Status::InvalidArgument("in_a_comment", "x");
      /* Status(ErrorKind::kConflict, "in_a_block_comment", "x") */
      const char* usage = R"(a "raw_string" with // inside and code = "not_me";)";
      return Status::InvalidArgument(
          "first_code", "message with \\"quotes\\", and a comma");
      return Status(ErrorKind::kConflict, ok ? "second_code" : "third_code", Describe(a, b));
      return {ErrorKind::kTooLarge, "fourth_code", "x"};
      Status s(ErrorKind::kInternal, "fifth_code", "x");
      timeout_code = "sixth_code";
      m.error_code = gone ? "seventh_code" : other;
      out.code = "en";
      if (code == "insufficient_quota") return Status::NotFound("x");
      WriteErrorObject(w, m.error_code.empty() ? std::string("eighth_code") : m.error_code, msg);
      return Status::Upstream("upstream_http_" + std::to_string(status), "x");
      code = StringOr(err, "code");
    """
    found = Found()
    scan_cpp(source, "x.cc", fixed, taking, found)
    assert sorted(found.codes) == sorted(
        ["first_code", "second_code", "third_code", "fourth_code", "fifth_code", "sixth_code",
         "seventh_code", "eighth_code", "not_found"]), found.codes
    assert found.codes["first_code"] == ["x.cc:6"]
    assert len(found.problems) == 1 and "x.cc:15: a code built at run time" in found.problems[0], \
        found.problems
