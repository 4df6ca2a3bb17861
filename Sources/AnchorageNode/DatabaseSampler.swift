import Cluster
import Logging
import Observability
import PostgresNIO
import ServiceLifecycle

/// Samples the node's PostgreSQL pools for `/metrics` every `metrics.countsInterval`: each
/// pool's connections by state and those waiting for a lock, read from `pg_stat_activity` by
/// the pool's `application_name`, through the pool itself (a role sees its own sessions). The
/// sampling query's own connection is counted as idle: it is a pooled connection that serves
/// requests the rest of the time, and a pool of one would otherwise always show none. postgres-nio keeps its pool's internals
/// (requests waiting for a connection) to itself, so those are not shown.
struct DatabaseSampler: Service {
    let node: Node
    let logger: Logger

    func run() async throws {
        let every = Duration.seconds(node.configuration.cluster.countsSeconds)
        let pools: [(DatabasePool, PostgresClient)] = [(.api, node.environment.api)] + (node.environment.ops.map { [(.ops, $0)] } ?? [])
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                for (pool, client) in pools {
                    guard let size = node.environment.poolSizes[pool] else { continue }
                    do {
                        let (states, waits) = try await Self.sample(client, name: pool.applicationName(node: node.id), logger: logger)
                        node.metrics.observe(pool: pool.rawValue, connections: states, lockWaits: waits, maximum: size)
                    } catch {
                        logger.debug("could not sample the database connections", metadata: ["pool": "\(pool.rawValue)", "error": "\(error)"])
                    }
                }
                try? await Task.sleep(for: every)
            }
        }
    }

    static func sample(_ client: PostgresClient, name: String, logger: Logger) async throws -> ([String: Int], Int) {
        let rows = try await client.query(
            """
            SELECT CASE WHEN pid = pg_backend_pid() THEN 'idle' ELSE coalesce(state, 'unknown') END,
                   count(*)::bigint, (count(*) FILTER (WHERE wait_event_type = 'Lock'))::bigint
            FROM pg_stat_activity WHERE application_name = \(name) GROUP BY 1
            """,
            logger: logger
        )
        var states: [String: Int] = [:]
        var waits = 0
        for try await (state, n, waiting) in rows.decode((String, Int, Int).self) {
            states[state] = n
            waits += waiting
        }
        return (states, waits)
    }
}
