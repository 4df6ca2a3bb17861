import ConformanceKit
import Foundation

/// One target's run: transport with the politeness settings, preflight, journal, runner.
struct TargetRun {
    var name: String
    var url: String
    var token: String
    var tokenB: String?
    var capabilities: Set<String>
    var transport: URLTransport.Configuration
    var stateDirectory: URL
    var only: String?

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func run(_ suite: [Fixture], stop: StopSignal) async throws -> ConformanceReport {
        let transport = try URLTransport(baseURL: url, configuration: self.transport)
        do {
            let report = try await run(suite, stop: stop, transport: transport)
            try? await transport.shutdown()
            return report
        } catch {
            try? await transport.shutdown()
            throw error
        }
    }

    private func run(_ suite: [Fixture], stop: StopSignal, transport: URLTransport) async throws -> ConformanceReport {
        let target = ConformanceTarget(transport: transport, tokenA: token, tokenB: tokenB, capabilities: capabilities, name: name)
        if let problem = await TargetRun.preflight(transport, token: token) {
            throw Failure(description: problem)
        }
        let runID = ConformanceRunner.newRunID()
        let journal = stateDirectory.appendingPathComponent("\(runID).journal")
        let ledger = PinLedger(journal: journal)
        let rate = transport.minimumInterval == .zero ? "no rate limit" : "at most \(TargetRun.rate(transport.minimumInterval)) requests/s"
        Console.say(
            "conformance: run \(runID) against \(transport.baseURL) (\(transport.isRemote ? "remote" : "local"), \(rate))"
                + (tokenB == nil ? "; no second token, tenancy cases will be skipped" : "")
                + "; pins are named conformance-\(runID)-…; a killed run is cleaned up with --cleanup-only \(runID)"
        )
        let options = ConformanceOptions(ledger: ledger, stop: stop)
        let report = await ConformanceRunner(target: target, options: options).run(suite, runID: runID, only: only) { result in
            Console.say(TargetRun.progressLine(result))
        }
        // Whatever a case could not delete (or an interruption left): one more pass.
        for pin in await ledger.remaining {
            _ = await RunCleanup(target: target, options: options).run(runID: runID, journal: [pin])
        }
        let left = await ledger.remaining
        await ledger.close()
        if !left.isEmpty {
            Console.say("warning: \(left.count) pin(s) could not be deleted; retry with --cleanup-only \(runID) (journal \(journal.path))")
        }
        for note in report.cleanupNotes { Console.say("warning: clean-up: \(note)") }
        return report
    }

    static func rate(_ interval: Duration) -> String {
        let perSecond = 1 / interval.secondsDouble
        return perSecond == perSecond.rounded() ? String(Int(perSecond)) : String(format: "%.2f", perSecond)
    }

    /// One `GET /pins?limit=1` with the main token, so that an unreachable target or a refused
    /// token stops the run with one clear message instead of a hundred failed cases.
    static func preflight(_ transport: URLTransport, token: String) async -> String? {
        let request = ConformanceRequest(
            method: "GET",
            path: "/pins?limit=1",
            headers: [("User-Agent", "anchorage-conformance/1.0"), ("Authorization", "Bearer \(token)")]
        )
        do {
            let response = try await transport.send(request)
            if response.status == 401 || response.status == 403 {
                return "\(transport.baseURL)/pins answered \(response.status) to the token; check it (and that the URL is the API base URL)"
            }
            if response.status == 404 {
                return "\(transport.baseURL)/pins answered 404: is the URL the API base URL (the one Kubo is given)?"
            }
            return nil
        } catch {
            return "cannot reach \(transport.baseURL): \(error)"
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
            let mark = result.level == .required ? "✗" : "⚠"
            var reason = result.reason ?? "failed"
            if reason.count > 160 { reason = String(reason.prefix(159)) + "…" }
            let step = result.failedStep.map { " [\($0)]" } ?? ""
            return "  \(mark) \(id) (\(result.level.rawValue))\(step): \(reason)"
        }
    }
}
