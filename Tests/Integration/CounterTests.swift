import AnchorageTesting
import Foundation
import Logging
import Pins
import PostgresNIO
import PostgresStore
import Seams
import Testing

/// The per-org counters by status (migration 5) that answer unfiltered and status-only
/// listings' `count` without counting the org's pins.
@Suite struct CounterTests {
    let logger = Logger(label: "test.counters")

    /// What the counters say and what the pins table holds, per (org, status), as the ops role.
    func compare(_ node: TestNode) async throws -> (counters: [String: Int], actual: [String: Int]) {
        var counters: [String: Int] = [:]
        for try await (org, status, n) in try await node.opsClient.query(
            "SELECT org_id, status, n FROM org_pin_counts WHERE n <> 0",
            logger: logger
        ).decode((UUID, String, Int).self) {
            counters["\(org)/\(status)"] = n
        }
        var actual: [String: Int] = [:]
        for try await (org, status, n) in try await node.opsClient.query(
            "SELECT org_id, status, count(*)::bigint FROM pins GROUP BY org_id, status",
            logger: logger
        ).decode((UUID, String, Int).self) {
            actual["\(org)/\(status)"] = n
        }
        return (counters, actual)
    }

    /// Creates, replaces, deletes and status changes from many tasks at once, in two orgs: the
    /// counters equal a fresh count afterwards (they are written in the same transaction as the
    /// pins, under the counter rows' locks).
    @Test func countersStayExactUnderConcurrentWrites() async throws {
        try await withTestNode { node in
            let a = try await node.mint(org: "count-a").claims.org
            let b = try await node.mint(org: "count-b").claims.org
            let service = node.service
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<8 {
                    let org = task % 2 == 0 ? a : b
                    group.addTask {
                        var mine: [String] = []
                        for i in 0..<40 {
                            let cid = CIDText.synthetic(UInt64(task * 1000 + i), namespace: 55)
                            let pin = try await service.add(org: org, request: PinRequest(cid: cid, name: "t\(task)-\(i)"))
                            mine.append(pin.id.description)
                            if i % 5 == 4, let victim = mine.popLast() { try await service.delete(org: org, requestID: victim) }
                            if i % 7 == 6, let old = mine.popLast() {
                                let new = try await service.replace(org: org, requestID: old, with: PinRequest(cid: cid, name: "r\(task)-\(i)"))
                                mine.append(new.id.description)
                            }
                        }
                    }
                }
                // Meanwhile the worker's side moves statuses (as the ops role, across orgs).
                let ops = node.opsClient
                let logger = self.logger
                group.addTask {
                    for round in 0..<20 {
                        let to = ["pinning", "pinned", "failed", "queued"][round % 4]
                        try await ops.query(
                            "UPDATE pins SET status = \(to) WHERE id IN (SELECT id FROM pins ORDER BY random() LIMIT 15)",
                            logger: logger
                        )
                    }
                }
                try await group.waitForAll()
            }
            let (counters, actual) = try await compare(node)
            #expect(!actual.isEmpty)
            #expect(counters == actual)
        }
    }

    /// An unfiltered or status-only listing reads the counter (shown by skewing it as the
    /// owner); any other filter still counts the pins exactly, as the spec requires.
    @Test func unfilteredListingsReadTheCounterAndFilteredOnesCount() async throws {
        try await withTestNode { node in
            let org = try await node.mint(org: "listing").claims.org
            for i in 0..<12 {
                _ = try await node.service.add(org: org, request: PinRequest(cid: CIDText.synthetic(UInt64(i), namespace: 56), name: "n\(i)"))
            }
            var queued = PinQuery()
            queued.statuses = [.queued]
            #expect(try await node.service.list(org: org, query: queued).count == 12)
            try await node.database.owner.withConnection(logger: logger) { conn in
                try await conn.query("UPDATE org_pin_counts SET n = n + 1000 WHERE org_id = \(org.uuid) AND status = 'queued'", logger: logger)
            }
            #expect(try await node.service.list(org: org, query: queued).count == 1012, "the count came from the counter")
            var named = queued
            named.name = "n"
            named.match = .partial
            #expect(try await node.service.list(org: org, query: named).count == 12, "a filtered listing counts")
            var all = queued
            all.statuses = Set(PinStatus.allCases)
            #expect(try await node.service.list(org: org, query: all).count == 1012)
        }
    }

    /// Neither the API nor the ops role can write a counter: only the triggers (as the owner).
    @Test func onlyTheTriggersWriteCounters() async throws {
        try await withTestNode { node in
            let org = try await node.mint(org: "guarded").claims.org
            _ = try await node.service.add(org: org, request: PinRequest(cid: CIDText.synthetic(1, namespace: 57)))
            for client in [node.apiClient, node.opsClient] {
                await #expect(throws: (any Error).self) {
                    try await client.withTransaction(logger: logger) { conn in
                        try await conn.query("SELECT set_config('anchorage.org_id', \(org.uuid.uuidString), true)", logger: logger)
                        try await conn.query("UPDATE org_pin_counts SET n = 0", logger: logger)
                    }
                }
            }
            let (counters, actual) = try await compare(node)
            #expect(counters == actual)
        }
    }
}
