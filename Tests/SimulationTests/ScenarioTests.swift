import Simulation
import Testing

/// One throwaway PostgreSQL (and migrated template) for the whole test process.
enum Shared {
    static let server = SimDatabaseServer(.local)
}

/// Small runs: a few virtual minutes, a few dozen pins.
func smallOptions(seed: UInt64, duration: Duration = .seconds(900), pins: Int = 40) -> SimOptions {
    var o = SimOptions(seed: seed)
    o.duration = duration
    o.pins = pins
    // Production's retry policy fails a never-resolving CID after about 50 minutes (10
    // attempts, 120 s stall each, backoff up to 600 s); settling may take that long.
    o.convergenceBound = .seconds(3600)
    return o
}

func run(_ name: String, _ options: SimOptions) async throws -> SimResult {
    let scenario = try #require(Scenarios.named(name))
    return try await SimRunner.run(scenario, options: options, server: Shared.server)
}

@Suite("Scenarios on fixed seeds")
struct ScenarioTests {
    @Test("every scenario passes on three fixed seeds", arguments: Scenarios.all.map(\.name), [11, 12, 13] as [UInt64])
    func scenarioPasses(name: String, seed: UInt64) async throws {
        let r = try await run(name, smallOptions(seed: seed))
        #expect(r.passed, "\(r.failureReport ?? r.summary)")
        #expect(r.pinsCreated > 0)
        #expect(r.convergedAfter != nil)
    }

    @Test("the same seed gives the same trace digest; another seed a different one")
    func determinism() async throws {
        let a = try await run("drain-during-upgrade", smallOptions(seed: 7))
        let b = try await run("drain-during-upgrade", smallOptions(seed: 7))
        let c = try await run("drain-during-upgrade", smallOptions(seed: 8))
        #expect(a.passed && b.passed && c.passed, "\(a.failureReport ?? "") \(b.failureReport ?? "") \(c.failureReport ?? "")")
        #expect(a.digest == b.digest)
        #expect(a.events == b.events)
        #expect(a.digest != c.digest)
    }
}

@Suite("Invariants can fail")
struct BrokenPolicyTests {
    @Test("a rebalancer that ignores maintenance is caught at the event, with a replay command")
    func rebalancerIgnoringMaintenance() async throws {
        var o = smallOptions(seed: 3, pins: 60)
        o.brokenPolicy = .rebalancerIgnoresMaintenance
        let r = try await run("drain-during-upgrade", o)
        #expect(!r.passed)
        #expect(r.violations.contains { $0.invariant == Checkers.maintenanceSilence })
        let report = try #require(r.failureReport)
        #expect(report.contains("SIM FAIL at event #"))
        #expect(report.contains("replay: anchorage-sim scenario drain-during-upgrade --seed 3"))
        #expect(report.contains("--broken-policy rebalancer-ignores-maintenance"))
    }

    @Test("a drain that releases the last replica first is caught")
    func breakBeforeMake() async throws {
        var o = smallOptions(seed: 4, pins: 60)
        o.replicationFactor = 1
        o.brokenPolicy = .drainReleasesLastReplicaFirst
        let r = try await run("drain-during-upgrade", o)
        #expect(!r.passed)
        #expect(r.violations.contains { $0.invariant == Checkers.lastReplica })
        #expect(r.failureReport?.contains("replay: ") == true)
    }

    @Test("a node whose only slot a stuck CID holds is caught by stuck-cid's expectation, with the override in the replay")
    func oneSlotHeldByAStuckCID() async throws {
        var o = smallOptions(seed: 1)
        o.configuration = ["kubo.maxConcurrentPins": "1"]
        let r = try await run("stuck-cid", o)
        #expect(!r.passed)
        #expect(r.violations.contains { $0.invariant.hasPrefix("expect: other orgs' pins were pinned within") })
        #expect(r.summary.contains("kubo.maxConcurrentPins=1 (production 16)"))
        #expect(r.failureReport?.contains("--set kubo.maxConcurrentPins=1") == true)
    }

    @Test("the simulated nodes run production's configuration unless a scenario overrides a key by name")
    func productionSettings() async throws {
        let r = try await run("node-loss", smallOptions(seed: 5, duration: .seconds(300), pins: 10))
        #expect(r.settingsDifferences.isEmpty, "\(r.settingsDifferences)")
        #expect(r.summary.contains("settings: production defaults\n"))
        let s = try await run("stuck-cid", smallOptions(seed: 5, duration: .seconds(300), pins: 10))
        #expect(s.settingsDifferences.map(\.key) == ["kubo.maxAttempts"])
    }

    @Test("the HTML report is self-contained SVG, no script")
    func report() async throws {
        let r = try await run("node-loss", smallOptions(seed: 2, duration: .seconds(600), pins: 20))
        let html = SimReport.html(r)
        #expect(html.contains("<svg"))
        #expect(!html.contains("<script"))
        #expect(html.contains(r.digest))
    }
}
