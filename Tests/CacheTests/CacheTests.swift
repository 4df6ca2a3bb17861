import Caches
import DeterministicSeams
import PinsHTTP
import Seams
import Testing
import Tokens

@Suite struct BoundedCacheTests {
    @Test func theLeastRecentlyUsedEntryGoesFirst() {
        let clock = VirtualWallClock()
        let cache = BoundedCache<String, Int>(name: "t", capacity: 3, ttlSeconds: 60, clock: clock)
        for (i, k) in ["a", "b", "c"].enumerated() { cache.put(k, i) }
        #expect(cache.get("a") == 0)  // a is now the most recent; b the least
        cache.put("d", 3)
        #expect(cache.get("b") == nil)
        #expect(cache.get("a") == 0)
        #expect(cache.get("c") == 2)
        #expect(cache.get("d") == 3)
        let stats = cache.stats()
        #expect(stats.entries == 3)
        #expect(stats.counters.evictions == 1)
        #expect(stats.counters.hits == 4)
        #expect(stats.counters.misses == 1)
    }

    @Test func anEntryOlderThanTheTTLIsAMiss() {
        let clock = VirtualWallClock()
        let cache = BoundedCache<String, Int>(name: "t", capacity: 8, ttlSeconds: 10, clock: clock)
        cache.put("a", 1)
        clock.advance(seconds: 9)
        #expect(cache.get("a") == 1)
        #expect(cache.stats().oldestEntryAgeSeconds == 9)
        clock.advance(seconds: 1)
        #expect(cache.get("a") == nil)
        #expect(cache.stats().counters.expirations == 1)
        #expect(cache.stats().entries == 0)
    }

    /// Churn far past the capacity keeps the bound and the list consistent.
    @Test func churnKeepsTheBound() {
        let clock = VirtualWallClock()
        let cache = BoundedCache<Int, Int>(name: "t", capacity: 100, ttlSeconds: 60, clock: clock)
        let rng = SeededEntropy(seed: 7)
        for i in 0..<20_000 {
            let k = Int(rng.uniform(500))
            if i % 3 == 0 { cache.invalidate(k) } else if cache.get(k) == nil { cache.put(k, k * 2) }
            #expect(cache.stats().entries <= 100)
        }
        for k in 0..<500 { if let v = cache.get(k) { #expect(v == k * 2) } }
    }

    /// An answer read before an invalidation must not overwrite it.
    @Test func aLoadRacingAnInvalidationDoesNotWin() {
        let cache = BoundedCache<String, Bool>(name: "t", capacity: 8, ttlSeconds: 60, clock: VirtualWallClock())
        let generation = cache.generation
        cache.invalidate("tok", replacement: true)  // revoked while the query ran
        #expect(!cache.put("tok", false, ifGeneration: generation))
        #expect(cache.get("tok") == true)
    }
}

/// Counts the queries that reach the source.
actor CountingDenylist: Denylist {
    var revoked: Set<TypeID> = []
    var queries = 0
    func isRevoked(tokenID: TypeID) async throws -> Bool {
        queries += 1
        return revoked.contains(tokenID)
    }
    func revoke(_ id: TypeID) { revoked.insert(id) }
}

@Suite struct CachedDenylistTests {
    @Test func oneQueryPerTokenPerTTLAndRevocationsWithout() async throws {
        let clock = VirtualWallClock()
        let source = CountingDenylist()
        let denylist = CachedDenylist(source: source, cache: BoundedCache(name: "denylist", capacity: 16, ttlSeconds: 30, clock: clock))
        let a = TypeID.make(IDPrefix.token, clock: clock, entropy: SeededEntropy(seed: 1))
        let b = TypeID.make(IDPrefix.token, clock: clock, entropy: SeededEntropy(seed: 2))
        for _ in 0..<100 {
            #expect(try await denylist.isRevoked(tokenID: a) == false)
            #expect(try await denylist.isRevoked(tokenID: b) == false)
        }
        #expect(await source.queries == 2)
        await source.revoke(a)
        denylist.revoked(a)  // the invalidation
        #expect(try await denylist.isRevoked(tokenID: a) == true)
        #expect(await source.queries == 2)
        clock.advance(seconds: 30)
        #expect(try await denylist.isRevoked(tokenID: a) == true)
        #expect(try await denylist.isRevoked(tokenID: b) == false)
        #expect(await source.queries == 4)
    }
}

@Suite struct CacheMessageTests {
    @Test func invalidationsDecodeOnlyOnTheirOwnSubject() {
        let m = CacheInvalidation(cache: .denylist, key: "tok_01", from: "admin")
        #expect(CacheInvalidation.decode(subject: "cache.invalidate.denylist", m.encoded()) == m)
        #expect(CacheInvalidation.decode(subject: "cache.invalidate.signing_keys", m.encoded()) == nil)
        #expect(CacheInvalidation.decode(subject: "cache.invalidate.denylist", Array("junk".utf8)) == nil)
    }

    /// A node replies only to a private inbox, never to a subject a request names freely.
    @Test func statsRequestsMustNameAnInbox() {
        func request(_ reply: String) -> [UInt8] { CacheStatsExchange.encode(CacheStatsExchange.Request(reply: reply)) }
        #expect(CacheStatsExchange.decodeRequest(request(CacheStatsExchange.replyPrefix + "abc")) != nil)
        #expect(CacheStatsExchange.decodeRequest(request("pin.jobs.nod_x")) == nil)
        #expect(CacheStatsExchange.decodeRequest(request(CacheStatsExchange.replyPrefix + ">")) == nil)
    }
}

@Suite struct AddressTests {
    @Test func networksMatchTheirAddresses() throws {
        let v4 = try #require(CIDR("10.0.0.0/8"))
        #expect(v4.contains(IPAddress.parse("10.255.1.2")!))
        #expect(!v4.contains(IPAddress.parse("11.0.0.1")!))
        let host = try #require(CIDR("127.0.0.1"))
        #expect(host.prefix == 32)
        #expect(!host.contains(IPAddress.parse("127.0.0.2")!))
        let v6 = try #require(CIDR("fd00::/8"))
        #expect(v6.contains(IPAddress.parse("fd12:3456::1")!))
        #expect(!v6.contains(IPAddress.parse("fe80::1")!))
        // IPv4-mapped IPv6 is the IPv4 address.
        #expect(host.contains(IPAddress.parse("::ffff:127.0.0.1")!))
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(CIDR("nonsense") == nil)
        #expect(CIDR("10.0.0.0/8/8") == nil)
    }
}
