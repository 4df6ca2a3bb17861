import Foundation

extension ConformanceReport {
    /// The identifier of the JSON report's format; bumped on any incompatible change. The schema is
    /// `Fixtures/pinning-api/report.schema.json` (installed beside the fixtures).
    public static let jsonFormat = "anchorage-conformance-report/1"

    /// The whole report as pretty-printed JSON with sorted keys: `format`, `run`, `summary`
    /// (the summary line, totals, per-level tallies, `success` under the given strictness),
    /// every result with its level, clause and failing transcript, and `cleanup` problems.
    public func json(strict: Bool = false) -> Data {
        struct Run: Codable {
            var id: String
            var target: String
            var remote: Bool
            var specVersion: String
            var suiteRevision: String?
            var capabilities: [String]
            var secondTenant: Bool
            var startedAt: String
            var finishedAt: String
            var strict: Bool
            var interrupted: Bool
        }
        struct Summary: Codable {
            var line: String
            var total, passed, failed, skipped: Int
            var levels: [String: Tally]
            var success: Bool
        }
        struct Document: Codable {
            var format: String
            var run: Run
            var summary: Summary
            var results: [CaseResult]
            var cleanup: [String]
        }
        var levels: [String: Tally] = [:]
        for level in ConformanceLevel.allCases { levels[level.rawValue] = tally(level) }
        let document = Document(
            format: ConformanceReport.jsonFormat,
            run: Run(
                id: runID,
                target: target,
                remote: isRemote,
                specVersion: specVersion,
                suiteRevision: suiteRevision,
                capabilities: capabilities,
                secondTenant: hasSecondTenant,
                startedAt: ConformanceReport.timestamp(startedAt),
                finishedAt: ConformanceReport.timestamp(finishedAt),
                strict: strict,
                interrupted: interrupted
            ),
            summary: Summary(
                line: summaryLine,
                total: results.count,
                passed: passed,
                failed: failed,
                skipped: skipped,
                levels: levels,
                success: isSuccess(strict: strict)
            ),
            results: results,
            cleanup: cleanupNotes
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(document)) ?? Data("{}".utf8)
    }
}
