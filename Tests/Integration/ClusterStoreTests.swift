import AnchorageTesting
import Cluster
import FakeKubo
import Foundation
import Logging
import Pins
import PostgresNIO
import PostgresStore
import Seams
import Testing
import Worker

/// The cluster's PostgreSQL side: fencing, make-before-break moves, the sweeper's requeues and
/// the reconciler's repins, against a real database (ops role), with a virtual clock.
@Suite struct ClusterStoreTests {
    static func node(_ n: UInt64) -> TypeID { TypeID(prefix: IDPrefix.node, high: 0x0193_0000_0000_7000 | n, low: 0x8000_0000_0000_0000 | n) }
    let a = Self.node(1), b = Self.node(2), c = Self.node(3)

    struct Rig: Sendable {
        let node: TestNode
        let store: PostgresClusterStore
        let org: TypeID
        func service(placing nodes: [TypeID]) -> PinService<PostgresPinStore> {
            PinService(
                store: node.store,
                clock: node.clock,
                entropy: node.entropy,
                limits: node.service.limits,
                options: node.service.options,
                placement: { _ in nodes }
            )
        }
        func placements(_ pin: TypeID) async throws -> [(node: TypeID, status: String, replaces: UUID?)] {
            var out: [(TypeID, String, UUID?)] = []
            let rows = try await node.opsClient.query(
                "SELECT node_id, status, replaces FROM placements WHERE pin_id = \(pin.uuid) ORDER BY node_id",
                logger: Logger(label: "t")
            )
            for try await (n, s, r) in rows.decode((UUID, String, UUID?).self) { out.append((TypeID(prefix: IDPrefix.node, uuid: n), s, r)) }
            return out
        }
        func audit(_ action: String) async throws -> [(subject: String, detail: String, fence: Int64?)] {
            var out: [(String, String, Int64?)] = []
            let rows = try await node.opsClient.query(
                "SELECT subject, detail::text, fence FROM audit_log WHERE action = \(action) ORDER BY at, id",
                logger: Logger(label: "t")
            )
            for try await (s, d, f) in rows.decode((String, String, Int64?).self) { out.append((s, d, f)) }
            return out
        }
        func pinStatus(_ pin: TypeID) async throws -> String { try await node.service.get(org: org, requestID: pin.description).status.rawValue }
    }

    func withRig<T: Sendable>(_ body: @Sendable (Rig) async throws -> T) async throws -> T {
        try await withTestNode { node in
            let store = PostgresClusterStore(client: node.opsClient, entropy: node.entropy, logger: Logger(label: "anchorage.test.cluster"))
            for (i, n) in [a, b, c].enumerated() { try await store.register(node: n, name: "n\(i + 1)", version: "t", now: node.clock.now()) }
            let org = try await node.admin.createOrg(name: "acme").id
            return try await body(Rig(node: node, store: store, org: org))
        }
    }

    @Test func fenceTokensOnlyGoUpAndAStaleOneIsRefusedWithNothingWritten() async throws {
        try await withRig { rig in
            let now = rig.node.clock.now()
            #expect(try await rig.store.currentFence() == 0)
            #expect(try await rig.store.beginTerm(fence: 1, node: a, now: now))
            #expect(try await !rig.store.beginTerm(fence: 1, node: b, now: now), "two nodes can never hold the same term")
            #expect(try await rig.store.beginTerm(fence: 2, node: b, now: now))
            #expect(try await !rig.store.beginTerm(fence: 1, node: a, now: now), "an old term cannot come back")
            #expect(try await rig.store.currentFence() == 2)

            let pin = try await rig.service(placing: [a]).add(org: rig.org, request: PinRequest(cid: cidA))
            let move = Move(org: rig.org, pin: pin.id, cid: cidA, from: a, to: b, reason: .drain)
            await #expect(throws: ClusterStoreError.staleFence(presented: 1, current: 2)) {
                try await rig.store.apply(moves: [move], fence: 1, now: now)
            }
            #expect(try await rig.placements(move.pin).map(\.node) == [a], "the deposed leader's move wrote nothing")
            #expect(try await rig.audit("move").isEmpty)
            let dispatches = try await rig.store.apply(moves: [move], fence: 2, now: now)
            #expect(dispatches.map(\.node) == [b])
            #expect(try await rig.audit("move").map(\.fence) == [2])
        }
    }

    @Test func aDrainMoveIsMakeBeforeBreak() async throws {
        try await withRig { rig in
            let kuboA = FakeKuboNode(seed: 1)
            let kuboC = FakeKuboNode(seed: 3)
            let workerA = rig.node.worker(node: a, kubo: kuboA)
            let workerC = rig.node.worker(node: c, kubo: kuboC)
            let record = try await rig.service(placing: [a]).add(org: rig.org, request: PinRequest(cid: cidA))
            let pin = record.id
            try await workerA.tick()
            #expect(try await rig.pinStatus(pin) == "pinned")

            try await rig.store.setState(node: a, to: .draining, now: rig.node.clock.now())
            #expect(try await rig.store.node(a)?.state == .draining)
            #expect(try await rig.store.beginTerm(fence: 1, node: b, now: rig.node.clock.now()))
            let views = [
                NodeView(id: a, state: .draining, live: true), NodeView(id: b, state: .active, live: false, lost: false),
                NodeView(id: c, state: .active, live: true),
            ]
            var settings = ClusterSettings()
            settings.replicationFactor = 1
            let moves = try await RebalancePlanning.plan(store: rig.store, nodes: views, settings: settings, balance: false)
            #expect(moves == [Move(org: rig.org, pin: pin, cid: cidA, from: a, to: c, reason: .drain)])
            let dispatches = try await rig.store.apply(moves: moves, fence: 1, now: rig.node.clock.now())
            #expect(dispatches.count == 1 && dispatches[0].node == c && dispatches[0].generation == 0)
            // Both placements exist until the new one is pinned; the pin stays pinned throughout.
            let during = try await rig.placements(pin)
            #expect(during.map(\.node) == [a, c])
            #expect(during.map(\.status) == ["pinned", "queued"])
            #expect(try await rig.pinStatus(pin) == "pinned")
            #expect(
                try await RebalancePlanning.plan(store: rig.store, nodes: views, settings: settings, balance: false).isEmpty,
                "a move in progress is not planned again"
            )
            try await workerC.tick()
            #expect(try await rig.placements(pin).map(\.node) == [c], "old placement released once the new one is pinned")
            #expect(try await rig.placements(pin).first?.replaces == nil)
            #expect(try await rig.pinStatus(pin) == "pinned")
            #expect(await kuboA.snapshot().pins.map(\.cid) == [cidA])
            try await workerA.tick(claimNew: false)
            #expect(await kuboA.snapshot().pins.isEmpty, "the drained node unpins the released CID")
            #expect(await kuboC.snapshot().pins.map(\.cid) == [cidA])
            let audit = try await rig.audit("move")
            #expect(audit.count == 1 && audit[0].detail.contains("\"reason\": \"drain\"") && audit[0].fence == 1)
        }
    }

    /// A move whose target fails gives the pin back to the rebalancer: the failed target no
    /// longer replaces the source, the next round picks another node, and the drain finishes.
    /// Issue 15: the failed target kept `replaces` for ever, so the rebalancer skipped the pin
    /// (a move "in progress") and the drain never ended.
    @Test func aFailedMoveTargetIsLetGoAndAnotherChosen() async throws {
        try await withRig { rig in
            let kubos = [a: FakeKuboNode(seed: 1), b: FakeKuboNode(seed: 2), c: FakeKuboNode(seed: 3)]
            var once = WorkerSettings()
            once.maxAttempts = 1
            func worker(_ n: TypeID) -> PinWorker { rig.node.worker(node: n, kubo: kubos[n]!, settings: once) }
            let pin = try await rig.service(placing: [a]).add(org: rig.org, request: PinRequest(cid: cidA)).id
            try await worker(a).tick()
            try await rig.store.setState(node: a, to: .draining, now: rig.node.clock.now())
            #expect(try await rig.store.beginTerm(fence: 1, node: b, now: rig.node.clock.now()))
            let views = [
                NodeView(id: a, state: .draining, live: true), NodeView(id: b, state: .active, live: true),
                NodeView(id: c, state: .active, live: true),
            ]
            var settings = ClusterSettings()
            settings.replicationFactor = 1
            func plan() async throws -> [Move] {
                try await RebalancePlanning.plan(store: rig.store, nodes: views, settings: settings, balance: false)
            }

            let first = try await plan()
            try #require(first.count == 1 && first[0].from == a)
            let failing = first[0].to
            let other = failing == b ? c : b
            await kubos[failing]!.updateKnobs { $0.scripts[cidA] = .fail(message: "no providers for this CID") }
            _ = try await rig.store.apply(moves: first, fence: 1, now: rig.node.clock.now())
            try await worker(failing).tick()
            let after = try await rig.placements(pin)
            #expect(after.first { $0.node == failing }?.status == "failed")
            #expect(after.allSatisfy { $0.replaces == nil }, "the failed target replaces nothing any more")
            #expect(after.first { $0.node == a }?.status == "pinned", "the source stays until a move succeeds")
            #expect(try await rig.pinStatus(pin) == "pinned")

            let second = try await plan()
            #expect(second == [Move(org: rig.org, pin: pin, cid: cidA, from: a, to: other, reason: .drain)], "another target: \(second)")
            _ = try await rig.store.apply(moves: second, fence: 1, now: rig.node.clock.now())
            try await worker(other).tick()
            let done = try await rig.placements(pin)
            #expect(!done.contains { $0.node == a }, "the drained node holds nothing: the drain can finish")
            #expect(done.first { $0.node == other }?.status == "pinned")
            #expect(try await rig.pinStatus(pin) == "pinned")
        }
    }

    /// The sweeper reads stuck placements, then requeues them in a fenced transaction; a worker
    /// that claims one in between must keep its claim. `requeue` used to re-check only the
    /// status under its lock, so it reset (or moved) a placement claimed a moment before.
    @Test func theSweeperLeavesAPlacementClaimedAfterItWasReadAlone() async throws {
        try await withRig { rig in
            let pin = try await rig.service(placing: [a]).add(org: rig.org, request: PinRequest(cid: cidB)).id
            let placements = PostgresPlacementStore(client: rig.node.opsClient, logger: Logger(label: "t"))
            // The job was lost: queued and due for longer than requeueAfter.
            rig.node.clock.advance(seconds: 61)
            let stuck = try await rig.store.stuckPlacements(now: rig.node.clock.now(), requeueAfterSeconds: 60, limit: 10)
            #expect(stuck.map(\.pin) == [pin])
            // Meanwhile the node's worker claims it after all.
            let lease = rig.node.clock.now().adding(seconds: 3660)
            #expect(try await placements.claim(node: a, now: rig.node.clock.now(), limit: 10, leaseUntil: lease).count == 1)
            #expect(try await rig.store.beginTerm(fence: 1, node: b, now: rig.node.clock.now()))
            let actions = try await rig.store.requeue(
                stuck,
                moveTargets: [pin: [b]],
                maxRedispatches: 0,
                requeueAfterSeconds: 60,
                fence: 1,
                now: rig.node.clock.now()
            )
            #expect(actions.isEmpty, "\(actions)")
            #expect(try await rig.placements(pin).map(\.status) == ["pinning"], "the claim stands, not moved, not reset")
            #expect(try await rig.placements(pin).map(\.node) == [a])
        }
    }

    @Test func theSweeperRequeuesAbandonedClaimsThenMovesThem() async throws {
        try await withRig { rig in
            let record = try await rig.service(placing: [a]).add(org: rig.org, request: PinRequest(cid: cidB))
            let pin = record.id
            // A worker on `a` claims it and dies (its lease runs out).
            let placements = PostgresPlacementStore(client: rig.node.opsClient, logger: Logger(label: "t"))
            let claims = try await placements.claim(
                node: a,
                now: rig.node.clock.now(),
                limit: 10,
                leaseUntil: rig.node.clock.now().adding(seconds: 5)
            )
            #expect(claims.count == 1)
            #expect(try await rig.store.stuckPlacements(now: rig.node.clock.now(), requeueAfterSeconds: 60, limit: 10).isEmpty)
            rig.node.clock.advance(seconds: 6)
            let stuck = try await rig.store.stuckPlacements(now: rig.node.clock.now(), requeueAfterSeconds: 60, limit: 10)
            #expect(stuck.map(\.pin) == [pin] && stuck[0].status == "pinning")
            #expect(try await rig.store.beginTerm(fence: 4, node: b, now: rig.node.clock.now()))
            await #expect(throws: ClusterStoreError.staleFence(presented: 3, current: 4)) {
                try await rig.store.requeue(stuck, moveTargets: [:], maxRedispatches: 2, requeueAfterSeconds: 60, fence: 3, now: rig.node.clock.now())
            }
            let first = try await rig.store.requeue(
                stuck,
                moveTargets: [pin: [b]],
                maxRedispatches: 2,
                requeueAfterSeconds: 60,
                fence: 4,
                now: rig.node.clock.now()
            )
            guard case .redispatched(let d1) = first.first else {
                Issue.record("expected a redispatch, got \(first)")
                return
            }
            #expect(d1.generation == 1 && d1.node == a)
            #expect(try await rig.placements(pin).map(\.status) == ["queued"])
            #expect(try await rig.pinStatus(pin) == "queued")
            // Still nobody takes it: queued and due for longer than requeueAfter → dispatched again…
            rig.node.clock.advance(seconds: 61)
            let again = try await rig.store.stuckPlacements(now: rig.node.clock.now(), requeueAfterSeconds: 60, limit: 10)
            #expect(again.count == 1)
            let second = try await rig.store.requeue(
                again,
                moveTargets: [pin: [b]],
                maxRedispatches: 2,
                requeueAfterSeconds: 60,
                fence: 4,
                now: rig.node.clock.now()
            )
            guard case .redispatched(let d2) = second.first else {
                Issue.record("expected a redispatch, got \(second)")
                return
            }
            #expect(d2.generation == 2 && d2.msgID != d1.msgID)
            // …and after maxRedispatches it moves to the best candidate not holding the pin.
            try await rig.store.register(node: Self.node(4), name: "n4", version: "t", now: rig.node.clock.now())
            _ = try await rig.store.apply(
                moves: [Move(org: rig.org, pin: pin, cid: cidB, from: nil, to: b, reason: .replicate)],
                fence: 4,
                now: rig.node.clock.now()
            )
            rig.node.clock.advance(seconds: 61)
            let stuckNow = try await rig.store.stuckPlacements(now: rig.node.clock.now(), requeueAfterSeconds: 60, limit: 10)
            let third = try await rig.store.requeue(
                stuckNow.filter { $0.node == a },
                moveTargets: [pin: [b, c]],
                maxRedispatches: 2,
                requeueAfterSeconds: 60,
                fence: 4,
                now: rig.node.clock.now()
            )
            guard case .moved(let move, let d3) = third.first else {
                Issue.record("expected a move, got \(third)")
                return
            }
            #expect(move.reason == .stuck && move.to == c && d3.node == c, "b already holds the pin, so c")
            rig.node.clock.advance(seconds: 61)
            #expect(
                try await !rig.store.stuckPlacements(now: rig.node.clock.now(), requeueAfterSeconds: 60, limit: 10).contains { $0.node == a },
                "the source of a move in progress is left to the move"
            )
            #expect(try await rig.audit("requeue").count == 2)
            #expect(try await rig.audit("move").last?.detail.contains("stuck") == true)
        }
    }

    @Test func reconcilerRepinsWhatKuboLost() async throws {
        try await withRig { rig in
            let kubo = FakeKuboNode(seed: 1)
            let worker = rig.node.worker(node: a, kubo: kubo)
            let record = try await rig.service(placing: [a]).add(org: rig.org, request: PinRequest(cid: cidA))
            try await worker.tick()
            let placed = try await rig.store.placedCIDs(node: a)
            #expect(placed.all == [cidA] && placed.pinned == [cidA])
            let dispatches = try await rig.store.repin(node: a, cids: [cidA], reason: "missing from Kubo (reconciler)", now: rig.node.clock.now())
            #expect(dispatches.count == 1 && dispatches[0].generation == 1)
            #expect(try await rig.pinStatus(record.id) == "queued")
            let report = try await worker.tick()
            #expect(report.pinned == 1)
        }
    }

    @Test func unknownNodesAreRefused() async throws {
        try await withRig { rig in
            await #expect(throws: ClusterStoreError.unknownNode(Self.node(9).description)) {
                try await rig.store.setState(node: Self.node(9), to: .draining, now: rig.node.clock.now())
            }
            try await rig.store.setState(node: a, to: .draining, now: rig.node.clock.now())
            let drainedAt = try await rig.store.node(a)?.drainRequestedAt
            #expect(drainedAt != nil)
            try await rig.store.setState(node: a, to: .active, now: rig.node.clock.now())
            #expect(try await rig.store.node(a)?.drainRequestedAt == nil)
            // The node's own "drained" never overrides an uncordon that came first.
            try await rig.store.setState(node: a, to: .drained, now: rig.node.clock.now())
            #expect(try await rig.store.node(a)?.state == .active)
            try await rig.store.setState(node: a, to: .draining, now: rig.node.clock.now())
            try await rig.store.setState(node: a, to: .drained, now: rig.node.clock.now())
            #expect(try await rig.store.node(a)?.state == .drained)
        }
    }
}
