import Cluster
import Logging
import PostgresNIO
import PostgresStore
import Seams

/// The test kit's deliberately broken policies: each wraps a seam so that production code
/// misbehaves the way a bug would, to prove that the checkers catch it (and that the report
/// carries a replay command). Never used by a normal run.
public enum BrokenPolicy: String, Sendable, CaseIterable {
    /// The leader does not see the maintenance flag: its rebalancer and sweeper run during
    /// maintenance. Must trip `rebalancer-and-sweeper-silent-in-maintenance`.
    case rebalancerIgnoresMaintenance = "rebalancer-ignores-maintenance"
    /// Moves are break-before-make: the source placement is released as soon as the move is
    /// applied, before the new one is pinned. With one replica, must trip
    /// `no-pin-loses-last-replica`.
    case drainReleasesLastReplicaFirst = "drain-releases-last-replica-first"

    var overrides: SimOverrides {
        var o = SimOverrides()
        switch self {
        case .rebalancerIgnoresMaintenance:
            o.bus = { _, bus in MaintenanceBlindBus(inner: bus) }
        case .drainReleasesLastReplicaFirst:
            o.clusterStore = { _, store, ops in BreakBeforeMakeStore(inner: store, ops: ops) }
        }
        return o
    }
}

/// A bus on which the maintenance key never exists.
struct MaintenanceBlindBus: ClusterBus {
    let inner: any ClusterBus
    func publish(_ subject: String, _ payload: [UInt8]) async throws { try await inner.publish(subject, payload) }
    func subscribe(_ subject: String, capacity: Int) async throws -> any BusInbox { try await inner.subscribe(subject, capacity: capacity) }
    func enqueue(_ subject: String, msgID: String, _ payload: [UInt8]) async throws -> EnqueueResult {
        try await inner.enqueue(subject, msgID: msgID, payload)
    }
    func openQueue(_ subject: String) async throws { try await inner.openQueue(subject) }
    func closeQueue(_ subject: String) async throws { try await inner.closeQueue(subject) }
    func fetch(_ subject: String, max: Int, wait: Duration) async throws -> [BusJob] { try await inner.fetch(subject, max: max, wait: wait) }
    func ack(_ job: BusJob) async throws { try await inner.ack(job) }
    func nak(_ job: BusJob, delay: Duration?) async throws { try await inner.nak(job, delay: delay) }
    func inProgress(_ job: BusJob) async throws { try await inner.inProgress(job) }
    func term(_ job: BusJob) async throws { try await inner.term(job) }
    func kvGet(_ key: String) async throws -> KVEntry? {
        key == ClusterKeys.maintenance ? nil : try await inner.kvGet(key)
    }
    func kvCreate(_ key: String, _ value: [UInt8], ttl: Duration?) async throws -> UInt64 { try await inner.kvCreate(key, value, ttl: ttl) }
    func kvUpdate(_ key: String, _ value: [UInt8], revision: UInt64, ttl: Duration?) async throws -> UInt64 {
        try await inner.kvUpdate(key, value, revision: revision, ttl: ttl)
    }
    func kvPut(_ key: String, _ value: [UInt8], ttl: Duration?) async throws -> UInt64 { try await inner.kvPut(key, value, ttl: ttl) }
    func kvDelete(_ key: String, revision: UInt64?) async throws { try await inner.kvDelete(key, revision: revision) }
}

/// A cluster store whose moves release the source placement at once.
struct BreakBeforeMakeStore: ClusterStore {
    let inner: any ClusterStore
    let ops: PostgresClient

    func apply(moves: [Move], fence: Int64, now: Timestamp) async throws -> [Dispatch] {
        let out = try await inner.apply(moves: moves, fence: fence, now: now)
        let logger = silentLogger("sim.broken")
        for m in moves where out.contains(where: { $0.pin == m.pin && $0.node == m.to }) {
            guard let from = m.from else { continue }
            try await ops.query(
                "DELETE FROM placements WHERE org_id = \(m.org.uuid) AND pin_id = \(m.pin.uuid) AND node_id = \(from.uuid)",
                logger: logger
            )
            try await ops.query(
                "UPDATE placements SET replaces = NULL WHERE org_id = \(m.org.uuid) AND pin_id = \(m.pin.uuid) AND node_id = \(m.to.uuid)",
                logger: logger
            )
        }
        return out
    }

    func register(node: TypeID, name: String, version: String, now: Timestamp) async throws {
        try await inner.register(node: node, name: name, version: version, now: now)
    }
    func touch(node: TypeID, now: Timestamp) async throws -> NodeRecord? { try await inner.touch(node: node, now: now) }
    func nodes() async throws -> [NodeRecord] { try await inner.nodes() }
    func node(_ id: TypeID) async throws -> NodeRecord? { try await inner.node(id) }
    func setState(node: TypeID, to state: NodeState, now: Timestamp) async throws { try await inner.setState(node: node, to: state, now: now) }
    func currentFence() async throws -> Int64 { try await inner.currentFence() }
    func beginTerm(fence: Int64, node: TypeID, now: Timestamp) async throws -> Bool { try await inner.beginTerm(fence: fence, node: node, now: now) }
    func placements(onNodes nodes: [TypeID], limit: Int) async throws -> [PlacementView] { try await inner.placements(onNodes: nodes, limit: limit) }
    func underReplicated(below replicas: Int, limit: Int) async throws -> (placements: [PlacementView], unplaced: [Rebalancer.UnplacedPin]) {
        try await inner.underReplicated(below: replicas, limit: limit)
    }
    func placements(afterPin: TypeID?, limit: Int) async throws -> [PlacementView] { try await inner.placements(afterPin: afterPin, limit: limit) }
    func stuckPlacements(now: Timestamp, requeueAfterSeconds: Int64, limit: Int) async throws -> [PlacementView] {
        try await inner.stuckPlacements(now: now, requeueAfterSeconds: requeueAfterSeconds, limit: limit)
    }
    func requeue(
        _ stuck: [PlacementView],
        moveTargets: [TypeID: [TypeID]],
        maxRedispatches: Int,
        requeueAfterSeconds: Int64,
        fence: Int64,
        now: Timestamp
    ) async throws -> [SweepAction] {
        try await inner.requeue(
            stuck,
            moveTargets: moveTargets,
            maxRedispatches: maxRedispatches,
            requeueAfterSeconds: requeueAfterSeconds,
            fence: fence,
            now: now
        )
    }
    func placedCIDs(node: TypeID) async throws -> (all: Set<String>, pinned: Set<String>) { try await inner.placedCIDs(node: node) }
    func pendingUnpins(node: TypeID) async throws -> Set<String> { try await inner.pendingUnpins(node: node) }
    func repin(node: TypeID, cids: [String], reason: String, now: Timestamp) async throws -> [Dispatch] {
        try await inner.repin(node: node, cids: cids, reason: reason, now: now)
    }
    func counts(replicas: Int) async throws -> ClusterCounts { try await inner.counts(replicas: replicas) }
}
