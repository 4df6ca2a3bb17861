import LocalNATS
import NATS
import Seams
import Testing

@Suite struct KeyValueTests {
    func bucket(_ client: NATSClient, markers: Duration? = nil) async throws -> KeyValue {
        var c = KeyValueConfig(bucket: "TEST")
        c.limitMarkerTTL = markers
        return try await KeyValue.create(JetStream(client: client), c)
    }

    @Test func compareAndSetConflicts() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let kv = try await bucket(client)
                let r1 = try await kv.create("lease.a", "n1".bytes)
                await #expect(throws: BusError.conflict(key: "lease.a")) { try await kv.create("lease.a", "n2".bytes) }
                let r2 = try await kv.update("lease.a", "n1b".bytes, revision: r1)
                #expect(r2 > r1)
                await #expect(throws: BusError.conflict(key: "lease.a")) {
                    try await kv.update("lease.a", "stale".bytes, revision: r1)
                }
                let r3 = try await kv.update("lease.a", "n1c".bytes, revision: r2)
                #expect(
                    try await kv.get("lease.a") == KeyValueEntry(bucket: "TEST", key: "lease.a", value: "n1c".bytes, revision: r3, operation: .put)
                )
                // Delete with a stale revision conflicts; with the right one it deletes.
                await #expect(throws: BusError.conflict(key: "lease.a")) { try await kv.delete("lease.a", revision: r2) }
                try await kv.delete("lease.a", revision: r3)
                #expect(try await kv.get("lease.a") == nil)
                // Deleted keys can be created again.
                let r4 = try await kv.create("lease.a", "again".bytes)
                #expect(try await kv.get("lease.a")?.revision == r4)
                try await kv.purge("lease.a")
                #expect(try await kv.get("lease.a") == nil)
                #expect(try await kv.get("never.written") == nil)
            }
        }
    }

    @Test func perKeyTTLExpires() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let kv = try await bucket(client)
                try await kv.create("ephemeral", "x".bytes, ttl: .seconds(1))
                try await kv.put("durable", "y".bytes)
                #expect(try await kv.get("ephemeral")?.value == "x".bytes)
                #expect(try await eventually { try await kv.get("ephemeral") == nil })
                #expect(try await kv.get("durable")?.value == "y".bytes)
                // Gone means absent: create succeeds again.
                try await kv.create("ephemeral", "z".bytes, ttl: .seconds(2))
                #expect(try await kv.get("ephemeral")?.value == "z".bytes)
            }
        }
    }

    @Test func watchSeesCurrentValuesThenChanges() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let kv = try await bucket(client, markers: .seconds(5))
                try await kv.put("nodes.a", "1".bytes)
                let watcher = try await kv.watch("nodes.>")
                var it = watcher.makeAsyncIterator()
                let current = await it.next()
                #expect(current?.key == "nodes.a" && current?.value == "1".bytes)
                try await kv.put("nodes.b", "2".bytes)
                try await kv.delete("nodes.a")
                try await kv.put("nodes.c", "3".bytes, ttl: .seconds(1))
                let b = await it.next()
                let del = await it.next()
                let c = await it.next()
                #expect(b?.key == "nodes.b" && b?.operation == .put)
                #expect(del?.key == "nodes.a" && del?.operation == .delete)
                #expect(c?.key == "nodes.c")
                // The TTL expiry shows up as a marker (limit markers on).
                let expiry = await it.next()
                #expect(expiry?.key == "nodes.c" && expiry?.operation != .put)
                await watcher.stop()
            }
        }
    }
}
