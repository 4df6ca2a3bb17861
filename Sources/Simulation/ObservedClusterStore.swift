import Cluster
import Seams

/// What a node's leader-only writes did, as seen at the `ClusterStore` seam.
public struct LeaderWrite: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case beginTerm = "begin-term"
        case apply, requeue
    }
    public var kind: Kind
    public var node: String
    public var fence: Int64
    public var at: Timestamp
    /// Rows it changed (moves applied, placements requeued); 1 for a term begun.
    public var count: Int
    /// Refused by PostgreSQL because a newer term existed.
    public var refusedAsStale: Bool
    /// Whether the maintenance flag was on (per the bus) when the write was made.
    public var duringMaintenance: Bool
    public var reasons: [MoveReason]
}

/// Records leader-only writes for the checkers; everything else passes through. It changes
/// nothing: the decision and the refusal are the wrapped store's (PostgreSQL's).
struct ObservedClusterStore: ClusterStore {
    let inner: any ClusterStore
    let node: String
    let record: @Sendable (LeaderWrite) -> Void
    let maintenanceOn: @Sendable () -> Bool

    func register(node: TypeID, name: String, version: String, now: Timestamp) async throws {
        try await inner.register(node: node, name: name, version: version, now: now)
    }
    func touch(node: TypeID, now: Timestamp) async throws -> NodeRecord? { try await inner.touch(node: node, now: now) }
    func nodes() async throws -> [NodeRecord] { try await inner.nodes() }
    func node(_ id: TypeID) async throws -> NodeRecord? { try await inner.node(id) }
    func setState(node: TypeID, to state: NodeState, now: Timestamp) async throws {
        try await inner.setState(node: node, to: state, now: now)
    }
    func currentFence() async throws -> Int64 { try await inner.currentFence() }

    func beginTerm(fence: Int64, node id: TypeID, now: Timestamp) async throws -> Bool {
        let ok = try await inner.beginTerm(fence: fence, node: id, now: now)
        record(
            LeaderWrite(
                kind: .beginTerm,
                node: node,
                fence: fence,
                at: now,
                count: ok ? 1 : 0,
                refusedAsStale: !ok,
                duringMaintenance: maintenanceOn(),
                reasons: []
            )
        )
        return ok
    }

    func placements(onNodes nodes: [TypeID], limit: Int) async throws -> [PlacementView] {
        try await inner.placements(onNodes: nodes, limit: limit)
    }
    func underReplicated(below replicas: Int, limit: Int) async throws -> (placements: [PlacementView], unplaced: [Rebalancer.UnplacedPin]) {
        try await inner.underReplicated(below: replicas, limit: limit)
    }
    func placements(afterPin: TypeID?, limit: Int) async throws -> [PlacementView] {
        try await inner.placements(afterPin: afterPin, limit: limit)
    }

    func apply(moves: [Move], fence: Int64, now: Timestamp) async throws -> [Dispatch] {
        let maintenance = maintenanceOn()
        do {
            let out = try await inner.apply(moves: moves, fence: fence, now: now)
            record(
                LeaderWrite(
                    kind: .apply,
                    node: node,
                    fence: fence,
                    at: now,
                    count: out.count,
                    refusedAsStale: false,
                    duringMaintenance: maintenance,
                    reasons: moves.map(\.reason)
                )
            )
            return out
        } catch let error as ClusterStoreError {
            if case .staleFence = error {
                record(
                    LeaderWrite(
                        kind: .apply,
                        node: node,
                        fence: fence,
                        at: now,
                        count: 0,
                        refusedAsStale: true,
                        duringMaintenance: maintenance,
                        reasons: moves.map(\.reason)
                    )
                )
            }
            throw error
        }
    }

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
        let maintenance = maintenanceOn()
        do {
            let out = try await inner.requeue(
                stuck,
                moveTargets: moveTargets,
                maxRedispatches: maxRedispatches,
                requeueAfterSeconds: requeueAfterSeconds,
                fence: fence,
                now: now
            )
            record(
                LeaderWrite(
                    kind: .requeue,
                    node: node,
                    fence: fence,
                    at: now,
                    count: out.count,
                    refusedAsStale: false,
                    duringMaintenance: maintenance,
                    reasons: []
                )
            )
            return out
        } catch let error as ClusterStoreError {
            if case .staleFence = error {
                record(
                    LeaderWrite(
                        kind: .requeue,
                        node: node,
                        fence: fence,
                        at: now,
                        count: 0,
                        refusedAsStale: true,
                        duringMaintenance: maintenance,
                        reasons: []
                    )
                )
            }
            throw error
        }
    }

    func placedCIDs(node: TypeID) async throws -> (all: Set<String>, pinned: Set<String>) { try await inner.placedCIDs(node: node) }
    func pendingUnpins(node: TypeID) async throws -> Set<String> { try await inner.pendingUnpins(node: node) }
    func repin(node: TypeID, cids: [String], reason: String, now: Timestamp) async throws -> [Dispatch] {
        try await inner.repin(node: node, cids: cids, reason: reason, now: now)
    }
    func counts(replicas: Int) async throws -> ClusterCounts { try await inner.counts(replicas: replicas) }
}
