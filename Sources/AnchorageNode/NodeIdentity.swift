import Foundation
import Logging
import PostgresNIO
import PostgresStore
import Seams

/// This node's ID: `node.id` if configured, else the one kept in `<node.dataDir>/node-id`
/// (created on first start), so that a restarted node keeps its placements.
public enum NodeIdentity {
    public static func resolve(_ settings: NodeConfiguration, clock: any WallClock, entropy: any Entropy) throws -> TypeID {
        if let configured = settings.nodeID, let id = TypeID(parsing: configured, prefix: IDPrefix.node) { return id }
        let file = URL(fileURLWithPath: settings.dataDir).appendingPathComponent("node-id")
        if let text = try? String(contentsOf: file, encoding: .utf8),
            let id = TypeID(parsing: text.trimmingCharacters(in: .whitespacesAndNewlines), prefix: IDPrefix.node)
        {
            return id
        }
        try FileManager.default.createDirectory(atPath: settings.dataDir, withIntermediateDirectories: true)
        let id = TypeID.make(IDPrefix.node, clock: clock, entropy: entropy)
        try (id.description + "\n").write(to: file, atomically: true, encoding: .utf8)
        return id
    }

    /// Registers (or refreshes) the node in PostgreSQL.
    public static func register(_ id: TypeID, name: String, client: PostgresClient, clock: any WallClock, logger: Logger) async throws {
        let now = clock.now()
        try await client.query(
            """
            INSERT INTO nodes (id, name, state, created_at, last_seen_at) VALUES (\(id.uuid), \(name), 'active', \(now), \(now))
            ON CONFLICT (id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
            """,
            logger: logger
        )
    }
}
