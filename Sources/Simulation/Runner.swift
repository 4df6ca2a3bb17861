import AnchorageNode
import Cluster
import FakeKubo
import Foundation
import Logging
import PostgresNIO
import PostgresStore
import Seams
import SimBus
import SimKernel
import Worker

/// Replacements behind seams for one run: how the test kit injects a deliberately broken
/// policy. Production code is never changed; a wrapper around a node's bus or cluster store
/// makes it misbehave, and the checkers must notice.
public struct SimOverrides: Sendable {
    public var bus: (@Sendable (_ node: String, any ClusterBus) -> any ClusterBus)?
    public var clusterStore: (@Sendable (_ node: String, any ClusterStore, _ ops: PostgresClient) -> any ClusterStore)?
    public init() {}
}

public struct SimOptions: Sendable {
    public var seed: UInt64 = 1
    /// nil: the scenario's default.
    public var nodes: Int?
    public var pins: Int?
    public var duration: Duration?
    public var orgs = 3
    public var replicationFactor = 2
    /// Virtual time the final convergence phase may take.
    public var convergenceBound: Duration = .seconds(3600)
    public var fullCheckInterval: Duration = .seconds(60)
    /// How long the rebalancer gets before placements on drained/dead nodes count as stuck.
    public var settle: Duration = .seconds(900)
    public var keepDatabase = false
    /// A deliberately broken policy from ``BrokenPolicy`` (test kit), by name.
    public var brokenPolicy: BrokenPolicy?
    /// Extra arguments for the replay command (e.g. `--database-url …`).
    public var replayExtra: [String] = []
    public var traceRetention = 2000
    /// Every trace line, as it is recorded (e.g. to a file).
    public var traceSink: (@Sendable (String) -> Void)?
    /// Called now and then with a progress line.
    public var progress: (@Sendable (String) -> Void)?
    public var maxEvents = 5_000_000
    /// Configuration keys to set on every node, by name (`kubo.maxConcurrentPins` → `8`), on
    /// top of production's defaults and the scenario's own keys.
    public var configuration: [String: String] = [:]

    public init(seed: UInt64 = 1) { self.seed = seed }
}

/// How a run ended.
public struct SimResult: Sendable {
    public var scenario: String
    public var seed: UInt64
    public var nodes: Int
    public var passed: Bool
    public var digest: String
    public var virtualSeconds: Double
    public var wallSeconds: Double
    public var events: Int
    public var pinsCreated: Int
    public var pinsDeleted: Int
    public var apiCalls: Int
    public var moves: Int
    public var leaderTerms: Int
    public var staleFenceRefusals: Int
    public var invariantChecks: Int
    public var fullChecks: Int
    public var pinOutcomes: (pinned: Int, retried: Int, failed: Int)
    public var convergedAfter: Double?
    /// The violations found (empty when passed).
    public var violations: [Violation]
    /// Where and when it failed, the last events, as printed.
    public var failureReport: String?
    public var replay: ReplayCommand
    public var database: String?
    public var timeline: [TimelineSample]
    public var marks: [TimelineMark]
    public var nodeNames: [String]
    public var maintenanceWindows: [(on: Double, off: Double?)]
    public var terms: [(fence: Int64, node: Int?, at: Double)]
    /// The node configuration's keys that differ from production's defaults.
    public var settingsDifferences: [(key: String, value: String, production: String)] = []

    /// "production defaults", or each override with production's value.
    public static func describe(_ differences: [(key: String, value: String, production: String)]) -> String {
        differences.isEmpty
            ? "production defaults"
            : "production defaults except " + differences.map { "\($0.key)=\($0.value) (production \($0.production))" }.joined(separator: ", ")
    }

    public var speedUp: Double { wallSeconds > 0 ? virtualSeconds / wallSeconds : 0 }

    public var summary: String {
        func hms(_ s: Double) -> String {
            let t = Int(s)
            return "\(t / 3600)h\(String(format: "%02d", (t / 60) % 60))m\(String(format: "%02d", t % 60))s"
        }
        var out = "\(passed ? "PASS" : "FAIL") \(scenario) seed=\(seed) nodes=\(nodes)\n"
        out += "  settings: \(Self.describe(settingsDifferences))\n"
        out += "  virtual time \(hms(virtualSeconds)) in \(String(format: "%.1f", wallSeconds))s wall: speed-up \(String(format: "%.0f", speedUp))x\n"
        out +=
            "  events \(events), pins \(pinsCreated) created / \(pinsDeleted) deleted (\(apiCalls) API calls), pin attempts \(pinOutcomes.pinned) pinned / \(pinOutcomes.retried) retried / \(pinOutcomes.failed) failed\n"
        out +=
            "  moves \(moves), leader terms \(leaderTerms), stale-fence refusals \(staleFenceRefusals), invariant checks \(invariantChecks) (+\(fullChecks) PostgreSQL checks)\n"
        if let c = convergedAfter { out += "  converged \(hms(c)) into the final phase\n" }
        out += "  seed \(seed)  digest \(digest)\n"
        if let database { out += "  database kept: \(database)\n" }
        return out
    }
}

public enum SimRunner {
    /// Runs `scenario` once on a fresh database from `server`.
    public static func run(_ scenario: Scenario, options: SimOptions, server: SimDatabaseServer) async throws -> SimResult {
        let wallStart = ContinuousClock.now
        let nodes = options.nodes ?? scenario.defaultNodes
        let pins = options.pins ?? scenario.defaultPins
        let duration = options.duration ?? scenario.defaultDuration
        let dbName = "sim_" + scenario.name.replacingOccurrences(of: "-", with: "_") + "_\(options.seed)_\(RunCounter.next())"
        let database = try await server.fresh(dbName)
        let pgLogger = silentLogger("sim.postgres")
        let api = PostgresClient(configuration: database.api.clientConfiguration(maxConnections: 4), backgroundLogger: pgLogger)
        let ops = PostgresClient(configuration: database.ops.clientConfiguration(maxConnections: 4), backgroundLogger: pgLogger)

        // Production's configuration, with the scenario's and the options' keys set by name.
        var keys = scenario.configure(duration)
        keys["cluster.replicationFactor"] = "\(options.replicationFactor)"
        for (key, value) in options.configuration { keys[key] = value }
        let configuration = try NodeConfiguration(overrides: keys)
        let differences = configuration.differencesFromProduction()

        var overrides = SimOverrides()
        if let broken = options.brokenPolicy { overrides = broken.overrides }
        var replayExtra: [String] = []
        if let d = options.duration { replayExtra += ["--duration", "\(d.components.seconds)s"] }
        if let b = options.brokenPolicy { replayExtra += ["--broken-policy", b.rawValue] }
        for key in options.configuration.keys.sorted() { replayExtra += ["--set", "\(key)=\(options.configuration[key]!)"] }
        let replay = ReplayCommand(
            scenario: scenario.name,
            seed: options.seed,
            nodes: options.nodes,
            pins: options.pins,
            extraArguments: replayExtra + options.replayExtra
        )

        let result = try await withThrowingTaskGroup(of: Void.self) { group -> SimResult in
            group.addTask { await api.run() }
            group.addTask { await ops.run() }
            defer { group.cancelAll() }
            let world = World(
                seed: options.seed,
                api: api,
                ops: ops,
                configuration: configuration,
                overrides: overrides,
                traceRetention: options.traceRetention,
                traceSink: options.traceSink
            )
            world.log.record("settings: \(SimResult.describe(differences))")
            world.log.record(
                "sim \(scenario.name) seed=\(options.seed) nodes=\(nodes) pins=\(pins) duration=\(duration.components.seconds)s\(options.brokenPolicy.map { " broken-policy=\($0.rawValue)" } ?? "")"
            )
            let perEvent = Checkers.perEvent()
            var violations: [Violation] = []
            var failureReport: String?
            var convergedAfter: Double?
            let params = ScenarioParameters(nodes: nodes, pins: pins, duration: duration)
            do {
                try await world.setUp(nodeCount: nodes, orgCount: options.orgs)
                scenario.script(world, params)
                // Periodic PostgreSQL checks.
                let interval = options.fullCheckInterval
                let settle = options.settle
                @Sendable func scheduleCheck(_ w: World) {
                    w.scheduler.schedule(after: interval, label: "check postgres", key: "check") {
                        let found = try await w.fullCheck(settle: settle, final: false)
                        if !found.isEmpty { throw InvariantFailure(violations: found) }
                        scheduleCheck(w)
                    }
                }
                scheduleCheck(world)
                let progress = options.progress
                let label = "\(scenario.name) seed \(options.seed)"
                world.scheduler.setAfterEach { index in
                    try await perEvent.assertHold(world)
                    if let progress, index.index % 2000 == 0 {
                        progress("\(label): +\(Int(world.elapsedSeconds))s virtual, \(index.index) events, \(world.pinsCreated) pins")
                    }
                }
                let mainEnd = world.start.adding(microseconds: duration.simMicroseconds)
                try await world.scheduler.run(until: mainEnd, maxEvents: options.maxEvents)

                // Convergence: faults off, everyone back; every accepted pin must settle.
                world.converging = true
                world.log.record("  convergence: faults off, partitions healed, paused nodes resumed, down nodes restarted")
                world.mark("convergence")
                world.network.clearFaults()
                world.network.heal()
                world.kubos.faults = KuboFaults.none
                for n in world.nodes {
                    n.kubo.setDown(n.kubo.isDestroyed)
                    if n.isPaused { try await world.resume(n) }
                    if n.life == .down { await world.restart(n) }
                }
                let convergenceStart = world.elapsedSeconds
                let deadline = world.now.adding(microseconds: options.convergenceBound.simMicroseconds)
                var unsettled = (count: 0, examples: [String]())
                while true {
                    try await world.scheduler.run(for: .seconds(30), maxEvents: options.maxEvents)
                    unsettled = try await world.unsettledPins()
                    if unsettled.count == 0 {
                        convergedAfter = world.elapsedSeconds - convergenceStart
                        break
                    }
                    if world.now >= deadline { break }
                }
                world.log.record("  convergence: \(unsettled.count == 0 ? "settled" : "\(unsettled.count) pin(s) not settled")")
                var final: [Violation] = []
                if unsettled.count > 0 {
                    final.append(
                        Violation(
                            invariant: Checkers.convergence,
                            message:
                                "\(unsettled.count) accepted pin(s) not pinned on their full replication factor (nor failed with a reason) within \(options.convergenceBound.components.seconds)s of faults off: \(unsettled.examples.joined(separator: "; "))"
                        )
                    )
                }
                final += try await perEvent.violations(world)
                final += try await world.fullCheck(settle: settle, final: true)
                final += try await InvariantSet(scenario.expectations).violations(world)
                if !final.isEmpty {
                    violations = final
                    world.log.record("! final checks failed: \(final.map(\.description).joined(separator: "; "))")
                    failureReport = Self.describe(
                        violations: final,
                        at: world.scheduler.eventsRun,
                        elapsed: world.elapsedSeconds,
                        log: world.log,
                        replay: replay,
                        phase: "final checks"
                    )
                }
            } catch let failure as SimulationFailure {
                violations = failure.violations.isEmpty ? [Violation(invariant: "run", message: "\(failure.error)")] : failure.violations
                failureReport = Self.describe(
                    violations: violations,
                    at: failure.event.index,
                    elapsed: Double(failure.event.elapsed) / 1_000_000,
                    log: world.log,
                    replay: replay,
                    phase: "\(failure.phase) after \(failure.event.label)",
                    recent: failure.recentLog
                )
            }
            var checks = perEvent.checksRun
            checks += world.fullChecks
            let pinned = world.pinOutcomes
            return SimResult(
                scenario: scenario.name,
                seed: options.seed,
                nodes: nodes,
                passed: violations.isEmpty,
                digest: world.log.digest,
                virtualSeconds: world.elapsedSeconds,
                wallSeconds: 0,
                events: world.scheduler.eventsRun,
                pinsCreated: world.pinsCreated,
                pinsDeleted: world.pinsDeleted,
                apiCalls: world.apiCalls,
                moves: world.movesTotal,
                leaderTerms: world.termsBegun,
                staleFenceRefusals: world.staleRefusals,
                invariantChecks: checks,
                fullChecks: world.fullChecks,
                pinOutcomes: pinned,
                convergedAfter: convergedAfter,
                violations: violations,
                failureReport: failureReport,
                replay: replay,
                database: nil,
                timeline: world.timeline,
                marks: world.marks,
                nodeNames: world.nodes.map(\.name),
                maintenanceWindows: world.maintenanceWindows.map {
                    (
                        on: Double($0.on.microseconds - world.start.microseconds) / 1e6,
                        off: $0.off.map { Double($0.microseconds - world.start.microseconds) / 1e6 }
                    )
                },
                terms: world.leaderWrites.filter { $0.kind == .beginTerm && !$0.refusedAsStale }.map { w in
                    (fence: w.fence, node: world.node(w.node)?.index, at: Double(w.at.microseconds - world.start.microseconds) / 1e6)
                }
            )
        }
        var out = result
        out.settingsDifferences = differences
        if options.keepDatabase {
            out.database = await server.describe(dbName)
        } else {
            try await server.drop(dbName)
        }
        let wall = ContinuousClock.now - wallStart
        out.wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        return out
    }

    static func describe(
        violations: [Violation],
        at index: Int,
        elapsed: Double,
        log: EventLog,
        replay: ReplayCommand,
        phase: String,
        recent: [String]? = nil
    ) -> String {
        var out = "SIM FAIL at event #\(index), virtual time +\(String(format: "%.6f", elapsed))s (\(phase))\n"
        for v in violations { out += "  violated \(v.invariant): \(v.message)\n" }
        let lines = recent ?? log.last(40)
        out += "  last \(lines.count) trace lines:\n"
        for l in lines { out += "    \(l)\n" }
        out += "  replay: \(replay)\n"
        return out
    }
}

/// Numbers runs in this process, so that concurrent runs of the same scenario and seed (a
/// determinism double-run in tests) get databases of their own. Not part of the trace.
enum RunCounter {
    private static let lock = Lock()
    nonisolated(unsafe) private static var value = 0
    static func next() -> Int {
        lock.withLock {
            value += 1
            return value
        }
    }
}
