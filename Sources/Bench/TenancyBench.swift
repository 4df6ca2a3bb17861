import ArgumentParser
import Foundation
import Live
import LocalPostgres
import Logging
import Pins
import PostgresNIO
import PostgresStore
import Seams

/// `anchorage-bench tenancy`: does org A's `name`/`meta` filter latency depend on org B's
/// data? Measures A's filters as the API role before and after B stores `--neighbour` pins that
/// all match them, with the org-keyed indexes of migration 4, and with the cross-org GIN indexes
/// they replaced (recreated for the comparison), whose latency grew with B's matches.
/// `BENCH_EXPLAIN=1` also prints each phase's plans (stderr).
struct TenancyBench: AsyncParsableCommand, BenchReporting {
    static let configuration = CommandConfiguration(
        commandName: "tenancy",
        abstract: "One org's filter latency against another org's matching data (docs/security.md)."
    )

    @Option(help: "Org A's pins (1% match the filters).") var pins = 10_000
    @Option(help: "Org B's pins, all matching A's filters.") var neighbour = 100_000
    @Option(help: "Requests per query and phase.") var reads = 300

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let quiet = Logger(label: "bench.quiet", factory: { _ in SwiftLogNoOpLogHandler() })
        let clock = SystemWallClock()
        say("starting PostgreSQL (fsync off)")
        let pg = try await LocalPostgres.start(options: .init(durable: false, maxConnections: 50), logger: logger)
        defer { pg.stop() }
        let db = try await pg.createDatabase("tenancy", clock: clock, logger: logger)
        let ops = PostgresClient(configuration: db.ops.clientConfiguration(maxConnections: 2), backgroundLogger: quiet)
        let api = PostgresClient(configuration: db.api.clientConfiguration(maxConnections: 2), backgroundLogger: quiet)
        let owner = PostgresClient(configuration: db.owner.clientConfiguration(maxConnections: 2), backgroundLogger: quiet)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await ops.run() }
            group.addTask { await api.run() }
            group.addTask { await owner.run() }
            defer { group.cancelAll() }
            let admin = PostgresAdmin(client: ops, clock: clock, entropy: SystemEntropy(), logger: quiet)
            let a = try await admin.createOrg(name: "org-a").id
            let b = try await admin.createOrg(name: "org-b").id
            var byName = PinQuery()
            (byName.name, byName.match, byName.statuses) = ("report", .ipartial, [.pinned])
            var byMeta = PinQuery()
            (byMeta.meta, byMeta.statuses) = (["app": "ledger"], [.pinned])

            func seed(_ org: TypeID, count: Int, everyNth: Int) async throws {
                say("seeding \(count) pins in \(org)")
                try await ops.query(
                    """
                    INSERT INTO pins (org_id, id, cid, cid_key, name, meta, status, created_at, updated_at)
                    SELECT \(org.uuid), gen_random_uuid(), k.cid, k.cid,
                      CASE WHEN i % \(everyNth) = 0 THEN 'quarterly-report-' || i ELSE 'holiday-photo-' || i END,
                      CASE WHEN i % \(everyNth) = 0 THEN '{"app":"ledger"}'::jsonb ELSE jsonb_build_object('app', 'app-' || (i % 50)) END,
                      'pinned', now() - interval '1 day' + i * interval '1 millisecond', now()
                    FROM generate_series(1, \(count)) AS i,
                      LATERAL (SELECT 'bafkrei' || md5(i::text || \(org.uuid.uuidString)) AS cid) k
                    """,
                    logger: quiet
                )
                try await owner.query("ANALYZE pins", logger: quiet)
            }

            /// p50 and p99 of `reads` runs of `op`, in milliseconds.
            func time(_ op: () async throws -> Void) async throws -> (Double, Double) {
                var latencies: [Double] = []
                for _ in 0..<reads {
                    let start = ContinuousClock.now
                    try await op()
                    latencies.append(seconds(since: start) * 1000)
                }
                latencies.sort()
                return (percentile(latencies, 0.5), percentile(latencies, 0.99))
            }

            /// One statement as the API role acting for org A (the count of a listing: it reads
            /// every match, where a page may stop at `limit`).
            func count(_ statement: PostgresQuery) async throws {
                try await api.withTransaction(logger: quiet) { conn in
                    try await conn.query("SELECT set_config('anchorage.org_id', \(a.uuid.uuidString), true)", logger: quiet)
                    _ = try await conn.query(statement, logger: quiet).collect()
                }
            }

            /// The count statement before migration 4: no org-keyed condition, cross-org GIN indexes.
            func legacy(_ condition: String, _ value: String) async throws {
                var binds = PostgresBindings()
                binds.append(a.uuid)
                binds.append(value)
                let sql = "SELECT count(*) FROM pins WHERE org_id = $1 AND status = ANY('{pinned}') AND \(condition)"
                try await count(PostgresQuery(unsafeSQL: sql, binds: binds))
            }

            func phase(_ label: String) async throws -> [[String]] {
                if ProcessInfo.processInfo.environment["BENCH_EXPLAIN"] != nil {
                    for q in [byName, byMeta] {
                        let (page, count) = PostgresPinStore.listStatements(org: a, query: q)
                        for st in [page, count] {
                            let plan: [String] = try await api.withTransaction(logger: quiet) { conn in
                                try await conn.query("SELECT set_config('anchorage.org_id', \(a.uuid.uuidString), true)", logger: quiet)
                                return try await conn.query(
                                    PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, BUFFERS) " + st.sql, binds: st.binds),
                                    logger: quiet
                                )
                                .collect().map { try $0.decode(String.self) }
                            }
                            say("phase \(label):\n" + plan.joined(separator: "\n"))
                        }
                    }
                }
                var rows: [[String]] = []
                let keyedName = try await time { try await count(PostgresPinStore.listStatements(org: a, query: byName).count) }
                let keyedMeta = try await time { try await count(PostgresPinStore.listStatements(org: a, query: byMeta).count) }
                try await owner.query("CREATE INDEX legacy_name ON pins USING gin (name gin_trgm_ops)", logger: quiet)
                try await owner.query("CREATE INDEX legacy_meta ON pins USING gin (meta jsonb_path_ops)", logger: quiet)
                try await owner.query("ANALYZE pins", logger: quiet)
                let legacyName = try await time { try await legacy("name ILIKE $2", "%report%") }
                let legacyMeta = try await time { try await legacy("meta @> $2::jsonb", #"{"app":"ledger"}"#) }
                try await owner.query("DROP INDEX legacy_name", logger: quiet)
                try await owner.query("DROP INDEX legacy_meta", logger: quiet)
                for (query, scheme, t) in [
                    ("name ipartial 'report'", "org-keyed (now)", keyedName), ("name ipartial 'report'", "cross-org GIN (before)", legacyName),
                    ("meta {\"app\":\"ledger\"}", "org-keyed (now)", keyedMeta), ("meta {\"app\":\"ledger\"}", "cross-org GIN (before)", legacyMeta),
                ] {
                    rows.append([query, scheme, label, fmt(t.0, 2), fmt(t.1, 2)])
                }
                return rows
            }

            try await seed(a, count: pins, everyNth: 100)
            var rows = try await phase("0")
            try await seed(b, count: neighbour, everyNth: 1)
            rows += try await phase("\(neighbour)")
            rows.sort { ($0[0], $0[1], Int($0[2]) ?? 0) < ($1[0], $1[1], Int($1[2]) ?? 0) }
            print("")
            print(
                "anchorage-bench tenancy — org A: \(pins) pins (1% match), org B: 0 then \(neighbour) matching pins; \(reads) sequential queries as the API role; PostgreSQL fsync off, \(ProcessInfo.processInfo.activeProcessorCount) cores"
            )
            print("")
            print(table(["org A's filter", "index", "org B's matches", "p50 ms", "p99 ms"], rows))
        }
    }
}
