import Cluster
import Seams
import Testing

/// The placement and rebalancing decisions are pure functions: tested here without any I/O.
@Suite struct RendezvousTests {
    static let nodes = (1...5).map { TypeID(prefix: "nod", high: UInt64($0) << 20, low: UInt64($0) * 7919) }

    @Test func choosesTheReplicationFactorCappedByTheNodes() {
        #expect(Rendezvous.choose(cid: "bafyA", among: Self.nodes, replicas: 2).count == 2)
        #expect(Rendezvous.choose(cid: "bafyA", among: Array(Self.nodes.prefix(1)), replicas: 3).count == 1)
        #expect(Rendezvous.choose(cid: "bafyA", among: [], replicas: 2).isEmpty)
    }

    @Test func isStableAndIndependentOfInputOrder() {
        let a = Rendezvous.choose(cid: "bafyB", among: Self.nodes, replicas: 3)
        let b = Rendezvous.choose(cid: "bafyB", among: Self.nodes.reversed(), replicas: 3)
        #expect(a == b)
    }

    @Test func addingANodeMovesOnlyAboutAFractionOfPins() {
        let cids = (0..<2000).map { "bafycid\($0)" }
        let four = Array(Self.nodes.prefix(4))
        var moved = 0
        for cid in cids where Rendezvous.choose(cid: cid, among: four, replicas: 1) != Rendezvous.choose(cid: cid, among: Self.nodes, replicas: 1) {
            moved += 1
        }
        // Ideal: 1/5 of the pins move to the new node; none move between old nodes.
        #expect(moved > 250 && moved < 550, "moved \(moved) of 2000")
        for cid in cids {
            let before = Rendezvous.choose(cid: cid, among: four, replicas: 1)[0]
            let after = Rendezvous.choose(cid: cid, among: Self.nodes, replicas: 1)[0]
            #expect(after == before || after == Self.nodes[4])
        }
    }

    @Test func spreadsPinsEvenly() {
        var counts: [TypeID: Int] = [:]
        for i in 0..<5000 { counts[Rendezvous.choose(cid: "bafy\(i)", among: Self.nodes, replicas: 1)[0], default: 0] += 1 }
        for n in Self.nodes { #expect((800...1200).contains(counts[n] ?? 0), "\(n): \(counts[n] ?? 0)") }
    }

    @Test func policyCapsByTheEligibleSet() {
        let policy = PlacementPolicy(replicationFactor: 2)
        #expect(policy.nodes(for: "bafyC").isEmpty)
        policy.update(eligible: [Self.nodes[0]])
        #expect(policy.nodes(for: "bafyC") == [Self.nodes[0]])
        policy.update(eligible: Self.nodes)
        #expect(policy.nodes(for: "bafyC").count == 2)
    }
}

@Suite struct RebalancerTests {
    let n = RendezvousTests.nodes
    let org = TypeID(prefix: "org", high: 1, low: 1)

    func pin(_ i: Int) -> TypeID { TypeID(prefix: "pin", high: 9, low: UInt64(i)) }

    func placement(_ i: Int, on node: TypeID, status: String = "pinned", replaces: TypeID? = nil) -> PlacementView {
        PlacementView(org: org, pin: pin(i), cid: "bafy\(i)", node: node, status: status, replaces: replaces)
    }

    @Test func drainedNodesPlacementsMoveToAnEligibleNodeNotHoldingThePin() {
        let nodes = [
            NodeView(id: n[0], state: .draining, live: true), NodeView(id: n[1], state: .active, live: true),
            NodeView(id: n[2], state: .active, live: true),
        ]
        let moves = Rebalancer.plan(
            nodes: nodes,
            placements: [placement(1, on: n[0]), placement(1, on: n[1])],
            options: .init(replicationFactor: 2)
        )
        #expect(moves == [Move(org: org, pin: pin(1), cid: "bafy1", from: n[0], to: n[2], reason: .drain)])
    }

    @Test func lostNodesMoveButMerelySilentOnesDoNot() {
        let nodes = [
            NodeView(id: n[0], state: .active, live: false, lost: false), NodeView(id: n[1], state: .active, live: false, lost: true),
            NodeView(id: n[2], state: .active, live: true), NodeView(id: n[3], state: .active, live: true),
        ]
        let moves = Rebalancer.plan(nodes: nodes, placements: [placement(1, on: n[0]), placement(2, on: n[1])], options: .init(replicationFactor: 1))
        #expect(moves.count == 1)
        #expect(moves.first?.from == n[1])
        #expect(moves.first?.reason == .nodeLost)
        #expect([n[2], n[3]].contains(moves.first?.to ?? n[0]))
    }

    @Test func noTargetMeansNoMove() {
        let nodes = [NodeView(id: n[0], state: .drained, live: true), NodeView(id: n[1], state: .active, live: true)]
        let moves = Rebalancer.plan(nodes: nodes, placements: [placement(1, on: n[0]), placement(1, on: n[1])], options: .init(replicationFactor: 2))
        #expect(moves.isEmpty)
    }

    @Test func aMoveInProgressIsLeftAlone() {
        let nodes = [
            NodeView(id: n[0], state: .draining, live: true), NodeView(id: n[1], state: .active, live: true),
            NodeView(id: n[2], state: .active, live: true),
        ]
        let moves = Rebalancer.plan(
            nodes: nodes,
            placements: [placement(1, on: n[0]), placement(1, on: n[2], status: "queued", replaces: n[0])],
            options: .init(replicationFactor: 1)
        )
        #expect(moves.isEmpty)
    }

    @Test func balanceMovesOnlyWhenAsked() {
        // Pins placed on 3 nodes; a 4th joins: with balance, pins whose top set now includes it move there.
        let three = Array(n.prefix(3))
        let placements = (0..<200).flatMap { i in Rendezvous.choose(cid: "bafy\(i)", among: three, replicas: 2).map { placement(i, on: $0) } }
        let nodes = n.prefix(4).map { NodeView(id: $0, state: .active, live: true) }
        #expect(Rebalancer.plan(nodes: nodes, placements: placements, options: .init(replicationFactor: 2)).isEmpty)
        let moves = Rebalancer.plan(nodes: nodes, placements: placements, options: .init(replicationFactor: 2, balance: true, maxMoves: 10_000))
        #expect(!moves.isEmpty)
        for m in moves {
            #expect(m.to == n[3])
            #expect(m.reason == .balance)
            #expect(Rendezvous.choose(cid: m.cid, among: Array(n.prefix(4)), replicas: 2).contains(n[3]))
        }
        // After applying the plan, planning again finds nothing to do.
        var after = placements
        for m in moves {
            after.removeAll { $0.pin == m.pin && $0.node == m.from }
            after.append(placement(Int(m.pin.low), on: m.to))
        }
        #expect(Rebalancer.plan(nodes: nodes, placements: after, options: .init(replicationFactor: 2, balance: true, maxMoves: 10_000)).isEmpty)
    }

    @Test func underReplicatedAndUnplacedPinsConvergeToTheFactor() {
        let nodes = n.prefix(3).map { NodeView(id: $0, state: .active, live: true) }
        let unplaced = Rebalancer.UnplacedPin(org: org, pin: pin(2), cid: "bafy2")
        let moves = Rebalancer.plan(nodes: nodes, placements: [placement(1, on: n[0])], unplaced: [unplaced], options: .init(replicationFactor: 2))
        #expect(moves.filter { $0.pin == pin(1) }.count == 1)
        #expect(moves.filter { $0.pin == pin(1) }.allSatisfy { $0.from == nil && $0.to != n[0] && $0.reason == .replicate })
        #expect(Set(moves.filter { $0.pin == pin(2) }.map(\.to)) == Set(Rendezvous.choose(cid: "bafy2", among: Array(n.prefix(3)), replicas: 2)))
        // Capped by the eligible nodes: with one eligible node nothing more can be done.
        let lonely = [NodeView(id: n[0], state: .active, live: true), NodeView(id: n[1], state: .active, live: false, lost: false)]
        #expect(Rebalancer.plan(nodes: lonely, placements: [placement(1, on: n[0])], options: .init(replicationFactor: 2)).isEmpty)
        // A silent (not lost) node's placement still counts: no churn while a node restarts.
        let restarting = [
            NodeView(id: n[0], state: .active, live: true), NodeView(id: n[1], state: .active, live: false, lost: false),
            NodeView(id: n[2], state: .active, live: true),
        ]
        #expect(
            Rebalancer.plan(nodes: restarting, placements: [placement(1, on: n[0]), placement(1, on: n[1])], options: .init(replicationFactor: 2))
                .isEmpty
        )
    }

    @Test func theRateLimitCapsMoves() {
        let nodes = [NodeView(id: n[0], state: .draining, live: true), NodeView(id: n[1], state: .active, live: true)]
        let placements = (0..<50).map { placement($0, on: n[0]) }
        #expect(Rebalancer.plan(nodes: nodes, placements: placements, options: .init(replicationFactor: 1, maxMoves: 7)).count == 7)
    }

    @Test func planIsAFunctionOfItsInputsOnly() {
        let nodes = [NodeView(id: n[0], state: .draining, live: true)] + n[1...3].map { NodeView(id: $0, state: .active, live: true) }
        let placements = (0..<100).map { placement($0, on: n[0]) }
        let a = Rebalancer.plan(nodes: nodes, placements: placements, options: .init(replicationFactor: 2))
        let b = Rebalancer.plan(nodes: nodes.reversed(), placements: placements.reversed(), options: .init(replicationFactor: 2))
        #expect(a == b)
        #expect(a.count == 100)
    }
}

@Suite struct PresenceAndMaintenanceTests {
    @Test func liveAndLostFollowTheReceiversClock() {
        var s = ClusterSettings()
        s.liveAfterSeconds = 15
        s.nodeLostAfterSeconds = 60
        let t0 = Timestamp(secondsSinceEpoch: 1_000)
        var table = PresenceTable(watchingSince: t0)
        let id = TypeID(prefix: "nod", high: 1, low: 2)
        #expect(!table.isLive(id, now: t0, settings: s))
        #expect(!table.isLost(id, now: t0.adding(seconds: 59), settings: s))
        #expect(table.isLost(id, now: t0.adding(seconds: 61), settings: s))
        table.heard(
            Heartbeat(node: id.description, name: "a", state: .active, version: "v", inflight: 0, leaderFence: nil, sentAt: 0),
            at: t0.adding(seconds: 10)
        )
        #expect(table.isLive(id, now: t0.adding(seconds: 25), settings: s))
        #expect(!table.isLive(id, now: t0.adding(seconds: 26), settings: s))
        #expect(!table.isLost(id, now: t0.adding(seconds: 70), settings: s))
        #expect(table.eligible(now: t0.adding(seconds: 20), settings: s) == [id])
        table.heard(
            Heartbeat(node: id.description, name: "a", state: .draining, version: "v", inflight: 0, leaderFence: nil, sentAt: 0),
            at: t0.adding(seconds: 20)
        )
        #expect(table.eligible(now: t0.adding(seconds: 20), settings: s).isEmpty)
    }

    @Test func heartbeatRoundTripsAndRejectsGarbage() {
        let hb = Heartbeat(node: "nod_01jdq5v6bqfx0a7hk1m8w3c9ze", name: "n1", state: .drained, version: "1", inflight: 3, leaderFence: 7, sentAt: 42)
        #expect(Heartbeat.decode(hb.encoded()) == hb)
        #expect(Heartbeat.decode(Array("{}".utf8)) == nil)
        #expect(hb.encoded() == hb.encoded())
    }

    @Test func maintenanceFlagExpiresAndGetsOverdue() {
        let t0 = Timestamp(secondsSinceEpoch: 5_000)
        let flag = MaintenanceFlag(reason: "upgrade", by: "ops", since: t0, ttlSeconds: 7200)
        #expect(flag.isOn(at: t0.adding(seconds: 7199)))
        #expect(!flag.isOn(at: t0.adding(seconds: 7200)))
        #expect(!flag.isOverdue(at: t0.adding(seconds: 3600), maxSeconds: 3600))
        #expect(flag.isOverdue(at: t0.adding(seconds: 3601), maxSeconds: 3600))
    }

    @Test func settingsAreChecked() {
        var s = ClusterSettings()
        #expect(s.problems().isEmpty)
        s.minReplicas = 3
        s.leaseTTLSeconds = 5
        #expect(s.problems().count == 2)
    }

    @Test func dispatchMessageIDsDifferPerDispatchAndRepeatPerRetry() {
        let org = TypeID(prefix: "org", high: 1, low: 1)
        let pin = TypeID(prefix: "pin", high: 2, low: 2)
        let node = TypeID(prefix: "nod", high: 3, low: 3)
        let a = Dispatch(org: org, pin: pin, cid: "bafy", node: node, generation: 0, dispatchedAt: Timestamp(secondsSinceEpoch: 1))
        let b = Dispatch(org: org, pin: pin, cid: "bafy", node: node, generation: 1, dispatchedAt: Timestamp(secondsSinceEpoch: 2))
        #expect(a.msgID == a.msgID)
        #expect(a.msgID != b.msgID)
        #expect(a.subject == "pin.jobs.\(node)")
        #expect(ClusterJSON.decode(Dispatch.self, ClusterJSON.encode(a)) == a)
    }
}
