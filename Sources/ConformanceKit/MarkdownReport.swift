import Foundation

extension ConformanceReport {
    // MARK: Markdown

    /// A Markdown report: summary, per-directory and per-rule tables, every case, and full
    /// request/response transcripts for failures.
    public func markdown(strict: Bool = false) -> String {
        var md = "# Pinning API conformance: \(target)\n\n"
        md += "- Spec: IPFS Pinning Services API v\(specVersion)\n"
        if let suiteRevision { md += "- Fixture revision: \(suiteRevision)\n" }
        md += "- Run: `\(runID)`, \(ConformanceReport.timestamp(startedAt)) → \(ConformanceReport.timestamp(finishedAt))\n"
        md += "- Target: \(isRemote ? "remote" : "local"); second tenant: \(hasSecondTenant ? "yes" : "no"); "
        md += "capabilities: \(capabilities.isEmpty ? "none" : capabilities.joined(separator: ", "))\n\n"
        md += "**\(summaryLine)** — \(isSuccess(strict: strict) ? "passes" : "fails")"
        md += strict ? " (strict: recommended cases count)\n\n" : "\n\n"

        md += "## By level\n\n| level | ✅ passed | ❌ failed | ⏭ skipped | fails the run |\n|---|---:|---:|---:|---|\n"
        for level in ConformanceLevel.allCases {
            let t = tally(level)
            let binding = ConformanceReport.isBinding(level, strict: strict) ? "yes" : "no"
            md += "| \(level.rawValue) | \(t.passed) | \(t.failed) | \(t.skipped) | \(binding) |\n"
        }
        md += "\n"

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

        md += "\n## Cases\n\n| | level | case | description | clause |\n|---|---|---|---|---|\n"
        for r in results {
            let icon: String
            switch r.outcome {
            case .passed: icon = "✅"
            case .failed: icon = ConformanceReport.isBinding(r.level, strict: strict) ? "❌" : "⚠️"
            case .skipped: icon = "⏭"
            }
            var text = ConformanceReport.cell(r.description)
            if r.outcome == .skipped, let reason = r.reason { text += " — skipped: " + ConformanceReport.cell(reason) }
            let link = r.outcome == .failed ? "[`\(r.id)`](#\(ConformanceReport.anchor(r.id)))" : "`\(r.id)`"
            md += "| \(icon) | \(r.level.rawValue) | \(link) | \(text) | \(ConformanceReport.cell(r.clause?.ref ?? "")) |\n"
        }
        md += "\n⚠️ marks a failed case whose level does not fail the run"
        md += strict ? " (anchorage).\n" : " (recommended or anchorage; `--strict` makes recommended ones count).\n"

        let failed = failures
        if !failed.isEmpty {
            md += "\n## Failures\n"
            for r in failed {
                md += "\n### \(r.id)\n\n"
                md += "\(r.description)\n\n"
                md += "- Level: **\(r.level.rawValue)**\n"
                if let clause = r.clause {
                    md += "- Clause: \(clause.ref): “\(clause.quote)”\n"
                    if let note = clause.note { md += "- Why \(r.level.rawValue): \(note)\n" }
                }
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
}
