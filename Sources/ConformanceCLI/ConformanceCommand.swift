import ArgumentParser
import ConformanceKit
import Foundation

/// `anchorage-conformance` (also run as `anchorage conformance`): replays the Pinning Services
/// API fixtures against any service URL (see `docs/conformance.md`). Its own executable, so the
/// conformance kit is not linked into the server.
///
/// Standard error gets one progress line per case; standard output gets the per-rule table,
/// whose last line is `conformance: N passed, M failed, K skipped`. Exit status 1 when any case
/// failed; usage errors (bad `--target`, unknown `--report` extension) exit 64, and a missing
/// fixture directory or an `--only` that selects nothing exits 1 with a message.
@main
struct Conformance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anchorage-conformance",
        abstract: "Run the Pinning Services API conformance suite against a pinning service.",
        discussion: """
            Creates pins with random, unretrievable CIDs on the target account and deletes every pin \
            it created (and only those). Use a dedicated, empty test account: a few cases compare \
            account-wide counts. Progress goes to standard error; the per-rule table and the summary \
            line `conformance: N passed, M failed, K skipped` go to standard output. The exit status \
            is 1 when any case failed.
            """
    )

    @Option(
        help: ArgumentHelp(
            "API base URL as given to Kubo: http(s), may have a path prefix, without /pins and without a query.",
            valueName: "url"
        )
    )
    var target: String

    @Option(help: ArgumentHelp("Bearer token of a dedicated, empty test account.", valueName: "token"))
    var token: String

    @Option(
        name: .customLong("token-b"),
        help: ArgumentHelp(
            "Bearer token of a second account; without it the tenancy cases are skipped.",
            valueName: "token"
        )
    )
    var tokenB: String?

    @Option(
        help: ArgumentHelp(
            "Run only the cases whose id matches this glob, with or without the v1.0.0/ prefix ('*' spans '/'): 'kubo/*', '*replace*'.",
            valueName: "glob"
        )
    )
    var only: String?

    @Option(
        help: ArgumentHelp(
            "Also write the full report, Markdown or JSON by extension (.md, .markdown, .json).",
            valueName: "file"
        )
    )
    var report: String?

    @Option(
        name: .customLong("capability"),
        help: ArgumentHelp(
            "Declare a capability of the target (repeatable), e.g. resolves-cids: pins on it reach 'pinned'.",
            valueName: "name"
        )
    )
    var capabilities: [String] = []

    @Option(help: ArgumentHelp("Directory of the fixture suite.", valueName: "dir"))
    var fixtures: String = "Fixtures/pinning-api"

    enum ReportFormat { case markdown, json }

    /// A problem that stops the run before it starts (printed as `Error: …`, exit status 1).
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    var reportFormat: ReportFormat? {
        guard let report else { return nil }
        switch URL(fileURLWithPath: report).pathExtension.lowercased() {
        case "md", "markdown": return .markdown
        case "json": return .json
        default: return nil
        }
    }

    func validate() throws {
        if let problem = Conformance.targetProblem(target) {
            throw ValidationError(problem)
        }
        if token.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--token must not be empty")
        }
        if let tokenB, tokenB.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--token-b must not be empty")
        }
        if let report, reportFormat == nil {
            throw ValidationError(
                "--report \(report): unknown extension; use .md (or .markdown) for Markdown or .json for JSON"
            )
        }
        if let only, only.isEmpty {
            throw ValidationError("--only must not be empty")
        }
    }

    /// Why `url` cannot be a target, or nil. The same rules as `URLTransport`, checked before any
    /// client exists: http or https with a host, no query or fragment, not ending in `/pins`.
    static func targetProblem(_ url: String) -> String? {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        guard let components = URLComponents(string: base), let scheme = components.scheme?.lowercased() else {
            return "--target \(url): not a URL; expected the API base URL, e.g. https://api.example.com/psa"
        }
        guard scheme == "http" || scheme == "https" else {
            return "--target \(url): the scheme must be http or https, not \(scheme)"
        }
        guard let host = components.host, !host.isEmpty else {
            return "--target \(url): the URL has no host"
        }
        guard components.query == nil, components.fragment == nil else {
            return "--target \(url): must not carry a query or fragment"
        }
        if base.lowercased().hasSuffix("/pins") {
            let suggestion = String(base.dropLast("/pins".count))
            return "--target \(url): give the API base without /pins (as Kubo expects)"
                + (suggestion.hasSuffix("//") || suggestion.isEmpty ? "" : ", e.g. \(suggestion)")
        }
        return nil
    }

    func run() async throws {
        let directory = URL(fileURLWithPath: fixtures, isDirectory: true).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw Failure(
                description:
                    "fixture directory \(directory.path) not found; run from the repository root or pass --fixtures DIR "
                    + "(the directory holding fixture.schema.json and v1.0.0/)"
            )
        }
        let suite: [Fixture]
        do {
            suite = try FixtureLoader.load(from: directory)
        } catch {
            throw Failure(description: "cannot load the fixtures in \(directory.path) (--fixtures):\n\(error)")
        }
        guard !suite.isEmpty else {
            throw Failure(description: "no fixtures (*.json cases) in \(directory.path) (--fixtures)")
        }
        let lint = FixtureLoader.lint(suite, schemaErrors: FixtureLoader.schemaProblems(in: directory))
        for problem in lint.prefix(10) { Conformance.say("warning: fixture lint: \(problem)") }
        if lint.count > 10 { Conformance.say("warning: fixture lint: … and \(lint.count - 10) more") }

        let known = Set(suite.flatMap { $0.requires?.capabilities ?? [] })
        for name in capabilities where !known.contains(name) {
            let list = known.isEmpty ? "none" : known.sorted().joined(separator: ", ")
            Conformance.say("warning: no case needs capability \"\(name)\" (known: \(list))")
        }

        let transport = try URLTransport(baseURL: target)
        let conformanceTarget = ConformanceTarget(
            transport: transport,
            tokenA: token,
            tokenB: tokenB,
            capabilities: Set(capabilities),
            name: transport.baseURL
        )
        let selection = only.map { "the cases matching '\($0)' (of \(suite.count))" } ?? "\(suite.count) cases"
        Conformance.say(
            "conformance: running \(selection) from \(directory.path) against \(transport.baseURL) "
                + "(\(transport.isRemote ? "remote, at most 2 requests/s" : "local"))"
                + (tokenB == nil ? "; no --token-b, tenancy cases will be skipped" : "")
        )

        if let problem = await Conformance.preflight(transport, token: token) {
            try? await transport.shutdown()
            throw Failure(description: problem)
        }

        let result = await ConformanceRunner(target: conformanceTarget).run(suite, only: only) { result in
            Conformance.say(Conformance.progressLine(result))
        }
        do {
            try await transport.shutdown()
        } catch {
            Conformance.say("warning: HTTP client shutdown: \(error)")
        }

        guard !result.results.isEmpty else {
            throw Failure(description: "no case id matches --only '\(only ?? "")' (ids look like v1.0.0/pins-list/list-is-newest-first)")
        }
        for note in result.cleanupNotes { Conformance.say("warning: clean-up: \(note)") }
        if let report, let format = reportFormat {
            let data: Data
            switch format {
            case .markdown: data = Data(result.markdown().utf8)
            case .json: data = result.json()
            }
            do {
                try data.write(to: URL(fileURLWithPath: report), options: .atomic)
                Conformance.say("report written to \(report)")
            } catch {
                Conformance.say("error: cannot write the report to \(report): \(error.localizedDescription)")
                print(result.perRuleTable(), terminator: "")
                throw ExitCode(1)
            }
        }
        // The table ends with the summary line, so it is always the last line on stdout.
        print(result.perRuleTable(), terminator: "")
        if result.failed > 0 { throw ExitCode(1) }
    }

    /// Sends one `GET /pins?limit=1` with the main token, so that an unreachable target or a
    /// refused token stops the run with one clear message instead of a hundred failed cases.
    static func preflight(_ transport: URLTransport, token: String) async -> String? {
        let request = ConformanceRequest(
            method: "GET",
            path: "/pins?limit=1",
            headers: [("User-Agent", "anchorage-conformance/1.0"), ("Authorization", "Bearer \(token)")]
        )
        do {
            let response = try await transport.send(request)
            if response.status == 401 || response.status == 403 {
                return "\(transport.baseURL)/pins answered \(response.status) to --token; check the token "
                    + "(and that --target is the API base URL)"
            }
            if response.status == 404 {
                return "\(transport.baseURL)/pins answered 404: is --target the API base URL (the one Kubo is given)?"
            }
            return nil
        } catch {
            return "cannot reach \(transport.baseURL) (--target): \(error)"
        }
    }

    /// One short line per finished case: `✓ pins-add/add-minimal-pin (12 ms)`.
    static func progressLine(_ result: CaseResult) -> String {
        var id = result.id
        if id.hasPrefix("v"), let slash = id.firstIndex(of: "/") { id = String(id[id.index(after: slash)...]) }
        switch result.outcome {
        case .passed:
            return "  ✓ \(id) (\(result.durationMs) ms)"
        case .skipped:
            return "  - \(id) skipped: \(result.reason ?? "")"
        case .failed:
            let mark = result.isOptional ? "⚠" : "✗"
            var reason = result.reason ?? "failed"
            if reason.count > 160 { reason = String(reason.prefix(159)) + "…" }
            let step = result.failedStep.map { " [\($0)]" } ?? ""
            return "  \(mark) \(id)\(step): \(reason)"
        }
    }

    static func say(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
