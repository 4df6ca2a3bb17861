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

    /// Without leakproof LIKE/ILIKE/@>, row-level security keeps the planner from using the
    /// trigram and jsonb indexes for the API role (see Bootstrap.leakproofStatements).
    @Test func bootstrapMakesTheFilterOperatorsLeakproof() async throws {
        try await withTestNode { node in
            let rows = try await node.apiClient.query(
                """
                SELECT p.proname, p.proleakproof FROM pg_proc p
                WHERE p.oid IN ('pg_catalog.textlike(text,text)'::regprocedure, 'pg_catalog.texticlike(text,text)'::regprocedure,
                                'pg_catalog.jsonb_contains(jsonb,jsonb)'::regprocedure)
                """,
                logger: logger
            )
            var seen = 0
            for try await (name, leakproof) in rows.decode((String, Bool).self) {
                #expect(leakproof, "\(name) must be LEAKPROOF")
                seen += 1
            }
            #expect(seen == 3)
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
