import Foundation
import LocalNATS
import LocalPostgres
import ProcessCluster
import Testing

/// Faults survived with real processes (issue 15): 3 `anchorage serve` nodes, each with its own
/// fake Kubo process, one nats-server and PostgreSQL, under a steady mixed load from two orgs.
/// After each fault: every pin the API accepted is still in PostgreSQL and ends pinned on the
/// replication factor or failed with a reason, no Kubo holds an anchorage pin its node was not
/// given, and no request fails with a 5xx once the fault is over. Each case prints its numbers
/// (docs/reliability.md keeps a run's table).
@Suite(.serialized) struct FaultTests {
    static let factor = 2

    /// (a) `kill -9` of a serve node mid-load, restarted after longer than `cluster.nodeLostAfter`.
    @Test func aNodeKilledMidLoadAndRestarted() async throws {
        try await Self.underLoad("(a) kill -9 of a serve node, restarted 8 s later", namespace: 0xFA01) { harness, load in
            let leader = try await harness.leaderTerm()?.node
            guard let victim = harness.nodes.first(where: { $0.id != leader }) else { throw HarnessFailure(description: "no follower") }
            load.setTargets(harness.nodes.filter { $0 !== victim }.map(\.url))
            harness.kill(victim)
            try await Task.sleep(for: .seconds(8))
            try await harness.start(victim)
            try await eventually("the restarted node is ready", timeout: .seconds(60)) { try await harness.ready(victim) == 200 }
            return "node \(victim.index) (not the leader)"
        }
    }

    /// (b) `kill -9` of the node that holds the leader lease: another node leads within the
    /// lease TTL (4 s here), and its duties (sweeper, rebalancer) carry on.
    @Test func theLeaderKilledMidLoad() async throws {
        try await Self.underLoad("(b) kill -9 of the leader", namespace: 0xFA02) { harness, load in
            guard let term = try await harness.leaderTerm(), let victim = harness.nodes.first(where: { $0.id == term.node }) else {
                throw HarnessFailure(description: "no leader term")
            }
            load.setTargets(harness.nodes.filter { $0 !== victim }.map(\.url))
            let killedAt = ContinuousClock.now
            harness.kill(victim)
            try await eventually("another node leads", timeout: .seconds(30), every: .milliseconds(100)) {
                guard let next = try await harness.leaderTerm() else { return false }
                return next.fence > term.fence && next.node != victim.id
            }
            let failover = ContinuousClock.now - killedAt
            try await Task.sleep(for: .seconds(4))
            try await harness.start(victim)
            try await eventually("the restarted node is ready", timeout: .seconds(60)) { try await harness.ready(victim) == 200 }
            return "node \(victim.index), fence \(term.fence); a new leader after \(Self.seconds(failover)) s"
        }
    }

    /// (d) The embedded nats-server of a single node killed: the node's supervisor starts it
    /// again on the same port and store, the node reconnects, and pins go on.
    @Test func theEmbeddedNATSServerKilledMidLoad() async throws {
        try await Self.underLoad("(d) kill -9 of a node's embedded nats-server", namespace: 0xFA04, nodes: 1, embeddedNATS: true) { harness, _ in
            let node = harness.nodes[0]
            let before = EmbeddedNATS.serverProcesses(storeDir: node.natsStore)
            guard before.count == 1, let pid = before.first else { throw HarnessFailure(description: "nats-servers on the store: \(before)") }
            let killedAt = ContinuousClock.now
            kill(pid, SIGKILL)
            try await eventually("the supervisor starts another nats-server", timeout: .seconds(60), every: .milliseconds(100)) {
                let now = EmbeddedNATS.serverProcesses(storeDir: node.natsStore)
                return now.count == 1 && now.first != pid
            }
            let restarted = ContinuousClock.now - killedAt
            try await eventually("the node is ready", timeout: .seconds(60)) { try await harness.ready(node) == 200 }
            return "pid \(pid); a new nats-server after \(Self.seconds(restarted)) s"
        }
    }

    /// (e) PostgreSQL restarted with `pg_ctl restart -m immediate` (every connection cut, crash
    /// recovery from the WAL) mid-load, on a durable server of the test's own.
    @Test func postgresRestartedImmediatelyMidLoad() async throws {
        let postgres = try await LocalPostgres.start(options: .init(durable: true))
        defer { postgres.stop() }
        try await Self.underLoad(
            "(e) PostgreSQL restart -m immediate",
            namespace: 0xFA05,
            postgres: postgres,
            knownOrphans: Self.orphansAfterPostgresRestart
        ) { harness, _ in
            let started = ContinuousClock.now
            try postgres.restart(immediate: true)
            let restart = ContinuousClock.now - started
            for node in harness.nodes {
                try await eventually("node \(node.index) ready again", timeout: .seconds(60)) { try await harness.ready(node) == 200 }
            }
            return "PostgreSQL down for \(Self.seconds(restart)) s"
        }
    }

    /// Open bug (issue 15): once in CI (not in three runs here), 10 CIDs stayed in Kubo under
    /// anchorage's name with no placement wanting them for the whole 120 s after the restart:
    /// the reconciler did not remove them (a pending unpin row, or a reconciler failing after the
    /// restart). The logs are dumped when it happens.
    static let orphansAfterPostgresRestart =
        "orphans in Kubo after PostgreSQL restart -m immediate (intermittent; issue 15 note)"

    /// (f) A Kubo that stops answering for a minute (the process stopped: connections open,
    /// nothing answers), then returns. Its node's pins wait, retry or move; none is lost.
    @Test func aKuboThatStopsAnsweringForAMinute() async throws {
        try await Self.underLoad("(f) a Kubo silent for 60 s", namespace: 0xFA06) { harness, _ in
            let victim = harness.nodes[0]
            guard let kubo = victim.kubo else { throw HarnessFailure(description: "no Kubo process") }
            kubo.signal(SIGSTOP)
            try await Task.sleep(for: .seconds(60))
            kubo.signal(SIGCONT)
            try await eventually("node \(victim.index) ready", timeout: .seconds(60)) { try await harness.ready(victim) == 200 }
            return "node \(victim.index)'s Kubo (SIGSTOP, then SIGCONT)"
        }
    }

    /// (g) The leader's wall clock steps 30 s ahead (more than the 4 s lease TTL) and stays
    /// there, as after an NTP step, while its timers run on: `serve` reads its clock through
    /// `ANCHORAGE_FAULT_CLOCK_OFFSET_FILE` (the clock seam), which the test rewrites.
    @Test func theLeadersClockJumpsPastTheLeaseTTL() async throws {
        try await Self.underLoad(
            "(g) the leader's clock steps 30 s ahead",
            namespace: 0xFA07,
            nodeEnvironment: Self.steppedClock
        ) { harness, _ in
            guard let term = try await harness.leaderTerm(), let leader = harness.nodes.first(where: { $0.id == term.node }) else {
                throw HarnessFailure(description: "no leader term")
            }
            try Data("30\n".utf8).write(to: URL(fileURLWithPath: "\(leader.dataDir)/clock-offset"))
            try await Task.sleep(for: .seconds(10))
            let now = try await harness.leaderTerm()
            let holder = harness.nodes.first { $0.id == now?.node }?.index ?? -1
            return "node \(leader.index), fence \(term.fence); 10 s later the newest term is fence \(now?.fence ?? 0) on node \(holder)"
        }
    }

    /// Each node's wall clock reads the system clock plus the seconds in its `clock-offset` file.
    @Sendable static func steppedClock(_ node: ClusterHarness.Node) -> [String: String] {
        ["ANCHORAGE_FAULT_CLOCK_OFFSET_FILE": "\(node.dataDir)/clock-offset"]
    }

    // MARK: the run

    /// A fresh cluster (3 nodes unless `nodes` says otherwise) under load: 4 s of steady state, then `fault` (which returns once
    /// the fault is over and says what it did), 5 s more of load, then the verdict, polled until
    /// it holds (at most 120 s).
    static func underLoad(
        _ title: String,
        namespace: UInt64,
        nodes: Int = 3,
        postgres: LocalPostgres? = nil,
        embeddedNATS: Bool = false,
        nodeEnvironment: (@Sendable (ClusterHarness.Node) -> [String: String])? = nil,
        knownOrphans: String? = nil,
        _ fault: @escaping @Sendable (ClusterHarness, Load) async throws -> String
    ) async throws {
        // With one node, every pin is placed once (the factor is capped by the eligible nodes).
        let factor = min(Self.factor, nodes)
        try await ClusterHarness.with(nodes: nodes, postgres: postgres, embeddedNATS: embeddedNATS, nodeEnvironment: nodeEnvironment) { harness in
            let (code, out) = try await harness.admin(["mint-token", "--org", "globex", "--create-org", "--ttl", "1h"])
            try require(code == 0, out)
            let orgs = [
                Load.Org(name: "acme", token: harness.token), Load.Org(name: "globex", token: String(out.split(separator: "\n").last ?? "")),
            ]
            let load = Load(harness: harness, orgs: orgs, namespace: namespace)
            load.setTargets(harness.nodes.map(\.url))
            let (what, healedAt) = try await withThrowingTaskGroup(of: (String, ContinuousClock.Instant)?.self) { group in
                group.addTask {
                    await load.run()
                    return nil
                }
                group.addTask {
                    defer { load.stop() }
                    try await Task.sleep(for: .seconds(4))
                    let what = try await fault(harness, load)
                    load.setTargets(harness.nodes.map(\.url))
                    load.healed()
                    let healedAt = ContinuousClock.now
                    try await Task.sleep(for: .seconds(5))
                    return (what, healedAt)
                }
                var result: (String, ContinuousClock.Instant)?
                for try await outcome in group { if let outcome { result = outcome } }
                guard let result else { throw HarnessFailure(description: "the fault did not finish") }
                return result
            }
            let loadStopped = ContinuousClock.now
            var verdict = try await Verdict.read(harness: harness, load: load, factor: factor)
            let deadline = ContinuousClock.now + .seconds(120)
            while !verdict.settled, ContinuousClock.now < deadline {
                try await Task.sleep(for: .seconds(1))
                verdict = try await Verdict.read(harness: harness, load: load, factor: factor)
            }
            let recovered = ContinuousClock.now - healedAt
            let drained = ContinuousClock.now - loadStopped
            let traffic = load.snapshot
            let line =
                "fault \(title) [\(what)]: \(verdict); requests \(traffic.statuses.values.reduce(0, +)), 5xx \(traffic.serverErrors) (after the fault \(traffic.serverErrorsAfterHeal)), unanswered \(traffic.transportErrors); settled \(seconds(recovered)) s after the fault ended (the load ran 5 s of it), \(seconds(drained)) s after the load stopped"
            print(line)
            #expect(traffic.accepted >= 20, "the load must have run: \(line)")
            #expect(verdict.lost.isEmpty, "accepted pins lost: \(verdict.lost.prefix(10))")
            var unsettled: [String] = []
            for pin in verdict.unsettledPins { unsettled.append(try await Verdict.explain(pin, harness: harness)) }
            #expect(verdict.unsettled == 0, "\(line)\n\(unsettled.joined(separator: "\n"))")
            if !verdict.settled { harness.dumpLogs() }
            if let knownOrphans {
                // A known, intermittent bug (see the case): reported as a known issue, never as a pass.
                withKnownIssue(Comment(rawValue: knownOrphans), isIntermittent: true) { #expect(verdict.orphans == 0, "\(line)") }
            } else {
                #expect(verdict.orphans == 0, "\(line)")
            }
            #expect(traffic.serverErrorsAfterHeal == 0, "5xx after the fault: \(traffic.lastServerError)")
        }
    }

    static func seconds(_ d: Duration) -> String {
        let c = d.components
        return String(format: "%.1f", Double(c.seconds) + Double(c.attoseconds) / 1e18)
    }
}
