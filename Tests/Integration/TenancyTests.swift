import AnchorageTesting
import Foundation
import HummingbirdTesting
import Logging
import Pins
import PostgresNIO
import PostgresStore
import Seams
import Testing
import Tokens

/// The RLS belt: tenancy is enforced by the database itself, so even SQL that forgets its
/// `WHERE org_id = …` cannot cross orgs when it runs as the API's role.
@Suite struct TenancyTests {
    static let orgOwnedTables = ["orgs", "api_tokens", "pins", "placements", "audit_log", "org_pin_counts"]
    let logger = Logger(label: "test.rls")

    /// Org A and org B each with a token, a pin, a placement and audit entries.
    func seed(_ node: TestNode) async throws -> (a: TypeID, b: TypeID, pinB: TypeID) {
        let a = try await node.mint(org: "org-a").claims.org
        let b = try await node.mint(org: "org-b").claims.org
        let pinB = try await node.service.add(org: b, request: PinRequest(cid: cidB)).id
        _ = try await node.service.add(org: a, request: PinRequest(cid: cidA))
        let nodeID = TypeID.make("nod", clock: node.clock, entropy: node.entropy)
        try await node.opsClient.query(
            "INSERT INTO placements (org_id, pin_id, node_id, status, updated_at) VALUES (\(b.uuid), \(pinB.uuid), \(nodeID.uuid), 'queued', \(node.clock.now()))",
            logger: logger
        )
        return (a, b, pinB)
    }

    func orgColumn(_ table: String) -> String { table == "orgs" ? "id" : "org_id" }

    @Test func everyOrgOwnedTableForcesRowLevelSecurity() async throws {
        try await withTestNode { node in
            let rows = try await node.opsClient.query(
                """
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'r'
                  AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
                       OR c.relname = 'orgs')
                """,
                logger: logger
            )
            var seen: [String] = []
            for try await (name, rls, force, owner) in rows.decode((String, Bool, Bool, String).self) {
                seen.append(name)
                #expect(rls && force, "\(name) must ENABLE and FORCE row level security")
                #expect(owner == DatabaseRole.owner, "\(name) is owned by \(owner)")
            }
            #expect(Set(seen) == Set(Self.orgOwnedTables), "org-owned tables: \(seen)")
            let role = try await node.apiClient.query(
                "SELECT rolsuper, rolbypassrls, (SELECT count(*) FROM pg_class WHERE relowner = r.oid) FROM pg_roles r WHERE rolname = current_user",
                logger: logger
            )
            for try await (superuser, bypass, owned) in role.decode((Bool, Bool, Int).self) {
                #expect(!superuser && !bypass)
                #expect(owned == 0, "the API role must own nothing")
            }
        }
    }

    @Test func theAPIRoleCannotReachAnotherOrgsRows() async throws {
        try await withTestNode { node in
            let (a, b, _) = try await seed(node)
            for table in Self.orgOwnedTables {
                let col = orgColumn(table)
                // Tables the API has no grant on are out of its reach before RLS even applies.
                let granted =
                    try await node.apiClient.query(
                        "SELECT has_any_column_privilege(current_user, \(table), 'SELECT')",
                        logger: logger
                    ).collect().first?.decode(Bool.self) ?? false
                guard granted else {
                    await #expect(throws: PSQLError.self, "\(table) is readable without a grant") {
                        try await node.apiClient.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"), logger: logger)
                    }
                    continue
                }
                // As the API role with org A set: B's rows are invisible, unchangeable, undeletable.
                let visible: Int = try await node.apiClient.withTransaction(logger: logger) { conn in
                    try await conn.query("SELECT set_config('anchorage.org_id', \(a.uuid.uuidString), true)", logger: logger)
                    return try await conn.query(
                        PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table) WHERE \(col) = $1", binds: binds(b.uuid)),
                        logger: logger
                    ).collect().first?.decode(Int.self) ?? -1
                }
                #expect(visible == 0, "\(table): B's rows visible to A")
                let total: Int = try await node.apiClient.withTransaction(logger: logger) { conn in
                    try await conn.query("SELECT set_config('anchorage.org_id', \(a.uuid.uuidString), true)", logger: logger)
                    return try await conn.query(
                        PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table) WHERE \(col) <> $1", binds: binds(a.uuid)),
                        logger: logger
                    )
                    .collect().first?.decode(Int.self) ?? -1
                }
                #expect(total == 0, "\(table): rows of other orgs visible")
                if table == "pins" || table == "placements" {  // the tables the API may delete from
                    let deleted: Int = try await node.apiClient.withTransaction(logger: logger) { conn in
                        try await conn.query("SELECT set_config('anchorage.org_id', \(a.uuid.uuidString), true)", logger: logger)
                        return try await conn.query(
                            PostgresQuery(unsafeSQL: "DELETE FROM \(table) WHERE \(col) = $1 RETURNING 1", binds: binds(b.uuid)),
                            logger: logger
                        ).collect().count
                    }
                    #expect(deleted == 0, "\(table): A deleted B's rows")
                    // The API never updates a row (the worker and the leader do, as ops).
                    await #expect(throws: PostgresTransactionError.self, "\(table): the API role may update") {
                        try await node.apiClient.withTransaction(logger: logger) { conn in
                            try await conn.query("SELECT set_config('anchorage.org_id', \(a.uuid.uuidString), true)", logger: logger)
                            try await conn.query(PostgresQuery(unsafeSQL: "UPDATE \(table) SET status = 'failed'"), logger: logger)
                        }
                    }
                }
                // With no org set at all: nothing.
                let unset =
                    try await node.apiClient.query(
                        PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"),
                        logger: logger
                    ).collect().first?.decode(Int.self) ?? -1
                #expect(unset == 0, "\(table): rows visible with no org set")
                // And B's rows are all still there.
                let intact =
                    try await node.opsClient.query(
                        PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table) WHERE \(col) = $1", binds: binds(b.uuid)),
                        logger: logger
                    ).collect().first?.decode(Int.self) ?? -1
                #expect(intact >= 1, "\(table): B's rows lost")
            }
            // Writing a row for B while acting as A is refused by the policy's WITH CHECK.
            let refused = await #expect(throws: PostgresTransactionError.self) {
                try await node.apiClient.withTransaction(logger: logger) { conn in
                    try await conn.query("SELECT set_config('anchorage.org_id', \(a.uuid.uuidString), true)", logger: logger)
                    try await conn.query(
                        "INSERT INTO pins (org_id, id, cid, cid_key, status, created_at, updated_at) VALUES (\(b.uuid), \(UUID()), 'x', 'x', 'queued', \(node.clock.now()), \(node.clock.now()))",
                        logger: logger
                    )
                }
            }
            #expect("\(String(reflecting: refused))".contains("row-level security"))
            // The API role cannot switch RLS off or touch tables it has no grant on.
            await #expect(throws: PSQLError.self) {
                try await node.apiClient.query("ALTER TABLE pins DISABLE ROW LEVEL SECURITY", logger: logger)
            }
            await #expect(throws: PSQLError.self) {
                try await node.apiClient.query(
                    "INSERT INTO signing_keys (kid, secret, created_at) VALUES ('k', \(ByteBuffer(repeating: 1, count: 32)), \(node.clock.now()))",
                    logger: logger
                )
            }
        }
    }

    /// The API role holds exactly what the API's statements use (PostgresPinStore,
    /// PostgresTokenLookup), column by column: no signing secret it could write, no cross-org
    /// unpin queue, no updates, no functions besides the two that create pins, no TEMP.
    @Test func theAPIRoleHasExactlyThePrivilegesTheAPIUses() async throws {
        try await withTestNode { node in
            let pinColumns = ["org_id", "id", "cid", "cid_key", "name", "origins", "meta", "status", "info", "created_at", "updated_at"]
            var expected = Set<String>()
            for c in pinColumns { expected.formUnion(["pins.\(c):SELECT", "pins.\(c):INSERT"]) }
            expected.formUnion(["pins.name_keys:SELECT", "pins.meta_keys:SELECT"])  // generated: never inserted
            expected.formUnion(["pins:DELETE", "placements:DELETE", "placements.org_id:SELECT", "placements.pin_id:SELECT"])
            for c in ["org_id", "pin_id", "node_id", "status", "attempts", "updated_at", "cid", "created_at", "next_attempt_at"] {
                expected.insert("placements.\(c):INSERT")
            }
            for c in ["kid", "secret", "sealed_with", "created_at", "retired_at"] { expected.insert("signing_keys.\(c):SELECT") }
            expected.insert("token_denylist.jti:SELECT")
            for c in ["org_id", "status", "n"] { expected.insert("org_pin_counts.\(c):SELECT") }  // read, never written
            for c in ["version", "name", "checksum", "applied_at"] { expected.insert("schema_migrations.\(c):SELECT") }
            expected.formUnion([
                "anchorage_create_pin:EXECUTE", "anchorage_create_placed_pin:EXECUTE", "anchorage_create_placed_pins:EXECUTE",
                "anchorage_trigram_keys:EXECUTE",
                "anchorage_meta_keys:EXECUTE",
            ])

            let rows = try await node.opsClient.query(
                """
                SELECT c.table_name || '.' || c.column_name || ':' || p.priv
                FROM information_schema.columns c CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) AS p(priv)
                WHERE c.table_schema = 'public'
                  AND has_column_privilege(\(DatabaseRole.api), format('public.%I', c.table_name), c.column_name, p.priv)
                UNION ALL
                SELECT t.tablename || ':' || p.priv
                FROM pg_tables t CROSS JOIN unnest(ARRAY['DELETE', 'TRUNCATE', 'TRIGGER']) AS p(priv)
                WHERE t.schemaname = 'public' AND has_table_privilege(\(DatabaseRole.api), format('public.%I', t.tablename), p.priv)
                UNION ALL
                SELECT f.proname || ':EXECUTE' FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
                WHERE n.nspname = 'public' AND has_function_privilege(\(DatabaseRole.api), f.oid, 'EXECUTE')
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = f.oid AND d.deptype = 'e')  -- pg_trgm's own
                UNION ALL
                SELECT 'database:TEMP' WHERE has_database_privilege(\(DatabaseRole.api), current_database(), 'TEMP')
                UNION ALL
                SELECT 'schema public:CREATE' WHERE has_schema_privilege(\(DatabaseRole.api), 'public', 'CREATE')
                """,
                logger: logger
            )
            var held = Set<String>()
            for try await p in rows.decode(String.self) { held.insert(p) }
            #expect(held.subtracting(expected).isEmpty, "more than the API needs: \(held.subtracting(expected).sorted())")
            #expect(expected.subtracting(held).isEmpty, "missing: \(expected.subtracting(held).sorted())")
            // Every function anchorage defines runs with a fixed search_path.
            let loose = try await node.opsClient.query(
                """
                SELECT f.proname FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
                WHERE n.nspname = 'public' AND f.proname LIKE 'anchorage_%'
                  AND NOT coalesce(f.proconfig::text[] @> ARRAY['search_path=pg_catalog, public'], false)
                """,
                logger: logger
            ).collect().map { try $0.decode(String.self) }
            #expect(loose.isEmpty, "functions without a fixed search_path: \(loose)")
        }
    }

    /// Signing secrets are sealed at rest under a key the database never holds; a rotation
    /// (new key current, old one previous, `reseal-keys`) keeps every token verifying.
    @Test func signingSecretsAreSealedAtRestAndSurviveARotation() async throws {
        try await withTestNode { node in
            let minted = try await node.mint(org: "sealed")
            let row = try #require(
                try await node.opsClient.query("SELECT secret, sealed_with FROM signing_keys WHERE kid = \(minted.kid)", logger: logger)
                    .collect().first
            )
            let (stored, sealedWith) = try row.decode((ByteBuffer, String?).self)
            let secret = try TestNode.sealer.open(Array(buffer: stored), kid: minted.kid, sealedWith: sealedWith)
            #expect(sealedWith == TestNode.sealer.current?.id)
            #expect(Array(buffer: stored) != secret, "the database holds the secret in the clear")
            // The API role reads only the sealed bytes; without the key they verify nothing.
            let clear = PostgresTokenLookup(client: node.apiClient, logger: logger)
            await #expect(throws: (any Error).self) { try await clear.verificationKey(kid: minted.kid) }

            let next = try SecretSealer.Key(bytes: Array(repeating: 0x5A, count: 32))
            let rotated = SecretSealer(current: next, previous: [try #require(TestNode.sealer.current)])
            let admin = PostgresAdmin(client: node.opsClient, clock: node.clock, entropy: node.entropy, sealer: rotated, logger: logger)
            #expect(try await admin.resealKeys() == 1)
            #expect(try await admin.resealKeys() == 0, "idempotent")
            let after = PostgresTokenLookup(client: node.apiClient, sealer: SecretSealer(current: next), logger: logger)
            let verifier = TokenVerifier(keys: after, denylist: after, clock: node.clock)
            #expect(try await verifier.verify(minted.token).org == minted.claims.org)
        }
    }

    /// Org A's `name` and `meta` filters read only org A's rows and index entries, whatever org
    /// B stores: the trigram and jsonb GIN indexes were not keyed by org, so A's filter first
    /// read every org's matches (B's 2,000 here) and its latency told A about B's data. Checked
    /// on the plan PostgreSQL runs for the API's own statement, as the API role.
    @Test func oneOrgsFiltersNeverReadAnotherOrgsMatches() async throws {
        try await withTestNode { node in
            let a = try await node.mint(org: "org-a").claims.org
            let b = try await node.mint(org: "org-b").claims.org
            let now = node.clock.now()
            for (org, count, matching) in [(a, 60, 10), (b, 2000, 2000)] {
                try await node.opsClient.query(
                    """
                    INSERT INTO pins (org_id, id, cid, cid_key, name, meta, status, created_at, updated_at)
                    SELECT \(org.uuid), gen_random_uuid(), 'bafkreix' || i, 'bafkreix' || i,
                      CASE WHEN i <= \(matching) THEN 'quarterly-report-' || i ELSE 'holiday-' || i END,
                      CASE WHEN i <= \(matching) THEN '{"app":"ledger"}'::jsonb ELSE '{"app":"other"}'::jsonb END,
                      'pinned', \(now) + i * interval '1 millisecond', \(now)
                    FROM generate_series(1, \(count)) AS i
                    """,
                    logger: logger
                )
            }
            try await node.opsClient.query("ANALYZE pins", logger: logger)
            var byName = PinQuery()
            byName.name = "Report"
            byName.match = .ipartial
            byName.statuses = [.pinned]
            var byMeta = PinQuery()
            byMeta.meta = ["app": "ledger"]
            byMeta.statuses = [.pinned]
            for (label, query) in [("name", byName), ("meta", byMeta)] {
                let statement = PostgresPinStore.listStatements(org: a, query: query).count
                let plan: String = try await node.apiClient.withTransaction(logger: logger) { conn in
                    try await conn.query("SELECT set_config('anchorage.org_id', \(a.uuid.uuidString), true)", logger: logger)
                    let explain = PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, FORMAT JSON) " + statement.sql, binds: statement.binds)
                    return try await conn.query(explain, logger: logger).collect().first?.decode(String.self) ?? ""
                }
                let touched = Self.rowsTouched(plan)
                #expect(touched > 0 && touched <= 60, "\(label) filter: one scan read \(touched) rows (org A has 60): \(plan)")
                let count = try await node.store.list(org: a, query: query).count
                #expect(count == 10, "\(label) filter finds A's own 10")
            }
        }
    }

    /// The most rows any one scan node of an `EXPLAIN (ANALYZE, FORMAT JSON)` plan read: what
    /// an index scan returned, or what a table scan returned plus what it threw away.
    static func rowsTouched(_ json: String) -> Int {
        guard let data = json.data(using: .utf8), let top = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return -1 }
        var most = 0
        func walk(_ node: [String: Any]) {
            if let type = node["Node Type"] as? String, type.hasSuffix("Scan") {
                let read = ["Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck"].reduce(0) { $0 + ((node[$1] as? Int) ?? 0) }
                most = max(most, read)
            }
            for child in (node["Plans"] as? [[String: Any]]) ?? [] { walk(child) }
        }
        for entry in top { if let plan = entry["Plan"] as? [String: Any] { walk(plan) } }
        return most
    }

    @Test func acrossTheAPIOrgsNeverSeeEachOther() async throws {
        try await withAPI { node, client in
            let tokenA = try await node.token(org: "org-a")
            let tokenB = try await node.token(org: "org-b")
            let pinA = try await client.add(tokenA, cid: cidA, name: "shared-name", meta: ["k": "v"])
            try await markPinned(node, pinA.requestID)
            _ = try await client.add(tokenB, cid: cidB, name: "b-only")
            Strict.failure(try await client.call(.get, "/pins/\(pinA.requestID)", token: tokenB), status: 404)
            Strict.failure(try await client.call(.post, "/pins/\(pinA.requestID)", token: tokenB, body: #"{"cid":"\#(cidC)"}"#), status: 404)
            Strict.failure(try await client.call(.delete, "/pins/\(pinA.requestID)", token: tokenB), status: 404)
            for q in ["", "?status=queued,pinning,pinned,failed", "?cid=\(cidA)", "?name=shared-name", "?meta=%7B%22k%22%3A%22v%22%7D"] {
                let r = try await client.call(.get, "/pins\(q)", token: tokenB)
                #expect(!r.results.contains { $0["requestid"] as? String == pinA.requestID }, "\(q)")
                #expect(r.count == (q.contains("status=") ? 1 : 0), "\(q): count \(r.count)")
            }
            // A's pin survived B's attempts.
            #expect(try await client.call(.get, "/pins/\(pinA.requestID)", token: tokenA).status == 200)
        }
    }
}

func binds(_ values: UUID...) -> PostgresBindings {
    var b = PostgresBindings()
    for v in values { b.append(v) }
    return b
}
