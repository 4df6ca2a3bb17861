import Cluster
import FakeKubo
import Seams
import SimBus
import SimKernel

/// A named, timed script of workload, operator actions and faults, plus the things the run must
/// have shown (expectations: e.g. that a drain really moved placements). Times are fractions of
/// the main phase's duration so that `--duration` scales a scenario.
public struct Scenario: Sendable {
    public var name: String
    public var summary: String
    public var defaultNodes: Int
    public var defaultPins: Int
    public var defaultDuration: Duration
    /// Configuration keys the scenario sets, by name, on top of production's defaults (e.g. a
    /// shorter `cluster.maintenance.maxDuration`), given the main phase's duration.
    public var configure: @Sendable (Duration) -> [String: String] = { _ in [:] }
    /// Schedules the scenario's actions on the world (called once, before the run starts).
    public var script: @Sendable (World, ScenarioParameters) -> Void
    /// Checked once after convergence: what the scenario must have exercised.
    public var expectations: [Invariant<World>] = []

    public init(
        name: String,
        summary: String,
        defaultNodes: Int,
        defaultPins: Int,
        defaultDuration: Duration,
        configure: @escaping @Sendable (Duration) -> [String: String] = { _ in [:] },
        script: @escaping @Sendable (World, ScenarioParameters) -> Void,
        expectations: [Invariant<World>] = []
    ) {
        self.name = name
        self.summary = summary
        self.defaultNodes = defaultNodes
        self.defaultPins = defaultPins
        self.defaultDuration = defaultDuration
        self.configure = configure
        self.script = script
        self.expectations = expectations
    }
}

/// What a script is given.
public struct ScenarioParameters: Sendable {
    public var nodes: Int
    public var pins: Int
    public var duration: Duration

    /// `fraction` of the main phase, from the start.
    public func at(_ fraction: Double) -> Duration {
        .microseconds(Int64(Double(duration.simMicroseconds) * fraction))
    }
}

extension Invariant where Context == World {
    /// An expectation: `check` returns a message when the run did not show what it should.
    static func expect(_ name: String, _ check: @escaping @Sendable (World) async throws -> String?) -> Invariant<World> {
        Invariant(name: "expect: " + name) { world in
            if let message = try await check(world) { return [Violation(invariant: "expect: " + name, message: message)] }
            return []
        }
    }
}

extension World {
    func movesApplied(_ reason: MoveReason) -> Int {
        leaderWrites.filter { $0.kind == .apply && !$0.refusedAsStale }.reduce(0) {
            $0 + ($1.count > 0 ? $1.reasons.filter { $0 == reason }.count : 0)
        }
    }
    public var termsBegun: Int { leaderWrites.filter { $0.kind == .beginTerm && !$0.refusedAsStale }.count }
    public var movesTotal: Int { leaderWrites.filter { $0.kind == .apply && !$0.refusedAsStale }.reduce(0) { $0 + $1.count } }
    public var staleRefusals: Int { leaderWrites.filter(\.refusedAsStale).count }
}

public enum Scenarios {
    public static let all: [Scenario] = [drainDuringUpgrade, leaderFailover, maintenanceForgotten, nodeLoss, kuboFlaky, busChaos, stuckCID]

    public static func named(_ name: String) -> Scenario? { all.first { $0.name == name } }

    /// Pin churn through the API for the whole main phase (after the nodes have heard each other).
    static func steadyChurn(_ w: World, _ p: ScenarioParameters, neverResolvingRate: Double = 0) {
        w.churn(count: p.pins, from: .seconds(30), until: p.at(0.9), neverResolvingRate: neverResolvingRate)
    }

    public static let drainDuringUpgrade = Scenario(
        name: "drain-during-upgrade",
        summary:
            "rolling upgrade under maintenance with pin churn from several orgs; one node drained mid-way, its placements move away (drain) after maintenance off; uncordon at the end",
        defaultNodes: 5,
        defaultPins: 300,
        defaultDuration: .seconds(3600),
        script: { w, p in
            steadyChurn(w, p)
            w.at(p.at(0.10), "scenario: maintenance on") { w in try await w.maintenanceOn(reason: "rolling upgrade to r2", ttl: p.at(1.0)) }
            // Nodes restarted one by one: down for a while, back with the next release.
            let first = 0.15
            let span = 0.45
            let gap = span / Double(max(p.nodes, 1))
            let down = p.at(gap * 0.6)
            let drainAfter = max(p.nodes / 2, 1)
            let drained = w.random(p.nodes)
            for i in 0..<p.nodes {
                let t = first + gap * Double(i)
                w.at(p.at(t), "scenario: upgrade n\(i + 1) (stop)") { w in await w.shutDown(w.nodes[i]) }
                w.at(p.at(t) + down, "scenario: upgrade n\(i + 1) (start r2)") { w in await w.restart(w.nodes[i], release: 2) }
                if i + 1 == drainAfter {
                    w.at(p.at(t) + down + .seconds(30), "scenario: drain n\(drained + 1)") { w in
                        try await w.drain(w.nodes[drained])
                        _ = await w.readiness(w.nodes[drained])
                    }
                }
            }
            w.at(p.at(0.65), "scenario: maintenance off") { w in
                w.notes["drained-placements-at-off"] = try await w.placementCount(w.nodes[drained])
                try await w.maintenanceOff()
            }
            w.at(p.at(0.95), "scenario: uncordon n\(drained + 1)") { w in try await w.uncordon(w.nodes[drained]) }
        },
        expectations: [
            .expect("placements moved away from the drained node (reason drain)") { w in
                let held = w.notes["drained-placements-at-off"] ?? 0
                return held == 0 || w.movesApplied(.drain) > 0
                    ? nil : "the drained node held \(held) placement(s) at maintenance off, but no move with reason drain was applied"
            },
            .expect("every node runs the next release") { w in
                let old = w.nodes.filter { $0.release != 2 }.map(\.name)
                return old.isEmpty ? nil : "still on release 1: \(old.joined(separator: ","))"
            },
        ]
    )

    public static let leaderFailover = Scenario(
        name: "leader-failover",
        summary:
            "the leader is killed; the next one is partitioned and paused (clock frozen) while a new one is elected, then wakes up and tries to act with its old fence",
        defaultNodes: 5,
        defaultPins: 150,
        defaultDuration: .seconds(1800),
        script: { w, p in
            steadyChurn(w, p)
            w.at(p.at(0.2), "scenario: kill the leader") { w in
                guard let l = w.leaderNode() else { return }
                w.crash(l)
                let name = l.name
                w.at(.microseconds(w.now.microseconds - w.start.microseconds) + .seconds(90), "scenario: restart \(name)") { w in
                    if let n = w.node(name) { await w.restart(n) }
                }
            }
            w.at(p.at(0.45), "scenario: partition and pause the leader") { w in
                guard let l = w.leaderNode() else { return }
                w.network.isolate(l.name)
                w.pause(l, for: .seconds(3600), freezeClock: true)
                let name = l.name
                w.at(.microseconds(w.now.microseconds - w.start.microseconds) + .seconds(45), "scenario: \(name) wakes up") { w in
                    guard let old = w.node(name) else { return }
                    w.network.heal()
                    // Work for a leader: a node drained and an operator's rebalance request.
                    if let x = w.pick({ $0.life == .up && $0.name != name && $0.id.description != w.leaderNode()?.id.description }) {
                        try await w.drain(x)
                        let xname = x.name
                        w.at(.microseconds(w.now.microseconds - w.start.microseconds) + p.at(0.2), "scenario: uncordon \(xname)") { w in
                            if let n = w.node(xname) { try await w.uncordon(n) }
                        }
                    }
                    try await w.requestRebalance()
                    try await w.resume(old)
                }
            }
        },
        expectations: [
            .expect("at least three leader terms") { w in w.termsBegun >= 3 ? nil : "only \(w.termsBegun) term(s) began" },
            .expect("PostgreSQL refused the deposed leader's write (stale fence)") { w in
                w.staleRefusals > 0 ? nil : "the old leader never tried to act with its stale fence"
            },
        ]
    )

    public static let maintenanceForgotten = Scenario(
        name: "maintenance-forgotten",
        summary:
            "maintenance left on past maxDuration: the watchdog warns; a node dies for good and another crashes meanwhile, repaired only after off",
        defaultNodes: 5,
        defaultPins: 200,
        defaultDuration: .seconds(3600),
        configure: { d in ["cluster.maintenance.maxDuration": "\(max(60, Int64(d.components.seconds) / 4))s"] },
        script: { w, p in
            steadyChurn(w, p)
            w.at(p.at(0.10), "scenario: maintenance on") { w in try await w.maintenanceOn(reason: "storage work", ttl: p.at(2.0)) }
            let dead = w.random(p.nodes)
            let crashed = (dead + 1 + w.random(p.nodes - 1)) % p.nodes
            w.at(p.at(0.30), "scenario: n\(dead + 1) dies") { w in w.crash(w.nodes[dead], forGood: true) }
            w.at(p.at(0.40), "scenario: n\(crashed + 1) crashes") { w in w.crash(w.nodes[crashed]) }
            w.at(p.at(0.55), "scenario: n\(crashed + 1) restarts") { w in await w.restart(w.nodes[crashed]) }
            w.at(p.at(0.70), "scenario: maintenance off") { w in try await w.maintenanceOff() }
        },
        expectations: [
            .expect("the watchdog warned, and only after maxDuration") { w in
                guard let on = w.maintenanceWindows.first?.on, let first = w.watchdogWarnings.first else { return "no watchdog warning" }
                let after = first.microseconds - on.microseconds
                return after > w.settings.maintenanceMaxSeconds * 1_000_000
                    ? nil : "warned \(after / 1_000_000)s after on (max \(w.settings.maintenanceMaxSeconds)s)"
            },
            .expect("the dead node's placements were re-made after off (node-lost)") { w in
                w.movesApplied(.nodeLost) > 0 ? nil : "no node-lost move"
            },
        ]
    )

    public static let nodeLoss = Scenario(
        name: "node-loss",
        summary: "a node dies for good; its placements are re-made on the survivors (node-lost)",
        defaultNodes: 5,
        defaultPins: 150,
        defaultDuration: .seconds(1800),
        script: { w, p in
            steadyChurn(w, p)
            let victim = w.random(p.nodes)
            w.at(p.at(0.35), "scenario: n\(victim + 1) dies") { w in w.crash(w.nodes[victim], forGood: true) }
        },
        expectations: [
            .expect("placements re-made on survivors (node-lost)") { w in w.movesApplied(.nodeLost) > 0 ? nil : "no node-lost move" }
        ]
    )

    public static let kuboFlaky = Scenario(
        name: "kubo-flaky",
        summary: "Kubo errors, slowness, never-resolving CIDs and Kubo restarts on every node; same invariants",
        defaultNodes: 4,
        defaultPins: 150,
        defaultDuration: .seconds(1800),
        script: { w, p in
            var f = KuboFaults()
            f.errorRate = 0.25
            f.unreachableRate = 0.05
            f.unpinErrorRate = 0.15
            f.maxLatencySeconds = 90
            w.kubos.faults = f
            steadyChurn(w, p, neverResolvingRate: 0.04)
            for k in 0..<6 {
                let t = 0.1 + 0.12 * Double(k)
                w.at(p.at(t), "scenario: a Kubo restarts") { w in
                    guard let n = w.pick({ $0.life == .up }) else { return }
                    n.kubo.setDown(true)
                    w.trace("kubo \(n.name) down")
                    let name = n.name
                    w.at(.microseconds(w.now.microseconds - w.start.microseconds) + .seconds(40), "scenario: kubo \(name) back") { w in
                        w.node(name)?.kubo.setDown(false)
                    }
                }
            }
        },
        expectations: [
            .expect("pins were retried") { w in w.pinOutcomes.retried > 0 ? nil : "no retry happened" }
        ]
    )

    /// Bound on how long a healthy pin may wait while never-resolving CIDs hold some of its
    /// node's slots: a poll interval, the Kubo latency, a step; far below the stall timeout.
    static let stuckCIDBound = 10.0

    public static let stuckCID = Scenario(
        name: "stuck-cid",
        summary: "one org pins CIDs nobody has (they stall for the stall timeout); other orgs' pins on the same nodes are pinned at once regardless",
        defaultNodes: 2,
        defaultPins: 60,
        defaultDuration: .seconds(900),
        configure: { _ in ["kubo.maxAttempts": "2"] },
        script: { w, p in
            var f = KuboFaults()
            f.maxLatencySeconds = 3
            w.kubos.faults = f
            w.at(.seconds(20), "scenario: org 1 pins three CIDs nobody has") { w in
                for _ in 0..<3 {
                    let cid = w.newCID()
                    w.kubos.markNeverResolving(cid)
                    await w.postPin(org: 0, cid: cid)
                }
            }
            for k in 0..<p.pins {
                w.at(.seconds(30) + .seconds(Int64(k) * 5), "scenario: another org pins") { w in
                    await w.postPin(org: 1 + k % max(w.orgCount - 1, 1), cid: w.newCID())
                }
            }
        },
        expectations: [
            .expect("other orgs' pins were pinned within \(Int(stuckCIDBound)) s, not after the stall timeout") { w in
                let slow = w.timeToFirstPin.filter { rid, seconds in
                    seconds > stuckCIDBound && !(w.acceptedCID(rid).map(w.kubos.isNeverResolving) ?? false)
                }
                guard w.timeToFirstPin.count > 10 else { return "too few pins were pinned (\(w.timeToFirstPin.count))" }
                return slow.isEmpty
                    ? nil
                    : "\(slow.count) pin(s) waited longer, e.g. \(slow.sorted { $0.key < $1.key }.prefix(3).map { "\($0.key) \(Int($0.value)) s" })"
            },
            .expect("the stuck CIDs stalled and failed with a reason") { w in
                w.pinOutcomes.failed >= 3 ? nil : "only \(w.pinOutcomes.failed) failure(s)"
            },
        ]
    )

    public static let busChaos = Scenario(
        name: "bus-chaos",
        summary: "bus delay, reordering, loss, duplication, request timeouts and short partitions; same invariants",
        defaultNodes: 4,
        defaultPins: 150,
        defaultDuration: .seconds(1800),
        script: { w, p in
            w.network.setFaults(LinkFaults(delay: .milliseconds(20), reordering: .milliseconds(400), loss: 0.05, duplication: 0.05, timeouts: 0.02))
            w.network.setFaults(.none, for: "admin")
            steadyChurn(w, p)
            for k in 0..<4 {
                let t = 0.15 + 0.18 * Double(k)
                w.at(p.at(t), "scenario: isolate a node") { w in
                    guard let n = w.pick({ $0.life == .up }) else { return }
                    w.network.isolate(n.name)
                    w.mark("isolated", node: n.index)
                    w.at(.microseconds(w.now.microseconds - w.start.microseconds) + .seconds(20 + Int64(w.random(60))), "scenario: heal") { w in
                        w.network.heal()
                        w.mark("healed", node: n.index)
                    }
                }
            }
        },
        expectations: [
            .expect("the bus really misbehaved") { w in
                let s = w.network.stats
                return s.lost > 0 && s.duplicated > 0 && s.timeouts > 0 ? nil : "lost \(s.lost), duplicated \(s.duplicated), timeouts \(s.timeouts)"
            }
        ]
    )
}
