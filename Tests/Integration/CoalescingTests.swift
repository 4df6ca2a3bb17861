import AnchorageTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Pins
import PostgresNIO
import Seams
import Testing

@testable import PostgresStore

/// Concurrent `POST /pins` written by one statement and one commit (`CreateCoalescer`,
/// migration 6): each request still gets its own result, tenancy holds row by row, and
/// `created` stays unique per org, so `before` pagination sees every pin exactly once.
@Suite struct CoalescingTests {
    let logger = Logger(label: "test.coalescing")

    /// A store that writes one batch at a time, so that creates queue behind a held batch.
    func serialStore(_ node: TestNode, maxPinsPerOrg: Int = 0) -> PostgresPinStore {
        var settings = CreateCoalescer.Settings()
        settings.maxInFlight = 1
        return PostgresPinStore(client: node.apiClient, maxPinsPerOrg: maxPinsPerOrg, coalescing: settings, logger: logger)
    }

    func newPin(_ node: TestNode, _ n: UInt64, id: TypeID? = nil) -> NewPin {
        NewPin(
            id: id ?? TypeID.make(IDPrefix.pin, clock: node.clock, entropy: node.entropy),
            request: PinRequest(cid: CIDText.synthetic(n, namespace: 61), name: "p\(n)", origins: ["/dnsaddr/o\(n).example"]),
            created: node.clock.now()
        )
    }

    /// Holds `org`'s create lock on a connection of the ops role while `body` runs: a batch
    /// holding one of that org's creates waits in the database, and creates behind it queue.
    func holdingCreateLock<T: Sendable>(_ node: TestNode, of org: TypeID, _ body: () async throws -> T) async throws -> T {
        try await node.opsClient.withConnection { conn in
            let space = Int32(Migrations.createLockSpace)
            let key = org.uuid.uuidString.lowercased()
            _ = try await conn.query("SELECT pg_advisory_lock(\(space), hashtext(\(key)))", logger: logger).collect()
            do {
                let result = try await body()
                _ = try await conn.query("SELECT pg_advisory_unlock(\(space), hashtext(\(key)))", logger: logger).collect()
                return result
            } catch {
                _ = try? await conn.query("SELECT pg_advisory_unlock_all()", logger: logger).collect()
                throw error
            }
        }
    }

    func waitUntil(_ what: String, _ condition: () async -> Bool) async throws {
        for _ in 0..<500 {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("timed out waiting until \(what)")
    }

    /// Two orgs' creates share one batch; each row is stored in its own org, visible to it
    /// alone, and counted in its own org's counters.
    @Test func aBatchOfTwoOrgsWritesEachRowInItsOwnOrg() async throws {
        try await withTestNode { node in
            let (a, b, c) = (
                try await node.mint(org: "batch-a").claims.org, try await node.mint(org: "batch-b").claims.org,
                try await node.mint(org: "batch-c").claims.org
            )
            let store = serialStore(node)
            let (pa, pb, pc) = (newPin(node, 1), newPin(node, 2), newPin(node, 3))
            let records = try await withThrowingTaskGroup(of: PinRecord.self) { group in
                try await holdingCreateLock(node, of: c) {
                    group.addTask { try await store.create(org: c, pin: pc) }
                    try await waitUntil("c's batch is in flight") { await store.creates.currentStats().inFlight == 1 }
                    group.addTask { try await store.create(org: a, pin: pa) }
                    group.addTask { try await store.create(org: b, pin: pb) }
                    try await waitUntil("a and b queue") { await store.creates.currentStats().queued == 2 }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let stats = await store.creates.currentStats()
            #expect(stats.batches == 2 && stats.largestBatch == 2, "c alone, then a and b together: \(stats)")
            #expect(Set(records.map(\.org)) == [a, b, c])
            for (org, pin) in [(a, pa), (b, pb), (c, pc)] {
                let mine = try await store.get(org: org, id: pin.id)
                #expect(mine?.request == pin.request, "the row is stored as its own org's")
                for other in [a, b, c] where other != org {
                    #expect(try await store.get(org: other, id: pin.id) == nil, "no other org sees it")
                }
                let owner = try await node.opsClient.query("SELECT org_id FROM pins WHERE id = \(pin.id.uuid)", logger: logger)
                    .collect().first?.decode(UUID.self)
                #expect(owner == org.uuid)
                var all = PinQuery()
                all.statuses = Set(PinStatus.allCases)
                #expect(try await store.list(org: org, query: all).count == 1)
            }
        }
    }

    /// The guarantee is the database's, not the batcher's: a batch function that wrote two orgs'
    /// rows under one org's setting is refused by forced row-level security, and writes nothing.
    @Test func forcedRowLevelSecurityRefusesABatchWrittenAsTheWrongOrg() async throws {
        try await withTestNode { node in
            let a = try await node.mint(org: "rls-a").claims.org
            let b = try await node.mint(org: "rls-b").claims.org
            try await node.database.owner.withConnection(logger: logger) { conn in
                try await conn.query(
                    """
                    CREATE FUNCTION careless_batch(p_orgs uuid[], p_ids uuid[], p_cids text[]) RETURNS void
                      LANGUAGE plpgsql SECURITY INVOKER AS $fn$
                    BEGIN
                      PERFORM set_config('anchorage.org_id', p_orgs[1]::text, true);
                      INSERT INTO pins (org_id, id, cid, cid_key, origins, meta, status, info, created_at, updated_at)
                        SELECT o, i, c, c, '{}', '{}', 'queued', '{}', now() + n * interval '1 millisecond', now()
                        FROM unnest(p_orgs, p_ids, p_cids) WITH ORDINALITY AS t(o, i, c, n);
                    END $fn$
                    """,
                    logger: logger
                )
                try await conn.query("GRANT EXECUTE ON FUNCTION careless_batch(uuid[], uuid[], text[]) TO anchorage_api", logger: logger)
            }
            let cids = [CIDText.synthetic(1, namespace: 62), CIDText.synthetic(2, namespace: 62)]
            do {
                _ = try await node.apiClient.query(
                    "SELECT careless_batch(\([a.uuid, b.uuid]), \([UUID(), UUID()]), \(cids))",
                    logger: logger
                ).collect()
                Issue.record("a row of org b was written under org a's setting")
            } catch {
                #expect(error.sqlState == "42501", "row-level security refused it: \(String(reflecting: error))")
            }
            let stored = try await node.opsClient.query("SELECT count(*)::bigint FROM pins", logger: logger).collect().first?.decode(Int.self)
            #expect(stored == 0, "nothing of the batch was written")
        }
    }

    /// A bad row (a duplicate id) and a row past its org's quota fail alone; the batch's other
    /// rows, of the same and another org, are written, with unique increasing `created`.
    @Test func aBadRowFailsOnlyItsOwnCreate() async throws {
        try await withTestNode { node in
            let q = try await node.mint(org: "quota").claims.org
            let d = try await node.mint(org: "dup").claims.org
            let hold = try await node.mint(org: "hold").claims.org
            let store = serialStore(node, maxPinsPerOrg: 4)
            _ = try await store.create(org: q, pin: newPin(node, 10))
            _ = try await store.create(org: q, pin: newPin(node, 11))
            let existing = try await store.create(org: d, pin: newPin(node, 12))
            let batch: [(TypeID, NewPin)] = [
                (q, newPin(node, 20)), (d, newPin(node, 21)), (q, newPin(node, 22)), (d, newPin(node, 23, id: existing.id)),
                (q, newPin(node, 24)), (d, newPin(node, 25)),
            ]
            let outcomes = try await withThrowingTaskGroup(of: (Int, Result<PinRecord, any Error>).self) { group in
                try await holdingCreateLock(node, of: hold) {
                    group.addTask { (-1, await attempt { try await store.create(org: hold, pin: newPin(node, 30)) }) }
                    try await waitUntil("the holding batch is in flight") { await store.creates.currentStats().inFlight == 1 }
                    for (n, (org, pin)) in batch.enumerated() {
                        group.addTask { (n, await attempt { try await store.create(org: org, pin: pin) }) }
                        try await waitUntil("create \(n) queues in order") { await store.creates.currentStats().queued == n + 1 }
                    }
                }
                return try await group.reduce(into: [Int: Result<PinRecord, any Error>]()) { $0[$1.0] = $1.1 }
            }
            #expect(await store.creates.currentStats().largestBatch == batch.count, "the six creates were one batch")
            func ok(_ n: Int) -> Bool { (try? outcomes[n]?.get()) != nil }
            #expect(ok(0) && ok(1) && ok(2) && ok(5), "the good rows were written")
            for n in [4] {
                #expect(throws: PinsError.self, "past the quota") { try outcomes[n]?.get() }
                if case .failure(let e as PinsError) = outcomes[n] { #expect(e.status == 409) }
            }
            if case .failure(let e) = outcomes[3] {
                #expect(e.sqlState == "23505", "the duplicate id alone failed: \(e)")
            } else {
                Issue.record("a duplicate id was accepted")
            }
            var all = PinQuery()
            all.statuses = Set(PinStatus.allCases)
            #expect(try await store.list(org: q, query: all).count == 4)
            let dPins = try await store.list(org: d, query: all)
            #expect(dPins.count == 3)
            #expect(Set(dPins.results.map(\.created)).count == 3, "created is unique in the org")
            #expect(try await store.get(org: d, id: existing.id)?.request == existing.request, "the stored pin is untouched")
        }
    }

    /// Migration 7 rewrote the filter-key functions in PL/pgSQL (they were re-planned by every
    /// insert): for any name and meta they give the keys the SQL definitions gave, so rows
    /// stored before and after match the same filters.
    @Test func theFilterKeysAreTheOnesMigrationFourDefined() async throws {
        try await withTestNode { node in
            let org = UUID()
            let names: [String?] = [
                nil, "", "ab", "abc", "bench", "Hello World", "über-Straße 123", "日本語のテキスト", "aaaa aaaa aaa",
                "a-b_c.d!e", "MiXeD CaSe mixed case", String(repeating: "xyz0123456789 ", count: 18),
            ]
            for name in names {
                let same = try await node.opsClient.query(
                    """
                    SELECT (SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') FROM unnest(anchorage_trigram_keys(\(org), \(name))) AS x)
                             = (SELECT coalesce(array_agg(DISTINCT hashtextextended(\(org)::text || substr(w, i, 3), 0)), '{}')
                                FROM regexp_split_to_table(lower(coalesce(\(name)::text, '')), '[^[:alnum:]]+') AS w,
                                     generate_series(1, length(w) - 2) AS i),
                           cardinality(anchorage_trigram_keys(\(org), \(name)))
                             = (SELECT count(DISTINCT x) FROM unnest(anchorage_trigram_keys(\(org), \(name))) AS x)
                    """,
                    logger: logger
                ).collect().first?.decode((Bool, Bool).self)
                #expect(same?.0 == true && same?.1 == true, "trigram keys of \(name ?? "NULL")")
            }
            let metas = [#"{}"#, #"{"app":"bench"}"#, #"{"a":null,"b":1,"c":[1,2],"d":{"e":"f"},"ü":"日本"}"#]
            for meta in metas {
                let same = try await node.opsClient.query(
                    """
                    SELECT anchorage_meta_keys(\(org), \(meta)::jsonb) IS NOT DISTINCT FROM
                      (SELECT coalesce(array_agg(hashtextextended(\(org)::text || chr(31) || key || chr(31) || value, 0)), '{}')
                       FROM jsonb_each_text(\(meta)::jsonb))
                    """,
                    logger: logger
                ).collect().first?.decode(Bool.self)
                #expect(same == true, "meta keys of \(meta)")
            }
        }
    }

    /// A coalescer whose writes succeed once `gate` lets them through (`held` decides which
    /// batches wait for it: all of them unless told), and never touch a database.
    func gatedCoalescer(
        _ settings: CreateCoalescer.Settings,
        _ gate: Gate,
        held: @escaping @Sendable (TypeID) -> Bool = { _ in true }
    )
        -> CreateCoalescer
    {
        CreateCoalescer(settings: settings) { batch in
            if held(batch[0].org) { await gate.wait() }
            if Task.isCancelled { return batch.map { _ in .failure(CancellationError()) } }
            return batch.map { .success(PinRecord(id: $0.pin.id, org: $0.org, request: $0.pin.request, status: .queued, created: $0.pin.created)) }
        }
    }

    func memoryPin(_ n: UInt64) -> NewPin {
        NewPin(
            id: TypeID(prefix: IDPrefix.pin, high: n, low: n),
            request: PinRequest(cid: CIDText.synthetic(n, namespace: 63)),
            created: Timestamp(microsecondsSinceEpoch: 0)
        )
    }

    /// An idle node writes a create at once, alone; a full queue refuses with a retryable 503.
    @Test func anIdleCreateLeadsAtOnceAndAFullQueueRefuses() async throws {
        var settings = CreateCoalescer.Settings()
        settings.maxInFlight = 1
        settings.maxQueued = 2
        let gate = Gate()
        let coalescer = gatedCoalescer(settings, gate)
        let org = TypeID(prefix: IDPrefix.org, high: 1, low: 1)
        await gate.open()
        _ = try await coalescer.create(org: org, pin: memoryPin(1))
        #expect(await coalescer.currentStats() == .init(batches: 1, rows: 1, largestBatch: 1, queued: 0, refused: 0, inFlight: 0))
        await gate.close()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 2...4 {
                group.addTask { _ = try await coalescer.create(org: org, pin: self.memoryPin(UInt64(n))) }
                try await waitUntil("create \(n) is in") {
                    let s = await coalescer.currentStats()
                    return s.inFlight + s.queued == n - 1
                }
            }
            await #expect(throws: PinsError.self) { _ = try await coalescer.create(org: org, pin: memoryPin(5)) }
            await gate.open()
            try await group.waitForAll()
        }
        let stats = await coalescer.currentStats()
        #expect(stats.refused == 1 && stats.rows == 4 && stats.batches == 3 && stats.largestBatch == 2)
    }

    /// A leader whose request is cancelled (its client went away) still writes its batch: the
    /// other creates in it are answered with their rows, not with its cancellation.
    @Test func aCancelledLeaderDoesNotCancelItsBatch() async throws {
        var settings = CreateCoalescer.Settings()
        settings.maxInFlight = 1
        let gate = Gate()
        let coalescer = gatedCoalescer(settings, gate)
        let org = TypeID(prefix: IDPrefix.org, high: 1, low: 1)
        let first = Task { try await coalescer.create(org: org, pin: memoryPin(1)) }
        try await waitUntil("the first batch is in flight") { await coalescer.currentStats().inFlight == 1 }
        let leader = Task { try await coalescer.create(org: org, pin: memoryPin(2)) }
        try await waitUntil("the next leader queues") { await coalescer.currentStats().queued == 1 }
        let follower = Task { try await coalescer.create(org: org, pin: memoryPin(3)) }
        try await waitUntil("its follower queues") { await coalescer.currentStats().queued == 2 }
        leader.cancel()
        await gate.open()
        _ = try await first.value
        #expect(try await follower.value.id == memoryPin(3).id, "the follower's row was written")
        _ = await leader.result
        #expect(await coalescer.currentStats().largestBatch == 2)
    }

    /// Orgs are spread over lanes: while one org's batch is held, that org's next create
    /// queues behind it, and an org in another lane is written at once (it does not wait for a
    /// batch holding the first org's lock). Before lanes, any free slot took any org.
    @Test func anOrgsCreatesShareALaneAndOtherLanesRunBeside() async throws {
        var settings = CreateCoalescer.Settings()
        settings.maxInFlight = 4
        let gate = Gate()
        let held = TypeID(prefix: IDPrefix.org, high: 1, low: 1)
        let coalescer = gatedCoalescer(settings, gate, held: { $0 == held })
        let other = try #require(
            (2...64).lazy.map { TypeID(prefix: IDPrefix.org, high: 1, low: UInt64($0)) }.first { coalescer.lane(of: $0) != coalescer.lane(of: held) }
        )
        let sameLane = try #require(
            (2...64).lazy.map { TypeID(prefix: IDPrefix.org, high: 1, low: UInt64($0)) }.first { coalescer.lane(of: $0) == coalescer.lane(of: held) }
        )
        #expect(
            Set((1...64).map { coalescer.lane(of: TypeID(prefix: IDPrefix.org, high: 1, low: UInt64($0))) }) == [0, 1, 2, 3],
            "orgs spread over every lane"
        )
        let first = Task { try await coalescer.create(org: held, pin: memoryPin(1)) }
        try await waitUntil("the held org's batch is in flight") { await coalescer.currentStats().inFlight == 1 }
        let second = Task { try await coalescer.create(org: held, pin: memoryPin(2)) }
        try await waitUntil("the held org's next create queues in its lane") { await coalescer.currentStats().queued == 1 }
        let neighbour = Task { try await coalescer.create(org: sameLane, pin: memoryPin(3)) }
        try await waitUntil("an org of the same lane queues too") { await coalescer.currentStats().queued == 2 }
        _ = try await coalescer.create(org: other, pin: memoryPin(4))
        #expect(await coalescer.currentStats().queued == 2, "another lane's org was written while the held lane waited")
        await gate.open()
        _ = try await first.value
        _ = try await second.value
        _ = try await neighbour.value
        let stats = await coalescer.currentStats()
        #expect(stats.batches == 3 && stats.rows == 4 && stats.largestBatch == 2, "\(stats)")
    }

    /// Without coalescing (`maxBatch` 1) there are no lanes: one org's creates use every writer.
    @Test func withoutCoalescingAnyWriterTakesAnyOrg() async throws {
        var settings = CreateCoalescer.Settings()
        settings.maxBatch = 1
        settings.maxInFlight = 3
        let gate = Gate()
        let coalescer = gatedCoalescer(settings, gate)
        let org = TypeID(prefix: IDPrefix.org, high: 1, low: 1)
        let creates = (1...4).map { n in Task { try await coalescer.create(org: org, pin: memoryPin(UInt64(n))) } }
        try await waitUntil("three writers busy, one create queued") {
            let s = await coalescer.currentStats()
            return s.inFlight == 3 && s.queued == 1
        }
        await gate.open()
        for c in creates { _ = try await c.value }
        #expect(await coalescer.currentStats().largestBatch == 1)
    }

    /// 10,000 pins created in one org by 64 concurrent clients through the API, then walked
    /// with `limit=1000` and `before` as Kubo walks: every pin exactly once, `count` exact.
    @Test func aTenThousandPinBurstPagesExactlyOnce() async throws {
        var limits = Limits()
        limits.requestsPerSecond = 0  // one token sends all 10,000
        try await withTestNode(limits: limits) { node in
            let token = try await node.token(org: "burst")
            let ids = try await Application(router: node.storage.router).test(.router) { client in
                try await withThrowingTaskGroup(of: [String].self) { group in
                    for worker in 0..<64 {
                        group.addTask {
                            var mine: [String] = []
                            for n in stride(from: worker, to: 10_000, by: 64) {
                                let reply = try await client.add(token, cid: CIDText.synthetic(UInt64(n), namespace: 64), name: "b\(n)")
                                try #require(reply.status == 202, "\(reply.text)")
                                mine.append(reply.requestID)
                            }
                            return mine
                        }
                    }
                    return try await group.reduce(into: [String]()) { $0 += $1 }
                }
            }
            #expect(ids.count == 10_000)
            let stats = await node.storage.service.store.creates.currentStats()
            #expect(stats.largestBatch > 1, "the burst was coalesced: \(stats)")

            let statuses = "queued,pinning,pinned,failed"
            @Sendable func encoded(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
            let seen = try await Application(router: node.storage.router).test(.router) { client in
                var seen: [(id: String, created: String)] = []
                while true {
                    var uri = "/pins?limit=1000&status=\(statuses)"
                    if let before = seen.last?.created { uri += "&before=\(encoded(before))" }
                    let page = try await client.call(.get, uri, token: token)
                    try #require(page.status == 200, "\(page.text)")
                    #expect(page.count == 10_000 - seen.count, "count is what is left")
                    if page.results.isEmpty { break }
                    seen += page.results.map { ($0["requestid"] as? String ?? "", $0["created"] as? String ?? "") }
                }
                // `after` is exact too: after the 5,000th newest pin come the 4,999 newer ones.
                try #require(seen.count == 10_000)
                let newer = try await client.call(.get, "/pins?limit=1000&status=\(statuses)&after=\(encoded(seen[4999].created))", token: token)
                #expect(newer.count == 4999)
                #expect(newer.results.first?["requestid"] as? String == seen[0].id)
                return seen
            }
            #expect(seen.count == 10_000, "every pin once")
            #expect(Set(seen.map(\.id)) == Set(ids))
            let created = try await node.opsClient.query(
                "SELECT count(DISTINCT created_at)::bigint FROM pins",
                logger: logger
            ).collect().first?.decode(Int.self)
            #expect(created == 10_000, "created is unique per org")
        }
    }
}

func attempt<T: Sendable>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

/// Holds a fake write until opened.
actor Gate {
    var isOpen = false
    var waiters: [CheckedContinuation<Void, Never>] = []
    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }
    func open() {
        isOpen = true
        for w in waiters { w.resume() }
        waiters = []
    }
    func close() { isOpen = false }
}
