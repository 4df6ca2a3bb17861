import Foundation

extension ConformanceReport {
    /// A self-contained HTML page: summary line, per-level table, every case with its level,
    /// clause and outcome, and for each failure a collapsible transcript.
    public func html(strict: Bool = false) -> String {
        var body = "<h1>Pinning API conformance: \(Markup.escape(target))</h1>\n"
        body += "<p class=\"meta\">IPFS Pinning Services API v\(Markup.escape(specVersion)) · run <code>\(runID)</code> · "
        body += "\(ConformanceReport.timestamp(startedAt)) → \(ConformanceReport.timestamp(finishedAt))"
        body += strict ? " · strict" : ""
        body += "</p>\n"
        let ok = isSuccess(strict: strict)
        body += "<p class=\"summary \(ok ? "ok" : "bad")\">\(Markup.escape(summaryLine)) — \(ok ? "passes" : "fails")</p>\n"

        body += "<table>\n<caption>By level</caption>\n<thead><tr><th scope=\"col\">level</th><th scope=\"col\">passed</th>"
        body += "<th scope=\"col\">failed</th><th scope=\"col\">skipped</th><th scope=\"col\">fails the run</th></tr></thead>\n<tbody>\n"
        for level in ConformanceLevel.allCases {
            let t = tally(level)
            body += "<tr><th scope=\"row\">\(level.rawValue)</th><td class=\"num\">\(t.passed)</td><td class=\"num\">\(t.failed)</td>"
            body += "<td class=\"num\">\(t.skipped)</td><td>\(ConformanceReport.isBinding(level, strict: strict) ? "yes" : "no")</td></tr>\n"
        }
        body += "</tbody>\n</table>\n"

        body += "<table>\n<caption>Cases</caption>\n<thead><tr><th scope=\"col\">case</th><th scope=\"col\">level</th>"
        body += "<th scope=\"col\">outcome</th><th scope=\"col\">clause</th></tr></thead>\n<tbody>\n"
        for r in results {
            let (cls, text) = HTMLPage.outcome(r.outcome, binding: ConformanceReport.isBinding(r.level, strict: strict))
            let link = r.outcome == .failed ? "<a href=\"#\(ConformanceReport.anchor(r.id))\">\(Markup.escape(r.id))</a>" : Markup.escape(r.id)
            body += "<tr><th scope=\"row\"><code>\(link)</code><br><span class=\"muted\">\(Markup.escape(r.description))</span></th>"
            body += "<td>\(r.level.rawValue)</td><td class=\"\(cls)\">\(text)"
            if r.outcome == .skipped, let reason = r.reason { body += "<br>\(Markup.escape(reason))" }
            body += "</td><td>\(r.clause.map { "<code>\(Markup.escape($0.ref))</code>" } ?? "")</td></tr>\n"
        }
        body += "</tbody>\n</table>\n"

        if !failures.isEmpty {
            body += "<h2>Failures</h2>\n"
            for r in failures {
                body += "<h3 id=\"\(ConformanceReport.anchor(r.id))\"><code>\(Markup.escape(r.id))</code> "
                body += "<span class=\"level\">\(r.level.rawValue)</span></h3>\n"
                if let clause = r.clause {
                    body += "<p><code>\(Markup.escape(clause.ref))</code>: “\(Markup.escape(clause.quote))”"
                    if let note = clause.note { body += "<br><span class=\"muted\">\(Markup.escape(note))</span>" }
                    body += "</p>\n"
                }
                body += "<ul>\n" + r.failures.map { "<li>\(Markup.escape($0))</li>\n" }.joined() + "</ul>\n"
                body += "<details><summary>Transcript of step \(Markup.escape(r.failedStep ?? ""))</summary>\n<pre>"
                body += Markup.escape(r.transcript.map(ConformanceReport.transcriptMarkdown).joined(separator: "\n"))
                body += "</pre></details>\n"
            }
        }
        if !cleanupNotes.isEmpty {
            body += "<h2>Clean-up problems</h2>\n<ul>\n" + cleanupNotes.map { "<li>\(Markup.escape($0))</li>\n" }.joined() + "</ul>\n"
        }
        return HTMLPage.wrap(title: "Conformance: \(target)", body: body)
    }
}
