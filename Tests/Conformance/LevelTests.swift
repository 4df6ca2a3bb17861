import ConformanceKit
import Foundation
import Testing

/// Every case names its clause and level; the lint catches one that does not; the summary line
/// and the exit rule follow the levels.
struct LevelTests {
    @Test func everyFixtureHasALevelAndAClauseFoundInTheSpec() throws {
        let fixtures = try FixtureSuite.fixtures()
        #expect(fixtures.count > 100)
        #expect(ClauseCheck.problems(fixtures, spec: try FixtureSuite.spec()).isEmpty)
        for f in fixtures {
            #expect(f.level != nil, "\(f.id) has no level")
            #expect(f.clause != nil, "\(f.id) has no clause")
        }
        // The review's outcome: the cases the issue names are not required.
        let level = Dictionary(uniqueKeysWithValues: fixtures.map { ($0.id, $0.effectiveLevel) })
        #expect(level["v1.0.0/errors/list-invalid-cid-400"] == .recommended)
        #expect(level["v1.0.0/optional/unauthorized-response-has-www-authenticate"] == .recommended)
        #expect(level["v1.0.0/optional/lowercase-bearer-scheme-is-accepted"] == .recommended)
        #expect(level["v1.0.0/optional/created-has-sub-second-precision"] == .anchorage)
    }

    @Test func aFixtureWithoutLevelOrClauseFailsTheLint() throws {
        let spec = try FixtureSuite.spec()
        let original = try #require(try FixtureSuite.fixtures().first { $0.id == "v1.0.0/pins-add/add-minimal-pin" })
        #expect(FixtureLoader.lint([original], spec: spec).isEmpty)

        var noLevel = original
        noLevel.level = nil
        #expect(FixtureLoader.lint([noLevel], spec: spec).contains { $0.contains("no level") })

        var noClause = original
        noClause.clause = nil
        #expect(FixtureLoader.lint([noClause], spec: spec).contains { $0.contains("no clause") })

        var wrongQuote = original
        wrongQuote.clause = Clause(ref: "ipfs-pinning-service.yaml#L593", quote: "Successful response (PinStatus object)")
        #expect(FixtureLoader.lint([wrongQuote], spec: spec).contains { $0.contains("is not in ipfs-pinning-service.yaml#L593") })

        var badRef = original
        badRef.clause = Clause(ref: "the spec, somewhere", quote: "x")
        #expect(FixtureLoader.lint([badRef], spec: spec).contains { $0.contains("is neither") })

        var unexplained = original
        unexplained.level = .recommended
        #expect(FixtureLoader.lint([unexplained], spec: spec).contains { $0.contains("needs clause.note") })

        // The file-level schema check says the same about a file without them.
        let dir = try ConformanceExecutable.scratch("lint")
        defer { try? FileManager.default.removeItem(at: dir) }
        let suite = dir.appendingPathComponent("pinning-api")
        try FileManager.default.createDirectory(at: suite.appendingPathComponent("v1.0.0/pins-add"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: FixtureSuite.directory.appendingPathComponent("fixture.schema.json"),
            to: suite.appendingPathComponent("fixture.schema.json")
        )
        let source = try String(contentsOf: FixtureSuite.directory.appendingPathComponent("v1.0.0/pins-add/add-minimal-pin.json"), encoding: .utf8)
        let stripped = source.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("  \"level\"") && !$0.hasPrefix("  \"clause\"") }.joined(separator: "\n")
        try stripped.write(to: suite.appendingPathComponent("v1.0.0/pins-add/add-minimal-pin.json"), atomically: true, encoding: .utf8)
        let problems = FixtureLoader.schemaProblems(in: suite)
        #expect(problems.contains { $0.contains("missing required \"level\"") }, "\(problems)")
        #expect(problems.contains { $0.contains("missing required \"clause\"") }, "\(problems)")
    }

    @Test func summaryLineAndExitRuleFollowTheLevels() {
        func result(_ level: ConformanceLevel, _ outcome: CaseResult.Outcome, _ n: Int) -> CaseResult {
            var r = CaseResult(
                fixture: Fixture(id: "v1.0.0/pins-add/case-\(level.rawValue)-\(n)", description: "d", level: level, spec: [], steps: [])
            )
            r.outcome = outcome
            return r
        }
        var report = ConformanceReport(
            target: "t",
            isRemote: false,
            specVersion: "1.0.0",
            suiteRevision: nil,
            runID: "0123abcd",
            capabilities: [],
            hasSecondTenant: true,
            startedAt: Date(),
            finishedAt: Date(),
            results: [
                result(.required, .passed, 1), result(.required, .passed, 2), result(.recommended, .passed, 3),
                result(.recommended, .failed, 4), result(.anchorage, .failed, 5), result(.required, .skipped, 6),
            ],
            cleanupNotes: []
        )
        #expect(report.summaryLine == "conformance: required 2/2, recommended 1/2, anchorage 0/1, 1 skipped")
        #expect(report.isSuccess(strict: false), "recommended and anchorage failures do not fail a run")
        #expect(!report.isSuccess(strict: true), "--strict: a recommended failure fails the run")
        report.results[3].outcome = .passed
        #expect(report.isSuccess(strict: true), "anchorage failures never fail a run")
        report.results[0].outcome = .failed
        #expect(!report.isSuccess(strict: false))
        #expect(report.summaryLine == "conformance: required 1/2, recommended 2/2, anchorage 0/1, 1 skipped")
    }
}
