import Seams

/// Rendezvous (highest random weight) hashing: each node scores every CID, and a pin lives on
/// the `replicas` highest-scoring eligible nodes. Adding or removing a node moves only the pins
/// whose top set it enters or leaves (about 1/N of them), and every node computes the same
/// answer from the same inputs with no coordination.
public enum Rendezvous {
    /// The `replicas` best nodes for `cid` among `nodes`, best first (fewer if there are fewer
    /// nodes). Ties (astronomically unlikely) break by node ID, so the result is a function of
    /// the inputs only.
    public static func choose(cid: String, among nodes: [TypeID], replicas: Int) -> [TypeID] {
        guard replicas > 0 else { return [] }
        let scored = nodes.map { (score(node: $0, cid: cid), $0) }
        return scored.sorted { $0.0 != $1.0 ? $0.0 > $1.0 : ($0.1.high, $0.1.low) < ($1.1.high, $1.1.low) }
            .prefix(replicas).map(\.1)
    }

    /// All `nodes` ranked for `cid`, best first.
    public static func rank(cid: String, among nodes: [TypeID]) -> [TypeID] {
        choose(cid: cid, among: nodes, replicas: nodes.count)
    }

    /// FNV-1a over the node's UUID and the CID, finished with the SplitMix64 mixer: cheap,
    /// stable across processes and releases (unlike `Hasher`), and well spread.
    public static func score(node: TypeID, cid: String) -> UInt64 {
        StableHash.mix(StableHash.fnv1a(StableHash.fnv1a(StableHash.fnvOffset, node.bytes), cid.utf8) &+ StableHash.golden)
    }
}

/// Where new pins go: the live, active nodes this node knows of, chosen by rendezvous.
/// Read synchronously on the request path; the cluster agent replaces the snapshot as
/// heartbeats arrive and node states change.
public final class PlacementPolicy: Sendable {
    private let state: LockedBox<[TypeID]>
    private let unplacedBox = LockedBox<Unplaced?>(nil)
    public let replicationFactor: Int

    /// Pins this node accepted while no node could take them (stored with zero placements),
    /// since the first of them. The episode ends when a node is eligible again: the leader then
    /// places them (its replication scan runs when more nodes become eligible).
    public struct Unplaced: Sendable, Equatable {
        public var count: Int
        public var since: Timestamp

        public init(count: Int, since: Timestamp) {
            self.count = count
            self.since = since
        }
    }

    public init(replicationFactor: Int, initial: [TypeID] = []) {
        self.replicationFactor = replicationFactor
        self.state = LockedBox(initial)
    }

    /// Replaces the set of nodes that may take new pins. Returns the episode of unplaced pins
    /// this ends (a node is eligible again), if one was open.
    @discardableResult
    public func update(eligible: [TypeID]) -> Unplaced? {
        state.value = eligible.sorted { ($0.high, $0.low) < ($1.high, $1.low) }
        guard !eligible.isEmpty else { return nil }
        return unplacedBox.mutate { episode in
            defer { episode = nil }
            return episode
        }
    }

    /// Counts a pin stored with no placement at `now`; true for the first of an episode.
    @discardableResult
    public func acceptedUnplaced(at now: Timestamp) -> Bool {
        unplacedBox.mutate { episode in
            guard var open = episode else {
                episode = Unplaced(count: 1, since: now)
                return true
            }
            open.count += 1
            episode = open
            return false
        }
    }

    /// The open episode of unplaced pins (nil: every pin accepted since the last one found a node).
    public var unplaced: Unplaced? { unplacedBox.value }

    public var eligible: [TypeID] { state.value }

    /// The nodes for a new pin of `cid`: the replication factor capped by the eligible set.
    public func nodes(for cid: String) -> [TypeID] {
        Rendezvous.choose(cid: cid, among: state.value, replicas: replicationFactor)
    }
}

/// A value behind a lock, for state read on request paths and written by the cluster agent.
public final class LockedBox<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `stored` is only touched under `lock`.
    private var stored: Value
    private let lock = Lock()

    public init(_ value: Value) { self.stored = value }

    public var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    public func mutate<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&stored) } }
}
