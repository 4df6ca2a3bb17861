import Foundation
import Logging
import PostgresNIO
import Seams
import Worker

/// The worker's placements on PostgreSQL. Connects as the ops role: the worker serves every org,
/// through the explicit cross-org policies, never through the API's role.
public struct PostgresPlacementStore: PlacementStore {
    public let client: PostgresClient
    public let logger: Logger
    /// `cluster.minReplicas`: pinned placements for the pin to read `pinned`.
    public let minReplicas: Int

    public init(client: PostgresClient, minReplicas: Int = 1, logger: Logger) {
        self.client = client
        self.minReplicas = minReplicas
        self.logger = logger
    }

    public func claim(node: TypeID, now: Timestamp, limit: Int, leaseUntil: Timestamp) async throws -> [Claim] {
        guard limit > 0 else { return [] }
        // Round robin between orgs: each org's oldest due placements are ranked 1, 2, 3…, and
        // the claim takes rank 1 of every org before rank 2 of any.
        // One statement, so atomic without an explicit transaction (BEGIN and COMMIT would be
        // two more round trips on every wake), and prepared (`ClaimStatement`): planning its
        // CTEs again on every wake was most of what an idle worker cost PostgreSQL.
        var rows: [ClaimStatement.Row] = []
        for try await row in try await client.execute(
            ClaimStatement(node: node.uuid, now: now, limit: limit, leaseUntil: leaseUntil),
            logger: logger
        ) { rows.append(row) }
        return rows.map { row in
            let (org, pin, cid, attempts, created, origins) = row
            return Claim(
                org: TypeID(prefix: IDPrefix.org, uuid: org),
                pin: TypeID(prefix: IDPrefix.pin, uuid: pin),
                cid: cid,
                attempts: attempts,
                created: created,
                origins: origins
            )
        }
        .sorted { ($0.created, $0.org.description) < ($1.created, $1.org.description) }
    }

    public func complete(_ claim: Claim, node: TypeID, outcome: PinOutcome, now: Timestamp) async throws {
        let status: String
        var nextAttempt: Timestamp? = nil
        var error: String? = nil
        switch outcome {
        case .pinned: status = "pinned"
        case .retry(let at, let reason):
            status = "queued"
            nextAttempt = at
            error = reason
        case .failed(let reason):
            status = "failed"
            error = reason
        }
        try await client.withTransaction(logger: logger) { conn in
            // The placement may be gone (the pin was deleted meanwhile): then nothing changes.
            // A move's target that failed lets go of its source (`replaces` cleared): the source
            // keeps serving, and the rebalancer's next round moves it elsewhere, the failed target
            // counting as a holder so another node is chosen. Kept set, the pin would look like a
            // move in progress for ever and its drain would never finish.
            let updated = try await conn.query(
                """
                UPDATE placements SET status = \(status), last_error = \(error), lease_until = NULL,
                  next_attempt_at = coalesce(\(nextAttempt), next_attempt_at), updated_at = \(now),
                  replaces = CASE WHEN \(status) = 'failed' THEN NULL ELSE replaces END
                WHERE org_id = \(claim.org.uuid) AND pin_id = \(claim.pin.uuid) AND node_id = \(node.uuid)
                RETURNING replaces
                """,
                logger: logger
            ).collect()
            // Make-before-break: the new placement of a move is pinned, so the one it replaces
            // is released now (its node unpins the CID once no placement needs it there).
            if status == "pinned", let row = updated.first, let old = try row.decode(UUID?.self) {
                try await conn.query(
                    "DELETE FROM placements WHERE org_id = \(claim.org.uuid) AND pin_id = \(claim.pin.uuid) AND node_id = \(old)",
                    logger: logger
                )
                try await conn.query(
                    """
                    UPDATE placements SET replaces = NULL
                    WHERE org_id = \(claim.org.uuid) AND pin_id = \(claim.pin.uuid) AND node_id = \(node.uuid)
                    """,
                    logger: logger
                )
            }
            try await Self.derivePinStatus(conn, org: claim.org, pin: claim.pin, now: now, minReplicas: minReplicas, logger: logger)
        }
    }

    /// The pin's API status follows its placements: pinned once `minReplicas` placements (or
    /// all, when there are fewer) are pinned, then
    /// pinning, queued, and failed only when every placement failed; `status_details` says why.
    static func derivePinStatus(
        _ conn: PostgresConnection,
        org: TypeID,
        pin: TypeID,
        now: Timestamp,
        minReplicas: Int,
        logger: Logger
    ) async throws {
        try await conn.query(
            """
            UPDATE pins p SET status = d.status, updated_at = \(now),
              info = CASE
                WHEN d.status = 'pinned' THEN '{}'::jsonb
                WHEN d.detail IS NULL THEN jsonb_build_object('status_details', d.status)
                ELSE jsonb_build_object('status_details', d.detail) END
            FROM (
              SELECT CASE
                       WHEN count(*) FILTER (WHERE status = 'pinned') >= least(\(minReplicas), count(*)) THEN 'pinned'
                       WHEN bool_or(status = 'pinning') THEN 'pinning'
                       WHEN bool_and(status = 'failed') THEN 'failed'
                       ELSE 'queued' END AS status,
                     max(CASE WHEN status = 'failed' THEN 'failed: ' || last_error
                              WHEN last_error IS NOT NULL THEN 'retrying after: ' || last_error END) AS detail
              FROM placements WHERE org_id = \(org.uuid) AND pin_id = \(pin.uuid)
            ) d
            WHERE p.org_id = \(org.uuid) AND p.id = \(pin.uuid) AND d.status IS NOT NULL
            """,
            logger: logger
        )
    }

    /// The attempt the previous run was making is not counted (`attempts` back by one): it was
    /// cut short by the node, not refused by Kubo, so a deploy never uses up a pin's attempts.
    public func requeueOwnClaims(node: TypeID, now: Timestamp) async throws -> Int {
        try await client.query(
            """
            UPDATE placements SET status = 'queued', lease_until = NULL, last_error = 'the node restarted during the attempt',
              attempts = greatest(attempts - 1, 0), updated_at = \(now)
            WHERE node_id = \(node.uuid) AND status = 'pinning'
            RETURNING 1
            """,
            logger: logger
        ).collect().count
    }

    public func requeueExpired(node: TypeID, now: Timestamp) async throws -> Int {
        try await client.query(
            """
            UPDATE placements SET status = 'queued', lease_until = NULL, last_error = 'the worker holding it stopped',
              updated_at = \(now)
            WHERE node_id = \(node.uuid) AND status = 'pinning' AND lease_until < \(now)
            RETURNING 1
            """,
            logger: logger
        ).collect().count
    }

    public func releasedCIDs(node: TypeID, limit: Int) async throws -> [String] {
        // Only CIDs no placement of any org needs on this node (the refcount), and not while a
        // new placement for the same CID is still being pinned (make-before-break on replace).
        // Entries whose CID is pinned here again are forgotten in the same statement (the new
        // placement owns it): one round trip per wake of an idle worker.
        let rows = try await client.execute(ReleasedStatement(node: node.uuid, limit: limit), logger: logger)
        var out: [String] = []
        for try await cid in rows { out.append(cid) }
        return out
    }

    public func forgetReleased(node: TypeID, cid: String) async throws {
        try await client.query("DELETE FROM kubo_unpins WHERE node_id = \(node.uuid) AND cid = \(cid)", logger: logger)
    }

    /// An index-only count on `placements_node (node_id, status)`.
    public func queueDepth(node: TypeID) async throws -> Int {
        let rows = try await client.query(
            "SELECT count(*) FROM placements WHERE node_id = \(node.uuid) AND status = 'queued'",
            logger: logger
        )
        return try await rows.collect().first?.decode(Int.self) ?? 0
    }
}

/// The worker's claim, prepared once per connection (see `PostgresPlacementStore.claim`).
struct ClaimStatement: PostgresPreparedStatement {
    static let name = "anchorage_claim_v1"
    static let sql = """
        WITH orgs AS (
          SELECT DISTINCT org_id FROM placements
          WHERE node_id = $1 AND status = 'queued' AND next_attempt_at <= $2
        ), ranked AS (
          SELECT p.org_id, p.pin_id, p.created_at,
                 row_number() OVER (PARTITION BY p.org_id ORDER BY p.created_at, p.pin_id) AS rank
          FROM orgs o CROSS JOIN LATERAL (
            SELECT org_id, pin_id, created_at FROM placements
            WHERE node_id = $1 AND org_id = o.org_id AND status = 'queued' AND next_attempt_at <= $2
            ORDER BY created_at, pin_id LIMIT $3
          ) p
        ), picked AS (
          SELECT org_id, pin_id FROM ranked ORDER BY rank, created_at, org_id, pin_id LIMIT $3
        ), claimed AS (
          UPDATE placements pl
          SET status = 'pinning', attempts = pl.attempts + 1, lease_until = $4, updated_at = $2
          FROM picked
          WHERE pl.org_id = picked.org_id AND pl.pin_id = picked.pin_id AND pl.node_id = $1
            AND pl.status = 'queued'
          RETURNING pl.org_id, pl.pin_id, pl.cid, pl.attempts, pl.created_at
        ), marked AS (
          UPDATE pins SET status = 'pinning', info = '{"status_details":"pinning"}', updated_at = $2
          FROM claimed WHERE pins.org_id = claimed.org_id AND pins.id = claimed.pin_id AND pins.status = 'queued'
        )
        SELECT c.org_id, c.pin_id, c.cid, c.attempts, c.created_at, coalesce(p.origins, '{}')
        FROM claimed c LEFT JOIN pins p ON p.org_id = c.org_id AND p.id = c.pin_id
        """
    typealias Row = (UUID, UUID, String, Int, Timestamp, [String])

    var node: UUID
    var now: Timestamp
    var limit: Int
    var leaseUntil: Timestamp

    func makeBindings() throws -> PostgresBindings {
        var b = PostgresBindings(capacity: 4)
        b.append(node)
        b.append(now)
        b.append(limit)
        b.append(leaseUntil)
        return b
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// The CIDs this node may unpin, prepared once per connection (an idle worker asks on every
/// wake; see `PostgresPlacementStore.releasedCIDs`).
struct ReleasedStatement: PostgresPreparedStatement {
    static let name = "anchorage_released_v1"
    static let sql = """
        WITH forgotten AS (
          DELETE FROM kubo_unpins f WHERE f.node_id = $1
            AND EXISTS (SELECT 1 FROM placements p WHERE p.node_id = f.node_id AND p.cid = f.cid AND p.status = 'pinned')
        )
        SELECT u.cid FROM kubo_unpins u
        WHERE u.node_id = $1
          AND NOT EXISTS (SELECT 1 FROM placements p WHERE p.node_id = u.node_id AND p.cid = u.cid)
        ORDER BY u.requested_at, u.cid LIMIT $2
        """
    typealias Row = String

    var node: UUID
    var limit: Int

    func makeBindings() throws -> PostgresBindings {
        var b = PostgresBindings(capacity: 2)
        b.append(node)
        b.append(limit)
        return b
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(String.self) }
}
