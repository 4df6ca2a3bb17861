import AnchorageNode
import ArgumentParser
import Caches
import Cluster
import Foundation
import Logging
import PostgresStore
import Seams

extension Admin {
    /// Tells every node that a cached row changed (best effort). Without NATS the nodes catch
    /// up by themselves within the cache's TTL, which the message says.
    static func announce(_ common: CommonOptions, _ subject: String, _ payload: [UInt8], catchUp: String) async {
        do {
            try await withinSeconds(5) {
                try await ClusterContext.with(common) { ctx in
                    try await ctx.bus.publish(subject, payload)
                }
            }
        } catch {
            let reason = (error as? CommandFailure)?.message ?? CommandFailure.plainReason(error)
            FileHandle.standardError.write(
                Data("warning: done in PostgreSQL, but the nodes could not be told over NATS (\(reason)); they \(catchUp)\n".utf8)
            )
        }
    }

    /// Runs `body`, giving up after `seconds` (an unreachable NATS must not hang a command that
    /// already did its work in PostgreSQL).
    static func withinSeconds(_ seconds: Int64, _ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                throw BusError.timeout
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    struct CacheStatsCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cache-stats",
            abstract: "Every live node's caches: entries, hit ratio, evictions, invalidations, oldest entry (asks each node over NATS).",
            discussion: "Nodes PostgreSQL saw within cluster.nodeLostAfter that do not answer within --timeout are listed as not answering."
        )
        @OptionGroup var common: CommonOptions
        @Option(help: "Seconds to wait for answers.") var timeout: Double = 2
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            guard timeout > 0, timeout <= 60 else { throw ValidationError("--timeout must be between 0 and 60 seconds") }
        }

        func run() async throws {
            let wait = timeout
            let json = json
            try await ClusterContext.with(common) { ctx in
                let now = ctx.clock.now()
                let registered = try await ctx.store.nodes()
                let expected = registered.filter {
                    guard let seen = $0.lastSeen else { return false }
                    return now.microseconds - seen.microseconds <= ctx.settings.cluster.nodeLostAfterSeconds * 1_000_000
                }
                let reply = CacheStatsExchange.replyPrefix + UUID().uuidString.lowercased()
                let inbox = try await ctx.bus.subscribe(reply, capacity: 1024)
                try await ctx.bus.publish(CacheStatsExchange.subject, CacheStatsExchange.encode(CacheStatsExchange.Request(reply: reply)))
                var answers: [String: CacheStatsExchange.Reply] = [:]
                let deadline = ContinuousClock.now + .milliseconds(Int64(wait * 1000))
                let wanted = Set(expected.map(\.id.description))
                while ContinuousClock.now < deadline, !wanted.isSubset(of: Set(answers.keys)) {
                    try await Task.sleep(for: .milliseconds(50))
                    for m in await inbox.drain() {
                        if let r = CacheStatsExchange.decodeReply(m.payload) { answers[r.node] = r }
                    }
                }
                await inbox.close()
                let names = Dictionary(registered.map { ($0.id.description, $0.name) }, uniquingKeysWith: { a, _ in a })
                let nodes = (wanted.union(answers.keys)).sorted()
                if json {
                    let out = nodes.map { id -> [String: Any] in
                        guard let r = answers[id] else { return ["node": id, "name": names[id] ?? "", "answered": false] }
                        let caches = r.caches.map { c -> [String: Any] in
                            var o: [String: Any] = [
                                "cache": c.cache, "entries": c.entries, "capacity": c.capacity, "ttlSeconds": c.ttlSeconds,
                                "hits": c.counters.hits, "misses": c.counters.misses, "evictions": c.counters.evictions,
                                "expirations": c.counters.expirations, "invalidationsSent": c.counters.invalidationsSent,
                                "invalidationsReceived": c.counters.invalidationsReceived,
                            ]
                            if let ratio = c.hitRatio { o["hitRatio"] = ratio }
                            if let age = c.oldestEntryAgeSeconds { o["oldestEntryAgeSeconds"] = age }
                            return o
                        }
                        return ["node": id, "name": r.name, "answered": true, "caches": caches]
                    }
                    try Admin.printJSON(out)
                    return
                }
                var rows: [[String]] = []
                for id in nodes {
                    guard let r = answers[id] else {
                        rows.append([id, names[id] ?? "-", "-", "no answer within \(Self.format(wait))s", "", "", "", ""])
                        continue
                    }
                    for c in r.caches {
                        rows.append([
                            id, r.name, c.cache, "\(c.entries)",
                            c.hitRatio.map { String(format: "%.1f%%", $0 * 100) } ?? "-",
                            "\(c.counters.evictions + c.counters.expirations)",
                            "\(c.counters.invalidationsSent)/\(c.counters.invalidationsReceived)",
                            c.oldestEntryAgeSeconds.map { "\(Self.format($0))s" } ?? "-",
                        ])
                    }
                }
                print(Table.render(["NODE", "NAME", "CACHE", "ENTRIES", "HIT RATIO", "EVICTIONS", "INVALIDATIONS SENT/RECEIVED", "OLDEST"], rows))
                let silent = nodes.filter { answers[$0] == nil }.count
                if silent > 0 { print("\(silent) node(s) did not answer") }
            }
        }

        static func format(_ seconds: Double) -> String { String(format: seconds < 10 ? "%.1f" : "%.0f", seconds) }
    }
}
