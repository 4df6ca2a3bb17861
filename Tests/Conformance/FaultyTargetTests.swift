import ConformanceKit
import Foundation
import Pins
import Seams
import Testing

// The conformance runner must be able to say "no". These tests run the fixtures against a tiny
// in-memory pinning service: without a defect it passes every case; with one deliberate spec
// violation at a time, the runner must report failures, and in the cases that target it.

/// One deliberate spec violation of ``InMemoryPinningService``.
enum Defect: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// `count` is computed without the `before` filter (Kubo's `ls` paging then never ends).
    case countIgnoresBefore = "count ignores before"
    /// Results are sorted oldest first.
    case oldestFirst = "oldest first"
    /// Absent optional fields are sent as `null` (`"name": null`, `"info": null`).
    case nullOptionalFields = "null optional fields"
    /// Error bodies are JSON but labelled `text/plain`.
    case textPlainErrors = "text/plain error bodies"
    /// After a replace, the old requestid still answers `GET` with 200 instead of 404.
    case oldIDSurvivesReplace = "old id survives replace"
    /// `count` is the length of the page instead of the number of matches.
    case countIsPageLength = "count is the page length"
    /// Every PinStatus carries a vendor key the schema does not list: allowed by OpenAPI,
    /// refused by the strict reading, so only recommended cases may fail over it.
    case vendorKeyInPinStatus = "vendor key in PinStatus"

    var testDescription: String { rawValue }

    /// Cases that must fail because of this defect, with a fragment of the failure message
    /// that shows the runner caught it for the right reason.
    var caughtBy: [(id: String, message: String)] {
        switch self {
        case .countIgnoresBefore:
            return [
                ("v1.0.0/pins-list-filters/filter-before", "$.count: expected 2, got 3"),
                ("v1.0.0/pins-pagination/page-with-before-until-count-equals-results", "$.count: expected 2, got 12"),
                ("v1.0.0/kubo/ls-pages-until-count-equals-results", "$.count: expected 2, got 12"),
            ]
        case .oldestFirst:
            return [
                ("v1.0.0/pins-list/list-is-newest-first", "out of descending order"),
                ("v1.0.0/pins-list/list-limit-1-returns-the-newest", "$.results[0].requestid"),
            ]
        case .nullOptionalFields:
            return [
                ("v1.0.0/pins-add/add-minimal-pin", "$.pin.name: null is not allowed"),
                ("v1.0.0/pins-add/add-minimal-pin", "$.info: null is not allowed"),
                ("v1.0.0/compliance/03-add-pin", "null is not allowed"),
            ]
        case .textPlainErrors:
            return [
                ("v1.0.0/auth/missing-token-list-pins-401", "is not JSON"),
                ("v1.0.0/errors/error-bodies-are-strict-json-failures", "is not JSON"),
                ("v1.0.0/kubo/errors-carry-a-json-reason", "is not JSON"),
            ]
        case .oldIDSurvivesReplace:
            return [
                ("v1.0.0/pins-replace/replace-old-requestid-404-new-requestid-200", "status: expected 404, got 200"),
                ("v1.0.0/compliance/06-create-and-replace-pin-cid", "status: expected 404, got 200"),
            ]
        case .vendorKeyInPinStatus:
            return [
                ("v1.0.0/pins-add/add-with-meta", "unexpected key (extra: deny)")
            ]
        case .countIsPageLength:
            return [
                ("v1.0.0/pins-list/list-default-limit-is-10", "$.count: expected 11, got 10"),
                ("v1.0.0/pins-list/list-limit-1-returns-the-newest", "$.count: expected 3, got 1"),
                ("v1.0.0/pins-pagination/count-honours-after-with-limit", "$.count: expected 3, got 2"),
            ]
        }
    }
}

enum FaultyTarget {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pinning-api")

    /// Runs every fixture against a fresh in-memory service with `defect`.
    static func run(_ defect: Defect?, extras: Bool = true) async throws -> ConformanceReport {
        let fixtures = try FixtureLoader.load(from: directory)
        let tokenA = "memory-a-\(UUID().uuidString)"
        let tokenB = "memory-b-\(UUID().uuidString)"
        let service = InMemoryPinningService(tokens: [tokenA, tokenB], defect: defect, extras: extras)
        let target = ConformanceTarget(
            transport: service,
            tokenA: tokenA,
            tokenB: tokenB,
            name: "in-memory (\(defect?.rawValue ?? "no defect"))"
        )
        return await ConformanceRunner(target: target, options: ConformanceOptions(seed: 7)).run(fixtures)
    }
}

struct FaultyTargetTests {
    @Test func defectFreeServicePassesEveryCase() async throws {
        let report = try await FaultyTarget.run(nil)
        for result in report.results where result.outcome == .failed {
            Issue.record("\(result.id) failed at \(result.failedStep ?? "?"): \(result.failures.joined(separator: "; "))")
        }
        let requiredFailures = report.results.filter { $0.outcome == .failed && $0.level == .required }
        #expect(requiredFailures.isEmpty, "\(report.summaryLine)")
        #expect(report.failed == 0, "\(report.summaryLine)")
        #expect(report.passed > 100, "\(report.summaryLine)")
        for result in report.results where result.outcome == .skipped {
            // Only the case that needs pins to reach `pinned` (capability resolves-cids).
            #expect(result.id.hasSuffix("kubo/add-waits-until-pinned"), "\(result.id) skipped: \(result.reason ?? "")")
        }
        #expect(report.cleanupNotes.isEmpty)
    }

    @Test(arguments: Defect.allCases)
    func runnerReportsTheDefect(_ defect: Defect) async throws {
        let report = try await FaultyTarget.run(defect)
        let failed = report.results.filter { $0.outcome == .failed }
        #expect(!failed.isEmpty, "\(defect.rawValue): \(report.summaryLine)")
        for (id, message) in defect.caughtBy {
            let result = failed.first { $0.id == id }
            #expect(result != nil, "\(defect.rawValue): \(id) did not fail")
            if let result {
                #expect(
                    result.failures.contains { $0.contains(message) },
                    "\(defect.rawValue): \(id) failed without \"\(message)\": \(result.failures)"
                )
            }
        }
        if defect == .vendorKeyInPinStatus {
            #expect(failed.map(\.id) == ["v1.0.0/pins-add/add-with-meta"], "a strict-only finding fails only the case that denies extra keys")
            let noted = report.results.first { $0.id == "v1.0.0/pins-add/add-minimal-pin" }
            #expect(noted?.outcome == .passed)
            #expect(noted?.notes.contains { $0.contains("(strict): $: unknown key \"vendor\"") } == true, "\(noted?.notes ?? [])")
            #expect(report.isSuccess(strict: false) && !report.isSuccess(strict: true), "add-with-meta is recommended")
        }
        // The report names the failing cases in the per-rule table as well.
        let table = report.perRuleTable()
        #expect(table.contains("FAIL"))
        #expect(table.hasSuffix(report.summaryLine + "\n"))
        // For the record: which cases each defect trips.
        print("\(defect.rawValue): \(report.summaryLine); failed: \(failed.map(\.id).joined(separator: ", "))")
    }
}
