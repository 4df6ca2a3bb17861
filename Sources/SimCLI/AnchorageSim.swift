import ArgumentParser
import Foundation
import LocalPostgres
import Logging
import PostgresStore
import Seams
import SimKernel
import Simulation

@main
struct AnchorageSim: AsyncParsableCommand {

    static let configuration = CommandConfiguration(
        commandName: "anchorage-sim",
        abstract:
            "Deterministic cluster simulator: N virtual anchorage nodes (the production core) on a simulated bus and Kubos, a virtual clock, and a real PostgreSQL.",
        subcommands: [List.self, ScenarioCommand.self, Sweep.self, Replay.self]
    )
}

struct RunOptions: ParsableArguments {
    @Option(help: "Number of nodes (default: the scenario's).") var nodes: Int?
    @Option(help: "Pin API calls in the main phase (default: the scenario's).") var pins: Int?
    @Option(help: "Length of the main phase in virtual time, e.g. 2h, 30m, 90s (default: the scenario's).") var duration: String?
    @Option(help: "Replication factor.") var replicationFactor: Int = 2
    @Option(
        name: .customLong("set"),
        help:
            "A node configuration key to override, as key=value (e.g. kubo.maxConcurrentPins=8); repeatable. Without it every node runs production's defaults."
    )
    var settings: [String] = []
    @Option(help: "A PostgreSQL superuser URL; without it a throwaway local PostgreSQL is started.") var databaseURL: String?
    @Flag(help: "Keep the run's database (its URL is printed).") var keepDb = false
    @Option(
        help: ArgumentHelp(
            "Test kit: a deliberately broken policy (\(BrokenPolicy.allCases.map(\.rawValue).joined(separator: ", "))).",
            visibility: .hidden
        )
    )
    var brokenPolicy: String?

    func parsedDuration() throws -> Duration? {
        guard let duration else { return nil }
        guard let d = parseDuration(duration) else { throw ValidationError("--duration: not a duration: \(duration) (e.g. 2h, 30m, 90s)") }
        return d
    }

    func options(seed: UInt64) throws -> SimOptions {
        var o = SimOptions(seed: seed)
        o.nodes = nodes
        o.pins = pins
        o.duration = try parsedDuration()
        o.replicationFactor = replicationFactor
        o.keepDatabase = keepDb
        if let brokenPolicy {
            guard let b = BrokenPolicy(rawValue: brokenPolicy) else { throw ValidationError("unknown --broken-policy \(brokenPolicy)") }
            o.brokenPolicy = b
        }
        for pair in settings {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else { throw ValidationError("--set takes key=value, got \(pair)") }
            o.configuration[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        if replicationFactor != 2 { o.replayExtra += ["--replication-factor", String(replicationFactor)] }
        if let databaseURL { o.replayExtra += ["--database-url", databaseURL] }
        return o
    }

    func server() throws -> SimDatabaseServer {
        if let databaseURL { return SimDatabaseServer(.url(try DatabaseURL(databaseURL))) }
        return SimDatabaseServer(.local)
    }
}

func parseDuration(_ s: String) -> Duration? {
    var total: Int64 = 0
    var number = ""
    var sawUnit = false
    for c in s {
        if c.isNumber {
            number.append(c)
            continue
        }
        guard let n = Int64(number) else { return nil }
        switch c {
        case "h": total += n * 3600
        case "m": total += n * 60
        case "s": total += n
        default: return nil
        }
        number = ""
        sawUnit = true
    }
    if !number.isEmpty {
        guard let n = Int64(number) else { return nil }
        total += n
    } else if !sawUnit {
        return nil
    }
    return total > 0 ? .seconds(total) : nil
}

func scenario(_ name: String) throws -> Scenario {
    guard let s = Scenarios.named(name) else {
        throw ValidationError("unknown scenario \(name); `anchorage-sim list` shows them")
    }
    return s
}

func stderr(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

/// A line on stdout, unbuffered (a sweep's per-seed lines appear as they happen, also in a file).
func emit(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the scenarios.")
    func run() async throws {
        let width = Scenarios.all.map(\.name.count).max() ?? 0
        for s in Scenarios.all {
            print(s.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + s.summary)
        }
    }
}

struct ScenarioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scenario", abstract: "Run one scenario with one seed.")
    @Argument(help: "The scenario (see `list`).") var name: String
    @Option(help: "The seed.") var seed: UInt64 = 1
    @OptionGroup var common: RunOptions
    @Option(help: "Write an HTML report (a per-node timeline) to this file.") var report: String?
    @Option(help: "Write the whole trace to this file.") var trace: String?

    func run() async throws {
        let code = try await runOne(name: name, seed: seed, run: common, report: report, trace: trace, printTrace: false)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scenario again with the same seed and options and print its whole trace (the digest must match the original run's)."
    )
    @Argument(help: "The scenario.") var name: String
    @Option(help: "The seed.") var seed: UInt64
    @OptionGroup var common: RunOptions
    @Option(help: "The digest the original run printed; exit 1 when this run's differs.") var expectDigest: String?
    @Option(help: "Write the trace here instead of stdout.") var trace: String?
    @Option(help: "Write an HTML report to this file.") var report: String?

    func run() async throws {
        var code = try await runOne(
            name: name,
            seed: seed,
            run: common,
            report: report,
            trace: trace,
            printTrace: trace == nil,
            expectDigest: expectDigest
        )
        if code == 0, expectDigest == nil { code = 0 }
        if code != 0 { throw ExitCode(code) }
    }
}

/// Runs one seed, prints the summary (and the failure), writes the report. Returns the exit code.
func runOne(
    name: String,
    seed: UInt64,
    run: RunOptions,
    report: String?,
    trace: String?,
    printTrace: Bool,
    expectDigest: String? = nil
) async throws -> Int32 {
    let s = try scenario(name)
    var options = try run.options(seed: seed)
    let traceFile: FileHandle? = try trace.map { path in
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let h = FileHandle(forWritingAtPath: path) else { throw ValidationError("cannot write \(path)") }
        return h
    }
    if let traceFile { options.traceSink = { line in traceFile.write(Data((line + "\n").utf8)) } }
    if printTrace { options.traceSink = { line in print(line) } }
    options.progress = { line in stderr("\r\u{1B}[K" + line) }
    let server = try run.server()
    let result: SimResult
    do {
        result = try await SimRunner.run(s, options: options, server: server)
    } catch {
        await server.shutdown()
        throw error
    }
    await server.shutdown()
    try? traceFile?.close()
    stderr("\r\u{1B}[K")
    if let failure = result.failureReport { print(failure) }
    print(result.summary, terminator: "")
    if let report {
        try SimReport.html(result).write(toFile: report, atomically: true, encoding: .utf8)
        print("  report: \(report)")
    }
    if let expectDigest, expectDigest != result.digest {
        print("  NON-DETERMINISM: digest \(result.digest) differs from the expected \(expectDigest)")
        return 1
    }
    return result.passed ? 0 : 1
}

struct Sweep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run scenarios over a range of seeds, one database each, and summarise.",
        discussion:
            "With several scenarios (a comma-separated list, or `all`), ends with a table of each scenario's speed: virtual seconds per wall second."
    )
    @Argument(help: "The scenario, a comma-separated list, or `all`.") var name: String
    @Option(help: "Seeds: A..B, or a comma-separated list.") var seeds: String = "1..20"
    @OptionGroup var common: RunOptions
    @Flag(help: "Stop at the first failing seed.") var failFast = false

    func scenarios() throws -> [Scenario] {
        if name == "all" { return Scenarios.all }
        return try name.split(separator: ",").map { try scenario($0.trimmingCharacters(in: .whitespaces)) }
    }

    func parseSeeds() throws -> [UInt64] {
        if let r = seeds.range(of: "..") {
            guard let a = UInt64(seeds[..<r.lowerBound]), let b = UInt64(seeds[r.upperBound...]), a <= b else {
                throw ValidationError("--seeds: expected A..B")
            }
            return Array(a...b)
        }
        let list = seeds.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        guard !list.isEmpty else { throw ValidationError("--seeds: expected A..B or a list") }
        return list
    }

    /// One scenario's seeds, summed.
    struct Tally {
        var seeds = 0
        var virtual = 0.0
        var wall = 0.0
        var events = 0
        var moves = 0
        var pins = 0
        var failed: [(UInt64, SimResult)] = []
    }

    func run() async throws {
        let list = try scenarios()
        let seedList = try parseSeeds()
        let server = try common.server()
        var tallies: [(Scenario, Tally)] = []
        for s in list {
            var t = Tally()
            let wallStart = ContinuousClock.now
            for (i, seed) in seedList.enumerated() {
                var options = try common.options(seed: seed)
                options.progress = { line in stderr("\r\u{1B}[K[\(s.name) \(i + 1)/\(seedList.count)] " + line) }
                let r: SimResult
                do {
                    r = try await SimRunner.run(s, options: options, server: server)
                } catch {
                    await server.shutdown()
                    throw error
                }
                t.seeds += 1
                t.virtual += r.virtualSeconds
                t.events += r.events
                t.moves += r.moves
                t.pins += r.pinsCreated
                stderr("\r\u{1B}[K")
                emit(
                    "\(list.count > 1 ? "\(s.name) " : "")seed \(seed): \(r.passed ? "pass" : "FAIL") \(Int(r.virtualSeconds))s virtual in \(String(format: "%.1f", r.wallSeconds))s (\(String(format: "%.0f", r.speedUp))x), \(r.events) events, digest \(r.digest.prefix(16))"
                )
                if !r.passed {
                    t.failed.append((seed, r))
                    if let f = r.failureReport { emit(f) }
                    if failFast { break }
                }
            }
            let w = ContinuousClock.now - wallStart
            t.wall = Double(w.components.seconds) + Double(w.components.attoseconds) / 1e18
            emit("sweep \(s.name): \(t.seeds) seeds, \(t.failed.count) with violations")
            emit(
                "  virtual time \(Int(t.virtual))s (\(String(format: "%.1f", t.virtual / 3600))h) in \(String(format: "%.1f", t.wall))s wall: speed-up \(String(format: "%.0f", t.virtual / max(t.wall, 0.001)))x"
            )
            emit("  events \(t.events), pins \(t.pins), moves \(t.moves)")
            for (seed, r) in t.failed {
                emit("  failing seed \(seed): \(r.violations.first.map { "\($0.invariant): \($0.message.prefix(160))" } ?? "") — replay: \(r.replay)")
            }
            tallies.append((s, t))
            if failFast, !t.failed.isEmpty { break }
        }
        await server.shutdown()
        if tallies.count > 1 {
            emit("")
            emit("| scenario | seeds | virtual s per wall s | wall per seed | events per seed | violations |")
            emit("|---|---|---|---|---|---|")
            for (s, t) in tallies {
                let n = Double(max(t.seeds, 1))
                emit(
                    "| \(s.name) | \(t.seeds) | \(String(format: "%.0f", t.virtual / max(t.wall, 0.001)))× | \(String(format: "%.1f", t.wall / n)) s | \(Int((Double(t.events) / n).rounded())) | \(t.failed.count) |"
                )
            }
        }
        if tallies.contains(where: { !$0.1.failed.isEmpty }) { throw ExitCode(1) }
    }
}
