"""Prints what a `make fuzz` run did: cases run, failures by check, each distinct failure, and the
causes of the errors the node logged.

Usage: summary.py REPORT_DIR MIN_CASES (schemathesis.json, schemathesis.ndjson, storage.junit.xml
and node.log in REPORT_DIR). Exits 1 when schemathesis ran fewer than MIN_CASES cases: a run that
tested too little must not pass.
"""

import base64
import collections
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

MAX_LISTED = 40


def text(payload, limit=160):
    """A recorded request or response body (base64 in the event log), shortened for one line."""
    if not payload:
        return ""
    raw = base64.b64decode(payload["$base64"]) if isinstance(payload, dict) else str(payload).encode()
    shown = raw[:limit].decode("utf-8", "backslashreplace")
    return shown + ("..." if len(raw) > limit else "")


def schemathesis_summary(reports):
    try:
        with open(os.path.join(reports, "schemathesis.json"), encoding="utf-8") as f:
            report = json.load(f)
    except FileNotFoundError:
        print("schemathesis: no report (it did not finish)")
        return 0
    phases = ", ".join(f"{name} {p['status']}" for name, p in report["phases"].items())
    print(
        f"schemathesis {report['schemathesis_version']}: {report['test_cases']['generated']} cases "
        f"in {report['running_time']:.0f}s, seed {report['seed']} ({phases})"
    )
    # Each failing check of each case, from the event log; the JSON report only counts them by kind.
    cases_by_check = collections.Counter()
    distinct = {}
    with open(os.path.join(reports, "schemathesis.ndjson"), encoding="utf-8") as f:
        for line in f:
            finished = json.loads(line).get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished["recorder"]
            for case_id, checks in (recorder.get("checks") or {}).items():
                for check in checks:
                    if check["status"] != "failure":
                        continue
                    failure = check["failure_info"]["failure"]
                    cases_by_check[check["name"]] += 1
                    interaction = (recorder.get("interactions") or {}).get(case_id) or {}
                    request, response = interaction.get("request") or {}, interaction.get("response") or {}
                    lines = [l for l in failure["message"].split("\n") if l] or [failure["title"]]
                    detail = next((l for l in lines if l.startswith("Invalid component")), lines[0])
                    key = (check["name"], failure["operation"], response.get("status_code"), detail)
                    if key not in distinct:
                        uri = request.get("uri") or ""
                        uri = uri if len(uri) <= 200 else uri[:200] + "..."
                        example = f"{request.get('method')} {uri} {text(request.get('body'))}"
                        distinct[key] = [0, example, text(response.get("content"))]
                    distinct[key][0] += 1
    unique_by_check = collections.Counter(name for name, *_ in distinct)
    for error in report["errors"]:
        print(f"  error: {error['title']} (x{error['count']})")
    if not cases_by_check:
        print("  no failures")
        return report["test_cases"]["generated"]
    print(f"  {'failing check':<32}{'distinct':>9}{'cases':>8}")
    for name, count in cases_by_check.most_common():
        print(f"  {name:<32}{unique_by_check[name]:>9}{count:>8}")
    print("  distinct failures (check, operation, status, what):")
    for (name, operation, status, detail), (count, request, response) in sorted(
        distinct.items(), key=lambda kv: kv[0][:2]
    )[:MAX_LISTED]:
        print(f"    {name}  {operation}  {status}  {detail[:120]}  (x{count})")
        print(f"      e.g. {request}")
        if response:
            print(f"        -> {response}")
    if len(distinct) > MAX_LISTED:
        print(f"    ... and {len(distinct) - MAX_LISTED} more (schemathesis.ndjson)")
    return report["test_cases"]["generated"]


def excused_summary(reports):
    """Failures hooks.py dropped because a deliberate difference from the spec explains them."""
    rules, details = collections.Counter(), collections.Counter()
    try:
        with open(os.path.join(reports, "excused.jsonl"), encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                rules[record["rule"]] += 1
                details[(record["operation"], record["detail"] or record["check"])] += 1
    except FileNotFoundError:
        return
    print(f"  excused: {sum(rules.values())} failures that contract.py's rules explain (FUZZ_STRICT=1 keeps them)")
    for rule, count in rules.most_common():
        print(f"    {count:>6}  {rule}")
    for (operation, detail), count in details.most_common(10):
        print(f"            {operation}: {detail[:110]} (x{count})")


def storage_summary(reports):
    try:
        suite = ET.parse(os.path.join(reports, "storage.junit.xml")).getroot().find("testsuite")
    except FileNotFoundError:
        print("storage properties: no report (they did not run)")
        return
    failed = [case for case in suite.iter("testcase") if case.find("failure") is not None or case.find("error") is not None]
    print(f"storage properties: {suite.get('tests')} tests, {len(failed)} failed, in {float(suite.get('time')):.0f}s")
    for case in failed:
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        lines = [l.strip() for l in (problem.get("message") or "").split("\n") if l.strip()]
        print(f"  {case.get('name')}: " + " | ".join(lines[:4])[:400])


def node_errors(reports):
    """What the node logged at error level (every 5xx is one), grouped by cause."""
    causes = collections.Counter()
    try:
        with open(os.path.join(reports, "node.log"), encoding="utf-8", errors="replace") as f:
            for line in f:
                if "level=error" not in line and "level=critical" not in line:
                    continue
                sql = re.search(r"sqlState: (\w+).*?message: ([^,\]]*)", line)
                message = re.search(r'msg="([^"]*)"', line)
                causes[f"sqlState {sql[1]}: {sql[2]}" if sql else (message[1] if message else line[:120])] += 1
    except FileNotFoundError:
        return
    if causes:
        print("node errors (node.log), by cause:")
        for cause, count in causes.most_common():
            print(f"  {count:>6}  {cause}")


if __name__ == "__main__":
    reports, min_cases = sys.argv[1], int(sys.argv[2])
    print("==> summary")
    cases = schemathesis_summary(reports)
    excused_summary(reports)
    storage_summary(reports)
    node_errors(reports)
    if cases < min_cases:
        print(f"fuzz: schemathesis ran {cases} cases, fewer than the {min_cases} required (raise FUZZ_MAX_EXAMPLES)")
        sys.exit(1)
