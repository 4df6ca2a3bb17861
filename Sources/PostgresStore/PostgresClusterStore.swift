import Cluster
import Foundation
import Logging
import PostgresNIO
import Seams

/// The cluster's state on PostgreSQL, with the ops role. Leader-only writes (`apply`,
/// `requeue`) run in one transaction that first reads the newest fence token `FOR SHARE` and
/// refuses an older one; `beginTerm` raises the token under the same row lock, so a takeover
/// and a deposed leader's write are strictly ordered.
public struct PostgresClusterStore: ClusterStore {
    public let client: PostgresClient
    public let entropy: any Entropy
    public let logger: Logger
    /// `cluster.minReplicas`, for the pin status derived after a requeue.
    public let minReplicas: Int

    public init(client: PostgresClient, entropy: any Entropy, minReplicas: Int = 1, logger: Logger) {
        self.client = client
        self.entropy = entropy
        self.minReplicas = minReplicas
        self.logger = logger
    }

    // MARK: nodes

    public func register(node: TypeID, name: String, version: String, now: Timestamp) async throws {
        try await client.query(
            """
            INSERT INTO nodes (id, name, state, created_at, last_seen_at, version)
            VALUES (\(node.uuid), \(name), 'active', \(now), \(now), \(version))
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, version = EXCLUDED.version, last_seen_at = EXCLUDED.last_seen_at
            """,
            logger: logger
        )
    }

    public func touch(node: TypeID, now: Timestamp) async throws -> NodeRecord? {
        let rows = try await client.query(
            """
            UPDATE nodes SET last_seen_at = \(now) WHERE id = \(node.uuid)
            RETURNING name, state, drain_requested_at, last_seen_at
            """,
            logger: logger
        )
        for try await (name, state, drain, seen) in rows.decode((String, String, Timestamp?, Timestamp?).self) {
            return NodeRecord(id: node, name: name, state: NodeState(rawValue: state) ?? .active, drainRequestedAt: drain, lastSeen: seen)
        }
        return nil
    }

    public func nodes() async throws -> [NodeRecord] {
        let rows = try await client.query(
            "SELECT id, name, state, drain_requested_at, last_seen_at FROM nodes ORDER BY id",
            logger: logger
        )
        var out: [NodeRecord] = []
        for try await (id, name, state, drain, seen) in rows.decode((UUID, String, String, Timestamp?, Timestamp?).self) {
            out.append(
                NodeRecord(
                    id: TypeID(prefix: IDPrefix.node, uuid: id),
                    name: name,
                    state: NodeState(rawValue: state) ?? .active,
                    drainRequestedAt: drain,
                    lastSeen: seen
                )
            )
        }
        return out
    }

    public func node(_ id: TypeID) async throws -> NodeRecord? {
        let rows = try await client.query(
            "SELECT name, state, drain_requested_at, last_seen_at FROM nodes WHERE id = \(id.uuid)",
            logger: logger
        )
        for try await (name, state, drain, seen) in rows.decode((String, String, Timestamp?, Timestamp?).self) {
            return NodeRecord(id: id, name: name, state: NodeState(rawValue: state) ?? .active, drainRequestedAt: drain, lastSeen: seen)
        }
        return nil
    }

    public func setState(node: TypeID, to state: NodeState, now: Timestamp) async throws {
        // `drained` is the node's own step after `draining`: it never overrides an operator's
        // uncordon that landed since the node last read its state (found by the simulator).
        let rows = try await client.query(
            """
            UPDATE nodes SET state = \(state.rawValue),
              drain_requested_at = CASE WHEN \(state.rawValue) = 'active' THEN NULL
                                        ELSE coalesce(drain_requested_at, \(now)) END
            WHERE id = \(node.uuid) AND (\(state.rawValue) <> 'drained' OR state <> 'active')
            RETURNING 1
            """,
            logger: logger
        ).collect()
        if rows.isEmpty, try await self.node(node) == nil { throw ClusterStoreError.unknownNode(node.description) }
    }

    // MARK: fencing

    public func currentFence() async throws -> Int64 {
        let rows = try await client.query("SELECT fence FROM cluster_fence WHERE id = 1", logger: logger)
        for try await fence in rows.decode(Int64.self) { return fence }
        return 0
    }

    public func beginTerm(fence: Int64, node: TypeID, now: Timestamp) async throws -> Bool {
        try await client.withTransaction(logger: logger) { conn in
            let raised = try await conn.query(
                "UPDATE cluster_fence SET fence = \(fence) WHERE id = 1 AND fence < \(fence) RETURNING 1",
                logger: logger
            ).collect()
            guard !raised.isEmpty else { return false }
            try await conn.query(
                "INSERT INTO leader_terms (fence, node_id, started_at) VALUES (\(fence), \(node.uuid), \(now))",
                logger: logger
            )
            return true
        }
    }

    /// A transaction whose refusal (a stale fence) surfaces as `ClusterStoreError`, not wrapped
    /// in postgres-nio's transaction error, so that callers can tell "deposed" from "failed".
    func fencedTransaction<T: Sendable>(_ body: (PostgresConnection) async throws -> sending T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { conn in try await body(conn) }
        } catch let error as PostgresTransactionError {
            if let refused = error.closureError as? ClusterStoreError, error.rollbackError == nil { throw refused }
            throw error
        }
    }

    /// Refuses the transaction's leader-only writes unless `fence` is the newest term's.
    static func checkFence(_ conn: PostgresConnection, _ fence: Int64, logger: Logger) async throws {
        var current: Int64 = 0
        for try await f in try await conn.query("SELECT fence FROM cluster_fence WHERE id = 1 FOR SHARE", logger: logger).decode(Int64.self) {
            current = f
        }
        if fence < current { throw ClusterStoreError.staleFence(presented: fence, current: current) }
    }

    // MARK: placements for planning

    static func decodePlacements(_ rows: PostgresRowSequence) async throws -> [PlacementView] {
        var out: [PlacementView] = []
        for try await (org, pin, cid, node, status, replaces) in rows.decode((UUID, UUID, String, UUID, String, UUID?).self) {
            out.append(
                PlacementView(
                    org: TypeID(prefix: IDPrefix.org, uuid: org),
                    pin: TypeID(prefix: IDPrefix.pin, uuid: pin),
                    cid: cid,
                    node: TypeID(prefix: IDPrefix.node, uuid: node),
                    status: status,
                    replaces: replaces.map { TypeID(prefix: IDPrefix.node, uuid: $0) }
                )
            )
        }
        return out
    }

    public func placements(onNodes nodes: [TypeID], limit: Int) async throws -> [PlacementView] {
        let ids = nodes.map(\.uuid)
        return try await Self.decodePlacements(
            client.query(
                """
                SELECT p.org_id, p.pin_id, p.cid, p.node_id, p.status, p.replaces FROM placements p
                WHERE (p.org_id, p.pin_id) IN (
                  SELECT org_id, pin_id FROM placements WHERE node_id = ANY(\(ids)) ORDER BY pin_id LIMIT \(limit))
                ORDER BY p.pin_id, p.node_id
                """,
                logger: logger
            )
        )
    }

    public func placements(afterPin: TypeID?, limit: Int) async throws -> [PlacementView] {
        let after = afterPin?.uuid ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        return try await Self.decodePlacements(
            client.query(
                """
                SELECT p.org_id, p.pin_id, p.cid, p.node_id, p.status, p.replaces FROM placements p
                WHERE p.pin_id IN (SELECT DISTINCT pin_id FROM placements WHERE pin_id > \(after) ORDER BY pin_id LIMIT \(limit))
                ORDER BY p.pin_id, p.node_id
                """,
                logger: logger
            )
        )
    }

    // MARK: leader writes

    func audit(
        _ conn: PostgresConnection,
        org: TypeID,
        action: String,
        subject: TypeID,
        detail: [String: String],
        fence: Int64?,
        now: Timestamp
    ) async throws {
        let id = TypeID.make(IDPrefix.audit, clock: FixedClock(now), entropy: entropy)
        let json = String(decoding: try JSONSerialization.data(withJSONObject: detail, options: [.sortedKeys]), as: UTF8.self)
        try await conn.query(
            """
            INSERT INTO audit_log (org_id, id, at, actor, action, subject, detail, fence)
            VALUES (\(org.uuid), \(id.uuid), \(now), 'cluster', \(action), \(subject.description), \(json)::jsonb, \(fence))
            """,
            logger: logger
        )
    }

    public func apply(moves: [Move], fence: Int64, now: Timestamp) async throws -> [Dispatch] {
        try await fencedTransaction { conn in
            try await Self.checkFence(conn, fence, logger: logger)
            var out: [Dispatch] = []
            for move in moves {
                guard try await insertMove(conn, move, now: now) else { continue }
                try await audit(
                    conn,
                    org: move.org,
                    action: "move",
                    subject: move.pin,
                    detail: ["from": move.from?.description ?? "", "to": move.to.description, "reason": move.reason.rawValue, "cid": move.cid],
                    fence: fence,
                    now: now
                )
                out.append(Dispatch(org: move.org, pin: move.pin, cid: move.cid, node: move.to, generation: 0, dispatchedAt: now))
            }
            return out
        }
    }

    /// The new placement of a move; false when the source is gone or the target holds the pin.
    /// A move without a source adds a replica (nothing to release later).
    func insertMove(_ conn: PostgresConnection, _ move: Move, now: Timestamp) async throws -> Bool {
        guard let from = move.from else {
            let rows = try await conn.query(
                """
                INSERT INTO placements (org_id, pin_id, node_id, status, attempts, updated_at, cid, created_at, next_attempt_at,
                                        generation, dispatched_at)
                SELECT org_id, id, \(move.to.uuid), 'queued', 0, \(now), cid_key, created_at, '-infinity', 0, \(now)
                FROM pins WHERE org_id = \(move.org.uuid) AND id = \(move.pin.uuid) AND status <> 'failed'
                ON CONFLICT DO NOTHING RETURNING 1
                """,
                logger: logger
            ).collect()
            if !rows.isEmpty {
                try await PostgresPlacementStore.derivePinStatus(
                    conn,
                    org: move.org,
                    pin: move.pin,
                    now: now,
                    minReplicas: minReplicas,
                    logger: logger
                )
            }
            return !rows.isEmpty
        }
        let rows = try await conn.query(
            """
            INSERT INTO placements (org_id, pin_id, node_id, status, attempts, updated_at, cid, created_at, next_attempt_at,
                                    generation, dispatched_at, replaces)
            SELECT org_id, pin_id, \(move.to.uuid), 'queued', 0, \(now), cid, created_at, '-infinity', 0, \(now), node_id
            FROM placements WHERE org_id = \(move.org.uuid) AND pin_id = \(move.pin.uuid) AND node_id = \(from.uuid)
            ON CONFLICT DO NOTHING RETURNING 1
            """,
            logger: logger
        ).collect()
        return !rows.isEmpty
    }

    public func underReplicated(below replicas: Int, limit: Int) async throws -> (placements: [PlacementView], unplaced: [Rebalancer.UnplacedPin]) {
        let rows = try await client.query(
            """
            WITH short AS (
              SELECT p.org_id, p.id, p.cid_key AS cid FROM pins p
              WHERE p.status <> 'failed'
                AND (SELECT count(*) FROM placements pl WHERE pl.org_id = p.org_id AND pl.pin_id = p.id) < \(replicas)
              ORDER BY p.id LIMIT \(limit))
            SELECT s.org_id, s.id, s.cid, pl.node_id, pl.status, pl.replaces
            FROM short s LEFT JOIN placements pl ON pl.org_id = s.org_id AND pl.pin_id = s.id
            ORDER BY s.id, pl.node_id
            """,
            logger: logger
        )
        var placed: [PlacementView] = []
        var unplaced: [Rebalancer.UnplacedPin] = []
        for try await (org, pin, cid, node, status, replaces) in rows.decode((UUID, UUID, String, UUID?, String?, UUID?).self) {
            let o = TypeID(prefix: IDPrefix.org, uuid: org)
            let p = TypeID(prefix: IDPrefix.pin, uuid: pin)
            if let node, let status {
                placed.append(
                    PlacementView(
                        org: o,
                        pin: p,
                        cid: cid,
                        node: TypeID(prefix: IDPrefix.node, uuid: node),
                        status: status,
                        replaces: replaces.map { TypeID(prefix: IDPrefix.node, uuid: $0) }
                    )
                )
            } else {
                unplaced.append(Rebalancer.UnplacedPin(org: o, pin: p, cid: cid))
            }
        }
        return (placed, unplaced)
    }

    public func stuckPlacements(now: Timestamp, requeueAfterSeconds: Int64, limit: Int) async throws -> [PlacementView] {
        let cutoff = now.adding(seconds: -requeueAfterSeconds)
        return try await Self.decodePlacements(
            client.query(
                """
                SELECT org_id, pin_id, cid, node_id, status, replaces FROM placements
                WHERE ((status = 'pinning' AND lease_until < \(now))
                   OR (status = 'queued' AND next_attempt_at < \(cutoff) AND coalesce(dispatched_at, updated_at) < \(cutoff)))
                  -- the source of a move in progress waits for the move, not for the sweeper
                  AND NOT EXISTS (SELECT 1 FROM placements m
                                  WHERE m.org_id = placements.org_id AND m.pin_id = placements.pin_id AND m.replaces = placements.node_id)
                ORDER BY node_id, pin_id LIMIT \(limit)
                """,
                logger: logger
            )
        )
    }

    public func requeue(
        _ stuck: [PlacementView],
        moveTargets: [TypeID: [TypeID]],
        maxRedispatches: Int,
        requeueAfterSeconds: Int64,
        fence: Int64,
        now: Timestamp
    ) async throws -> [SweepAction] {
        let cutoff = now.adding(seconds: -requeueAfterSeconds)
        return try await fencedTransaction { conn in
            try await Self.checkFence(conn, fence, logger: logger)
            var out: [SweepAction] = []
            for p in stuck {
                // Re-read under the row lock with the whole condition that made it stuck: a
                // worker may have claimed it (a fresh lease), finished it, or it may have been
                // dispatched again since it was read; then it is not stuck any more.
                let rows = try await conn.query(
                    """
                    SELECT generation, status FROM placements
                    WHERE org_id = \(p.org.uuid) AND pin_id = \(p.pin.uuid) AND node_id = \(p.node.uuid)
                      AND ((status = 'pinning' AND lease_until < \(now))
                        OR (status = 'queued' AND next_attempt_at < \(cutoff) AND coalesce(dispatched_at, updated_at) < \(cutoff)))
                    FOR UPDATE
                    """,
                    logger: logger
                ).collect()
                guard let row = rows.first else { continue }
                let (generation, status) = try row.decode((Int, String).self)
                guard status == "queued" || status == "pinning" else { continue }
                if generation >= maxRedispatches, let candidates = moveTargets[p.pin] {
                    var moved = false
                    for target in candidates where target != p.node {
                        let move = Move(org: p.org, pin: p.pin, cid: p.cid, from: p.node, to: target, reason: .stuck)
                        // A candidate that already holds the pin conflicts: try the next one.
                        guard try await insertMove(conn, move, now: now) else { continue }
                        try await audit(
                            conn,
                            org: p.org,
                            action: "move",
                            subject: p.pin,
                            detail: ["from": p.node.description, "to": target.description, "reason": MoveReason.stuck.rawValue, "cid": p.cid],
                            fence: fence,
                            now: now
                        )
                        out.append(.moved(move, Dispatch(org: p.org, pin: p.pin, cid: p.cid, node: target, generation: 0, dispatchedAt: now)))
                        moved = true
                        break
                    }
                    if moved { continue }
                }
                try await conn.query(
                    """
                    UPDATE placements SET status = 'queued', lease_until = NULL, generation = generation + 1, dispatched_at = \(now),
                      next_attempt_at = CASE WHEN status = 'pinning' THEN \(now) ELSE next_attempt_at END,
                      last_error = CASE WHEN status = 'pinning' THEN 'the worker holding it stopped; requeued by the sweeper' ELSE last_error END,
                      updated_at = \(now)
                    WHERE org_id = \(p.org.uuid) AND pin_id = \(p.pin.uuid) AND node_id = \(p.node.uuid)
                    """,
                    logger: logger
                )
                try await PostgresPlacementStore.derivePinStatus(conn, org: p.org, pin: p.pin, now: now, minReplicas: minReplicas, logger: logger)
                try await audit(
                    conn,
                    org: p.org,
                    action: "requeue",
                    subject: p.pin,
                    detail: ["node": p.node.description, "was": status, "generation": "\(generation + 1)"],
                    fence: fence,
                    now: now
                )
                out.append(.redispatched(Dispatch(org: p.org, pin: p.pin, cid: p.cid, node: p.node, generation: generation + 1, dispatchedAt: now)))
            }
            return out
        }
    }

    // MARK: reconciler

    public func placedCIDs(node: TypeID) async throws -> (all: Set<String>, pinned: Set<String>) {
        let rows = try await client.query(
            "SELECT cid, bool_or(status = 'pinned') FROM placements WHERE node_id = \(node.uuid) GROUP BY cid",
            logger: logger
        )
        var all = Set<String>()
        var pinned = Set<String>()
        for try await (cid, isPinned) in rows.decode((String, Bool).self) {
            all.insert(cid)
            if isPinned { pinned.insert(cid) }
        }
        return (all, pinned)
    }

    public func pendingUnpins(node: TypeID) async throws -> Set<String> {
        var out = Set<String>()
        for try await cid in try await client.query("SELECT cid FROM kubo_unpins WHERE node_id = \(node.uuid)", logger: logger).decode(String.self) {
            out.insert(cid)
        }
        return out
    }

    /// One round trip of three aggregates (the leader calls it every `metrics.countsInterval`).
    public func counts(replicas: Int) async throws -> ClusterCounts {
        let rows = try await client.query(
            """
            SELECT 'pin', status, count(*) FROM pins GROUP BY status
            UNION ALL SELECT 'placement', status, count(*) FROM placements GROUP BY status
            UNION ALL SELECT 'short', '', count(*) FROM pins p
              WHERE p.status = 'pinned'
                AND (SELECT count(*) FROM placements pl
                     WHERE pl.org_id = p.org_id AND pl.pin_id = p.id AND pl.status = 'pinned') < \(replicas)
            """,
            logger: logger
        )
        var pins: [String: Int] = [:]
        var placements: [String: Int] = [:]
        var short = 0
        for try await (kind, status, n) in rows.decode((String, String, Int).self) {
            switch kind {
            case "pin": pins[status] = n
            case "placement": placements[status] = n
            default: short = n
            }
        }
        return ClusterCounts(pins: pins, placements: placements, underReplicated: short, at: Timestamp(microsecondsSinceEpoch: 0))
    }

    public func repin(node: TypeID, cids: [String], reason: String, now: Timestamp) async throws -> [Dispatch] {
        try await client.withTransaction(logger: logger) { conn in
            let rows = try await conn.query(
                """
                UPDATE placements SET status = 'queued', next_attempt_at = '-infinity', last_error = \(reason),
                  generation = generation + 1, dispatched_at = \(now), updated_at = \(now)
                WHERE node_id = \(node.uuid) AND cid = ANY(\(cids)) AND status = 'pinned'
                RETURNING org_id, pin_id, cid, generation
                """,
                logger: logger
            ).collect()
            var out: [Dispatch] = []
            for row in rows {
                let (org, pin, cid, generation) = try row.decode((UUID, UUID, String, Int).self)
                let o = TypeID(prefix: IDPrefix.org, uuid: org)
                let p = TypeID(prefix: IDPrefix.pin, uuid: pin)
                try await PostgresPlacementStore.derivePinStatus(conn, org: o, pin: p, now: now, minReplicas: minReplicas, logger: logger)
                out.append(Dispatch(org: o, pin: p, cid: cid, node: node, generation: generation, dispatchedAt: now))
            }
            return out.sorted { ($0.pin.high, $0.pin.low) < ($1.pin.high, $1.pin.low) }
        }
    }
}

/// A clock stopped at one instant (IDs stamped with the transaction's time).
struct FixedClock: WallClock {
    let instant: Timestamp
    init(_ instant: Timestamp) { self.instant = instant }
    func now() -> Timestamp { instant }
}

extension PostgresClusterStore {
    /// Placements per node (for `admin cluster-presences`).
    public func placementCounts() async throws -> [TypeID: Int] {
        var out: [TypeID: Int] = [:]
        for try await (node, n) in try await client.query("SELECT node_id, count(*)::int8 FROM placements GROUP BY node_id", logger: logger)
            .decode((UUID, Int64).self)
        {
            out[TypeID(prefix: IDPrefix.node, uuid: node)] = Int(n)
        }
        return out
    }

    // MARK: retiring nodes (admin)

    /// Placements on `node` that still hold (or will hold) a pin, and failed ones kept as records.
    public func holdings(of node: TypeID) async throws -> (holding: Int, failed: Int) {
        let rows = try await client.query(
            """
            SELECT count(*) FILTER (WHERE status <> 'failed')::int8, count(*) FILTER (WHERE status = 'failed')::int8
            FROM placements WHERE node_id = \(node.uuid)
            """,
            logger: logger
        )
        for try await (holding, failed) in rows.decode((Int64, Int64).self) { return (Int(holding), Int(failed)) }
        return (0, 0)
    }

    /// Forgets a node that holds nothing any more: its row, its failed placements (records of
    /// pins since placed elsewhere) and its queued Kubo unpins. Refused (false) while it still
    /// holds a placement, checked in the same transaction.
    public func remove(node: TypeID) async throws -> Bool {
        try await client.withTransaction(logger: logger) { conn in
            let locked = try await conn.query("SELECT 1 FROM nodes WHERE id = \(node.uuid) FOR UPDATE", logger: logger).collect()
            guard !locked.isEmpty else { throw ClusterStoreError.unknownNode(node.description) }
            let holding = try await conn.query(
                "SELECT 1 FROM placements WHERE node_id = \(node.uuid) AND status <> 'failed' LIMIT 1",
                logger: logger
            ).collect()
            guard holding.isEmpty else { return false }
            try await conn.query("DELETE FROM placements WHERE node_id = \(node.uuid)", logger: logger)
            try await conn.query("DELETE FROM kubo_unpins WHERE node_id = \(node.uuid)", logger: logger)
            try await conn.query("DELETE FROM nodes WHERE id = \(node.uuid)", logger: logger)
            return true
        }
    }
}
