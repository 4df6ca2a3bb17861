import ArgumentParser
import ConformanceKit
import Foundation

/// `anchorage-conformance` (also run as `anchorage conformance`, which execs it): replays the
/// Pinning Services API fixtures against one service, or several for a compatibility matrix
/// (see `docs/conformance.md`). Its own executable, so the kit is not linked into the server.
///
/// Standard error gets progress; standard output gets the per-rule table ending with the summary
/// line `conformance: required P/N, recommended P/N, anchorage P/N`. Exit status: 0 when no
/// required case failed (nor a recommended one under `--strict`); 1 otherwise or when the run
/// cannot start; 64 for a usage error; 128+signal when SIGINT/SIGTERM stopped it.
@main
struct Conformance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anchorage-conformance",
        abstract: "Run the Pinning Services API conformance suite against pinning services.",
        discussion: """
            Creates pins with random, unretrievable CIDs on the target account, names them \
            conformance-<run id>-…, and deletes every pin it created (and only those), also on \
            SIGINT/SIGTERM; --cleanup-only RUN_ID finishes the job of a run that was killed. Use a \
            dedicated, empty test account. The exit status is 1 only when a required case fails \
            (or a recommended one, with --strict).
            """
    )

    @Option(help: ArgumentHelp("API base URL as given to Kubo: http(s), may have a path prefix, without /pins.", valueName: "url"))
    var target: String?

    @Option(help: ArgumentHelp("Bearer token of a dedicated, empty test account.", valueName: "token"))
    var token: String?

    @Option(name: .customLong("token-file"), help: ArgumentHelp("Read --token from this file.", valueName: "file"))
    var tokenFile: String?

    @Option(
        name: .customLong("token-b"),
        help: ArgumentHelp("Token of a second account; without it the tenancy cases are skipped.", valueName: "token")
    )
    var tokenB: String?

    @Option(name: .customLong("token-b-file"), help: ArgumentHelp("Read --token-b from this file.", valueName: "file"))
    var tokenBFile: String?

    @Option(help: ArgumentHelp("A YAML file of targets (name, url, token-env|token-file, …) to run one after the other.", valueName: "file"))
    var targets: String?

    @Option(
        name: .customLong("matrix"),
        help: ArgumentHelp("With --targets: write the compatibility matrix (.html or .md); repeatable.", valueName: "file")
    )
    var matrixFiles: [String] = []

    @Option(help: ArgumentHelp("Run only the cases whose id matches this glob ('*' spans '/'): 'kubo/*', '*replace*'.", valueName: "glob"))
    var only: String?

    @Option(
        name: .customLong("report"),
        help: ArgumentHelp("Write a report; the extension picks the format: \(ReportFormat.extensions). Repeatable.", valueName: "file")
    )
    var reports: [String] = []

    @Flag(help: "Recommended cases count too: their failures fail the run (exit 1).")
    var strict = false

    @Option(
        name: .customLong("capability"),
        help: ArgumentHelp("Declare a capability of the target (repeatable), e.g. resolves-cids.", valueName: "name")
    )
    var capabilities: [String] = []

    @Option(
        help: ArgumentHelp("Directory of the fixture suite (default: installed beside the executable, or Fixtures/pinning-api).", valueName: "dir")
    )
    var fixtures: String?

    @Option(
        name: .customLong("max-rps"),
        help: ArgumentHelp("At most this many requests per second (default 2 for remote targets, unlimited for localhost).", valueName: "n")
    )
    var maxRPS: Double?

    @Option(
        name: .customLong("max-wait"),
        help: ArgumentHelp("Longest wait honoured for Retry-After or a rate-limit reset, in seconds.", valueName: "seconds")
    )
    var maxWait: Double = 60

    @Option(help: ArgumentHelp("Per-request timeout, in seconds.", valueName: "seconds"))
    var timeout: Double = 30

    @Flag(name: .customLong("dry-run"), help: "List the requests a run would send, and send none.")
    var dryRun = false

    @Option(
        name: .customLong("cleanup-only"),
        help: ArgumentHelp("Delete what run RUN_ID left behind (its journal, and every pin named after it), then exit.", valueName: "run-id")
    )
    var cleanupOnly: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Where run journals are kept.", valueName: "dir"))
    var stateDir: String = ".anchorage-conformance"

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func validate() throws {
        if targets == nil, !dryRun, target == nil {
            throw ValidationError("give --target and --token (or --targets FILE for a matrix)")
        }
        if let target, let problem = Conformance.targetProblem(target) { throw ValidationError(problem) }
        if targets != nil, target != nil { throw ValidationError("--targets and --target exclude each other") }
        if targets == nil, !dryRun, token == nil, tokenFile == nil { throw ValidationError("--token (or --token-file) is required") }
        if let token, token.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--token must not be empty") }
        if let tokenB, tokenB.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--token-b must not be empty") }
        for path in reports where ReportFormat(path: path) == nil {
            throw ValidationError("--report \(path): unknown extension; use \(ReportFormat.extensions)")
        }
        for path in matrixFiles where ![ReportFormat.html, .markdown].contains(ReportFormat(path: path)) {
            throw ValidationError("--matrix \(path): use .html or .md")
        }
        if !matrixFiles.isEmpty, targets == nil { throw ValidationError("--matrix needs --targets") }
        if let only, only.isEmpty { throw ValidationError("--only must not be empty") }
        if let maxRPS, !(maxRPS > 0 && maxRPS.isFinite) { throw ValidationError("--max-rps must be a positive number") }
        if !(maxWait >= 0 && maxWait.isFinite) || !(timeout > 0 && timeout.isFinite) {
            throw ValidationError("--max-wait and --timeout must be positive numbers of seconds")
        }
        if let cleanupOnly, cleanupOnly.range(of: "^[0-9a-f]{8}$", options: .regularExpression) == nil {
            throw ValidationError("--cleanup-only takes a run id: 8 lowercase hex digits, as printed when the run started")
        }
    }

    /// Why `url` cannot be a target, or nil: http or https with a host, no query or fragment,
    /// not ending in `/pins` (the same rules as `URLTransport`, checked before any client exists).
    static func targetProblem(_ url: String) -> String? {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        guard let components = URLComponents(string: base), let scheme = components.scheme?.lowercased() else {
            return "--target \(url): not a URL; expected the API base URL, e.g. https://api.example.com/psa"
        }
        guard scheme == "http" || scheme == "https" else { return "--target \(url): the scheme must be http or https, not \(scheme)" }
        guard let host = components.host, !host.isEmpty else { return "--target \(url): the URL has no host" }
        guard components.query == nil, components.fragment == nil else { return "--target \(url): must not carry a query or fragment" }
        if base.lowercased().hasSuffix("/pins") {
            let suggestion = String(base.dropLast("/pins".count))
            return "--target \(url): give the API base without /pins (as Kubo expects)"
                + (suggestion.hasSuffix("//") || suggestion.isEmpty ? "" : ", e.g. \(suggestion)")
        }
        return nil
    }

    func run() async throws {
        let suite = try loadSuite()
        if dryRun { return printPlan(suite) }
        let trap = SignalTrap()
        if let cleanupOnly { return try await cleanUp(runID: cleanupOnly) }
        let runs = try plannedRuns()
        var results: [ConformanceReport] = []
        for planned in runs {
            if trap.stop.isRequested { break }
            do {
                results.append(try await planned.run(suite, stop: trap.stop))
            } catch {
                throw Failure(description: "\(planned.name): \(error)")
            }
        }
        guard let last = results.last, !last.results.isEmpty || last.interrupted else {
            throw Failure(description: "no case id matches --only '\(only ?? "")' (ids look like v1.0.0/pins-list/list-is-newest-first)")
        }
        var written = true
        for report in results {
            for path in reports {
                let file = results.count > 1 ? ReportFiles.path(path, forTarget: report.target) : path
                written = ReportFiles.write(ReportFormat(path: path)!.render(report, strict: strict), to: file) && written
            }
        }
        let matrix = CompatibilityMatrix(reports: results, strict: strict)
        for path in matrixFiles {
            let text = ReportFormat(path: path) == .html ? matrix.html() : matrix.markdown()
            written = ReportFiles.write(Data(text.utf8), to: path) && written
        }
        for report in results {
            if results.count > 1 { print("== \(report.target)") }
            // The table ends with the summary line, so it is the last line of each target's output.
            print(report.perRuleTable(), terminator: "")
        }
        if let signo = trap.receivedSignal { throw ExitCode(128 + signo) }
        if !written || !matrix.isSuccess { throw ExitCode(1) }
    }

    func loadSuite() throws -> [Fixture] {
        guard let directory = SuiteLocation.find(explicit: fixtures) else {
            let looked = SuiteLocation.candidates(explicit: fixtures).map(\.path).joined(separator: ", ")
            throw Failure(description: "no fixture suite (a directory with fixture.schema.json and v1.0.0/) at \(looked); pass --fixtures DIR")
        }
        let suite: [Fixture]
        do {
            suite = try FixtureLoader.load(from: directory)
        } catch {
            throw Failure(description: "cannot load the fixtures in \(directory.path) (--fixtures):\n\(error)")
        }
        guard !suite.isEmpty else { throw Failure(description: "no fixtures (*.json cases) in \(directory.path) (--fixtures)") }
        let lint = FixtureLoader.lint(
            suite,
            schemaErrors: FixtureLoader.schemaProblems(in: directory),
            spec: SuiteLocation.spec(besides: directory)
        )
        for problem in lint.prefix(10) { Console.say("warning: fixture lint: \(problem)") }
        if lint.count > 10 { Console.say("warning: fixture lint: … and \(lint.count - 10) more") }
        let known = Set(suite.flatMap { $0.requires?.capabilities ?? [] })
        for name in capabilities where !known.contains(name) {
            Console.say("warning: no case needs capability \"\(name)\" (known: \(known.isEmpty ? "none" : known.sorted().joined(separator: ", ")))")
        }
        return suite
    }

    func printPlan(_ suite: [Fixture]) {
        let plan = DryRun.plan(suite, only: only, hasSecondTenant: tokenB != nil || tokenBFile != nil, capabilities: Set(capabilities))
        for line in plan.lines { print(line) }
        print("dry run: \(plan.requests) requests in \(plan.lines.count { !$0.hasPrefix(" ") } - 1) cases; nothing was sent")
    }

    func transportConfiguration() -> URLTransport.Configuration {
        URLTransport.Configuration(
            minInterval: maxRPS.map { .milliseconds(Int64((1000 / $0).rounded(.up))) },
            maxWait: .milliseconds(Int64(maxWait * 1000)),
            requestTimeout: .milliseconds(Int64(timeout * 1000))
        )
    }

    func plannedRuns() throws -> [TargetRun] {
        let state = URL(fileURLWithPath: stateDir, isDirectory: true)
        if let targets {
            do {
                return try TargetsFile.load(targets).map {
                    TargetRun(
                        name: $0.name,
                        url: $0.url,
                        token: $0.token,
                        tokenB: $0.tokenB,
                        capabilities: Set($0.capabilities + capabilities),
                        transport: transportConfiguration(),
                        stateDirectory: state,
                        only: only
                    )
                }
            } catch {
                throw Failure(description: "\(error)")
            }
        }
        let target = self.target ?? ""
        return [
            TargetRun(
                name: target,
                url: target,
                token: try readToken(token, file: tokenFile, what: "--token") ?? "",
                tokenB: try readToken(tokenB, file: tokenBFile, what: "--token-b"),
                capabilities: Set(capabilities),
                transport: transportConfiguration(),
                stateDirectory: state,
                only: only
            )
        ]
    }

    func readToken(_ value: String?, file: String?, what: String) throws -> String? {
        if let value { return value }
        guard let file else { return nil }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty
        else { throw Failure(description: "\(what)-file \(file): cannot read a token") }
        return text
    }

    func cleanUp(runID: String) async throws {
        guard let run = try plannedRuns().first else { return }
        let transport = try URLTransport(baseURL: run.url, configuration: transportConfiguration())
        let target = ConformanceTarget(transport: transport, tokenA: run.token, tokenB: run.tokenB, name: run.name)
        let journal = run.stateDirectory.appendingPathComponent("\(runID).journal")
        let pending = PinLedger.pending(inJournal: journal)
        Console.say("conformance: cleaning up run \(runID): \(pending.count) pin(s) in \(journal.path), then pins named conformance-\(runID)-…")
        let outcome = await RunCleanup(target: target).run(runID: runID, journal: pending)
        try? await transport.shutdown()
        for problem in outcome.problems { Console.say("warning: \(problem)") }
        print("conformance: cleanup of run \(runID): \(outcome.deleted) pin(s) deleted, \(outcome.problems.count) problem(s)")
        if !outcome.problems.isEmpty { throw ExitCode(1) }
        try? FileManager.default.removeItem(at: journal)
    }
}
