import LocalNATS
import Logging
import NATS
import NATSBus
import Seams
import Testing

@Suite struct NATSBusTests {
    func withBus<T>(ackWait: Duration = .seconds(30), _ body: (NATSBus, LocalNATSServer) async throws -> T) async throws -> T {
        try await withServer { server in
            let bus = try await NATSBus.connect(urls: [server.url], ackWait: ackWait, logger: Logger(label: "test"))
            do {
                let r = try await body(bus, server)
                await bus.close()
                return r
            } catch {
                await bus.close()
                throw error
            }
        }
    }

    @Test func connectIsIdempotentOnTheSameServer() async throws {
        try await withBus { _, server in
            let again = try await NATSBus.connect(urls: [server.url])
            await again.close()
        }
    }

    @Test func publishAndSubscribeWithABoundedInbox() async throws {
        try await withBus { bus, _ in
            let inbox = try await bus.subscribe("heartbeat.*", capacity: 2)
            for i in 0..<5 { try await bus.publish("heartbeat.n\(i)", [UInt8(i)]) }
            #expect(await eventually { await inbox.dropped() == 3 })
            #expect(await inbox.drain() == [BusMessage(subject: "heartbeat.n3", payload: [3]), BusMessage(subject: "heartbeat.n4", payload: [4])])
            #expect(await inbox.drain().isEmpty)
            await inbox.close()
        }
    }

    @Test func enqueueDeduplicatesAndFetchCarriesMsgID() async throws {
        try await withBus { bus, _ in
            try await bus.openQueue("pin.jobs.nod_a")
            try await bus.openQueue("pin.jobs.nod_a")  // idempotent
            let first = try await bus.enqueue("pin.jobs.nod_a", msgID: "pin-1", "p".bytes)
            let again = try await bus.enqueue("pin.jobs.nod_a", msgID: "pin-1", "p".bytes)
            guard case .stored(let seq) = first else { Issue.record("not stored"); return }
            #expect(again == .duplicate(sequence: seq))
            let jobs = try await bus.fetch("pin.jobs.nod_a", max: 10, wait: .seconds(2))
            #expect(jobs.count == 1)
            #expect(jobs.first?.msgID == "pin-1" && jobs.first?.deliveries == 1 && jobs.first?.subject == "pin.jobs.nod_a")
            try await bus.ack(jobs[0])
            #expect(try await bus.fetch("pin.jobs.nod_a", max: 10, wait: .zero).isEmpty)
        }
    }

    @Test func queuesAreSeparatedBySubject() async throws {
        try await withBus { bus, _ in
            try await bus.openQueue("pin.jobs.nod_a")
            try await bus.openQueue("pin.jobs.nod_b")
            _ = try await bus.enqueue("pin.jobs.nod_a", msgID: "a", "a".bytes)
            _ = try await bus.enqueue("pin.jobs.nod_b", msgID: "b", "b".bytes)
            #expect(try await bus.fetch("pin.jobs.nod_a", max: 10, wait: .seconds(1)).map(\.payload) == ["a".bytes])
            #expect(try await bus.fetch("pin.jobs.nod_b", max: 10, wait: .seconds(1)).map(\.payload) == ["b".bytes])
        }
    }

    @Test func closedQueueFetchThrowsAndReopenedQueueGetsUnackedJobs() async throws {
        try await withBus { bus, _ in
            try await bus.openQueue("pin.jobs.nod_c")
            _ = try await bus.enqueue("pin.jobs.nod_c", msgID: "c1", "c1".bytes)
            _ = try await bus.enqueue("pin.jobs.nod_c", msgID: "c2", "c2".bytes)
            let delivered = try await bus.fetch("pin.jobs.nod_c", max: 1, wait: .seconds(1))
            #expect(delivered.map(\.payload) == ["c1".bytes])  // delivered, never acked
            try await bus.closeQueue("pin.jobs.nod_c")
            try await bus.closeQueue("pin.jobs.nod_c")  // idempotent
            await #expect(throws: BusError.self) { try await bus.fetch("pin.jobs.nod_c", max: 10, wait: .zero) }
            do {
                _ = try await bus.fetch("pin.jobs.nod_c", max: 10, wait: .zero)
            } catch let e as BusError {
                #expect("\(e)".contains("openQueue"))
            }
            // A job enqueued while nobody consumes waits in the stream too.
            _ = try await bus.enqueue("pin.jobs.nod_c", msgID: "c3", "c3".bytes)
            try await bus.openQueue("pin.jobs.nod_c")
            var all: [BusJob] = []
            _ = try await eventually {
                all += try await bus.fetch("pin.jobs.nod_c", max: 10, wait: .milliseconds(300))
                return all.count >= 3
            }
            #expect(all.map(\.payload) == ["c1".bytes, "c2".bytes, "c3".bytes])
            #expect(all.allSatisfy { $0.deliveries == 1 })  // a new consumer starts counting afresh
            for j in all { try await bus.ack(j) }
        }
    }

    @Test func unackedJobIsRedeliveredAfterAckWait() async throws {
        try await withBus(ackWait: .seconds(1)) { bus, _ in
            try await bus.openQueue("pin.jobs.nod_r")
            _ = try await bus.enqueue("pin.jobs.nod_r", msgID: "r", "r".bytes)
            let first = try await bus.fetch("pin.jobs.nod_r", max: 1, wait: .seconds(2))
            #expect(first.first?.deliveries == 1)
            var again: [BusJob] = []
            #expect(try await eventually {
                again = try await bus.fetch("pin.jobs.nod_r", max: 1, wait: .milliseconds(500))
                return !again.isEmpty
            })
            #expect(again.first?.deliveries == 2 && again.first?.msgID == "r")
            try await bus.ack(again[0])
        }
    }

    @Test func inProgressNakWithDelayAndTerm() async throws {
        try await withBus { bus, _ in
            try await bus.openQueue("pin.jobs.nod_n")
            _ = try await bus.enqueue("pin.jobs.nod_n", msgID: "n", "n".bytes)
            let job = try await bus.fetch("pin.jobs.nod_n", max: 1, wait: .seconds(2))[0]
            try await bus.inProgress(job)
            let nakAt = ContinuousClock.now
            try await bus.nak(job, delay: .seconds(1))
            var back: [BusJob] = []
            #expect(try await eventually {
                back = try await bus.fetch("pin.jobs.nod_n", max: 1, wait: .milliseconds(300))
                return !back.isEmpty
            })
            #expect(ContinuousClock.now - nakAt >= .milliseconds(900))  // the delay was honoured
            #expect(back.first?.deliveries == 2)
            try await bus.nak(back[0], delay: nil)
            let third = try await bus.fetch("pin.jobs.nod_n", max: 1, wait: .seconds(5))
            #expect(third.first?.deliveries == 3)
            try await bus.term(third[0])
            #expect(try await bus.fetch("pin.jobs.nod_n", max: 1, wait: .milliseconds(500)).isEmpty)
        }
    }

    @Test func kvOperations() async throws {
        try await withBus { bus, _ in
            #expect(try await bus.kvGet("lease.x") == nil)
            let r1 = try await bus.kvCreate("lease.x", "a".bytes, ttl: nil)
            await #expect(throws: BusError.conflict(key: "lease.x")) { try await bus.kvCreate("lease.x", "b".bytes, ttl: nil) }
            await #expect(throws: BusError.conflict(key: "lease.x")) { try await bus.kvUpdate("lease.x", "b".bytes, revision: r1 + 100, ttl: nil) }
            let r2 = try await bus.kvUpdate("lease.x", "b".bytes, revision: r1, ttl: nil)
            #expect(try await bus.kvGet("lease.x") == KVEntry(key: "lease.x", value: "b".bytes, revision: r2))
            let r3 = try await bus.kvPut("lease.x", "c".bytes, ttl: nil)
            #expect(r3 > r2)
            await #expect(throws: BusError.conflict(key: "lease.x")) { try await bus.kvDelete("lease.x", revision: r2) }
            try await bus.kvDelete("lease.x", revision: r3)
            #expect(try await bus.kvGet("lease.x") == nil)
            try await bus.kvPut("config", "v".bytes, ttl: nil)
            try await bus.kvDelete("config", revision: nil)
            #expect(try await bus.kvGet("config") == nil)
        }
    }

    @Test func kvTTL() async throws {
        try await withBus { bus, _ in
            try await bus.kvCreate("hb.node1", "alive".bytes, ttl: .seconds(1))
            #expect(try await bus.kvGet("hb.node1")?.value == "alive".bytes)
            #expect(try await eventually { try await bus.kvGet("hb.node1") == nil })
            try await bus.kvCreate("hb.node1", "back".bytes, ttl: .seconds(2))
            #expect(try await bus.kvGet("hb.node1")?.value == "back".bytes)
        }
    }

    @Test func requestsWhileTheServerIsDownAreUnavailable() async throws {
        try await withBus { bus, server in
            try await bus.openQueue("pin.jobs.nod_d")
            await server.kill()
            #expect(await eventually { !bus.client.isConnected })
            await #expect(throws: BusError.self) { try await bus.kvGet("x") }
            do {
                _ = try await bus.enqueue("pin.jobs.nod_d", msgID: "d", [])
                Issue.record("enqueue succeeded while the server was down")
            } catch let e as BusError {
                if case .unavailable = e {} else { Issue.record("expected unavailable, got \(e)") }
            }
            try await server.restart()
            #expect(await eventually { (try? await bus.kvPut("x", [1], ttl: nil)) != nil })
        }
    }
}
