import Foundation

/// A request as recorded in a transcript (tokens redacted).
public struct RecordedRequest: Codable, Sendable {
    public var method: String
    public var path: String
    /// `[name, value]` pairs in order.
    public var headers: [[String]]
    public var body: String?
}

/// A response as recorded in a transcript (body clipped to the transcript limit).
public struct RecordedResponse: Codable, Sendable {
    public var status: Int
    /// `[name, value]` pairs in order.
    public var headers: [[String]]
    public var body: String
}

/// One request/response pair of a step.
public struct RecordedExchange: Codable, Sendable {
    /// The step's name (with `[i=N]` for repeated steps).
    public var step: String
    public var iteration: Int?
    /// For `eventually` steps: which attempt this was.
    public var attempts: Int?
    public var request: RecordedRequest
    public var response: RecordedResponse?
    /// A transport error, when no response arrived.
    public var error: String?
}

/// The result of one case.
public struct CaseResult: Codable, Sendable {
    public enum Outcome: String, Codable, Sendable {
        case passed, failed, skipped
    }

    public var id: String
    public var description: String
    public var spec: [SpecReference]
    public var tags: [String]
    public var isOptional: Bool
    public var outcome: Outcome
    /// Why it failed (the first failure) or was skipped.
    public var reason: String?
    /// The step that failed (`setup: …` for set-up steps).
    public var failedStep: String?
    /// Every failure message of the failing step.
    public var failures: [String]
    /// The failing step's exchange (the last attempt for `eventually` steps).
    public var transcript: [RecordedExchange]
    /// Clean-up problems and other remarks that do not decide the outcome.
    public var notes: [String]
    public var durationMs: Int

    init(fixture: Fixture) {
        id = fixture.id
        description = fixture.description
        spec = fixture.spec
        tags = fixture.tags ?? []
        isOptional = fixture.isOptional
        outcome = .passed
        reason = nil
        failedStep = nil
        failures = []
        transcript = []
        notes = []
        durationMs = 0
    }

    /// The directory part of the id.
    public var group: String {
        guard let slash = id.lastIndex(of: "/") else { return "" }
        return String(id[..<slash])
    }
}

/// The outcome of a run against one target.
public struct ConformanceReport: Codable, Sendable {
    public var target: String
    public var isRemote: Bool
    public var specVersion: String
    public var suiteRevision: String?
    public var runID: String
    public var capabilities: [String]
    public var hasSecondTenant: Bool
    public var startedAt: Date
    public var finishedAt: Date
    public var results: [CaseResult]
    /// Pins the run created but could not delete.
    public var cleanupNotes: [String]

    public var passed: Int { results.count { $0.outcome == .passed } }
    public var failed: Int { results.count { $0.outcome == .failed } }
    public var skipped: Int { results.count { $0.outcome == .skipped } }

    /// Whether no case failed.
    public var isSuccess: Bool { failed == 0 }

    /// `conformance: N passed, M failed, K skipped`.
    public var summaryLine: String {
        "conformance: \(passed) passed, \(failed) failed, \(skipped) skipped"
    }

    /// Results that failed, in run order.
    public var failures: [CaseResult] { results.filter { $0.outcome == .failed } }

    // MARK: Per-rule table

    struct RuleRow {
        var operation: String
        var rule: String
        var passed = 0
        var failed = 0
        var skipped = 0
        var failing: [String] = []
    }

    func ruleRows() -> [RuleRow] {
        var rows: [String: RuleRow] = [:]
        var order: [String] = []
        for result in results {
            for ref in result.spec {
                let key = ref.operation + "\u{0}" + ref.rule
                if rows[key] == nil {
                    rows[key] = RuleRow(operation: ref.operation, rule: ref.rule)
                    order.append(key)
                }
                switch result.outcome {
                case .passed: rows[key]?.passed += 1
                case .failed:
                    rows[key]?.failed += 1
                    rows[key]?.failing.append(result.id)
                case .skipped: rows[key]?.skipped += 1
                }
            }
        }
        let operationOrder = [
            "addPin", "getPinByRequestId", "getPins", "replacePinByRequestId", "deletePinByRequestId",
        ]
        return order.compactMap { rows[$0] }.sorted { a, b in
            let ia = operationOrder.firstIndex(of: a.operation) ?? operationOrder.count
            let ib = operationOrder.firstIndex(of: b.operation) ?? operationOrder.count
            if ia != ib { return ia < ib }
            if a.operation != b.operation { return a.operation < b.operation }
            return a.rule.lowercased() < b.rule.lowercased()
        }
    }

    /// A plain-text table of results grouped by spec operation and rule, ending with ``summaryLine``.
    ///
    /// A rule passes when every case citing it passed, fails when any failed, and is "n/a" when
    /// all its cases were skipped.
    public func perRuleTable() -> String {
        let rows = ruleRows()
        let ruleWidth = min(72, max(4, rows.map { $0.rule.count }.max() ?? 4))
        let opWidth = max(9, rows.map { $0.operation.count }.max() ?? 9)
        func pad(_ s: String, _ n: Int) -> String {
            if s.count > n { return String(s.prefix(n - 1)) + "…" }
            return s + String(repeating: " ", count: n - s.count)
        }
        func lpad(_ s: String, _ n: Int) -> String {
            String(repeating: " ", count: max(0, n - s.count)) + s
        }
        var out = "Pinning API conformance: \(target) (spec v\(specVersion))\n\n"
        out += pad("operation", opWidth) + "  " + pad("rule", ruleWidth) + "  result  pass  fail  skip\n"
        out += String(repeating: "-", count: opWidth + ruleWidth + 30) + "\n"
        var lastOperation = ""
        for row in rows {
            let verdict = row.failed > 0 ? "FAIL" : (row.passed > 0 ? "pass" : "n/a")
            let op = row.operation == lastOperation ? "" : row.operation
            lastOperation = row.operation
            out += pad(op, opWidth) + "  " + pad(row.rule, ruleWidth) + "  " + pad(verdict, 6)
            out += lpad(String(row.passed), 4) + lpad(String(row.failed), 6) + lpad(String(row.skipped), 6) + "\n"
            for id in row.failing {
                out += pad("", opWidth) + "    ✗ " + id + "\n"
            }
        }
        out += "\n" + summaryLine + "\n"
        return out
    }

    // MARK: Markdown

    /// A Markdown report: summary, per-directory and per-rule tables, every case, and full
    /// request/response transcripts for failures.
    public func markdown() -> String {
        var md = "# Pinning API conformance: \(target)\n\n"
        md += "- Spec: IPFS Pinning Services API v\(specVersion)\n"
        if let suiteRevision { md += "- Fixture revision: \(suiteRevision)\n" }
        md += "- Run: `\(runID)`, \(ConformanceReport.timestamp(startedAt)) → \(ConformanceReport.timestamp(finishedAt))\n"
        md += "- Target: \(isRemote ? "remote" : "local"); second tenant: \(hasSecondTenant ? "yes" : "no"); "
        md += "capabilities: \(capabilities.isEmpty ? "none" : capabilities.joined(separator: ", "))\n\n"
        md += "**\(summaryLine)**"
        let optional = results.filter(\.isOptional)
        if !optional.isEmpty {
            let p = optional.count { $0.outcome == .passed }
            let f = optional.count { $0.outcome == .failed }
            md += " (of which optional SHOULD/MAY cases: \(p) passed, \(f) failed)"
        }
        md += "\n\n"

        md += "## By directory\n\n| directory | ✅ passed | ❌ failed | ⏭ skipped |\n|---|---:|---:|---:|\n"
        var groups: [String] = []
        for r in results where !groups.contains(r.group) { groups.append(r.group) }
        for g in groups {
            let rs = results.filter { $0.group == g }
            md += "| `\(g)` | \(rs.count { $0.outcome == .passed }) | \(rs.count { $0.outcome == .failed }) "
            md += "| \(rs.count { $0.outcome == .skipped }) |\n"
        }

        md += "\n## By spec rule\n\n| operation | rule | result | ✅ | ❌ | ⏭ |\n|---|---|---|---:|---:|---:|\n"
        for row in ruleRows() {
            let verdict = row.failed > 0 ? "❌" : (row.passed > 0 ? "✅" : "⏭ n/a")
            md += "| `\(row.operation)` | \(ConformanceReport.cell(row.rule)) | \(verdict) | \(row.passed) | \(row.failed) | \(row.skipped) |\n"
        }

        md += "\n## Cases\n\n| | case | description |\n|---|---|---|\n"
        for r in results {
            let icon: String
            switch r.outcome {
            case .passed: icon = "✅"
            case .failed: icon = r.isOptional ? "⚠️" : "❌"
            case .skipped: icon = "⏭"
            }
            var text = ConformanceReport.cell(r.description)
            if r.outcome == .skipped, let reason = r.reason { text += " — skipped: " + ConformanceReport.cell(reason) }
            let link = r.outcome == .failed ? "[`\(r.id)`](#\(ConformanceReport.anchor(r.id)))" : "`\(r.id)`"
            md += "| \(icon) | \(link) | \(text) |\n"
        }
        md += "\n⚠️ marks failed optional (SHOULD/MAY) cases; they count as failed in the summary line.\n"

        let failed = failures
        if !failed.isEmpty {
            md += "\n## Failures\n"
            for r in failed {
                md += "\n### \(r.id)\n\n"
                md += "\(r.description)\n\n"
                for ref in r.spec {
                    md += "- Spec: `\(ref.operation)` — \(ref.rule)"
                    if let section = ref.section { md += " (\(section))" }
                    md += "\n"
                }
                if let step = r.failedStep { md += "- Failing step: **\(step)**\n" }
                md += "\n"
                for f in r.failures { md += "- \(f)\n" }
                for exchange in r.transcript {
                    md += "\n" + ConformanceReport.transcriptMarkdown(exchange)
                }
                for note in r.notes { md += "\n> note: \(note)\n" }
            }
        }
        if !cleanupNotes.isEmpty {
            md += "\n## Clean-up problems\n\n"
            for n in cleanupNotes { md += "- \(n)\n" }
        }
        return md
    }

    static func transcriptMarkdown(_ e: RecordedExchange) -> String {
        var md = "Request"
        if let attempts = e.attempts { md += " (attempt \(attempts))" }
        md += ":\n\n```http\n\(e.request.method) \(e.request.path)\n"
        for h in e.request.headers where h.count == 2 { md += "\(h[0]): \(h[1])\n" }
        if let body = e.request.body, !body.isEmpty { md += "\n\(body)\n" }
        md += "```\n\n"
        if let response = e.response {
            md += "Response:\n\n```http\nHTTP \(response.status)\n"
            for h in response.headers where h.count == 2 { md += "\(h[0]): \(h[1])\n" }
            if !response.body.isEmpty { md += "\n\(response.body)\n" }
            md += "```\n"
        } else if let error = e.error {
            md += "No response: \(error)\n"
        }
        return md
    }

    static func cell(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    static func anchor(_ id: String) -> String {
        String(
            id.lowercased().compactMap { c -> Character? in
                if c.isLetter || c.isNumber || c == "-" || c == "_" { return c }
                if c == " " { return "-" }
                return nil
            }
        )
    }

    static func timestamp(_ date: Date) -> String {
        RFC3339.from(date: date).format(offsetMinutes: 0)
    }

    // MARK: JSON

    /// The whole report as pretty-printed JSON: `run_info`, `summary` and every result.
    public func json() -> Data {
        struct Summary: Codable {
            var total, passed, failed, skipped: Int
            var success: Bool
        }
        struct RunInfo: Codable {
            var target: String
            var isRemote: Bool
            var specVersion: String
            var suiteRevision: String?
            var runID: String
            var capabilities: [String]
            var hasSecondTenant: Bool
            var timeStart: String
            var timeEnd: String
        }
        struct Document: Codable {
            var run_info: RunInfo
            var summary: Summary
            var results: [CaseResult]
            var cleanupNotes: [String]
        }
        let document = Document(
            run_info: RunInfo(
                target: target,
                isRemote: isRemote,
                specVersion: specVersion,
                suiteRevision: suiteRevision,
                runID: runID,
                capabilities: capabilities,
                hasSecondTenant: hasSecondTenant,
                timeStart: ConformanceReport.timestamp(startedAt),
                timeEnd: ConformanceReport.timestamp(finishedAt)
            ),
            summary: Summary(total: results.count, passed: passed, failed: failed, skipped: skipped, success: isSuccess),
            results: results,
            cleanupNotes: cleanupNotes
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(document)) ?? Data("{}".utf8)
    }
}
