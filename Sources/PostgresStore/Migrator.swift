import Logging
import PostgresNIO
import Seams

/// Applies `Migrations.all` in order, each in its own transaction, under an advisory lock so
/// that two nodes starting at once cannot both migrate. Connect as the schema owner.
public struct Migrator: Sendable {
    public enum State: String, Sendable { case applied, pending, modified }

    public struct Entry: Sendable {
        public var version: Int
        public var name: String
        public var state: State
        public var appliedAt: Timestamp?
    }

    let migrations: [Migration]
    let clock: any WallClock
    let logger: Logger
    static let lockKey: Int64 = 0x616E_6368  // "anch"

    public init(migrations: [Migration] = Migrations.all, clock: any WallClock, logger: Logger) {
        self.migrations = migrations
        self.clock = clock
        self.logger = logger
    }

    static func checksum(_ sql: String) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a 64: detects edits, not adversaries
        for b in sql.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01B3
        }
        return String(h, radix: 16)
    }

    private func ensureTable(_ connection: PostgresConnection) async throws {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
              version    integer PRIMARY KEY,
              name       text NOT NULL,
              checksum   text NOT NULL,
              applied_at timestamptz NOT NULL
            )
            """,
            logger: logger
        )
        try await connection.query(
            "GRANT SELECT ON schema_migrations TO \(unescaped: DatabaseRole.api), \(unescaped: DatabaseRole.ops)",
            logger: logger
        )
    }

    /// What is applied, what is pending, and what was edited after being applied.
    public func status(_ connection: PostgresConnection) async throws -> [Entry] {
        let exists =
            try await connection.query(
                "SELECT to_regclass('schema_migrations') IS NOT NULL",
                logger: logger
            ).collect().first?.decode(Bool.self) ?? false
        var applied: [Int: (String, Timestamp)] = [:]
        if exists {
            for try await (version, checksum, at) in try await connection.query(
                "SELECT version, checksum, applied_at FROM schema_migrations",
                logger: logger
            ).decode((Int, String, Timestamp).self) {
                applied[version] = (checksum, at)
            }
        }
        return migrations.map { m in
            guard let (sum, at) = applied[m.version] else {
                return Entry(version: m.version, name: m.name, state: .pending, appliedAt: nil)
            }
            return Entry(
                version: m.version,
                name: m.name,
                state: sum == Self.checksum(m.fingerprintSQL) ? .applied : .modified,
                appliedAt: at
            )
        }
    }

    /// Applies every pending migration; returns the versions applied.
    @discardableResult
    public func up(_ connection: PostgresConnection) async throws -> [Int] {
        try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
        do {
            try await ensureTable(connection)
            var done: [Int] = []
            for entry in try await status(connection) {
                switch entry.state {
                case .applied: continue
                case .modified:
                    throw DatabaseError.migration(
                        "migration \(entry.version) (\(entry.name)) was changed after it was applied; refusing to continue"
                    )
                case .pending:
                    guard let m = migrations.first(where: { $0.version == entry.version }) else { continue }
                    logger.info("applying migration", metadata: ["version": "\(m.version)", "name": "\(m.name)"])
                    let at = clock.now()
                    try await connection.withTransaction(logger: logger) { tx in
                        for statement in SQLScript.statements(m.sql) {
                            try await tx.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        if let backfill = m.backfill { try await backfill(tx, logger) }
                        for statement in SQLScript.statements(m.finish) {
                            try await tx.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await tx.query(
                            """
                            INSERT INTO schema_migrations (version, name, checksum, applied_at)
                            VALUES (\(m.version), \(m.name), \(Self.checksum(m.fingerprintSQL)), \(at))
                            """,
                            logger: logger
                        )
                    }
                    done.append(m.version)
                }
            }
            try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
            return done
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
            throw error
        }
    }
}
