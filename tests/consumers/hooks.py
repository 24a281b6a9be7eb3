"""schemathesis hooks: the few rules of the API that a JSON Schema cannot state, taught to the
generator so that what it calls a valid request is one (crates/server/tests/consumers).

Each applies to positive cases only (negative ones must stay invalid) and only when the values
involved already satisfy their own schemas:

- a request's `bucket` is its path's first segment (`source_bucket`/`source_path` and
  `target_bucket`/`target_path` alike);
- a copy or commit never targets its own source;
- `force: true` on `/unlock` comes with a `reason` (not blank);
- a `cursor` is one the service gave for that listing: invented ones are left out (the stateful
  phase and the examples send real ones), and a `/locks` cursor names a file under the
  directory listed (one of another listing is refused);
- a presigned upload announces its `size` (optional in the contract: without it, on S3, the URL
  is the service's own `/blob` route, which the e2e tests exercise; with it, the fuzzer's PUT
  goes to Garage's URL signed for that length);
- tags hold no control character other than the line feed, keys of 1 to 128 bytes, at most 64
  of them and 8 levels (docs/api.md, "Tags");
- a restore from the trash puts the file back under its own bucket and owner: a generated
  `target_path` (any bucket, any owner) is left out, so the file goes back where it was.

And after each call: the answer is logged (the test checks that every operation was served at
least once), and a presigned upload URL is used as a client would.
"""

import base64
import json
import os
import re
import unicodedata
import urllib.request

import schemathesis
from schemathesis import GenerationMode


def _serialise_ast_parse():
    """CPython 3.11.7 (the consumers' venv) can fail two `ast.parse` calls made at once on two
    threads (`SystemError: AST constructor recursion depth mismatch`, CPython issue 106905, fixed
    in later releases). Hypothesis parses a lambda's source file to describe it, on each of the
    run's worker threads (schemathesis's coverage phase filters strategies with lambdas): one
    parse at a time, then."""
    import ast
    import threading

    lock = threading.Lock()
    parse = ast.parse

    def parse_alone(*args, **kwargs):
        with lock:
            return parse(*args, **kwargs)

    ast.parse = parse_alone


_serialise_ast_parse()

BUCKETS = ("users", "companies", "projects")
PATH = re.compile(r"^/(users|companies|projects)/")
CURSOR_KINDS = {
    "/list": "list",
    "/locks": "locks",
    "/audit": "audit",
    "/reviews": "reviews",
    "/versions": "versions",
    "/trash": "trash",
}


def _align(container, bucket_key, path_key):
    if not isinstance(container, dict):
        return
    path = container.get(path_key)
    bucket = container.get(bucket_key)
    if isinstance(path, str) and bucket in BUCKETS:
        match = PATH.match(path)
        if match:
            container[bucket_key] = match.group(1)


def _real_cursor(kind, cursor, directory):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except Exception:
        return False
    if not text.startswith(kind + ":"):
        return False
    position = text[len(kind) + 1 :]
    if kind == "locks":
        return isinstance(directory, str) and position.startswith(directory)
    if kind == "versions":
        return position.isascii() and position.isdigit() and 1 <= int(position) <= 2**31 - 1
    return True


TAG_KEYS = 64
TAG_KEY_BYTES = 128
TAG_DEPTH = 8


def _text(value):
    return "".join(c for c in value if c == "\n" or unicodedata.category(c) != "Cc")


def _clean_tags(value, depth=1):
    """The tags with what the service refuses taken out."""
    if isinstance(value, dict):
        if depth > TAG_DEPTH:
            return None
        cleaned = {}
        for key, item in value.items():
            key = "".join(c for c in key if unicodedata.category(c) != "Cc")
            if key and len(key.encode()) <= TAG_KEY_BYTES and len(cleaned) < TAG_KEYS:
                cleaned[key] = _clean_tags(item, depth + 1)
        return cleaned
    if isinstance(value, list):
        if depth > TAG_DEPTH:
            return None
        return [_clean_tags(item, depth + 1) for item in value]
    if isinstance(value, str):
        return _text(value)
    return value


def _positive(case):
    meta = case.meta
    return meta is None or meta.generation.mode == GenerationMode.POSITIVE


@schemathesis.hook
def before_add_examples(context, examples):
    """The examples phase: every example is meant valid. The document's example version id
    names no version of this server: the test seeds versions that the review routes can act on
    and passes them in `SCHEMATHESIS_VERSIONS` (`<operationId>=<uuid>,…`); likewise the trash
    entries of `restore_from_trash` (body) and `purge_trash` (query)."""
    seeded = dict(
        item.split("=", 1)
        for item in os.environ.get("SCHEMATHESIS_VERSIONS", "").split(",")
        if "=" in item
    )
    for case in examples:
        _fix(case)
        version = seeded.get(case.operation.definition.raw.get("operationId"))
        if version and isinstance(case.body, dict) and "trash_id" in case.body:
            case.body["trash_id"] = version
        elif version and isinstance(case.query, dict) and "trash_id" in case.query:
            case.query["trash_id"] = version
        elif version and isinstance(case.path_parameters, dict):
            case.path_parameters["version_id"] = version


@schemathesis.hook
def map_case(context, case):
    """Generated cases (coverage and fuzzing phases)."""
    if _positive(case):
        _fix(case)
    return case


@schemathesis.hook
def before_call(context, case, kwargs):
    """Cases made otherwise (stateful phase, replays)."""
    if _positive(case):
        _fix(case)


@schemathesis.hook
def after_call(context, case, response):
    """Records every answer (`SCHEMATHESIS_STATUS_LOG`: one `<operationId> <status> <why>`
    line, see `_why`), and
    does what a client does after `presign_upload`: PUT bytes of the announced size to the URL
    (so that the link to `complete_upload` can succeed)."""
    operation_id = case.operation.definition.raw.get("operationId", case.operation.label)
    log = os.environ.get("SCHEMATHESIS_STATUS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{operation_id} {response.status_code} {_why(case, response)}\n")
    if operation_id == "presign_upload" and response.status_code == 200:
        _put_presigned(case, response.json())


def _why(case, response):
    """The path the request named (its first 64 characters) and, for a refusal, its stable
    code: what the test prints about an operation never served."""
    code = "ok"
    if response.status_code >= 400:
        try:
            code = response.json().get("message", "?")
        except Exception:
            code = "?"
    path = None
    for container in (case.query, case.body):
        if isinstance(container, dict):
            path = path or container.get("path") or container.get("target_path")
    return f"{code} {str(path)[:64]!r}"


def _put_presigned(case, answer):
    body = case.body if isinstance(case.body, dict) else {}
    if body.get("sha256"):
        return  # bytes of an arbitrary hash cannot be made up
    size = body.get("size")
    size = int(size) if isinstance(size, (int, float)) and size <= 1024 else 12
    request = urllib.request.Request(
        answer["url"],
        data=b"x" * size,
        method=answer["method"],
        headers=answer.get("headers") or {},
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except Exception:
        pass  # the completion then says what is missing


def _fix(case):
    query = case.query if isinstance(case.query, dict) else None
    body = case.body if isinstance(case.body, dict) else None
    for container in (query, body):
        _align(container, "bucket", "path")
        _align(container, "source_bucket", "source_path")
        _align(container, "target_bucket", "target_path")
    if body is not None:
        source, target = body.get("source_path"), body.get("target_path")
        if isinstance(source, str) and source == target:
            body["target_path"] = target + "-copy"
        reason = body.get("reason")
        if body.get("force") is True and not (isinstance(reason, str) and reason.strip()):
            body["reason"] = "Holder is on leave"
        if case.operation.path == "/upload/presign" and not isinstance(body.get("size"), int):
            body["size"] = 12
        if case.operation.path == "/trash/restore":
            body.pop("target_path", None)
        tags = body.get("tags")
        if isinstance(tags, dict):
            body["tags"] = _clean_tags(tags)
        elif isinstance(tags, str):
            try:
                parsed = json.loads(tags)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                body["tags"] = json.dumps(_clean_tags(parsed))
    kind = CURSOR_KINDS.get(case.operation.path)
    if query is not None and kind and isinstance(query.get("cursor"), str):
        if not _real_cursor(kind, query["cursor"], query.get("path")):
            del query["cursor"]
