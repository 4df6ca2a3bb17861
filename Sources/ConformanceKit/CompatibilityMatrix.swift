import Foundation

/// Several targets' reports side by side, case by case (the way bowtie shows JSON-Schema
/// implementations): one row per case, one column per target.
public struct CompatibilityMatrix: Sendable {
    public let reports: [ConformanceReport]
    public let strict: Bool

    public init(reports: [ConformanceReport], strict: Bool = false) {
        self.reports = reports
        self.strict = strict
    }

    /// One case across the targets; `outcomes[i]` is nil when target i did not run it.
    public struct Row: Sendable {
        public var id: String
        public var description: String
        public var level: ConformanceLevel
        public var outcomes: [CaseResult?]

        /// Whether the targets disagree (a case passed somewhere and failed elsewhere).
        public var differs: Bool {
            let ran = Set(outcomes.compactMap { $0?.outcome }.filter { $0 != .skipped })
            return ran.count > 1
        }
    }

    /// Rows ordered by level, then id.
    public var rows: [Row] {
        var byID: [String: Row] = [:]
        for (i, report) in reports.enumerated() {
            for r in report.results {
                var row =
                    byID[r.id] ?? Row(id: r.id, description: r.description, level: r.level, outcomes: Array(repeating: nil, count: reports.count))
                row.outcomes[i] = r
                byID[r.id] = row
            }
        }
        return byID.values.sorted { ($0.level, $0.id) < ($1.level, $1.id) }
    }

    /// Whether every target passes (the exit status of a matrix run).
    public var isSuccess: Bool { reports.allSatisfy { $0.isSuccess(strict: strict) } }

    /// The self-contained HTML page.
    public func html(title: String = "Pinning API compatibility matrix") -> String {
        var body = "<h1>\(Markup.escape(title))</h1>\n"
        body += "<p class=\"meta\">IPFS Pinning Services API v\(Markup.escape(reports.first?.specVersion ?? "1.0.0")) · "
        body += "\(reports.count) targets\(strict ? " · strict" : "") · rows marked on the left differ between targets</p>\n"
        body += "<table>\n<caption>Summary</caption>\n<thead><tr><th scope=\"col\">target</th><th scope=\"col\">summary</th>"
        body += "<th scope=\"col\">verdict</th></tr></thead>\n<tbody>\n"
        for report in reports {
            let ok = report.isSuccess(strict: strict)
            body += "<tr><th scope=\"row\">\(Markup.escape(report.target))</th><td><code>\(Markup.escape(report.summaryLine))</code></td>"
            body += "<td class=\"\(ok ? "pass" : "fail")\">\(ok ? "✓ passes" : "✗ fails")</td></tr>\n"
        }
        body += "</tbody>\n</table>\n"
        for level in ConformanceLevel.allCases {
            let levelRows = rows.filter { $0.level == level }
            guard !levelRows.isEmpty else { continue }
            body += "<table>\n<caption>\(level.rawValue) cases (\(levelRows.count))</caption>\n<thead><tr><th scope=\"col\">case</th>"
            for report in reports { body += "<th scope=\"col\">\(Markup.escape(report.target))</th>" }
            body += "</tr></thead>\n<tbody>\n"
            for row in levelRows {
                body += "<tr\(row.differs ? " class=\"differs\"" : "")><th scope=\"row\"><code>\(Markup.escape(shortID(row.id)))</code></th>"
                for result in row.outcomes {
                    guard let result else {
                        body += "<td class=\"skip\">– not run</td>"
                        continue
                    }
                    let (cls, text) = HTMLPage.outcome(result.outcome, binding: ConformanceReport.isBinding(level, strict: strict))
                    let why = result.reason.map { " title=\"\(Markup.escape($0))\"" } ?? ""
                    body += "<td class=\"\(cls)\"\(why)>\(text)</td>"
                }
                body += "</tr>\n"
            }
            body += "</tbody>\n</table>\n"
        }
        return HTMLPage.wrap(title: title, body: body)
    }

    /// The same matrix as GitHub-flavoured Markdown.
    public func markdown(title: String = "Pinning API compatibility matrix") -> String {
        var md = "# \(title)\n\n| target | summary | verdict |\n|---|---|---|\n"
        for report in reports {
            md += "| \(ConformanceReport.cell(report.target)) | `\(report.summaryLine)` | "
            md += report.isSuccess(strict: strict) ? "✅ passes |\n" : "❌ fails |\n"
        }
        md += "\n| level | case | " + reports.map { ConformanceReport.cell($0.target) }.joined(separator: " | ") + " |\n"
        md += "|---|---|" + String(repeating: "---|", count: reports.count) + "\n"
        for row in rows {
            md += "| \(row.level.rawValue) | `\(shortID(row.id))`\(row.differs ? " ◀" : "") | "
            md +=
                row.outcomes.map { result -> String in
                    guard let result else { return "–" }
                    switch result.outcome {
                    case .passed: return "✅"
                    case .skipped: return "⏭"
                    case .failed: return ConformanceReport.isBinding(row.level, strict: strict) ? "❌" : "⚠️"
                    }
                }.joined(separator: " | ") + " |\n"
        }
        md += "\n✅ passed · ❌ failed (fails the run) · ⚠️ failed (not binding) · ⏭ skipped · ◀ the targets differ\n"
        return md
    }

    private func shortID(_ id: String) -> String {
        id.split(separator: "/").dropFirst().joined(separator: "/")
    }
}
