import Foundation

extension ConformanceReport {
    /// JUnit XML in the Ant/Jenkins dialect that CI systems read (GitLab, Jenkins, GitHub
    /// actions' test reporters): one `<testsuite>` per level, one `<testcase>` per case.
    ///
    /// `<failure>` marks exactly the cases that decide the exit status (required, and recommended
    /// under `strict`), so a CI's red tests and the job's status agree. A failed case that does
    /// not decide it is a `<skipped>` test whose message starts with `not binding:`; a skipped
    /// case is `<skipped>` with its reason. Validated against `Tests/Conformance/junit.xsd`.
    public func junit(strict: Bool = false) -> String {
        let seconds = { (ms: Int) in String(format: "%.3f", Double(ms) / 1000) }
        let total = results.reduce(0) { $0 + $1.durationMs }
        let binding = { (r: CaseResult) in r.outcome == .failed && ConformanceReport.isBinding(r.level, strict: strict) }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"\(Markup.escape("pinning-api conformance: \(target)"))\" tests=\"\(results.count)\" "
        xml += "failures=\"\(results.count(where: binding))\" errors=\"0\" time=\"\(seconds(total))\">\n"
        for (index, level) in ConformanceLevel.allCases.enumerated() {
            let cases = results.filter { $0.level == level }
            let failures = cases.count(where: binding)
            let skipped = cases.count { $0.outcome != .passed } - failures
            xml += "  <testsuite name=\"\(level.rawValue)\" tests=\"\(cases.count)\" failures=\"\(failures)\" errors=\"0\" "
            xml += "skipped=\"\(skipped)\" time=\"\(seconds(cases.reduce(0) { $0 + $1.durationMs }))\" "
            xml += "timestamp=\"\(ConformanceReport.timestamp(startedAt).prefix(19))\" hostname=\"\(Markup.escape(target))\" "
            xml += "id=\"\(index)\" package=\"conformance.\(level.rawValue)\">\n"
            xml += "    <properties>\n"
            for (name, value) in [
                ("target", target), ("run", runID), ("spec", specVersion), ("strict", String(strict)),
                ("binding", String(ConformanceReport.isBinding(level, strict: strict))), ("summary", summaryLine),
            ] {
                xml += "      <property name=\"\(name)\" value=\"\(Markup.escape(value))\"/>\n"
            }
            xml += "    </properties>\n"
            for r in cases { xml += junitCase(r, binding: binding(r), seconds: seconds) }
            xml += "    <system-out></system-out>\n    <system-err></system-err>\n  </testsuite>\n"
        }
        xml += "</testsuites>\n"
        return xml
    }

    private func junitCase(_ r: CaseResult, binding: Bool, seconds: (Int) -> String) -> String {
        let name = r.id.split(separator: "/").dropFirst().joined(separator: "/")
        let classname = "conformance.\(r.level.rawValue).\(r.group.split(separator: "/").last ?? "")"
        var xml = "    <testcase name=\"\(Markup.escape(name))\" classname=\"\(Markup.escape(classname))\" "
        xml += "time=\"\(seconds(r.durationMs))\">\n"
        let reason = r.reason ?? ""
        switch r.outcome {
        case .passed:
            break
        case .skipped:
            xml += "      <skipped message=\"\(Markup.escape(reason))\"/>\n"
        case .failed where binding:
            xml += "      <failure message=\"\(Markup.escape(reason))\" type=\"\(r.level.rawValue)\">"
            xml += Markup.escape(failureText(r)) + "</failure>\n"
        case .failed:
            xml += "      <skipped message=\"\(Markup.escape("not binding: \(r.level.rawValue) case failed: \(reason)"))\"/>\n"
        }
        var out = r.outcome == .failed && !binding ? [failureText(r)] : []
        out += r.notes.map { "note: \($0)" }
        if !out.isEmpty { xml += "      <system-out>\(Markup.escape(out.joined(separator: "\n")))</system-out>\n" }
        xml += "    </testcase>\n"
        return xml
    }

    /// What failed, where, and on which clause, followed by the failing exchange.
    func failureText(_ r: CaseResult) -> String {
        var text = r.description + "\n"
        if let clause = r.clause { text += "clause: \(clause.ref): \(clause.quote)\n" }
        if let step = r.failedStep { text += "step: \(step)\n" }
        for f in r.failures { text += "- \(f)\n" }
        for e in r.transcript { text += "\n" + ConformanceReport.transcriptMarkdown(e) }
        return text
    }
}
