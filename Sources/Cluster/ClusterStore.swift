import Seams

/// A node's administrative state (PostgreSQL `nodes.state`). `draining` is what `admin drain`
/// sets; the node turns it into `drained` once its grace period is over and its jobs finished.
public enum NodeState: String, Sendable, Codable, CaseIterable {
    case active, draining, drained
}

/// A registered node as PostgreSQL knows it.
public struct NodeRecord: Sendable, Equatable {
    public var id: TypeID
    public var name: String
    public var state: NodeState
    public var drainRequestedAt: Timestamp?
    public var lastSeen: Timestamp?

    public init(id: TypeID, name: String, state: NodeState, drainRequestedAt: Timestamp? = nil, lastSeen: Timestamp? = nil) {
        self.id = id
        self.name = name
        self.state = state
        self.drainRequestedAt = drainRequestedAt
        self.lastSeen = lastSeen
    }
}

/// One placement, as the rebalancer sees it.
public struct PlacementView: Sendable, Equatable {
    public var org: TypeID
    public var pin: TypeID
    public var cid: String
    public var node: TypeID
    public var status: String
    /// Set on the new placement of a move until it is pinned and the old one released.
    public var replaces: TypeID?

    public init(org: TypeID, pin: TypeID, cid: String, node: TypeID, status: String, replaces: TypeID? = nil) {
        self.org = org
        self.pin = pin
        self.cid = cid
        self.node = node
        self.status = status
        self.replaces = replaces
    }
}

/// A job to put on `pin.jobs.<node>`: pin the placement (org, pin) on `node`. `generation`
/// goes up each time the placement is dispatched again, so each dispatch has its own msg id
/// while a repeated publish of the same dispatch is deduplicated.
public struct Dispatch: Sendable, Equatable, Codable {
    public var org: TypeID
    public var pin: TypeID
    public var cid: String
    public var node: TypeID
    public var generation: Int
    /// When this dispatch was decided (µs): part of the msg id, so that a placement made again
    /// on the same node later is a new job, while a retried publish of this one is a duplicate.
    public var dispatchedAt: Int64

    public init(org: TypeID, pin: TypeID, cid: String, node: TypeID, generation: Int, dispatchedAt: Timestamp) {
        self.org = org
        self.pin = pin
        self.cid = cid
        self.node = node
        self.generation = generation
        self.dispatchedAt = dispatchedAt.microseconds
    }

    public var subject: String { Subjects.jobs(node) }
    public var msgID: String { "\(pin).\(node).\(generation).\(dispatchedAt)" }
}

/// What the requeue sweeper did with one stuck placement.
public enum SweepAction: Sendable, Equatable {
    case redispatched(Dispatch)
    case moved(Move, Dispatch)
}

public enum ClusterStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A leader-only write carried a fence token older than the newest term: the writer was
    /// deposed. Nothing was written.
    case staleFence(presented: Int64, current: Int64)
    case unknownNode(String)

    public var description: String {
        switch self {
        case .staleFence(let p, let c): "fence token \(p) is stale (current term \(c)): this node is no longer the leader"
        case .unknownNode(let n): "unknown node \(n)"
        }
    }
}

/// The cluster's view of PostgreSQL (the source of truth). Production: `PostgresClusterStore`
/// with the ops role. Every leader-only write takes the caller's fence token and is refused in
/// the same transaction when a newer term exists.
public protocol ClusterStore: Sendable {
    /// Registers the node (or refreshes its name and version), keeping its state.
    func register(node: TypeID, name: String, version: String, now: Timestamp) async throws
    /// Records that the node is alive (its own heartbeat) and returns its record (the
    /// operator's state), in one round trip; nil for an unregistered node.
    func touch(node: TypeID, now: Timestamp) async throws -> NodeRecord?
    func nodes() async throws -> [NodeRecord]
    func node(_ id: TypeID) async throws -> NodeRecord?
    /// Admin and drain transitions; throws `unknownNode` for an unregistered node. Setting
    /// `drained` does nothing unless the node is still draining (an uncordon wins).
    func setState(node: TypeID, to state: NodeState, now: Timestamp) async throws

    /// The newest fence token (0 before the first leader).
    func currentFence() async throws -> Int64
    /// Starts term `fence` for `node` if `fence` is newer than every earlier term; false otherwise.
    func beginTerm(fence: Int64, node: TypeID, now: Timestamp) async throws -> Bool

    /// Placements on `nodes`, at most `limit`, in a stable order.
    func placements(onNodes nodes: [TypeID], limit: Int) async throws -> [PlacementView]
    /// Every placement of up to `limit` pins, ordered by pin, starting after `afterPin` (for
    /// a full balance plan, page by page).
    func placements(afterPin: TypeID?, limit: Int) async throws -> [PlacementView]
    /// Pins with fewer than `replicas` placements (at most `limit` pins, stable order): the
    /// placements they have, and the pins that have none.
    func underReplicated(below replicas: Int, limit: Int) async throws -> (placements: [PlacementView], unplaced: [Rebalancer.UnplacedPin])
    /// Applies moves make-before-break: each gets a new queued placement on `to` that replaces
    /// the one on `from` (released once the new one is pinned), audited with reason and fence.
    /// Returns the dispatches to publish. A move whose source placement is gone or whose target
    /// already holds the pin is skipped.
    func apply(moves: [Move], fence: Int64, now: Timestamp) async throws -> [Dispatch]

    /// Placements that look stuck: `pinning` with an expired claim lease, or `queued` and due
    /// for longer than `requeueAfterSeconds` (their job was lost).
    func stuckPlacements(now: Timestamp, requeueAfterSeconds: Int64, limit: Int) async throws -> [PlacementView]
    /// Requeues stuck placements with a new dispatch generation (audited, fenced), or moves the
    /// ones already dispatched `maxRedispatches` times to the first of `moveTargets[pin]` (best
    /// first) that does not hold the pin yet.
    /// `requeueAfterSeconds` is the cutoff `stuckPlacements` used: each placement is re-checked
    /// against it (and its lease) under the row lock before anything changes.
    func requeue(
        _ stuck: [PlacementView],
        moveTargets: [TypeID: [TypeID]],
        maxRedispatches: Int,
        requeueAfterSeconds: Int64,
        fence: Int64,
        now: Timestamp
    ) async throws -> [SweepAction]

    /// The CIDs placed on `node` (any status), and those PostgreSQL believes are pinned there.
    func placedCIDs(node: TypeID) async throws -> (all: Set<String>, pinned: Set<String>)
    /// CIDs queued for unpinning on `node` (the worker owns those).
    func pendingUnpins(node: TypeID) async throws -> Set<String>
    /// Marks the pinned placements of `cids` on `node` as queued again (their pin is missing
    /// from Kubo); returns the dispatches to publish.
    func repin(node: TypeID, cids: [String], reason: String, now: Timestamp) async throws -> [Dispatch]
    /// Pins by status, placements by state and pinned pins with fewer than `replicas` pinned
    /// placements, cluster-wide: what the leader exports as gauges every `metrics.countsInterval`.
    func counts(replicas: Int) async throws -> ClusterCounts
}

/// Subject names from the brief.
public enum Subjects {
    public static func jobs(_ node: TypeID) -> String { "pin.jobs.\(node)" }
    public static func heartbeat(_ node: TypeID) -> String { "node.heartbeat.\(node)" }
    /// Node state changes for the live set (the `live_nodes` cache's invalidation subject).
    public static let liveNodeChanges = "cache.invalidate.live_nodes"
    public static let heartbeats = "node.heartbeat.*"
}

/// Keys of the `ANCHORAGE_CLUSTER` KV bucket.
public enum ClusterKeys {
    public static let bucket = "ANCHORAGE_CLUSTER"
    public static let leader = "leader"
    public static let maintenance = "maintenance"
}

/// Cluster-wide counts, read by the leader on an interval (never per scrape).
public struct ClusterCounts: Sendable, Equatable {
    public var pins: [String: Int]
    public var placements: [String: Int]
    /// Pinned pins with fewer pinned placements than the desired factor.
    public var underReplicated: Int
    /// When they were read.
    public var at: Timestamp

    public init(pins: [String: Int], placements: [String: Int], underReplicated: Int, at: Timestamp) {
        self.pins = pins
        self.placements = placements
        self.underReplicated = underReplicated
        self.at = at
    }

    /// The statuses a pin or placement can have (exported as zero when none has it).
    public static let statuses = ["queued", "pinning", "pinned", "failed"]
}
