import Foundation

/// A pinning service under test.
public struct ConformanceTarget: Sendable {
    /// How requests reach the service.
    public var transport: any ConformanceTransport
    /// The main tenant's bearer token (`auth: tenantA`).
    public var tokenA: String
    /// A second tenant's token (`auth: tenantB`); cases needing it are skipped without it.
    public var tokenB: String?
    /// Optional behaviours the target declares, e.g. `resolves-cids` (pins reach `pinned`).
    public var capabilities: Set<String>
    /// A label for reports (host name, "in-process", …).
    public var name: String

    public init(
        transport: any ConformanceTransport,
        tokenA: String,
        tokenB: String? = nil,
        capabilities: Set<String> = [],
        name: String
    ) {
        self.transport = transport
        self.tokenA = tokenA
        self.tokenB = tokenB
        self.capabilities = capabilities
        self.name = name
    }
}

/// Runner settings.
public struct ConformanceOptions: Sendable {
    /// Prefix of generated pin names (`{{name:N}}` = `<prefix>-<run>-<N>-<random>`).
    public var namePrefix: String
    /// Seed for generated CIDs, names and UUIDs; random when nil. A fixed seed repeats the same
    /// values every run, so use it only against a fresh target (in-process, simulator).
    public var seed: UInt64?
    /// `User-Agent` sent unless a fixture sets its own.
    public var userAgent: String
    /// Delete the pins each case created when it ends (and leftovers at the end of the run).
    public var cleanup: Bool
    /// Spec version the fixtures target, for reports.
    public var specVersion: String
    /// Revision of the fixture set, for reports (e.g. a git commit).
    public var suiteRevision: String?
    /// Bytes of each body kept in transcripts.
    public var transcriptLimit: Int
    /// Upper bound applied to every `eventually.within`.
    public var maxEventuallyWait: Duration?
    /// The clock used for `{{now}}`, durations and `eventually` deadlines.
    public var now: @Sendable () -> Date
    /// How the runner waits between `eventually` attempts (real time by default).
    public var sleep: @Sendable (Duration) async throws -> Void
    /// Every pin created and not yet deleted, journalled for `--cleanup-only`.
    public var ledger: PinLedger?
    /// Set to stop the run early (no new request; the current case still cleans up).
    public var stop: StopSignal?

    public init(
        namePrefix: String = "conformance",
        seed: UInt64? = nil,
        userAgent: String = "anchorage-conformance/1.0",
        cleanup: Bool = true,
        specVersion: String = "1.0.0",
        suiteRevision: String? = nil,
        transcriptLimit: Int = 16 * 1024,
        maxEventuallyWait: Duration? = nil,
        now: @escaping @Sendable () -> Date = { Date() },
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        ledger: PinLedger? = nil,
        stop: StopSignal? = nil
    ) {
        self.namePrefix = namePrefix
        self.seed = seed
        self.userAgent = userAgent
        self.cleanup = cleanup
        self.specVersion = specVersion
        self.suiteRevision = suiteRevision
        self.transcriptLimit = transcriptLimit
        self.maxEventuallyWait = maxEventuallyWait
        self.now = now
        self.sleep = sleep
        self.ledger = ledger
        self.stop = stop
    }
}

/// Replays fixtures against one target.
public struct ConformanceRunner: Sendable {
    public let target: ConformanceTarget
    public let options: ConformanceOptions

    public init(target: ConformanceTarget, options: ConformanceOptions = ConformanceOptions()) {
        self.target = target
        self.options = options
    }

    /// Runs the fixtures in order (those whose id matches the `only` glob, when given), one case
    /// at a time, and reports each result through `progress` as it finishes.
    ///
    /// `only` is matched against the full id (`v1.0.0/pins-add/add-minimal`) and against the id
    /// without its version directory (`pins-add/add-minimal`); `*` matches any run of characters
    /// including `/`, `?` one character.
    public func run(
        _ fixtures: [Fixture],
        only: String? = nil,
        progress: (@Sendable (CaseResult) -> Void)? = nil
    ) async -> ConformanceReport {
        var seedSource = SystemRandomNumberGenerator()
        var rng = SplitMix64(seed: options.seed ?? seedSource.next())
        return await run(fixtures, runID: Generators.hex(&rng, count: 4), rng: rng, only: only, progress: progress)
    }

    /// A run with a run id chosen by the caller (8 lowercase hex digits, so that it can name
    /// the journal before the run starts); otherwise as ``run(_:only:progress:)``.
    public func run(
        _ fixtures: [Fixture],
        runID: String,
        only: String? = nil,
        progress: (@Sendable (CaseResult) -> Void)? = nil
    ) async -> ConformanceReport {
        var seedSource = SystemRandomNumberGenerator()
        let rng = SplitMix64(seed: options.seed ?? seedSource.next())
        return await run(fixtures, runID: runID, rng: rng, only: only, progress: progress)
    }

    /// A fresh run id: 8 lowercase hex digits.
    public static func newRunID() -> String {
        var rng = SystemRandomNumberGenerator()
        return String(format: "%08x", UInt32.random(in: 0...UInt32.max, using: &rng))
    }

    private func run(
        _ fixtures: [Fixture],
        runID: String,
        rng seeded: SplitMix64,
        only: String?,
        progress: (@Sendable (CaseResult) -> Void)?
    ) async -> ConformanceReport {
        let started = options.now()
        var rng = seeded
        var interrupted = false
        var results: [CaseResult] = []
        var leftovers: [TrackedPin] = []

        var supersededBy: [String: String] = [:]
        for f in fixtures { if let old = f.supersedes { supersededBy[old] = f.id } }

        for fixture in fixtures {
            if let only, !Glob.matchesID(only, fixture.id) { continue }
            if options.stop?.isRequested == true {
                interrupted = true
                break
            }
            if let newer = supersededBy[fixture.id] {
                var result = CaseResult(fixture: fixture)
                result.outcome = .skipped
                result.reason = "superseded by \(newer)"
                results.append(result)
                progress?(result)
                continue
            }
            var caseRNG = SplitMix64(seed: rng.next())
            _ = caseRNG.next()
            var execution = CaseExecution(
                fixture: fixture,
                target: target,
                options: options,
                resolver: PlaceholderResolver(
                    rng: caseRNG,
                    runID: runID,
                    namePrefix: options.namePrefix,
                    now: options.now()
                )
            )
            let (result, remaining) = await execution.run()
            leftovers.append(contentsOf: remaining)
            results.append(result)
            progress?(result)
        }

        var notes: [String] = []
        if options.cleanup, !leftovers.isEmpty {
            for pin in leftovers {
                if let problem = await PinDeletion.delete(pin, target: target, options: options) {
                    notes.append("leftover \(pin.requestID) (\(pin.tenant.rawValue)): \(problem)")
                }
            }
        }
        return ConformanceReport(
            target: target.name,
            isRemote: target.transport.isRemote,
            specVersion: options.specVersion,
            suiteRevision: options.suiteRevision,
            runID: runID,
            capabilities: target.capabilities.sorted(),
            hasSecondTenant: target.tokenB != nil,
            startedAt: started,
            finishedAt: options.now(),
            results: results,
            cleanupNotes: notes,
            interrupted: interrupted || options.stop?.isRequested == true
        )
    }
}

// MARK: - Execution of one case

/// Why a step failed: the messages and the exchange that showed it.
private struct StepFailure: Error {
    var messages: [String]
    var exchange: RecordedExchange?
}

/// A request ready to send, plus what the runner needs to know about it.
private struct BuiltRequest {
    var request: ConformanceRequest
    var auth: AuthMode
    /// `getPins`, `addPin`, … when the path is a Pinning API route.
    var operation: String?
    /// The decoded `{requestid}` path segment, for by-id routes.
    var pathRequestID: String?
}

private struct CaseExecution {
    let fixture: Fixture
    let target: ConformanceTarget
    let options: ConformanceOptions
    var resolver: PlaceholderResolver
    var tracked: [TrackedPin] = []
    /// Remarks that do not decide the outcome (strict-schema findings).
    var notes: [String] = []

    init(fixture: Fixture, target: ConformanceTarget, options: ConformanceOptions, resolver: PlaceholderResolver) {
        self.fixture = fixture
        self.target = target
        self.options = options
        self.resolver = resolver
    }

    mutating func run() async -> (CaseResult, [TrackedPin]) {
        let started = options.now()
        var result = CaseResult(fixture: fixture)
        if let reason = skipReason() {
            result.outcome = .skipped
            result.reason = reason
            return (result, [])
        }
        var failure: (String, StepFailure)?
        phases: for (phase, steps) in [("setup", fixture.setup ?? []), ("steps", fixture.steps)] {
            for step in steps {
                do {
                    try await runStep(step)
                } catch {
                    failure = (phase == "setup" ? "setup: \(step.name)" : step.name, error)
                    break phases
                }
            }
        }
        if failure != nil, options.stop?.isRequested == true {
            result.outcome = .skipped
            result.reason = "interrupted (the run was asked to stop)"
        } else if let (stepName, error) = failure {
            result.outcome = .failed
            result.failedStep = stepName
            result.failures = error.messages
            result.reason = error.messages.first
            if let exchange = error.exchange { result.transcript = [exchange] }
        } else {
            result.outcome = .passed
        }
        result.notes += notes
        var remaining: [TrackedPin] = []
        if options.cleanup {
            for pin in tracked {
                if let problem = await PinDeletion.delete(pin, target: target, options: options) {
                    result.notes.append("cleanup of \(pin.requestID): \(problem)")
                    remaining.append(pin)
                }
            }
        }
        result.durationMs = Int((options.now().timeIntervalSince(started) * 1000).rounded())
        return (result, remaining)
    }

    func skipReason() -> String? {
        if (fixture.requires?.tenants ?? 1) >= 2, target.tokenB == nil {
            return "needs a second tenant (no tokenB / --token-b given)"
        }
        let needed = Set(fixture.requires?.capabilities ?? [])
        let missing = needed.subtracting(target.capabilities)
        if !missing.isEmpty {
            return "needs capabilities the target does not declare: \(missing.sorted().joined(separator: ", "))"
        }
        return nil
    }

    // MARK: Steps

    mutating func runStep(_ step: Step) async throws(StepFailure) {
        let iterations = step.repeatCount ?? 1
        defer { resolver.iteration = nil }
        for i in 0..<max(1, iterations) {
            resolver.iteration = step.repeatCount == nil ? nil : i
            let label = step.repeatCount == nil ? step.name : "\(step.name) [i=\(i)]"
            let built: BuiltRequest
            let expect: Expectation
            let poll: PollCondition?
            do {
                built = try buildRequest(step.request)
                expect = try resolveExpectation(step.expect)
                if let condition = step.eventually?.whileMatching {
                    poll = PollCondition(
                        status: condition.status,
                        json: try condition.json.map { try resolver.resolve(value: $0) }
                    )
                } else {
                    poll = nil
                }
            } catch {
                throw StepFailure(messages: ["\(label): \(error)"], exchange: nil)
            }
            if let eventually = step.eventually {
                try await runEventually(
                    label: label,
                    iteration: resolver.iteration,
                    built: built,
                    expect: expect,
                    eventually: eventually,
                    poll: poll
                )
            } else {
                let (response, exchange) = try await send(built, label: label, iteration: resolver.iteration)
                let verdict = evaluate(expect, built: built, response: response)
                if !verdict.failures.isEmpty {
                    throw StepFailure(messages: verdict.failures, exchange: exchange)
                }
                note(verdict.strictNotes)
                resolver.captures = verdict.captures
            }
        }
    }

    mutating func runEventually(
        label: String,
        iteration: Int?,
        built: BuiltRequest,
        expect: Expectation,
        eventually: Eventually,
        poll: PollCondition?
    ) async throws(StepFailure) {
        guard var within = DurationText.parse(eventually.within), let every = DurationText.parse(eventually.every)
        else {
            throw StepFailure(messages: ["\(label): bad eventually durations"], exchange: nil)
        }
        if let cap = options.maxEventuallyWait { within = min(within, cap) }
        let start = options.now()
        var attempt = 0
        while true {
            attempt += 1
            let (response, firstExchange) = try await send(built, label: label, iteration: iteration)
            var exchange = firstExchange
            exchange.attempts = attempt
            let verdict = evaluate(expect, built: built, response: response)
            if verdict.failures.isEmpty {
                note(verdict.strictNotes)
                resolver.captures = verdict.captures
                return
            }
            if !verdict.hardFailures.isEmpty {
                throw StepFailure(
                    messages: verdict.failures + ["(attempt \(attempt) of an eventually step)"],
                    exchange: exchange
                )
            }
            if let poll, !pollContinues(poll, response: response) {
                throw StepFailure(
                    messages: verdict.failures + ["stopped polling after attempt \(attempt): the response left the `while` condition"],
                    exchange: exchange
                )
            }
            if options.now().timeIntervalSince(start) >= within.secondsDouble {
                throw StepFailure(
                    messages: verdict.failures + ["not satisfied within \(eventually.within) (\(attempt) attempts)"],
                    exchange: exchange
                )
            }
            do {
                try await options.sleep(every)
            } catch {
                throw StepFailure(messages: ["\(label): cancelled while polling"], exchange: exchange)
            }
        }
    }

    mutating func note(_ lines: [String]) {
        for line in lines where !notes.contains(line) { notes.append(line) }
    }

    func pollContinues(_ poll: PollCondition, response: ConformanceResponse) -> Bool {
        if let status = poll.status, !status.accepts(response.status) { return false }
        if let json = poll.json {
            guard let parsed = try? JSONParser.parse(response.body) else { return false }
            return Matcher.matches(json, parsed, context: .init(captures: resolver.captures, denyExtraKeys: false))
        }
        return true
    }

    // MARK: Requests

    mutating func buildRequest(_ template: RequestTemplate) throws -> BuiltRequest {
        let encoding = template.encoding ?? .go
        var path = try resolver.resolve(template.path, context: .path)
        var queryParts: [String] = []
        for item in template.query ?? [] {
            let name = try resolver.resolve(item.name)
            let value = try resolver.resolve(item.value)
            queryParts.append(PercentEncoding.query(name, encoding) + "=" + PercentEncoding.query(value, encoding))
        }
        if let raw = template.rawQuery {
            queryParts.append(try resolver.resolve(raw, context: .query(encoding)))
        }
        let routePath = path
        if !queryParts.isEmpty { path += "?" + queryParts.joined(separator: "&") }

        let auth = template.auth ?? .tenantA
        var headers: [(String, String)] = []
        var explicit = Set<String>()
        for name in (template.headers ?? [:]).keys.sorted() {
            let value = try resolver.resolve(template.headers?[name] ?? "")
            explicit.insert(name.lowercased())
            if !value.isEmpty { headers.append((name, value)) }
        }
        if !explicit.contains("user-agent") { headers.insert(("User-Agent", options.userAgent), at: 0) }
        if let authorization = try authorizationHeader(auth) {
            headers.append(("Authorization", authorization))
        }
        var body: [UInt8]?
        if let json = template.json {
            body = try resolver.resolve(value: json).serializedBytes()
        } else if let raw = template.body {
            body = Array(try resolver.resolve(raw).utf8)
        }
        if body != nil, !explicit.contains("content-type") {
            headers.append(("Content-Type", "application/json"))
        }
        let (operation, rid) = CaseExecution.route(method: template.method.uppercased(), path: routePath)
        return BuiltRequest(
            request: ConformanceRequest(method: template.method.uppercased(), path: path, headers: headers, body: body),
            auth: auth,
            operation: operation,
            pathRequestID: rid
        )
    }

    func authorizationHeader(_ auth: AuthMode) throws -> String? {
        switch auth {
        case .tenantA: return "Bearer \(target.tokenA)"
        case .tenantB:
            guard let tokenB = target.tokenB else {
                throw PlaceholderError(message: "auth tenantB needs a second token (declare requires.tenants: 2)")
            }
            return "Bearer \(tokenB)"
        case .none: return nil
        case .invalid: return "Bearer purposefullyInvalid"
        case .empty: return "Bearer "
        case .tampered: return "Bearer \(CaseExecution.tamper(target.tokenA))"
        case .wrongScheme: return "Basic \(Data(target.tokenA.utf8).base64EncodedString())"
        case .lowercaseScheme: return "bearer \(target.tokenA)"
        }
    }

    /// Changes one alphanumeric character near the middle of a token, so that the decoded
    /// bytes change (a change in the last base64 character may only touch padding bits).
    static func tamper(_ token: String) -> String {
        var chars = Array(token)
        guard !chars.isEmpty else { return "x" }
        var i = chars.count / 2
        while i < chars.count, !(chars[i].isASCII && (chars[i].isLetter || chars[i].isNumber)) { i += 1 }
        if i >= chars.count { i = 0 }
        chars[i] = chars[i] == "A" ? "B" : "A"
        return String(chars)
    }

    /// The spec operation of a route and its decoded `{requestid}`.
    static func route(method: String, path: String) -> (String?, String?) {
        if path == "/pins" {
            switch method {
            case "GET": return ("getPins", nil)
            case "POST": return ("addPin", nil)
            default: return (nil, nil)
            }
        }
        guard path.hasPrefix("/pins/") else { return (nil, nil) }
        let segment = String(path.dropFirst("/pins/".count))
        guard !segment.contains("/") else { return (nil, nil) }
        let rid = PercentEncoding.decode(segment)
        switch method {
        case "GET": return ("getPinByRequestId", rid)
        case "POST": return ("replacePinByRequestId", rid)
        case "DELETE": return ("deletePinByRequestId", rid)
        default: return (nil, rid)
        }
    }

    mutating func send(
        _ built: BuiltRequest,
        label: String,
        iteration: Int?
    ) async throws(StepFailure) -> (
        ConformanceResponse, RecordedExchange
    ) {
        var exchange = RecordedExchange(
            step: label,
            iteration: iteration,
            request: record(built),
            response: nil,
            error: nil
        )
        let response: ConformanceResponse
        if options.stop?.isRequested == true {
            throw StepFailure(messages: ["interrupted before sending"], exchange: nil)
        }
        do {
            response = try await target.transport.send(built.request)
        } catch {
            exchange.error = "\(error)"
            throw StepFailure(messages: ["transport error: \(error)"], exchange: exchange)
        }
        exchange.response = RecordedResponse(
            status: response.status,
            headers: response.headers.map { [$0.0, $0.1] },
            body: CaseExecution.clip(response.body, options.transcriptLimit)
        )
        await track(built, response)
        return (response, exchange)
    }

    func record(_ built: BuiltRequest) -> RecordedRequest {
        let headers: [[String]] = built.request.headers.map { name, value in
            guard name.caseInsensitiveCompare("Authorization") == .orderedSame else { return [name, value] }
            switch built.auth {
            case .tenantA, .tenantB, .tampered, .lowercaseScheme, .wrongScheme:
                let scheme = value.split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
                return [name, "\(scheme) <\(built.auth.rawValue) token>"]
            case .none, .invalid, .empty:
                return [name, value]
            }
        }
        return RecordedRequest(
            method: built.request.method,
            path: built.request.path,
            headers: headers,
            body: built.request.body.map { CaseExecution.clip($0, options.transcriptLimit) }
        )
    }

    static func clip(_ bytes: [UInt8], _ limit: Int) -> String {
        if bytes.count <= limit { return String(decoding: bytes, as: UTF8.self) }
        return String(decoding: bytes.prefix(limit), as: UTF8.self) + "… (\(bytes.count) bytes in total)"
    }

    /// Remembers pins this run created, so that only those are deleted afterwards.
    mutating func track(_ built: BuiltRequest, _ response: ConformanceResponse) async {
        guard (200..<300).contains(response.status) else { return }
        let tenant: TrackedPin.Tenant?
        switch built.auth {
        case .tenantA, .lowercaseScheme: tenant = .tenantA
        case .tenantB: tenant = .tenantB
        default: tenant = nil
        }
        guard let tenant else { return }
        switch built.operation {
        case "addPin", "replacePinByRequestId":
            if let parsed = try? JSONParser.parse(response.body), let rid = parsed["requestid"]?.stringValue,
                !rid.isEmpty
            {
                let pin = TrackedPin(requestID: rid, tenant: tenant)
                if !tracked.contains(pin) { tracked.append(pin) }
                await options.ledger?.record(pin)
            }
            // A replace deletes the old pin object.
            if built.operation == "replacePinByRequestId", let old = built.pathRequestID {
                await options.ledger?.forget(TrackedPin(requestID: old, tenant: tenant))
            }
        case "deletePinByRequestId":
            if let rid = built.pathRequestID {
                tracked.removeAll { $0.requestID == rid && $0.tenant == tenant }
                await options.ledger?.forget(TrackedPin(requestID: rid, tenant: tenant))
            }
        default:
            break
        }
    }

    // MARK: Expectations

    mutating func resolveExpectation(_ expect: Expectation) throws -> Expectation {
        var out = expect
        if let json = expect.json { out.json = try resolver.resolve(value: json) }
        if let headers = expect.headers {
            var resolved: [String: JSONValue] = [:]
            for (name, matcher) in headers { resolved[name] = try resolver.resolve(value: matcher) }
            out.headers = resolved
        }
        return out
    }

    struct Verdict {
        var failures: [String] = []
        /// Schema and Content-Type violations: wrong however long one polls.
        var hardFailures: [String] = []
        /// Strict-schema findings: notes, not failures.
        var strictNotes: [String] = []
        var captures: [String: JSONValue]
    }

    /// Checks one response against an expectation, validating the body against the spec schema.
    func evaluate(_ expect: Expectation, built: BuiltRequest, response: ConformanceResponse) -> Verdict {
        var verdict = Verdict(captures: resolver.captures)
        let statusOK = expect.status.accepts(response.status)
        var parsed: JSONValue?
        var parseError: String?
        if !response.body.isEmpty {
            do {
                parsed = try JSONParser.parse(response.body)
            } catch {
                parseError = error.description
            }
        }
        if !statusOK {
            var message = "status: expected \(expect.status.text), got \(response.status)"
            if let reason = parsed?["error"]?["reason"]?.stringValue {
                message += " (reason \"\(reason)\")"
            }
            verdict.failures.append(message)
        }

        // Strict spec-schema validation of every body.
        // An explicit schema describes the expected status; for any other status, infer from what came back.
        let schema =
            (statusOK ? expect.schema : nil)
            ?? CaseExecution.inferSchema(operation: built.operation, status: response.status)
        var hard: [String] = []
        if let kind = schema.specKind {
            if response.body.isEmpty {
                hard.append("body: empty, expected a \(kind.rawValue) JSON body")
            } else if let parseError {
                hard.append("body: not valid JSON (\(parseError)), expected \(kind.rawValue)")
            } else if let parsed {
                let found = SpecSchema.validateByStrictness(parsed, as: kind)
                hard += found.spec.map { "schema \(kind.rawValue): \($0)" }
                // Unknown keys and empty strings break only the strict reading (the compliance
                // suite's), not the spec: a note, never a failure. Cases about strictness say
                // so with `extra: deny`, at a level below required.
                verdict.strictNotes += found.strictOnly.map { "schema \(kind.rawValue) (strict): \($0)" }
            }
        }
        if !response.body.isEmpty, schema != .none || expect.json != nil {
            let contentType = response.header("Content-Type")
            if !CaseExecution.isJSONContentType(contentType) {
                hard.append(
                    "Content-Type: \(contentType.map { "\"\($0)\"" } ?? "missing") is not JSON "
                        + "(Kubo's client needs application/json, text/json or +json)"
                )
            }
        }
        verdict.hardFailures = hard
        verdict.failures += hard

        if expect.emptyBody == true, !response.body.isEmpty {
            verdict.failures.append("body: expected empty, got \(response.body.count) byte(s)")
        }
        var context = Matcher.Context(captures: verdict.captures, denyExtraKeys: expect.extra == .deny)
        for name in (expect.headers ?? [:]).keys.sorted() {
            guard let matcher = expect.headers?[name] else { continue }
            let values = response.headerValues(name)
            let actual: JSONValue? = values.isEmpty ? nil : .string(values.joined(separator: ", "))
            var f: [String] = []
            Matcher.match(matcher, actual, path: "header \(name)", context: &context, failures: &f)
            verdict.failures += f
        }
        if statusOK, let json = expect.json {
            if let parsed {
                var f: [String] = []
                Matcher.match(json, parsed, path: "$", context: &context, failures: &f)
                verdict.failures += f
            } else {
                verdict.failures.append("body: expected JSON, got \(parseError ?? "an empty body")")
            }
        }
        verdict.captures = context.captures
        return verdict
    }

    static func inferSchema(operation: String?, status: Int) -> SchemaName {
        guard let operation else { return .none }
        switch status {
        case 200..<300:
            switch operation {
            case "getPins": return .pinResults
            case "addPin", "getPinByRequestId", "replacePinByRequestId": return .pinStatus
            default: return .none
            }
        case 400..<600:
            return .failure
        default:
            return .none
        }
    }

    /// What Kubo's generated client decodes: application/json, text/json or a +json type.
    static func isJSONContentType(_ value: String?) -> Bool {
        guard let value else { return false }
        let mediaType =
            value.split(separator: ";", maxSplits: 1).first.map {
                $0.trimmingCharacters(in: .whitespaces).lowercased()
            } ?? ""
        return mediaType == "application/json" || mediaType == "text/json"
            || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }
}

extension SchemaName {
    var specKind: SpecSchema.Kind? {
        switch self {
        case .pinStatus: return .pinStatus
        case .pinResults: return .pinResults
        case .failure: return .failure
        case .none: return nil
        }
    }
}

// MARK: - Glob

enum Glob {
    /// `*` matches any run of characters (including `/`), `?` one character.
    static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern)
        let t = Array(text)
        var pi = 0
        var ti = 0
        var star = -1
        var mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1
                ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// Matches a fixture id, with or without its leading version directory.
    static func matchesID(_ pattern: String, _ id: String) -> Bool {
        if matches(pattern, id) { return true }
        if let slash = id.firstIndex(of: "/"), id.hasPrefix("v") {
            return matches(pattern, String(id[id.index(after: slash)...]))
        }
        return false
    }
}
