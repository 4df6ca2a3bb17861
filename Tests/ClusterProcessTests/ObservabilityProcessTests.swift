import AnchorageTesting
import AsyncHTTPClient
import Foundation
import LocalProcess
import ProcessCluster
import Seams
import Testing

/// `/metrics`, the caches and `admin cache-stats` on real `anchorage serve` processes over a
/// real nats-server and PostgreSQL.
@Suite(.serialized) struct ObservabilityProcessTests {
    /// A token revoked through the admin CLI is refused by every other node within a second,
    /// and until then the denylist was answered from each node's cache, not PostgreSQL.
    @Test func aRevokedTokenIsRefusedEverywhereWithinASecond() async throws {
        try await ClusterHarness.with(nodes: 3) { h in
            let (a, b) = (h.nodes[1], h.nodes[2])
            for node in [a, b] {
                for _ in 0..<20 {
                    let (code, _) = try await h.api(node, .GET, "/pins?limit=1")
                    #expect(code == 200)
                }
            }
            for node in [a, b] {
                let scrape = try await h.metrics(node)
                // One query for the first request, none for the 19 after it.
                #expect(Scrape.value(scrape, "anchorage_cache_misses_total", ["cache": "denylist"]) == 1)
                #expect(Scrape.value(scrape, "anchorage_cache_hits_total", ["cache": "denylist"]) ?? 0 >= 19)
            }
            let jti = try #require(Scrape.jti(of: h.token))
            let (code, out) = try await h.admin(["revoke-token", jti])
            try #require(code == 0, "\(out)")
            let revokedAt = ContinuousClock.now
            for node in [a, b] {
                var refused: Duration?
                while ContinuousClock.now - revokedAt < .seconds(5) {
                    if try await h.api(node, .GET, "/pins?limit=1").0 == 401 {
                        refused = ContinuousClock.now - revokedAt
                        break
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let after = try #require(refused, "node \(node.index) still accepts the revoked token after 5 s")
                #expect(after < .seconds(1), "node \(node.index) refused it after \(after)")
                let scrape = try await h.metrics(node)
                #expect(Scrape.value(scrape, "anchorage_cache_invalidations_received_total", ["cache": "denylist"]) == 1)
                // The revocation came with the message: still one query in all.
                #expect(Scrape.value(scrape, "anchorage_cache_misses_total", ["cache": "denylist"]) == 1)
            }
        }
    }

    /// A live node's scrape is valid Prometheus text (`promtool check metrics`), carries the
    /// families of every area, and only the leader exports the cluster-wide counts.
    @Test func aLiveScrapePassesPromtool() async throws {
        let promtool = try #require(Promtool.path, "\(Promtool.missing)")
        try await ClusterHarness.with(nodes: 2) { h in
            let (_, leader) = try #require(try await h.leaderTerm())
            _ = try await h.pin("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", via: h.nodes[0])
            try await eventually("pinned", timeout: .seconds(20)) { try await h.pinnedCount() == 1 }
            // The leader counts on its interval (metrics.countsInterval, 1 s here).
            let leaderNode = try #require(h.nodes.first { $0.id == leader })
            try await eventually("leader exports counts", timeout: .seconds(10)) {
                Scrape.value(try await h.metrics(leaderNode), "anchorage_pins", ["status": "pinned"]) == 1
            }
            for node in h.nodes {
                let text = try await h.metrics(node)
                let (status, output) = try await Promtool.run(promtool, ["check", "metrics"], stdin: text)
                #expect(status == 0, "promtool check metrics on node \(node.index): \(output)")
                for family in [
                    "anchorage_http_requests_total", "anchorage_http_request_duration_seconds_bucket", "anchorage_scheduler_attempts_total",
                    "anchorage_scheduler_queue_depth", "anchorage_cluster_leader", "anchorage_cache_hits_total", "anchorage_nats_connected",
                    "anchorage_build_info", "anchorage_db_connections", "anchorage_db_connections_max",
                ] {
                    #expect(text.contains("\n\(family)"), "node \(node.index) lacks \(family)")
                }
                let isLeader = node.id == leader
                #expect(Scrape.value(text, "anchorage_cluster_leader", [:]) == (isLeader ? 1 : 0))
                #expect(text.contains("\nanchorage_pins{") == isLeader, "only the leader exports anchorage_pins")
                #expect(Scrape.value(text, "anchorage_nats_connected", [:]) == 1)
                // The API pool has served requests: pg_stat_activity shows its connections.
                let apiConnections = ["active", "idle", "idle_in_transaction"].compactMap {
                    Scrape.value(text, "anchorage_db_connections", ["pool": "api", "state": $0])
                }.reduce(0, +)
                #expect(apiConnections >= 1, "node \(node.index): no API connections sampled")
                #expect(Scrape.value(text, "anchorage_db_connections_max", ["pool": "ops"]) == 4)
            }
        }
    }

    /// `admin cache-stats` asks every live node; a stopped one is listed as not answering.
    @Test func cacheStatsListsEveryNodeAndNamesTheSilentOne() async throws {
        try await ClusterHarness.with(nodes: 3) { h in
            _ = try await h.api(h.nodes[0], .GET, "/pins?limit=1")
            let (code, out) = try await h.admin(["cache-stats", "--json"])
            try #require(code == 0, "\(out)")
            let json = try #require(out.split(separator: "\n").last(where: { $0.hasPrefix("[") }))
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
            #expect(Set(rows.compactMap { $0["node"] as? String }) == Set(h.nodes.map(\.id.description)))
            #expect(rows.allSatisfy { $0["answered"] as? Bool == true })
            let first = try #require(rows.first { $0["node"] as? String == h.nodes[0].id.description })
            let caches = try #require(first["caches"] as? [[String: Any]])
            #expect(Set(caches.compactMap { $0["cache"] as? String }) == ["denylist", "signing_keys", "live_nodes"])
            let denylist = try #require(caches.first { $0["cache"] as? String == "denylist" })
            #expect(denylist["entries"] as? Int == 1)

            h.kill(h.nodes[2])
            let (code2, table) = try await h.admin(["cache-stats", "--timeout", "1"])
            try #require(code2 == 0, "\(table)")
            for node in h.nodes { #expect(table.contains(node.id.description), "\(node.id) missing:\n\(table)") }
            let silent = try #require(table.split(separator: "\n").first { $0.contains(h.nodes[2].id.description) })
            #expect(silent.contains("no answer"), "\(table)")
            #expect(table.contains("1 node(s) did not answer"))
        }
    }
}

extension ClusterHarness {
    func metrics(_ node: Node) async throws -> String {
        let response = try await http.execute(HTTPClientRequest(url: "\(node.url)/metrics"), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 24)
        try #require(response.status == .ok, "GET /metrics answered \(response.status)")
        return String(buffer: body)
    }
}

/// Reading values out of the Prometheus text format.
enum Scrape {
    /// The value of the sample of `family` whose labels include `labels` (nil when absent).
    static func value(_ text: String, _ family: String, _ labels: [String: String]) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(family) {
            let rest = line.dropFirst(family.count)
            guard rest.first == "{" || rest.first == " " else { continue }
            let wanted = labels.allSatisfy { rest.contains("\($0.key)=\"\($0.value)\"") }
            guard wanted, let number = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
            return number
        }
        return nil
    }

    /// The `jti` claim of a compact JWS.
    static func jti(of token: String) -> String? {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return nil }
        var b64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64), let claims = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return claims["jti"] as? String
    }
}
