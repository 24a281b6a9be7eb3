#!/usr/bin/env python3
"""Helper of docs/check-commands.sh: extracts the ```sh blocks of a Markdown page into one
shell session, then compares each block's output with the ```json/```text block that follows
it (or writes the outputs into the page with --mode update).

    check_commands.py extract PAGE BLOCKS.json SESSION.sh
    check_commands.py compare PAGE BLOCKS.json SESSION.out --mode check|update \
        --api-port N --s3-port N
"""

import argparse
import difflib
import json
import re
import sys

FENCE = re.compile(r"^```(\S*)\s*$")
OUTPUT_LANGS = {"json", "text"}
MARK = "@@check-commands@@"


def blocks_of(lines):
    """Fenced blocks as dicts: lang, start (line of the opening fence), end (closing fence)."""
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].rstrip("\n") != "```":
            j += 1
        if j >= len(lines):
            sys.exit(f"unclosed code block at line {i + 1}")
        blocks.append({"lang": m.group(1), "start": i, "end": j, "text": "".join(lines[i + 1 : j])})
        i = j + 1
    return blocks


def sessions_of(lines):
    blocks = blocks_of(lines)
    out = []
    for k, b in enumerate(blocks):
        if b["lang"] != "sh":
            continue
        item = {"line": b["start"] + 1, "command": b["text"], "expected": None}
        if k + 1 < len(blocks):
            n = blocks[k + 1]
            between = lines[b["end"] + 1 : n["start"]]
            if n["lang"] in OUTPUT_LANGS and all(not s.strip() for s in between):
                item["expected"] = {"start": n["start"], "end": n["end"], "text": n["text"]}
        out.append(item)
    return out


def extract(page, blocks_path, session_path):
    with open(page, encoding="utf-8") as f:
        lines = f.readlines()
    sessions = sessions_of(lines)
    with open(blocks_path, "w", encoding="utf-8") as f:
        json.dump(sessions, f)
    with open(session_path, "w", encoding="utf-8") as f:
        f.write("set -o pipefail\n")
        for n, s in enumerate(sessions):
            f.write(f"printf '%s\\n' '{MARK} begin {n}'\n")
            f.write(s["command"])
            f.write(f"\nprintf '\\n%s %d\\n' '{MARK} end {n}' \"$?\"\n")


NORMALISE = [
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "<token>"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "<uuid>"),
    # Object keys: the version id without dashes.
    (re.compile(r"\b[0-9a-f]{32}\b"), "<key>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"), "<time>"),
    (re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT"), "<http-date>"),
    (re.compile(r"(X-Amz-(?:Credential|Date|Signature))=[^&\"\s]*"), r"\1=<signed>"),
    (re.compile(r"(\"next_cursor\": )\"[^\"]*\""), r'\1"<cursor>"'),
    (re.compile(r"(127\.0\.0\.1|localhost|\[::1\]):\d+"), r"\1:<port>"),
]


URL = re.compile(r"(https?://[^\s\"?]+)\?([^\s\"]+)")


def normalise(text):
    text = text.replace("\r", "")
    # The order of a URL's query parameters is not significant (presigned URLs vary).
    text = URL.sub(lambda m: m.group(1) + "?" + "&".join(sorted(m.group(2).split("&"))), text)
    for pattern, repl in NORMALISE:
        text = pattern.sub(repl, text)
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


def outputs_of(path, count):
    with open(path, encoding="utf-8", errors="replace") as f:
        raw = f.read()
    outputs = {}
    pattern = re.compile(
        re.escape(MARK) + r" begin (\d+)\n(.*?)\n" + re.escape(MARK) + r" end \1 (\d+)\n", re.S
    )
    for m in pattern.finditer(raw):
        outputs[int(m.group(1))] = (m.group(2), int(m.group(3)))
    missing = [n for n in range(count) if n not in outputs]
    return outputs, missing, raw


def compare(page, blocks_path, out_path, mode, api_port, s3_port):
    with open(blocks_path, encoding="utf-8") as f:
        sessions = json.load(f)
    with open(page, encoding="utf-8") as f:
        lines = f.readlines()
    outputs, missing, raw = outputs_of(out_path, len(sessions))
    failures = 0
    if missing:
        first = sessions[missing[0]]
        print(f"{page}:{first['line']}: the session stopped before this block; its output:", file=sys.stderr)
        print(raw[-3000:], file=sys.stderr)
        return 1
    replacements = []
    for n, s in enumerate(sessions):
        out, rc = outputs[n]
        where = f"{page}:{s['line']}"
        if rc != 0:
            failures += 1
            print(f"{where}: exit status {rc}\n{s['command']}--- output ---\n{out}\n", file=sys.stderr)
            continue
        exp = s["expected"]
        if exp is None:
            continue
        if mode == "update":
            shown = out.replace("\r", "")
            shown = re.sub(rf"(127\.0\.0\.1|localhost):{api_port}\b", r"\1:5000", shown)
            shown = re.sub(rf"(127\.0\.0\.1|localhost):{s3_port}\b", r"\1:9000", shown)
            shown = "\n".join(line.rstrip() for line in shown.strip("\n").split("\n")) + "\n"
            replacements.append((exp["start"], exp["end"], shown))
            continue
        want, got = normalise(exp["text"]), normalise(out)
        if want != got:
            failures += 1
            diff = difflib.unified_diff(
                want.split("\n"), got.split("\n"), "shown in the page", "answered now", lineterm=""
            )
            print(f"{where}: the output differs\n{s['command']}" + "\n".join(diff) + "\n", file=sys.stderr)
    if mode == "update":
        for start, end, text in sorted(replacements, reverse=True):
            lines[start + 1 : end] = [text]
        with open(page, "w", encoding="utf-8") as f:
            f.writelines(lines)
        print(f"[docs] {page}: {len(replacements)} outputs written ({failures} blocks failed)", file=sys.stderr)
        return 1 if failures else 0
    checked = sum(1 for s in sessions if s["expected"] is not None)
    print(
        f"[docs] {page}: {len(sessions)} command blocks run, {checked} outputs compared, "
        f"{failures} failed",
        file=sys.stderr,
    )
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract")
    e.add_argument("page")
    e.add_argument("blocks")
    e.add_argument("session")
    c = sub.add_parser("compare")
    c.add_argument("page")
    c.add_argument("blocks")
    c.add_argument("output")
    c.add_argument("--mode", choices=["check", "update"], default="check")
    c.add_argument("--api-port", type=int, required=True)
    c.add_argument("--s3-port", type=int, required=True)
    a = p.parse_args()
    if a.cmd == "extract":
        extract(a.page, a.blocks, a.session)
        return 0
    return compare(a.page, a.blocks, a.output, a.mode, a.api_port, a.s3_port)


if __name__ == "__main__":
    sys.exit(main())
