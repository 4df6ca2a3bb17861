import LocalNATS
import NATS
import Seams
import Testing

@Suite struct JetStreamTests {
    func workQueue(_ js: JetStream, _ name: String = "JOBS", dup: Duration = .seconds(60)) async throws {
        var s = StreamConfig(name: name, subjects: ["jobs.>"])
        s.retention = .workqueue
        s.duplicateWindow = ns(dup)
        try await js.createOrUpdateStream(s)
    }

    func pullConsumer(_ js: JetStream, ackWait: Duration = .seconds(30)) async throws {
        var c = ConsumerConfig()
        c.durableName = "w"
        c.filterSubject = "jobs.a"
        c.ackPolicy = .explicit
        c.ackWait = ns(ackWait)
        try await js.createConsumer(stream: "JOBS", c)
    }

    @Test func streamCreateIsIdempotentAndUpdates() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let js = JetStream(client: client)
                try await workQueue(js)
                try await workQueue(js)  // same config: fine
                try await workQueue(js, dup: .seconds(30))  // different: updated
                let info = try await js.streamInfo("JOBS")
                #expect(info.config.duplicateWindow == ns(.seconds(30)))
                await #expect(throws: JetStreamError.self) { try await js.streamInfo("MISSING") }
            }
        }
    }

    @Test func repeatedMsgIDIsADuplicateDeliveredOnce() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let js = JetStream(client: client)
                try await workQueue(js)
                try await pullConsumer(js)
                let first = try await js.publish("jobs.a", "one".bytes, msgID: "m-1")
                let second = try await js.publish("jobs.a", "one again".bytes, msgID: "m-1")
                #expect(!first.duplicate)
                #expect(second.duplicate)
                #expect(second.seq == first.seq)
                let got = try await js.fetch(stream: "JOBS", consumer: "w", batch: 10, wait: .milliseconds(300))
                #expect(got.map(\.payload) == ["one".bytes])
                #expect(got.first?.headers?["Nats-Msg-Id"] == "m-1")
            }
        }
    }

    @Test func unackedMessageIsRedeliveredAfterAckWait() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let js = JetStream(client: client)
                try await workQueue(js)
                try await pullConsumer(js, ackWait: .seconds(1))
                _ = try await js.publish("jobs.a", "job".bytes, msgID: "j")
                let first = try await js.fetch(stream: "JOBS", consumer: "w", batch: 1, wait: .seconds(2))
                #expect(first.first?.metadata?.numDelivered == 1)
                // Not acked: it comes back once the ack wait (1 s) is over.
                var again: [JetStreamMessage] = []
                let redelivered = try await eventually(timeout: .seconds(15)) {
                    again = try await js.fetch(stream: "JOBS", consumer: "w", batch: 1, wait: .seconds(1))
                    return !again.isEmpty
                }
                #expect(redelivered)
                #expect(again.first?.payload == "job".bytes)
                #expect(again.first?.metadata?.numDelivered == 2)
                try await js.ack(again[0])
                #expect(try await js.fetch(stream: "JOBS", consumer: "w", batch: 1).isEmpty)
            }
        }
    }

    @Test func fetchReturnsWhatIsThereWithoutWaitingForAFullBatch() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let js = JetStream(client: client)
                try await workQueue(js)
                try await pullConsumer(js)
                #expect(try await js.fetch(stream: "JOBS", consumer: "w", batch: 5).isEmpty)
                for i in 0..<3 { _ = try await js.publish("jobs.a", [UInt8(i)]) }
                let start = ContinuousClock.now
                let got = try await js.fetch(stream: "JOBS", consumer: "w", batch: 10, wait: .seconds(30))
                #expect(got.map(\.payload) == [[0], [1], [2]])
                #expect(ContinuousClock.now - start < .seconds(25))  // generous: did not wait for the expiry
                for m in got { try await js.ack(m) }
            }
        }
    }

    @Test func nakWithDelayAndTerm() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let js = JetStream(client: client)
                try await workQueue(js)
                try await pullConsumer(js)
                _ = try await js.publish("jobs.a", "x".bytes)
                let m = try await js.fetch(stream: "JOBS", consumer: "w", batch: 1, wait: .seconds(2))
                try await js.ack(m[0], .inProgress)
                try await js.ack(m[0], .nak(delay: .milliseconds(500)))
                var back: [JetStreamMessage] = []
                #expect(
                    try await eventually {
                        back = try await js.fetch(stream: "JOBS", consumer: "w", batch: 1, wait: .milliseconds(500))
                        return !back.isEmpty
                    }
                )
                #expect(back.first?.metadata?.numDelivered == 2)
                try await js.ack(back[0], .term)
                #expect(try await js.fetch(stream: "JOBS", consumer: "w", batch: 1, wait: .milliseconds(300)).isEmpty)
            }
        }
    }

    /// Publish N with acks, restart the server on the same port and store, let the client
    /// reconnect on its own, publish M more, and consume: every acked message is there.
    @Test func noAckedMessageIsLostAcrossAServerRestart() async throws {
        try await withServer { server in
            try await withClient(server, configure: { $0.maxReconnectDelay = .milliseconds(250) }) { client in
                let js = JetStream(client: client)
                try await workQueue(js)
                try await pullConsumer(js)
                var acked: Set<[UInt8]> = []
                for i in 0..<20 {
                    _ = try await js.publish("jobs.a", "before-\(i)".bytes, msgID: "b\(i)")
                    acked.insert("before-\(i)".bytes)
                }
                try await server.restart()
                #expect(await eventually { client.isConnected })
                for i in 0..<10 {
                    // JetStream may need a moment after the restart: retry until acked.
                    let ok = await eventually {
                        (try? await js.publish("jobs.a", "after-\(i)".bytes, msgID: "a\(i)")) != nil
                    }
                    #expect(ok)
                    acked.insert("after-\(i)".bytes)
                }
                var seen: Set<[UInt8]> = []
                _ = try await eventually {
                    let got = (try? await js.fetch(stream: "JOBS", consumer: "w", batch: 50, wait: .milliseconds(500))) ?? []
                    for m in got {
                        seen.insert(m.payload)
                        try await js.ack(m)
                    }
                    return seen.count >= acked.count
                }
                #expect(seen == acked)
            }
        }
    }
}
