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
    /// How binding the case is; decides whether its failure fails the run.
    public var level: ConformanceLevel
    /// The spec line range or RFC section the case checks.
    public var clause: Clause?
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

    /// A passed result for `fixture`, before its steps ran.
    public init(fixture: Fixture) {
        id = fixture.id
        description = fixture.description
        spec = fixture.spec
        tags = fixture.tags ?? []
        level = fixture.effectiveLevel
        clause = fixture.clause
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
    /// Whether the run was stopped (SIGINT/SIGTERM) before every selected case ran.
    public var interrupted: Bool = false

    public init(
        target: String,
        isRemote: Bool,
        specVersion: String,
        suiteRevision: String?,
        runID: String,
        capabilities: [String],
        hasSecondTenant: Bool,
        startedAt: Date,
        finishedAt: Date,
        results: [CaseResult],
        cleanupNotes: [String],
        interrupted: Bool = false
    ) {
        self.target = target
        self.isRemote = isRemote
        self.specVersion = specVersion
        self.suiteRevision = suiteRevision
        self.runID = runID
        self.capabilities = capabilities
        self.hasSecondTenant = hasSecondTenant
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.results = results
        self.cleanupNotes = cleanupNotes
        self.interrupted = interrupted
    }

    public var passed: Int { results.count { $0.outcome == .passed } }
    public var failed: Int { results.count { $0.outcome == .failed } }
    public var skipped: Int { results.count { $0.outcome == .skipped } }

    /// Passed, failed and skipped cases of one level.
    public struct Tally: Codable, Sendable, Equatable {
        public var passed = 0
        public var failed = 0
        public var skipped = 0
        /// Cases that ran (passed or failed).
        public var ran: Int { passed + failed }
    }

    public func tally(_ level: ConformanceLevel) -> Tally {
        var t = Tally()
        for r in results where r.level == level {
            switch r.outcome {
            case .passed: t.passed += 1
            case .failed: t.failed += 1
            case .skipped: t.skipped += 1
            }
        }
        return t
    }

    /// Whether a failure of this level fails the run: `required` always, `recommended` under
    /// `strict`, `anchorage` never.
    public static func isBinding(_ level: ConformanceLevel, strict: Bool) -> Bool {
        level == .required || (strict && level == .recommended)
    }

    /// Whether the run passes: no binding failure and not interrupted (exit status 0).
    public func isSuccess(strict: Bool = false) -> Bool {
        !interrupted && !results.contains { $0.outcome == .failed && ConformanceReport.isBinding($0.level, strict: strict) }
    }

    /// `conformance: required 98/98, recommended 20/23, anchorage 3/3`: passed of those that ran,
    /// per level, then `, N skipped` and `, interrupted` when they apply.
    public var summaryLine: String {
        var parts = ConformanceLevel.allCases.map { level -> String in
            let t = tally(level)
            return "\(level.rawValue) \(t.passed)/\(t.ran)"
        }
        if skipped > 0 { parts.append("\(skipped) skipped") }
        if interrupted { parts.append("interrupted") }
        return "conformance: " + parts.joined(separator: ", ")
    }

    /// Results that failed, in run order.
    public var failures: [CaseResult] { results.filter { $0.outcome == .failed } }
}
