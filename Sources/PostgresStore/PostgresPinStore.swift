import Foundation
import Logging
import Pins
import PostgresNIO
import Seams

/// `PinStore` on PostgreSQL. Every statement runs with the org set for its transaction, so the
/// row-level-security policies, not only the `WHERE` clauses, confine it to that org.
public struct PostgresPinStore: PinStore {
    public let client: PostgresClient
    public let logger: Logger
    /// `limits.maxPinsPerOrg` (0: no quota), enforced by the database under the org's lock.
    public let maxPinsPerOrg: Int
    /// How often a replace retries when a concurrent insert took the same `created`
    /// millisecond (the per-org create lock makes this rare).
    static let maxCreatedRetries = 8

    /// Concurrent creates share one statement and one commit (`db.coalesce.*`).
    public let creates: CreateCoalescer

    /// `observeBatch` hears the size of each batch of creates written and the creates queued.
    public init(
        client: PostgresClient,
        maxPinsPerOrg: Int = 0,
        coalescing: CreateCoalescer.Settings = .init(),
        observeBatch: @escaping @Sendable (_ size: Int, _ queued: Int) -> Void = { _, _ in },
        logger: Logger
    ) {
        self.client = client
        self.maxPinsPerOrg = maxPinsPerOrg
        self.logger = logger
        self.creates = CreateCoalescer(settings: coalescing, observe: observeBatch) { batch in
            await Self.write(batch, client: client, maxPinsPerOrg: maxPinsPerOrg, logger: logger)
        }
    }

    /// What a tenant is told when PostgreSQL refuses for a reason that is theirs or transient,
    /// instead of a 500: the quota (409), a statement that ran past `statement_timeout` (503).
    static func translated(_ error: any Error) -> any Error {
        switch error.sqlState {
        case Migrations.quotaSQLState?:
            return PinsError.insufficientFunds("this account holds as many pins as its quota allows; delete some first")
        case "57014"?:
            var e = PinsError.unavailable("the database did not answer in time; retry shortly")
            e.retryAfter = 1
            return e
        default:
            return error
        }
    }

    /// `meta` and `info` travel as parallel key and value arrays, not JSON text: Foundation's
    /// JSON parser dropped a leading U+FEFF from strings (so `{"\u{feff}k":"a","k":"b"}` read
    /// back as `{"k":"a"}`), and arrays need no parsing at all.
    static let columns = """
        id, cid, name, origins,
        ARRAY(SELECT key FROM jsonb_each_text(meta) ORDER BY key), ARRAY(SELECT value FROM jsonb_each_text(meta) ORDER BY key),
        status,
        ARRAY(SELECT key FROM jsonb_each_text(info) ORDER BY key), ARRAY(SELECT value FROM jsonb_each_text(info) ORDER BY key),
        created_at
        """
    typealias Row = (UUID, String, String?, [String], [String], [String], String, [String], [String], Timestamp)

    static func record(_ row: Row, org: TypeID) -> PinRecord {
        PinRecord(
            id: TypeID(prefix: IDPrefix.pin, uuid: row.0),
            org: org,
            request: PinRequest(cid: row.1, name: row.2, origins: row.3, meta: map(row.4, row.5)),
            status: PinStatus(rawValue: row.6) ?? .queued,
            info: map(row.7, row.8),
            created: row.9
        )
    }

    static func map(_ keys: [String], _ values: [String]) -> [String: String] {
        Dictionary(zip(keys, values), uniquingKeysWith: { a, _ in a })
    }

    /// Bytes of stored pin data in a row (what a page's byte budget counts).
    static func size(_ row: Row) -> Int {
        func sum(_ a: [String]) -> Int { a.reduce(0) { $0 + $1.utf8.count } }
        return row.1.utf8.count + (row.2?.utf8.count ?? 0) + sum(row.3) + sum(row.4) + sum(row.5) + sum(row.7) + sum(row.8)
    }

    public func create(org: TypeID, pin: NewPin) async throws -> PinRecord {
        try await creates.create(org: org, pin: pin)
    }

    /// A row of a batch PostgreSQL refused on its own (the others were written).
    struct RefusedRow: Error, CustomStringConvertible {
        var code: String
        var message: String
        var description: String { "PostgreSQL refused the row (\(code)): \(message)" }
    }

    /// Writes a batch of creates with one call of `anchorage_create_placed_pins` (migration 6)
    /// in its own implicit transaction: one round trip, one commit. Each create gets its row's
    /// `created` or the error that refused it alone; an error of the whole statement (a lost
    /// connection, `statement_timeout`) is every create's.
    static func write(
        _ batch: [CreateCoalescer.Create],
        client: PostgresClient,
        maxPinsPerOrg: Int,
        logger: Logger
    ) async -> [Result<PinRecord, any Error>] {
        var orgs: [UUID] = []
        var ids: [UUID] = []
        var cids: [String] = []
        var keys: [String] = []
        var names: [String] = []
        var named: [Bool] = []
        var metas: [String] = []
        var ats: [Timestamp] = []
        var originRows: [Int32] = []
        var origins: [String] = []
        var placeRows: [Int32] = []
        var placeNodes: [UUID] = []
        for (n, create) in batch.enumerated() {
            let r = create.pin.request
            let row = Int32(n + 1)
            orgs.append(create.org.uuid)
            ids.append(create.pin.id.uuid)
            cids.append(r.cid)
            keys.append(r.cidKey)
            names.append(r.name ?? "")
            named.append(r.name != nil)
            metas.append(JSONText.encode(r.meta))
            ats.append(create.pin.created)
            for origin in r.origins {
                originRows.append(row)
                origins.append(origin)
            }
            for node in create.pin.nodes {
                placeRows.append(row)
                placeNodes.append(node.uuid)
            }
        }
        var outcomes: [Result<PinRecord, any Error>] = Array(
            repeating: .failure(DatabaseError.migration("anchorage_create_placed_pins returned no row for this pin")),
            count: batch.count
        )
        do {
            let statement = CreateBatchStatement(
                orgs: orgs,
                ids: ids,
                cids: cids,
                keys: keys,
                names: names,
                named: named,
                metas: metas,
                ats: ats,
                originRows: originRows,
                origins: origins,
                placeRows: placeRows,
                placeNodes: placeNodes,
                maxPinsPerOrg: maxPinsPerOrg
            )
            for try await (i, created, state, message) in try await client.execute(statement, logger: logger) {
                let n = Int(i) - 1
                guard batch.indices.contains(n) else { continue }
                let create = batch[n]
                if let created {
                    outcomes[n] = .success(
                        PinRecord(id: create.pin.id, org: create.org, request: create.pin.request, status: .queued, created: created)
                    )
                } else {
                    outcomes[n] = .failure(Self.translated(RefusedRow(code: state ?? "XX000", message: message ?? "")))
                }
            }
        } catch {
            let translated = Self.translated(error)
            outcomes = Array(repeating: .failure(translated), count: batch.count)
        }
        return outcomes
    }

    public func get(org: TypeID, id: TypeID) async throws -> PinRecord? {
        try await translatingErrors { try await getRow(org: org, id: id) }
    }

    /// Runs `body`, turning the database's refusals a tenant should hear about into `PinsError`s.
    func translatingErrors<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch { throw Self.translated(error) }
    }

    func getRow(org: TypeID, id: TypeID) async throws -> PinRecord? {
        try await client.withTransaction(logger: logger) { conn in
            try await conn.setOrg(org, logger: logger)
            let rows = try await conn.query(
                "SELECT \(unescaped: Self.columns) FROM pins WHERE org_id = \(org.uuid) AND id = \(id.uuid)",
                logger: logger
            )
            for try await row in rows.decode(Row.self) { return Self.record(row, org: org) }
            return nil
        }
    }

    public func replace(org: TypeID, id: TypeID, with replacement: NewPin) async throws -> PinRecord? {
        let r = replacement.request
        let meta = JSONText.encode(r.meta)
        var attempt = 0
        while true {
            do {
                return try await client.withTransaction(logger: logger) { conn -> PinRecord? in
                    try await conn.setOrg(org, logger: logger)
                    // The org's create lock first, as a create takes it before its counter row:
                    // deleting first would hold a counter row (migration 5) while waiting for
                    // the lock a concurrent create holds while waiting for that row.
                    try await conn.query(
                        "SELECT pg_advisory_xact_lock(\(Int32(Migrations.createLockSpace)), hashtext(\(org.uuid.uuidString.lowercased())))",
                        logger: logger
                    )
                    try await Self.releasePlacements(conn, org: org, id: id, logger: logger)
                    let deleted = try await conn.query(
                        "DELETE FROM pins WHERE org_id = \(org.uuid) AND id = \(id.uuid) RETURNING created_at",
                        logger: logger
                    ).collect()
                    guard let oldCreated = try deleted.first?.decode(Timestamp.self) else { return nil }
                    // The replacement is a newer object than the one it replaces, even if the
                    // clock has not moved (or moved back).
                    let at = max(replacement.created, oldCreated.adding(microseconds: 1000))
                    let rows = try await conn.query(
                        """
                        SELECT anchorage_create_placed_pin(\(org.uuid), \(replacement.id.uuid), \(r.cid), \(r.cidKey), \(r.name),
                          \(r.origins), \(meta)::jsonb, \(at), \(replacement.nodes.map(\.uuid)), \(maxPinsPerOrg))
                        """,
                        logger: logger
                    )
                    guard let created = try await rows.collect().first?.decode(Timestamp.self) else { return nil }
                    return PinRecord(id: replacement.id, org: org, request: r, status: .queued, created: created)
                }
            } catch  where error.sqlState == "23505" && attempt < Self.maxCreatedRetries {
                attempt += 1
            } catch {
                throw Self.translated(error)
            }
        }
    }

    public func delete(org: TypeID, id: TypeID, at: Timestamp) async throws -> Bool {
        try await translatingErrors { try await deleteRow(org: org, id: id) }
    }

    func deleteRow(org: TypeID, id: TypeID) async throws -> Bool {
        try await client.withTransaction(logger: logger) { conn in
            try await conn.setOrg(org, logger: logger)
            try await Self.releasePlacements(conn, org: org, id: id, logger: logger)
            let rows = try await conn.query(
                "DELETE FROM pins WHERE org_id = \(org.uuid) AND id = \(id.uuid) RETURNING id",
                logger: logger
            ).collect()
            return !rows.isEmpty
        }
    }

    /// The page and count statements of a listing (the tests explain them as the API runs them).
    public static func listStatements(org: TypeID, query: PinQuery) -> (page: PostgresQuery, count: PostgresQuery) {
        var binds = PostgresBindings()
        var conditions = ["org_id = $1"]
        binds.append(org.uuid)
        func bind(_ value: some PostgresNonThrowingEncodable) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        if query.statuses.count < PinStatus.allCases.count {
            conditions.append("status = ANY(\(bind(query.statuses.sorted().map(\.rawValue))))")
        }
        if !query.cids.isEmpty {
            conditions.append("cid_key = ANY(\(bind(query.cids)))")
        }
        if let name = query.name {
            switch query.match {
            case .exact: conditions.append("name = \(bind(name))")
            case .iexact: conditions.append("lower(name) = lower(\(bind(name)))")
            case .partial: conditions.append("name LIKE \(bind("%" + Self.escapeLike(name) + "%"))")
            case .ipartial: conditions.append("name ILIKE \(bind("%" + Self.escapeLike(name) + "%"))")
            }
            // The org-keyed trigram index (migration 4), when the pattern has a trigram for
            // certain: a run of three ASCII letters or digits (the database's notion of a letter
            // is wider; a pattern without such a run scans the org, never every org's keys).
            if query.match == .partial || query.match == .ipartial, Self.hasTrigram(name) {
                conditions.append("name_keys @> anchorage_trigram_keys($1, \(bind(name)))")
            }
        }
        if let before = query.before { conditions.append("created_at < \(bind(before.ceiling))") }
        if let after = query.after { conditions.append("created_at > \(bind(after.floor))") }
        if !query.meta.isEmpty {
            let filter = bind(JSONText.encode(query.meta))
            conditions.append("meta_keys @> anchorage_meta_keys($1, \(filter)::jsonb) AND meta @> \(filter)::jsonb")
        }
        let whereClause = conditions.joined(separator: " AND ")
        let countBinds = binds
        let limit = bind(query.limit)
        let pageSQL =
            "SELECT \(Self.columns) FROM pins WHERE \(whereClause) ORDER BY created_at DESC, id DESC LIMIT \(limit)"
        let page = PostgresQuery(unsafeSQL: pageSQL, binds: binds)
        // Unfiltered or filtered by status only: the org's counters (migration 5), kept exact in
        // the same transaction as every pin write, answer without counting the org's pins.
        if query.cids.isEmpty, query.name == nil, query.before == nil, query.after == nil, query.meta.isEmpty {
            var counterBinds = PostgresBindings()
            counterBinds.append(org.uuid)
            counterBinds.append(query.statuses.sorted().map(\.rawValue))
            let counted = "SELECT coalesce(sum(n), 0)::bigint FROM org_pin_counts WHERE org_id = $1 AND status = ANY($2)"
            return (page, PostgresQuery(unsafeSQL: counted, binds: counterBinds))
        }
        let countSQL = "SELECT count(*) FROM pins WHERE \(whereClause)"
        return (page, PostgresQuery(unsafeSQL: countSQL, binds: countBinds))
    }

    public func list(org: TypeID, query: PinQuery) async throws -> PinPage {
        let (pageQuery, countQuery) = Self.listStatements(org: org, query: query)
        return try await translatingErrors {
            try await client.withTransaction(logger: logger) { conn in
                try await conn.setOrg(org, logger: logger)
                var results: [PinRecord] = []
                results.reserveCapacity(min(query.limit, 64))
                // Stop decoding once the page holds `byteBudget` bytes of pin data: a full page of
                // maximal pins is hundreds of megabytes (the rest is fetched with `before`).
                var bytes = 0
                var truncated = false
                for try await row in try await conn.query(pageQuery, logger: logger)
                    .decode(Row.self)
                {
                    let size = Self.size(row)
                    if !results.isEmpty, bytes + size > query.byteBudget {
                        truncated = true
                        break
                    }
                    bytes += size
                    results.append(Self.record(row, org: org))
                }
                // A short first page is the whole answer: no need to count.
                var count = results.count
                if results.count == query.limit || truncated {
                    let rows = try await conn.query(countQuery, logger: logger)
                    count = try await rows.collect().first?.decode(Int.self) ?? results.count
                }
                return PinPage(count: count, results: results)
            }
        }
    }

    /// Removes a pin's placements. The database leaves their (node, CID) pairs for the nodes'
    /// workers to unpin (a trigger: the API role has no privilege on that cross-org queue), which
    /// they do only once no placement of any org needs the CID there any more.
    static func releasePlacements(_ conn: PostgresConnection, org: TypeID, id: TypeID, logger: Logger) async throws {
        try await conn.query("DELETE FROM placements WHERE org_id = \(org.uuid) AND pin_id = \(id.uuid)", logger: logger)
    }

    /// Whether `pattern` has three ASCII letters or digits in a row (so its trigram keys are
    /// not empty: an empty `@>` would make the index return every org's rows).
    static func hasTrigram(_ pattern: String) -> Bool {
        var run = 0
        for b in pattern.utf8 {
            let alnum = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            run = alnum ? run + 1 : 0
            if run >= 3 { return true }
        }
        return false
    }

    /// Escapes `LIKE` metacharacters so that a name filter matches literally.
    static func escapeLike(_ s: String) -> String {
        var out = ""
        for c in s {
            if c == "\\" || c == "%" || c == "_" { out.append("\\") }
            out.append(c)
        }
        return out
    }
}

/// One batch of creates (migration 7's `anchorage_create_placed_pins`), prepared once per
/// connection: every `POST /pins` batch skips parsing and planning the call.
struct CreateBatchStatement: PostgresPreparedStatement {
    static let name = "anchorage_create_placed_pins_v1"
    static let sql = """
        SELECT i, created, state, message
        FROM anchorage_create_placed_pins($1, $2, $3, $4, $5, $6, $7::jsonb[], $8, $9, $10, $11, $12, $13)
        """
    typealias Row = (Int32, Timestamp?, String?, String?)

    var orgs: [UUID]
    var ids: [UUID]
    var cids: [String]
    var keys: [String]
    var names: [String]
    var named: [Bool]
    var metas: [String]
    var ats: [Timestamp]
    var originRows: [Int32]
    var origins: [String]
    var placeRows: [Int32]
    var placeNodes: [UUID]
    var maxPinsPerOrg: Int

    func makeBindings() throws -> PostgresBindings {
        var b = PostgresBindings(capacity: 13)
        b.append(orgs)
        b.append(ids)
        b.append(cids)
        b.append(keys)
        b.append(names)
        b.append(named)
        b.append(metas)
        b.append(ats)
        b.append(originRows)
        b.append(origins)
        b.append(placeRows)
        b.append(placeNodes)
        b.append(maxPinsPerOrg)
        return b
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
