import AnchorageTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import Pins
import PinsHTTP
import PostgresNIO
import PostgresStore
import Seams
import Testing

@Suite(.serialized) struct PinsAPITests {
    @Test func addReturns202AndAStrictPinStatus() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let origins = (0..<30).map { "\"/ip4/192.168.0.\($0)/udp/4001/quic-v1/p2p/12D3KooWPeer\"" }.joined(separator: ",")
            let reply = try await client.call(
                .post,
                "/pins",
                token: token,
                body:
                    #"{"cid":"\#(cidA)","name":"PreciousData.pdf","origins":[\#(origins),"/ip6/::1/tcp/4001/p2p/12D3KooWPeer"],"meta":{"app_id":"99"}}"#
            )
            #expect(reply.status == 202)
            #expect(reply.contentType == "application/json")
            Strict.pinStatus(reply.object)
            #expect(reply.object["status"] as? String == "queued")
            let pin = try #require(reply.object["pin"] as? [String: Any])
            #expect(pin["cid"] as? String == cidA)
            #expect(pin["name"] as? String == "PreciousData.pdf")
            #expect(pin["meta"] as? [String: String] == ["app_id": "99"])
            #expect((pin["origins"] as? [String])?.count == 20)
            #expect(reply.object["delegates"] as? [String] == TestNode.defaultDelegates)
        }
    }

    /// PostgreSQL cannot store U+0000; it used to surface as a 500. Names and meta keys refuse
    /// every control character, meta values only U+0000; nothing is stored on a refusal.
    @Test func controlCharactersAreA400AndNothingIsStored() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let refused: [(String, String)] = [
                (#"{"cid":"\#(cidA)","name":"a\u0000b"}"#, "INVALID_NAME"),
                (#"{"cid":"\#(cidA)","name":"bell\u0007"}"#, "INVALID_NAME"),
                (#"{"cid":"\#(cidA)","meta":{"k":"v\u0000"}}"#, "INVALID_META"),
                (#"{"cid":"\#(cidA)","meta":{"k\n":"v"}}"#, "INVALID_META"),
                (#"{"cid":"\#(cidA)","meta":{"k\u0000":"v"}}"#, "INVALID_META"),
            ]
            for (body, reason) in refused {
                let reply = try await client.call(.post, "/pins", token: token, body: body)
                #expect(reply.status == 400, "\(body): \(reply.status) \(reply.text)")
                #expect(reply.reason == reason, "\(body)")
            }
            for query in ["name=a%00b", "name=%07", #"meta=%7B%22k%22%3A%22%5Cu0000%22%7D"#] {
                let reply = try await client.call(.get, "/pins?\(query)", token: token)
                #expect(reply.status == 400, "\(query): \(reply.status) \(reply.text)")
                #expect(reply.reason == "INVALID_QUERY")
            }
            // Tabs and newlines in a meta value are text; control characters in an origin drop it.
            let fine = try await client.call(
                .post,
                "/pins",
                token: token,
                body: #"{"cid":"\#(cidA)","meta":{"note":"line 1\nline 2\t!"},"origins":["/dns4/a\u0000b/tcp/1"]}"#
            )
            #expect(fine.status == 202, "\(fine.text)")
            #expect((fine.object["pin"] as? [String: Any])?["origins"] == nil)
            #expect(try await client.call(.get, "/pins?status=queued,pinning,pinned,failed", token: token).count == 1)
        }
    }

    /// `created` is a millisecond after the org's newest pin; concurrent creates in one org
    /// used to collide on it and gave up after eight retries (a 500 from about nine at once).
    @Test func manyConcurrentCreatesInOneOrgAllSucceed() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for n in 0..<48 {
                    group.addTask { try await client.add(token, cid: CIDText.synthetic(UInt64(n), namespace: 5)) }
                }
                return try await group.reduce(into: [Reply]()) { $0.append($1) }
            }
            #expect(replies.map(\.status).filter { $0 != 202 }.isEmpty, "\(replies.map(\.status))")
            #expect(Set(replies.compactMap { $0.object["created"] as? String }).count == 48, "created is unique per org")
        }
    }

    /// A method the API does not serve on one of its paths is a 405 with `Allow`, before auth.
    @Test func anUnservedMethodIsA405WithAllow() async throws {
        try await withAPI { _, client in
            let trace = try await client.call(.trace, "/pins", token: nil)
            #expect(trace.status == 405)
            #expect(trace.headers[.allow] == "GET, HEAD, POST")
            #expect(trace.reason == "METHOD_NOT_ALLOWED")
            let put = try await client.call(.put, "/pins/abc", token: nil)
            #expect(put.status == 405)
            #expect(put.headers[.allow] == "GET, HEAD, POST, DELETE")
            #expect(try await client.call(.get, "/nope", token: nil).status == 404)
        }
    }

    /// A page is bounded in bytes, not only in results: `limit=1000` over pins with large
    /// `meta` used to render everything into one buffer (about 220 MB at the limits). Past
    /// `limits.maxResponseBytes` the page is short, `count` stays the total, and paging on with
    /// `before` (as Kubo does) sees every pin exactly once.
    @Test func aPageIsBoundedInBytesAndPagingStillSeesEveryPin() async throws {
        var limits = Limits()
        limits.maxResponseBytes = 64 * 1024
        try await withAPI(limits: limits) { node, client in
            let token = try await node.token(org: "acme")
            // Control characters in a value are allowed and cost six bytes each when escaped.
            let big = String(repeating: "\u{1}", count: 2000) + String(repeating: "x", count: 12_000)
            var ids = Set<String>()
            for n in 0..<24 {
                let reply = try await client.add(token, cid: CIDText.synthetic(UInt64(n), namespace: 9), meta: ["blob": big])
                #expect(reply.status == 202)
                ids.insert(reply.requestID)
            }
            var seen: [String] = []
            var before: String?
            var pages = 0
            while pages < 50 {
                let query = "/pins?status=queued&limit=1000" + (before.map { "&before=\($0)" } ?? "")
                let page = try await client.call(.get, query, token: token)
                #expect(page.status == 200)
                #expect(page.body.count <= 64 * 1024 + 30_000, "a page of \(page.body.count) bytes")
                #expect(page.count == 24 - seen.count, "count is the total after before")
                pages += 1
                let results = page.results
                #expect(!results.isEmpty)
                seen += results.compactMap { $0["requestid"] as? String }
                if page.count == results.count { break }
                before = (results.last?["created"] as? String).map { $0.replacingOccurrences(of: ":", with: "%3A") }
            }
            #expect(pages > 1, "the page was not cut")
            #expect(seen.count == 24 && Set(seen) == ids, "every pin exactly once")
        }
    }

    /// `limits.requestsPerSecond` per token: past the burst a 429 in the spec's error body with
    /// `Retry-After`; another token is unaffected; the budget refills with time.
    @Test func aTokenPastItsRateIsA429WithRetryAfter() async throws {
        var limits = Limits()
        limits.requestsPerSecond = 2
        limits.requestBurst = 5
        try await withAPI(limits: limits) { node, client in
            let busy = try await node.token(org: "busy")
            let calm = try await node.token(org: "calm")
            for _ in 0..<5 { #expect(try await client.call(.get, "/pins", token: busy).status == 200) }
            let refused = try await client.call(.get, "/pins", token: busy)
            #expect(refused.status == 429)
            #expect(refused.reason == "TOO_MANY_REQUESTS")
            #expect(refused.headers[.retryAfter] == "1")
            Strict.failure(refused, status: 429)
            #expect(try await client.call(.get, "/pins", token: calm).status == 200)
            node.clock.advance(seconds: 1)
            #expect(try await client.call(.get, "/pins", token: busy).status == 200)
        }
    }

    /// `limits.maxPinsPerOrg`: past it, the spec's 409 `INSUFFICIENT_FUNDS`; replacing and
    /// deleting still work, and other orgs are not counted.
    @Test func anOrgAtItsQuotaGetsInsufficientFunds() async throws {
        var limits = Limits()
        limits.maxPinsPerOrg = 3
        try await withAPI(limits: limits) { node, client in
            let token = try await node.token(org: "small")
            var ids: [String] = []
            for n in 0..<3 { ids.append(try await client.add(token, cid: CIDText.synthetic(UInt64(n), namespace: 3)).requestID) }
            let over = try await client.add(token, cid: cidA)
            #expect(over.status == 409)
            #expect(over.reason == "INSUFFICIENT_FUNDS")
            Strict.failure(over, status: 409)
            let replaced = try await client.call(.post, "/pins/\(ids[0])", token: token, body: #"{"cid":"\#(cidB)"}"#)
            #expect(replaced.status == 202, "replacing keeps the count")
            #expect(try await client.add(try await node.token(org: "other"), cid: cidA).status == 202)
            #expect(try await client.call(.delete, "/pins/\(ids[1])", token: token).status == 202)
            #expect(try await client.add(token, cid: cidA).status == 202)
        }
    }

    /// `limits.maxInFlightRequests` on the node (issue 15, overload): while the database holds
    /// a request (here the org's create lock, held by another session, as a slow PostgreSQL or
    /// an exhausted pool would), the next request is a 503 with `Retry-After`, answered at once
    /// in the spec's error body instead of queueing; once the first completes, requests are
    /// admitted again and the held one succeeds.
    @Test func aNodeAtItsInFlightLimitShedsWithA503() async throws {
        var limits = Limits()
        limits.maxInFlightRequests = 1
        try await withAPI(limits: limits) { node, client in
            let token = try await node.token(org: "acme")
            let org = try #require(try await node.admin.org(named: "acme")).id
            let logger = Logger(label: "test")
            let lock = "\(Int32(Migrations.createLockSpace)), hashtext('\(org.uuid.uuidString.lowercased())')"
            try await node.opsClient.withConnection { conn in
                _ = try await conn.query(PostgresQuery(unsafeSQL: "SELECT pg_advisory_lock(\(lock))"), logger: logger).collect()
                async let held = client.add(token, cid: cidA)
                var waiting = 0
                for _ in 0..<200 where waiting == 0 {
                    try await Task.sleep(for: .milliseconds(20))
                    let rows = try await node.opsClient.query(
                        "SELECT count(*)::int8 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                        logger: logger
                    )
                    for try await n in rows.decode(Int64.self) { waiting = Int(n) }
                }
                #expect(waiting == 1, "the POST waits for the org's create lock")
                let started = ContinuousClock.now
                let shed = try await client.call(.get, "/pins", token: token)
                #expect(ContinuousClock.now - started < .seconds(1), "shed at once, not queued")
                #expect(shed.status == 503)
                #expect(shed.reason == "SERVICE_UNAVAILABLE")
                #expect(shed.headers[.retryAfter] == "1")
                Strict.failure(shed, status: 503)
                _ = try await conn.query(PostgresQuery(unsafeSQL: "SELECT pg_advisory_unlock(\(lock))"), logger: logger).collect()
                #expect(try await held.status == 202, "the held request completes")
            }
            #expect(try await client.call(.get, "/pins", token: token).status == 200, "admitted again")
        }
    }

    /// At most `limits.maxConcurrentListsPerToken` listings in flight per token.
    @Test func theListGateAdmitsItsLimitPerToken() async throws {
        let gate = ConcurrencyGate(limit: 2)
        let a = TypeID(prefix: IDPrefix.token, high: 1, low: 1)
        let b = TypeID(prefix: IDPrefix.token, high: 1, low: 2)
        let inner = try await gate.run(a) {
            try await gate.run(a) {
                (await gate.run(a) { 1 }, await gate.run(b) { 2 })
            }
        }
        #expect(inner??.0 == nil, "a third listing of one token is refused")
        #expect(inner??.1 == 2, "another token is not")
        #expect(await gate.run(a) { 3 } == 3, "slots come back")
    }

    /// Every API statement runs under `db.statementTimeoutSeconds`.
    @Test func theAPIsStatementsHaveATimeout() async throws {
        try await withTestNode { node in
            let shown = try await node.apiClient.query("SHOW statement_timeout", logger: Logger(label: "t")).collect().first?.decode(String.self)
            #expect(shown == "10s")
        }
    }

    /// Stored text comes back byte for byte. Found by `make fuzz`: a leading U+FEFF vanished
    /// from meta keys and values on read (the JSON parser dropped it), so `{"\u{feff}k":"a",
    /// "k":"b"}` read back as `{"k":"a"}` and "b" was lost.
    @Test func metaAndNamesReadBackExactly() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            // JSON escapes in, raw bytes checked out: Foundation's JSON parser and writer both
            // drop a leading U+FEFF, so neither may stand between this test and the server.
            let body = #"{"cid":"\#(cidA)","name":"\ufeffname","meta":{"\ufeffk":"\ufeffa","k":"b","e\u0301":"x"}}"#
            let added = try await client.call(.post, "/pins", token: token, body: body)
            #expect(added.status == 202)
            let bom = "\u{feff}"
            for reply in [
                try await client.call(.get, "/pins/\(added.requestID)", token: token),
                try await client.call(.get, "/pins?status=queued", token: token),
            ] {
                let text = String(decoding: reply.body, as: UTF8.self)
                #expect(text.contains("\"\(bom)k\":\"\(bom)a\""), "\(Array(reply.body))")
                #expect(text.contains("\"k\":\"b\""))
                #expect(text.contains("\"name\":\"\(bom)name\""))
                #expect(text.contains("\"e\u{301}\":\"x\""))
            }
        }
    }

    @Test func optionalFieldsAreOmittedNotNull() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let reply = try await client.call(.post, "/pins", token: token, body: #"{"cid":"\#(cidA)","name":null,"meta":{}}"#)
            #expect(reply.status == 202)
            let pin = try #require(reply.object["pin"] as? [String: Any])
            #expect(Set(pin.keys) == ["cid"])
            #expect(reply.object["info"] == nil)
            #expect(!reply.text.contains("null"))
        }
    }

    @Test func samecidTwiceGivesTwoRequestIDs() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let a = try await client.add(token, cid: cidA)
            let b = try await client.add(token, cid: cidA)
            #expect(a.requestID != b.requestID)
            #expect((a.object["created"] as? String)! < (b.object["created"] as? String)!)
        }
    }

    @Test func getByRequestID() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let created = try await client.add(token, cid: cidA, name: "n")
            let got = try await client.call(.get, "/pins/\(created.requestID)", token: token)
            #expect(got.status == 200)
            Strict.pinStatus(got.object)
            #expect(got.requestID == created.requestID)
            #expect(got.object["created"] as? String == created.object["created"] as? String)
            Strict.failure(try await client.call(.get, "/pins/pin_01jd00000000000000000000zz", token: token), status: 404)
            Strict.failure(try await client.call(.get, "/pins/not-an-id", token: token), status: 404)
            Strict.failure(
                try await client.call(.get, "/pins/\(created.requestID.replacingOccurrences(of: "pin_", with: "org_"))", token: token),
                status: 404
            )
        }
    }

    @Test func replaceMintsANewRequestIDAndRemovesTheOld() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let old = try await client.add(token, cid: cidA, name: "policy/Qm/mfs")
            let replaced = try await client.call(
                .post,
                "/pins/\(old.requestID)",
                token: token,
                body: #"{"cid":"\#(cidB)","name":"policy/Qm/mfs"}"#
            )
            #expect(replaced.status == 202)
            Strict.pinStatus(replaced.object)
            #expect(replaced.requestID != old.requestID)
            #expect((replaced.object["pin"] as? [String: Any])?["cid"] as? String == cidB)
            #expect((replaced.object["created"] as? String)! > (old.object["created"] as? String)!)
            Strict.failure(try await client.call(.get, "/pins/\(old.requestID)", token: token), status: 404)
            #expect(try await client.call(.get, "/pins/\(replaced.requestID)", token: token).status == 200)
            // Replacing with the same CID is allowed (to change name or meta).
            let same = try await client.call(
                .post,
                "/pins/\(replaced.requestID)",
                token: token,
                body: #"{"cid":"\#(cidB)","meta":{"v":"2"}}"#
            )
            #expect(same.status == 202)
            let all = try await client.call(.get, "/pins?status=queued,pinning,pinned,failed", token: token)
            #expect(all.count == 1)
            #expect(all.results.first?["requestid"] as? String == same.requestID)
            // Unknown id, and a bad body on a real id, change nothing.
            Strict.failure(try await client.call(.post, "/pins/\(old.requestID)", token: token, body: #"{"cid":"\#(cidC)"}"#), status: 404)
            Strict.failure(try await client.call(.post, "/pins/\(same.requestID)", token: token, body: #"{"cid":"nope"}"#), status: 400)
            #expect(try await client.call(.get, "/pins/\(same.requestID)", token: token).status == 200)
        }
    }

    @Test func deleteIsVisibleAtOnce() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let a = try await client.add(token, cid: cidA)
            _ = try await client.add(token, cid: cidB)
            let all = "/pins?status=queued%2Cpinning%2Cpinned%2Cfailed"
            #expect(try await client.call(.get, all, token: token).count == 2)
            let deleted = try await client.call(.delete, "/pins/\(a.requestID)", token: token)
            #expect(deleted.status == 202)
            #expect(deleted.body.isEmpty)
            #expect(try await client.call(.get, all, token: token).count == 1)
            Strict.failure(try await client.call(.get, "/pins/\(a.requestID)", token: token), status: 404)
            Strict.failure(try await client.call(.delete, "/pins/\(a.requestID)", token: token), status: 404)
        }
    }

    @Test func defaultStatusIsPinnedOnlyWithoutFilters() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let a = try await client.add(token, cid: cidA, name: "alpha")
            _ = try await client.add(token, cid: cidB, name: "beta")
            try await markPinned(node, a.requestID)
            let plain = try await client.call(.get, "/pins", token: token)
            #expect(plain.status == 200)
            Strict.pinResults(plain.object)
            #expect(plain.count == 1)
            #expect(plain.results.first?["requestid"] as? String == a.requestID)
            // Any other filter means all statuses (what the compliance suite's name queries need).
            #expect(try await client.call(.get, "/pins?name=beta", token: token).count == 1)
            #expect(try await client.call(.get, "/pins?status=queued", token: token).count == 1)
            #expect(try await client.call(.get, "/pins?status=pinned,queued", token: token).count == 2)
        }
        try await withAPI(options: APIOptions(strictStatusDefault: true)) { node, client in
            let token = try await node.token(org: "acme")
            _ = try await client.add(token, cid: cidB, name: "beta")
            #expect(try await client.call(.get, "/pins?name=beta", token: token).count == 0)
        }
    }

    @Test func nameMatchStrategies() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let uuid = "4a3c15cf-44f3-85ac-5d3e-0123456789ab"
            _ = try await client.add(token, cid: cidA, name: uuid)
            _ = try await client.add(token, cid: cidB, name: "100%_sure")
            _ = try await client.add(token, cid: cidC, name: "100xxsure")
            func count(_ q: String) async throws -> Int { try await client.call(.get, "/pins?\(q)", token: token).count }
            #expect(try await count("name=\(uuid)") == 1)
            #expect(try await count("name=\(uuid)&match=exact") == 1)
            #expect(try await count("name=\(uuid.uppercased())&match=exact") == 0)
            #expect(try await count("name=\(uuid.uppercased())&match=iexact") == 1)
            #expect(try await count("name=15cf-44f3-85ac-5d3&match=partial") == 1)
            #expect(try await count("name=15CF-44F3-85AC-5D3&match=partial") == 0)
            #expect(try await count("name=15CF-44F3-85AC-5D3&match=ipartial") == 1)
            // LIKE metacharacters match literally.
            #expect(try await count("name=%25_&match=partial") == 1)
            #expect(try await count("name=0%25_S&match=ipartial") == 1)
            #expect(try await count("name=100&match=partial") == 2)
            let r = try await client.call(.get, "/pins?name=15cf-44f3-85ac-5d3&match=partial", token: token)
            #expect((r.results.first?["pin"] as? [String: Any])?["name"] as? String == uuid)
        }
    }

    @Test func cidStatusMetaAndDateFilters() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let a = try await client.add(token, cid: cidA, meta: ["app": "x", "env": "prod"])
            node.clock.advance(seconds: 1)
            let b = try await client.add(token, cid: cidB, meta: ["app": "x", "env": "dev"])
            node.clock.advance(seconds: 1)
            let c = try await client.add(token, cid: cidC, meta: ["app": "y"])
            try await markPinned(node, b.requestID)
            func ids(_ q: String) async throws -> [String] {
                let r = try await client.call(.get, "/pins?\(q)", token: token)
                #expect(r.status == 200, "\(q): \(r.text)")
                if !q.contains("limit=") { #expect(r.count == r.results.count, "\(q)") }
                return r.results.map { $0["requestid"] as? String ?? "" }
            }
            #expect(try await ids("cid=\(cidA)") == [a.requestID])
            #expect(try await ids("cid=\(cidA)%2C\(cidC)") == [c.requestID, a.requestID])
            #expect(try await ids("cid=\(cidA),\(cidB)&status=pinned") == [b.requestID])
            #expect(try await ids("status=queued") == [c.requestID, a.requestID])
            let meta = { (json: String) in json.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
            #expect(try await ids("meta=\(meta(#"{"app":"x"}"#))") == [b.requestID, a.requestID])
            #expect(try await ids("meta=\(meta(#"{"app":"x","env":"prod"}"#))") == [a.requestID])
            #expect(try await ids("meta=\(meta(#"{"app":"z"}"#))") == [])
            let createdB = try #require(b.object["created"] as? String)
            #expect(try await ids("before=\(createdB)&status=queued,pinned") == [a.requestID])  // strict
            #expect(try await ids("after=\(createdB)") == [c.requestID])  // strict
            #expect(try await ids("after=\(createdB)&before=\(createdB)") == [])
            #expect(try await ids("status=queued,pinned,pinning,failed&limit=2") == [c.requestID, b.requestID])
            let limited = try await client.call(.get, "/pins?status=queued,pinned&limit=1", token: token)
            #expect(limited.count == 3)
            #expect(limited.results.count == 1)
        }
    }

    @Test func createdRoundTripsThroughBeforeInEveryClientForm() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let first = try await client.add(token, cid: cidA)
            let second = try await client.add(token, cid: cidB)  // same virtual instant: bumped 1ms
            let c1 = try #require(first.object["created"] as? String)
            let c2 = try #require(second.object["created"] as? String)
            #expect(c1 != c2)
            // Go sends RFC3339Nano with trailing zeros trimmed, and keeps a +hh:mm zone.
            let goForm = try #require(ParsedDateTimeFormatter.goRFC3339Nano(c2, offsetHours: 2))
            let r = try await client.call(
                .get,
                "/pins?before=\(goForm.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&status=queued",
                token: token
            )
            #expect(r.results.map { $0["requestid"] as? String } == [first.requestID], "\(goForm)")
        }
    }

    @Test func kuboPagingLoopSeesEveryPinExactlyOnce() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            let org = try #require(try await node.admin.org(named: "acme")).id
            let total = 1205
            var expected = Set<String>()
            for i in 0..<total {
                let record = try await node.service.add(org: org, request: PinRequest(cid: CIDText.synthetic(UInt64(i)), name: "bulk"))
                expected.insert(record.id.description)
                if i % 7 == 0 { node.clock.advance(microseconds: 1) }
            }
            for limit in [10, 1000] {
                var seen: [String] = []
                var createdSeen: [String] = []
                var before: String?
                var requests = 0
                while true {
                    var uri = "/pins?limit=\(limit)&name=bulk&status=queued"
                    if let before { uri += "&before=\(before.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" }
                    let page = try await client.call(
                        .get,
                        uri,
                        token: token,
                        headers: [.userAgent: "go-pinning-service-http-client", .accept: "application/json"]
                    )
                    requests += 1
                    #expect(page.status == 200)
                    seen += page.results.map { $0["requestid"] as? String ?? "" }
                    createdSeen += page.results.map { $0["created"] as? String ?? "" }
                    if page.count == page.results.count { break }
                    #expect(!page.results.isEmpty, "count=\(page.count) but no results")
                    if page.results.isEmpty || requests > 200 { break }
                    before = page.results.last?["created"] as? String
                }
                #expect(seen.count == total, "limit \(limit)")
                #expect(Set(seen) == expected, "limit \(limit)")
                #expect(createdSeen == createdSeen.sorted(by: >), "newest first")
                #expect(requests == (total + limit - 1) / limit)
            }
        }
    }

    @Test func everyMalformedInputIsA400AndWritesNothing() async throws {
        var limits = Limits()
        limits.maxBodyBytes = 2048
        try await withAPI(limits: limits) { node, client in
            let token = try await node.token(org: "acme")
            let bodies = [
                "", "not json", "[]", "{}", #"{"cid":"nope"}"#, #"{"cid":12}"#, #"{"cid":"\#(cidA)","name":5}"#,
                #"{"cid":"\#(cidA)","name":"\#(String(repeating: "n", count: 256))"}"#,
                #"{"cid":"\#(cidA)","meta":{"a":1}}"#, #"{"cid":"\#(cidA)","meta":[]}"#, #"{"cid":"\#(cidA)","origins":{}}"#,
                #"{"cid":"\#(cidA)","meta":{"big":"\#(String(repeating: "x", count: 4000))"}}"#,
            ]
            for body in bodies {
                let r = try await client.call(.post, "/pins", token: token, body: body)
                Strict.failure(r, status: 400)
            }
            for query in [
                "limit=0", "limit=1001", "limit=x", "status=nope", "match=fuzzy", "before=yesterday", "after=2020-02-30T00:00:00Z",
                "cid=notacid", "meta=%7B%22a%22%3A1%7D", "meta=notjson", "name=\(String(repeating: "n", count: 256))",
            ] {
                Strict.failure(try await client.call(.get, "/pins?\(query)", token: token), status: 400)
            }
            let all = try await client.call(.get, "/pins?status=queued,pinning,pinned,failed", token: token)
            #expect(all.count == 0)
        }
    }

    @Test func everyAuthFailureIsA401Failure() async throws {
        try await withAPI { node, client in
            let minted = try await node.mint(org: "acme", ttlSeconds: 60)
            Strict.failure(try await client.call(.get, "/pins", token: nil), status: 401)
            Strict.failure(try await client.call(.get, "/pins", token: "purposefullyInvalid"), status: 401)
            Strict.failure(try await client.call(.get, "/pins", token: nil, headers: [.authorization: "Basic YTpi"]), status: 401)
            Strict.failure(try await client.call(.get, "/pins", token: nil, headers: [.authorization: "Bearer "]), status: 401)
            Strict.failure(try await client.call(.post, "/pins", token: nil, body: #"{"cid":"\#(cidA)"}"#), status: 401)
            #expect(try await client.call(.get, "/pins", token: minted.token).status == 200)
            // Expired.
            node.clock.advance(seconds: 61)
            Strict.failure(try await client.call(.get, "/pins", token: minted.token), status: 401)
            // Revoked.
            let other = try await node.mint(org: "acme")
            #expect(try await client.call(.get, "/pins", token: other.token).status == 200)
            try await node.admin.revokeToken(other.claims.tokenID)
            let revoked = try await client.call(.get, "/pins", token: other.token)
            Strict.failure(revoked, status: 401)
            #expect((revoked.object["error"] as? [String: Any])?["details"] as? String == "access token has been revoked")
        }
    }

    @Test func rotatedKeysKeepVerifyingUntilRetired() async throws {
        try await withAPI { node, client in
            let old = try await node.mint(org: "acme")
            let rotated = try await node.admin.rotateKey()
            let new = try await node.mint(org: "acme")
            #expect(new.kid == rotated.kid)
            #expect(old.kid != new.kid)
            #expect(try await client.call(.get, "/pins", token: old.token).status == 200)
            #expect(try await client.call(.get, "/pins", token: new.token).status == 200)
            try await node.admin.retireKey(kid: old.kid)
            Strict.failure(try await client.call(.get, "/pins", token: old.token), status: 401)
            #expect(try await client.call(.get, "/pins", token: new.token).status == 200)
        }
    }

    @Test func unknownRoutesAndMethodsAnswerWithFailures() async throws {
        try await withAPI { node, client in
            let token = try await node.token(org: "acme")
            Strict.failure(try await client.call(.get, "/nope", token: token), status: 404)
            let put = try await client.call(.put, "/pins", token: token, body: "{}")
            #expect([404, 405].contains(put.status))
            #expect(put.contentType == "application/json")
        }
    }

    @Test func healthAndReadiness() async throws {
        try await withAPI { _, client in
            let health = try await client.call(.get, "/v1/health", token: nil)
            #expect(health.status == 200)
            let ready = try await client.call(.get, "/v1/ready", token: nil)
            #expect(ready.status == 200)
            #expect(ready.object["status"] as? String == "ready")
        }
    }
}

/// Marks a pin `pinned` as the (future) worker would, through the ops role.
func markPinned(_ node: TestNode, _ requestID: String) async throws {
    let id = try #require(TypeID(parsing: requestID, prefix: "pin"))
    try await node.opsClient.query("UPDATE pins SET status = 'pinned' WHERE id = \(id.uuid)", logger: .init(label: "test"))
}

enum ParsedDateTimeFormatter {
    /// Re-renders our `created` the way Go's RFC3339Nano would after parsing it in another zone:
    /// trailing fraction zeros trimmed, numeric offset.
    static func goRFC3339Nano(_ created: String, offsetHours: Int) -> String? {
        guard let t = ParsedDateTime(rfc3339: created) else { return nil }
        let shifted = t.floor.adding(seconds: Int64(offsetHours * 3600)).rfc3339  // ...ffffffZ
        var body = String(shifted.dropLast())  // drop Z
        while body.hasSuffix("0") { body.removeLast() }
        if body.hasSuffix(".") { body.removeLast() }
        return body + String(format: "%@%02d:00", offsetHours >= 0 ? "+" : "-", abs(offsetHours))
    }
}
