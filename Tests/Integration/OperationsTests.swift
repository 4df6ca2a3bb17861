import AnchorageNode
import AnchorageTesting
import DeterministicSeams
import Foundation
import Hummingbird
import HummingbirdTesting
import LocalPostgres
import Logging
import NIOFoundationCompat
import Pins
import PinsHTTP
import PostgresNIO
import PostgresStore
import Seams
import ServiceLifecycle
import Testing

@Suite struct MigrationTests {
    let logger = Logger(label: "test.migrations")

    @Test func upIsIdempotentAndStatusReportsEveryMigration() async throws {
        let pg = try await SharedPostgres.shared.local()
        let db = try await pg.createDatabase("migrations_\(UInt32.random(in: 0 ... .max))", clock: VirtualWallClock(), logger: logger)
        let again = try await Provisioning.migrate(owner: db.owner, clock: VirtualWallClock(), logger: logger)
        #expect(again.isEmpty)
        let status = try await db.owner.withConnection(logger: logger) { try await Migrator(clock: VirtualWallClock(), logger: logger).status($0) }
        #expect(status.map(\.version) == Migrations.all.map(\.version))
        #expect(status.allSatisfy { $0.state == .applied })
        // An edited migration is detected, not silently re-run.
        let edited = Migrations.all.map { Migration(version: $0.version, name: $0.name, sql: $0.sql + "\n-- edited") }
        let drift = try await db.owner.withConnection(logger: logger) {
            try await Migrator(migrations: edited, clock: VirtualWallClock(), logger: logger).status($0)
        }
        #expect(drift.allSatisfy { $0.state == .modified })
        await #expect(throws: DatabaseError.self) {
            try await db.owner.withConnection(logger: logger) {
                try await Migrator(migrations: edited, clock: VirtualWallClock(), logger: logger).up($0)
            }
        }
        try await pg.dropDatabase(db.name, logger: logger)
    }

    /// Migration 4 gives pins stored before it Kubo's key for their CID, in whatever spelling
    /// the client used, and rewrites placements and pending unpins to that key; row-level
    /// security is forced again afterwards.
    @Test func migrationFourKeysCIDsStoredInAnySpelling() async throws {
        let pg = try await SharedPostgres.shared.local()
        let name = "migrate4_\(UInt32.random(in: 0 ... .max))"
        try await Provisioning.bootstrap(superuser: pg.superuser, database: name, logger: logger)
        let db = pg.urls(name)
        try await db.owner.withConnection(logger: logger) {
            try await Migrator(migrations: Array(Migrations.all.prefix(3)), clock: VirtualWallClock(), logger: logger).up($0)
        }
        let canonical = CIDText.synthetic(7, namespace: 4)
        let upper = canonical.uppercased()
        let org = UUID()
        let node = UUID()
        let (p1, p2) = (UUID(), UUID())
        let now = VirtualWallClock().now()
        try await db.ops.withConnection(logger: logger) { conn in
            try await conn.query("INSERT INTO orgs (id, name, created_at) VALUES (\(org), 'old', \(now))", logger: logger)
            for (id, cid, ms) in [(p1, canonical, 1), (p2, upper, 2)] {
                try await conn.query(
                    """
                    INSERT INTO pins (org_id, id, cid, status, created_at, updated_at)
                    VALUES (\(org), \(id), \(cid), 'pinned', \(now.adding(microseconds: Int64(ms) * 1000)), \(now))
                    """,
                    logger: logger
                )
            }
            try await conn.query(
                "INSERT INTO placements (org_id, pin_id, node_id, status, updated_at, cid) VALUES (\(org), \(p2), \(node), 'pinned', \(now), \(upper))",
                logger: logger
            )
            try await conn.query("INSERT INTO kubo_unpins (node_id, cid, requested_at) VALUES (\(node), \(upper), \(now))", logger: logger)
        }
        #expect(try await Provisioning.migrate(owner: db.owner, clock: VirtualWallClock(), logger: logger) == [4, 5, 6, 7])
        try await db.ops.withConnection(logger: logger) { conn in
            let pins = try await conn.query("SELECT cid, cid_key FROM pins ORDER BY created_at", logger: logger).collect()
                .map { try $0.decode((String, String).self) }
            #expect(pins.map(\.0) == [canonical, upper], "the client's spelling is kept")
            #expect(pins.map(\.1) == [canonical, canonical])
            let placed = try await conn.query("SELECT cid FROM placements", logger: logger).collect().map { try $0.decode(String.self) }
            #expect(placed == [canonical])
            let unpins = try await conn.query("SELECT cid FROM kubo_unpins", logger: logger).collect().map { try $0.decode(String.self) }
            #expect(unpins == [canonical])
            let forced = try await conn.query(
                "SELECT bool_and(relforcerowsecurity) FROM pg_class WHERE relname IN ('pins', 'placements')",
                logger: logger
            ).collect().first?.decode(Bool.self)
            #expect(forced == true)
            // Migration 5 counted the pins stored before it.
            let counted = try await conn.query("SELECT status, n FROM org_pin_counts WHERE org_id = \(org)", logger: logger).collect()
                .map { try $0.decode((String, Int).self) }
            #expect(counted.map(\.0) == ["pinned"] && counted.map(\.1) == [2])
        }
        try await pg.dropDatabase(name, logger: logger)
    }

    /// Without leakproof LIKE/ILIKE/@>, row-level security keeps the planner from using the
    /// trigram and jsonb indexes for the API role (see Bootstrap.leakproofStatements).
    @Test func bootstrapMakesTheFilterOperatorsLeakproof() async throws {
        try await withTestNode { node in
            let rows = try await node.apiClient.query(
                """
                SELECT p.proname, p.proleakproof FROM pg_proc p
                WHERE p.oid IN ('pg_catalog.textlike(text,text)'::regprocedure, 'pg_catalog.texticlike(text,text)'::regprocedure,
                                'pg_catalog.jsonb_contains(jsonb,jsonb)'::regprocedure,
                                'pg_catalog.arraycontains(anyarray,anyarray)'::regprocedure)
                """,
                logger: logger
            )
            var seen = 0
            for try await (name, leakproof) in rows.decode((String, Bool).self) {
                #expect(leakproof, "\(name) must be LEAKPROOF")
                seen += 1
            }
            #expect(seen == 4)
        }
    }

    @Test func readinessIs503UntilTheSchemaIsMigrated() async throws {
        let pg = try await SharedPostgres.shared.local()
        let name = "unmigrated_\(UInt32.random(in: 0 ... .max))"
        try await Provisioning.bootstrap(superuser: pg.superuser, database: name, logger: logger)
        let urls = pg.urls(name)
        let client = PostgresClient(configuration: urls.api.clientConfiguration(maxConnections: 2), backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let lookup = PostgresTokenLookup(client: client, logger: logger)
            #expect(try await lookup.schemaVersion() == nil)
            // Through HTTP, as a load balancer sees it: 503 with a JSON reason, then 200.
            let router = Router(context: AppRequestContext.self)
            OperationsController(readiness: ReadinessProbe { await lookup.notReadyReason() }).register(on: router)
            try await Application(router: router).test(.router) { client in
                let notReady = try await client.execute(uri: "/v1/ready", method: .get)
                #expect(notReady.status == .serviceUnavailable)
                #expect(notReady.headers[.contentType] == "application/json")
                let body = try JSONSerialization.jsonObject(with: Data(buffer: notReady.body)) as? [String: String]
                #expect(body?["status"] == "not_ready")
                #expect(body?["reason"]?.contains("migrate up") == true)
                try await Provisioning.migrate(owner: urls.owner, clock: VirtualWallClock(), logger: logger)
                #expect(try await lookup.schemaVersion() == Migrations.latestVersion)
                #expect(try await client.execute(uri: "/v1/ready", method: .get).status == .ok)
            }
        }
        try await pg.dropDatabase(name, logger: logger)
    }
}

@Suite struct LiveSocketTests {
    /// The same API over a real socket (Hummingbird's live test framework, port 0).
    @Test func servesOverARealSocket() async throws {
        try await withTestNode { node in
            let token = try await node.token(org: "live")
            let app = Application(router: node.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            try await app.test(.live) { client in
                let added = try await client.add(token, cid: cidA, name: "over-tcp")
                #expect(added.status == 202)
                Strict.pinStatus(added.object)
                let polled = try await client.call(.get, "/pins/\(added.requestID)", token: token)
                #expect(polled.status == 200)
                #expect(polled.requestID == added.requestID)
                let list = try await client.call(
                    .get,
                    "/pins?limit=10&name=over-tcp&status=failed%2Cpinned%2Cpinning%2Cqueued",
                    token: token,
                    headers: [.userAgent: "go-pinning-service-http-client", .accept: "application/json"]
                )
                #expect(list.count == 1)
                Strict.failure(try await client.call(.get, "/pins", token: nil), status: 401)
            }
        }
    }
}

extension LiveSocketTests {
    static let nodeID = TypeID(prefix: IDPrefix.node, high: 0x0193_0000_0000_7000, low: 0x8000_0000_0000_0042)

    /// Runs the node's production HTTP server on a free port for `body`. Not Hummingbird's
    /// live test mode: its `ApplicationConfiguration.with(address:)` drops the connection cap.
    static func serving<T: Sendable>(_ node: Node, _ body: @Sendable @escaping (Int) async throws -> T) async throws -> T {
        let (ports, found) = AsyncStream<Int>.makeStream()
        let app = node.httpServer(
            address: .hostname("127.0.0.1", port: 0),
            onServerRunning: { found.yield($0.localAddress?.port ?? 0) },
            logger: Logger(label: "test.http")
        )
        let group = ServiceGroup(services: [app], logger: Logger(label: "test.http"))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var it = ports.makeAsyncIterator()
            let port = try #require(await it.next())
            do {
                let value = try await body(port)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return value
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
        }
    }

    /// A client that never finishes its request head used to hold its connection forever
    /// (slowloris); now `http.idleTimeoutSeconds` closes it.
    @Test func aRequestHeadThatNeverCompletesIsCutOff() async throws {
        try await withTestNode { node in
            let built = node.node(id: Self.nodeID) {
                $0.httpIdleTimeoutSeconds = 1
                $0.workerEnabled = false
            }
            try await Self.serving(built) { port in
                let slow = try RawSocket(port: port)
                slow.send("GET /v1/health HTTP/1.1\r\nHost: a\r\nX-Slow: ")
                #expect(await slow.read(seconds: 15).closed, "the half-sent request still holds its connection")
                let fine = try RawSocket(port: port)
                fine.send("GET /v1/health HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(await fine.read(seconds: 10, until: "ok").text.contains("200 OK"))
            }
        }
    }

    /// Past `http.maxConnections` open connections a new one waits (in the listen backlog)
    /// until one closes.
    @Test func connectionsPastTheCapWaitForOneToClose() async throws {
        try await withTestNode { node in
            let built = node.node(id: Self.nodeID) {
                $0.httpMaxConnections = 2
                $0.workerEnabled = false
            }
            try await Self.serving(built) { port in
                let request = "GET /v1/health HTTP/1.1\r\nHost: a\r\n\r\n"
                let first = try RawSocket(port: port)
                first.send(request)
                #expect(await first.read(seconds: 10, until: "ok").text.contains("200 OK"))
                let second = try RawSocket(port: port)
                second.send(request)
                #expect(await second.read(seconds: 10, until: "ok").text.contains("200 OK"))
                let third = try RawSocket(port: port)
                third.send(request)
                #expect(await third.read(seconds: 2, until: "ok").text.isEmpty, "a third connection was served while two were open")
                first.disconnect()
                #expect(await third.read(seconds: 10, until: "ok").text.contains("200 OK"))
                second.disconnect()
            }
        }
    }
}

@Suite struct SQLScriptTests {
    @Test func splitsOnlyTopLevelSemicolons() {
        let sql = """
            CREATE TABLE t (a text DEFAULT ';');  -- a comment; with a semicolon
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $fn$ BEGIN RETURN 1; END $fn$;
            /* block; comment */ SELECT 'it''s; fine', "we;ird";
            DO $$ BEGIN PERFORM 1; END $$
            """
        let statements = SQLScript.statements(sql)
        #expect(statements.count == 4)
        #expect(statements[1].hasSuffix("END $fn$"))
        #expect(statements[2].contains("'it''s; fine'"))
        #expect(statements[3].hasPrefix("DO $$"))
    }

    @Test func theInitialMigrationSplitsIntoWholeStatements() {
        for statement in SQLScript.statements(Migrations.all[0].sql) {
            #expect(!statement.hasPrefix(";"))
            let dollars = statement.components(separatedBy: "$fn$").count - 1
            #expect(dollars % 2 == 0)
        }
    }
}
