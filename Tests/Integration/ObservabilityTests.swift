import AnchorageNode
import AnchorageTesting
import Caches
import Cluster
import Foundation
import Hummingbird
import HummingbirdTesting
import Observability
import Pins
import PinsHTTP
import Seams
import Testing

/// `/metrics` behind its address rule, and the denylist cache's staleness bound.
@Suite struct MetricsAccessTests {
    static func get(_ port: Int, from source: String, headers: [String] = []) async throws -> (status: Int, text: String) {
        let socket = try RawSocket(port: port, from: source)
        socket.send("GET /metrics HTTP/1.1\r\nHost: x\r\n" + headers.map { $0 + "\r\n" }.joined() + "Connection: close\r\n\r\n")
        let (text, _) = await socket.read(seconds: 5)
        socket.disconnect()
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, text)
    }

    /// The default rule is loopback only (127.0.0.1/32, ::1/128): a request from 127.0.0.2 is a
    /// 403 in the spec's error body, one from 127.0.0.1 gets the metrics.
    @Test func onlyAllowedAddressesMayScrape() async throws {
        try await withTestNode { node in
            let built = node.node(id: LiveSocketTests.nodeID) {
                $0.workerEnabled = false
                $0.metrics.allowCIDRs = [CIDR("127.0.0.1/32")!]
            }
            try await LiveSocketTests.serving(built) { port in
                let refused = try await Self.get(port, from: "127.0.0.2")
                #expect(refused.status == 403)
                #expect(refused.text.contains(#""reason":"FORBIDDEN""#))
                #expect(refused.text.lowercased().contains("content-type: application/json"))
                let allowed = try await Self.get(port, from: "127.0.0.1")
                #expect(allowed.status == 200)
                #expect(allowed.text.contains("# TYPE anchorage_http_requests_total counter"))
                #expect(allowed.text.contains(#"anchorage_http_requests_total{route="/metrics",method="GET",status_class="4xx"} 1"#))
                // A client cannot vouch for itself: X-Forwarded-For from an untrusted peer is ignored.
                let forged = try await Self.get(port, from: "127.0.0.2", headers: ["X-Forwarded-For: 127.0.0.1"])
                #expect(forged.status == 403)
            }
        }
    }

    /// Behind a trusted proxy the client is the right-most forwarded address that is not a proxy.
    @Test func aTrustedProxyNamesTheClient() async throws {
        try await withTestNode { node in
            let built = node.node(id: LiveSocketTests.nodeID) {
                $0.workerEnabled = false
                $0.metrics.allowCIDRs = [CIDR("10.0.0.0/8")!]
                $0.metrics.trustedProxies = [CIDR("127.0.0.2")!]
            }
            try await LiveSocketTests.serving(built) { port in
                let s1 = try await Self.get(port, from: "127.0.0.2", headers: ["X-Forwarded-For: 10.1.2.3"]).status
                #expect(s1 == 200)
                let s2 = try await Self.get(port, from: "127.0.0.2", headers: ["X-Forwarded-For: 10.9.9.9, 192.0.2.1"]).status
                #expect(s2 == 403)
                let s3 = try await Self.get(port, from: "127.0.0.2", headers: ["X-Forwarded-For: not-an-address"]).status
                #expect(s3 == 403)
                let s4 = try await Self.get(port, from: "127.0.0.2").status
                #expect(s4 == 403)
                // Not a trusted proxy: its header proves nothing.
                let s5 = try await Self.get(port, from: "127.0.0.1", headers: ["X-Forwarded-For: 10.1.2.3"]).status
                #expect(s5 == 403)
            }
        }
    }

    /// `metrics.enabled` off: no `/metrics` at all.
    @Test func metricsCanBeTurnedOff() async throws {
        try await withTestNode { node in
            let built = node.node(id: LiveSocketTests.nodeID) {
                $0.workerEnabled = false
                $0.metrics.enabled = false
            }
            try await LiveSocketTests.serving(built) { port in
                let s6 = try await Self.get(port, from: "127.0.0.1").status
                #expect(s6 == 404)
            }
        }
    }

    @Test func metricsKeysAreReadAndChecked() throws {
        let c = try NodeConfiguration(overrides: [:])
        #expect(c.metrics.allowCIDRs.map(\.description) == ["127.0.0.1/32", "0:0:0:0:0:0:0:1/128"])
        #expect(throws: ConfigurationError.self) { try NodeConfiguration(overrides: ["cache.denylist.ttlSeconds": "-1"]) }
        #expect(throws: ConfigurationError.self) { try NodeConfiguration(overrides: ["metrics.countsInterval": "0"]) }
    }
}

@Suite struct DenylistCacheTests {
    /// With the invalidation lost (this node hears nothing on the bus), a revoked token is
    /// accepted until its cached answer is `cache.denylist.ttlSeconds` old, and not after.
    @Test func withoutTheInvalidationTheTTLBoundsStaleness() async throws {
        try await withTestNode { node in
            let built = node.node(id: LiveSocketTests.nodeID) {
                $0.workerEnabled = false
                $0.denylistCacheSeconds = 30
            }
            let minted = try await node.mint(org: "ttl")
            try await Application(router: built.router).test(.router) { client in
                #expect(try await client.call(.get, "/pins", token: minted.token).status == 200)
                try await node.admin.revokeToken(minted.claims.tokenID)  // no message reaches this node
                node.clock.advance(seconds: 29)
                #expect(try await client.call(.get, "/pins", token: minted.token).status == 200, "cached answer, 29 s old")
                node.clock.advance(seconds: 1)
                #expect(try await client.call(.get, "/pins", token: minted.token).status == 401, "the TTL ran out: asked again")
            }
            let stats = try #require(built.caches.denylist?.cache.stats())
            #expect(stats.counters.misses == 2)
            #expect(stats.counters.hits == 1)
            #expect(stats.counters.expirations == 1)
        }
    }

    /// A standalone node hears no invalidations, so unless told otherwise it does not cache.
    @Test func aStandaloneNodeAsksPostgreSQLByDefault() async throws {
        try await withTestNode { node in
            let standalone = node.node(id: LiveSocketTests.nodeID) {
                $0.workerEnabled = false
                $0.denylistCacheSeconds = nil
            }
            #expect(standalone.caches.denylist == nil)
            let configured = node.node(id: LiveSocketTests.nodeID) {
                $0.workerEnabled = false
                $0.denylistCacheSeconds = 5
            }
            #expect(configured.caches.denylist?.cache.ttlMicroseconds == 5_000_000)
        }
    }

    /// A revocation made on this node is applied to its own cache at once.
    @Test func aRevocationOnThisNodeIsImmediate() async throws {
        try await withTestNode { node in
            let built = node.node(id: LiveSocketTests.nodeID) {
                $0.workerEnabled = false
                $0.denylistCacheSeconds = 30
            }
            let minted = try await node.mint(org: "local")
            try await Application(router: built.router).test(.router) { client in
                #expect(try await client.call(.get, "/pins", token: minted.token).status == 200)
                try await built.revokeToken(minted.claims.tokenID)
                #expect(try await client.call(.get, "/pins", token: minted.token).status == 401)
                #expect(built.caches.denylist?.cache.stats().counters.misses == 1, "answered from the cache")
            }
        }
    }
}

/// The alerting rules that ship with the product, checked by Prometheus' own tool.
@Suite struct AlertRulesTests {
    static var docs: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/monitoring")
    }

    @Test func rulesAreValidAndTheirTestsPass() async throws {
        let promtool = try #require(Promtool.path, "\(Promtool.missing)")
        let check = try await Promtool.run(promtool, ["check", "rules", Self.docs.appendingPathComponent("alerts.yaml").path])
        #expect(check.0 == 0, "\(check.1)")
        // Includes the maintenance-overdue alert firing once the flag outlives cluster.maintenance.maxDuration.
        let test = try await Promtool.run(promtool, ["test", "rules", Self.docs.appendingPathComponent("alerts.test.yaml").path])
        #expect(test.0 == 0, "\(test.1)")
        #expect(test.1.contains("SUCCESS"))
    }
}

/// Every family a node exports is documented: `docs/monitoring.md` names each one.
@Suite struct MetricsDocumentationTests {
    @Test func everyFamilyIsInTheMonitoringDoc() throws {
        let metrics = NodeMetrics(version: "test", maintenanceMaxSeconds: 3600)
        var status = ClusterStatus()
        status.isLeader = true
        status.maintenance = MaintenanceFlag(reason: "r", by: "b", since: Timestamp(microsecondsSinceEpoch: 0), ttlSeconds: 60)
        status.counts = ClusterCounts(pins: [:], placements: [:], underReplicated: 0, at: Timestamp(microsecondsSinceEpoch: 0))
        metrics.observe(cluster: status)
        metrics.observe(
            caches: [CacheStats(cache: "denylist", entries: 0, capacity: 1, ttlSeconds: 1, counters: CacheCounters(), oldestEntryAgeSeconds: nil)]
        )
        metrics.observe(pool: "api", connections: [:], lockWaits: 0, maximum: 1)
        metrics.observe(natsConnected: true, reconnects: 0)
        metrics.httpStarted()
        metrics.httpFinished(route: "/pins", method: "GET", status: 200, duration: .milliseconds(1))
        let families = String(decoding: metrics.render(), as: UTF8.self).split(separator: "\n")
            .filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) }
        #expect(families.count >= 40)
        let doc = try String(
            contentsOf: AlertRulesTests.docs.deletingLastPathComponent().appendingPathComponent("monitoring.md"),
            encoding: .utf8
        )
        for family in families { #expect(doc.contains("`\(family)`"), "docs/monitoring.md does not describe \(family)") }
    }
}
