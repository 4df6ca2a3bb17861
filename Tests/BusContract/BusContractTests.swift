import Seams
import Testing

/// The `ClusterBus` contract: one suite, run against every arm (`BusArmKind`). Timing checks
/// go through the arm's clock (`pass`, `eventually`), so the same assertions hold in real and
/// virtual time; "not before" checks keep a wide margin for a busy machine.
@Suite struct BusContractTests {
    let q = "pin.jobs.nod_a"

    // MARK: work queue

    @Test(arguments: BusArmKind.allCases)
    func enqueueDeduplicatesByMsgID(arm: BusArmKind) async throws {
        try await arm.run { arm in
            let a = try await arm.bus("nod_a")
            let b = try await arm.bus("nod_b")
            try await a.openQueue(q)
            try await a.openQueue(q)  // idempotent
            guard case .stored(let s1) = try await b.enqueue(q, msgID: "m1", "one".bytes) else {
                Issue.record("first enqueue not stored")
                return
            }
            #expect(try await b.enqueue(q, msgID: "m1", "one".bytes) == .duplicate(sequence: s1))
            // The msgID is the stream's, not the subject's.
            #expect(try await a.enqueue("pin.jobs.nod_b", msgID: "m1", "one".bytes) == .duplicate(sequence: s1))
            #expect(try await b.enqueue(q, msgID: "m2", "two".bytes) == .stored(sequence: s1 + 1))
            let jobs = try await a.fetch(q, max: 10, wait: .seconds(2))
            #expect(jobs.map(\.msgID) == ["m1", "m2"])
            #expect(jobs.map(\.payload) == ["one".bytes, "two".bytes])
            #expect(jobs.allSatisfy { $0.subject == q && $0.deliveries == 1 })
            for job in jobs { try await a.ack(job) }
            // Dedup outlives the job (JetStream tracks msgIDs for the window, not jobs).
            #expect(try await b.enqueue(q, msgID: "m1", "one".bytes) == .duplicate(sequence: s1))
            #expect(try await a.fetch(q, max: 10, wait: .zero).isEmpty)
        }
    }

    @Test(arguments: BusArmKind.allCases)
    func aMsgIDCanBeReusedAfterTheDuplicateWindow(arm: BusArmKind) async throws {
        try await arm.run(BusSettings(duplicateWindow: .seconds(1))) { arm in
            let bus = try await arm.bus("nod_a")
            guard case .stored(let s1) = try await bus.enqueue(q, msgID: "m", []) else {
                Issue.record("first enqueue not stored")
                return
            }
            #expect(try await bus.enqueue(q, msgID: "m", []) == .duplicate(sequence: s1))
            try await arm.pass(.seconds(1))
            var result = EnqueueResult.duplicate(sequence: 0)
            #expect(
                try await arm.eventually {
                    result = try await bus.enqueue(q, msgID: "m", [])
                    return result != .duplicate(sequence: s1)
                }
            )
            #expect(result == .stored(sequence: s1 + 1))
        }
    }

    @Test(arguments: BusArmKind.allCases)
    func enqueueOutsideTheStreamFails(arm: BusArmKind) async throws {
        try await arm.run { arm in
            let bus = try await arm.bus("nod_a")
            do {
                _ = try await bus.enqueue("node.heartbeat.x", msgID: "m", [])
                Issue.record("enqueue outside the stream succeeded")
            } catch let error as BusError {
                guard case .server(503, _) = error else {
                    Issue.record("expected .server(503), got \(error)")
                    return
                }
            }
        }
    }

    @Test(arguments: BusArmKind.allCases)
    func fetchHonoursMaxAndSequenceOrderPerSubject(arm: BusArmKind) async throws {
        try await arm.run { arm in
            let bus = try await arm.bus("nod_a")
            try await bus.openQueue(q)
            try await bus.openQueue("pin.jobs.nod_b")
            for i in 0..<5 { _ = try await bus.enqueue(q, msgID: "j\(i)", [UInt8(i)]) }
            _ = try await bus.enqueue("pin.jobs.nod_b", msgID: "other", [9])
            #expect(try await bus.fetch(q, max: 2, wait: .seconds(2)).map(\.payload) == [[0], [1]])
            #expect(try await bus.fetch(q, max: 0, wait: .zero).isEmpty)
            #expect(try await bus.fetch(q, max: 10, wait: .seconds(2)).map(\.payload) == [[2], [3], [4]])
            #expect(try await bus.fetch("pin.jobs.nod_b", max: 10, wait: .seconds(2)).map(\.payload) == [[9]])
        }
    }

    @Test(arguments: BusArmKind.allCases)
    func unackedJobIsRedeliveredAfterTheAckWait(arm: BusArmKind) async throws {
        try await arm.run(BusSettings(ackWait: .seconds(1))) { arm in
            let bus = try await arm.bus("nod_a")
            try await bus.openQueue(q)
            _ = try await bus.enqueue(q, msgID: "r", "r".bytes)
            let start = arm.elapsed()
            #expect(try await bus.fetch(q, max: 1, wait: .seconds(2)).map(\.deliveries) == [1])
            #expect(try await bus.fetch(q, max: 1, wait: .zero).isEmpty)  // pending, not due
            var again: [BusJob] = []
            #expect(
                try await arm.eventually {
                    again = try await bus.fetch(q, max: 1, wait: .zero)
                    return !again.isEmpty
                }
            )
            #expect(arm.elapsed() - start >= .milliseconds(900))
            #expect(again.first?.deliveries == 2 && again.first?.msgID == "r" && again.first?.payload == "r".bytes)
            try await bus.ack(again[0])
        }
    }

    @Test(arguments: BusArmKind.allCases)
    func ackedAndTermedJobsAreNeverDeliveredAgain(arm: BusArmKind) async throws {
        try await arm.run(BusSettings(ackWait: .seconds(1))) { arm in
            let bus = try await arm.bus("nod_a")
            try await bus.openQueue(q)
            _ = try await bus.enqueue(q, msgID: "a", "a".bytes)
            _ = try await bus.enqueue(q, msgID: "t", "t".bytes)
            let jobs = try await bus.fetch(q, max: 2, wait: .seconds(2))
            try #require(jobs.count == 2)
            try await bus.ack(jobs[0])
            try await bus.term(jobs[1])
            try await arm.pass(.seconds(2))  // twice the ack wait
            #expect(try await bus.fetch(q, max: 10, wait: .zero).isEmpty)
        }
    }

    @Test(arguments: BusArmKind.allCases)
    func nakRedeliversAtOnceOrAfterItsDelay(arm: BusArmKind) async throws {
        try await arm.run { arm in
            let bus = try await arm.bus("nod_a")
            try await bus.openQueue(q)
            _ = try await bus.enqueue(q, msgID: "n", "n".bytes)
            let first = try #require(try await bus.fetch(q, max: 1, wait: .seconds(2)).first)
            try await bus.nak(first, delay: nil)
            var second: [BusJob] = []
            #expect(
                try await arm.eventually(within: .seconds(5)) {
                    second = try await bus.fetch(q, max: 1, wait: .zero)
                    return !second.isEmpty
                }
            )
            #expect(second.map(\.deliveries) == [2])
            let nakAt = arm.elapsed()
            try await bus.nak(second[0], delay: .seconds(1))
            #expect(try await bus.fetch(q, max: 1, wait: .zero).isEmpty)
            var third: [BusJob] = []
            #expect(
                try await arm.eventually {
                    third = try await bus.fetch(q, max: 1, wait: .zero)
                    return !third.isEmpty
                }
            )
            #expect(arm.elapsed() - nakAt >= .milliseconds(900), "the delay was honoured")
            #expect(third.map(\.deliveries) == [3])
        }
    }

    @Test(arguments: BusArmKind.allCases)
    func inProgressRestartsTheAckWait(arm: BusArmKind) async throws {
        try await arm.run(BusSettings(ackWait: .seconds(3))) { arm in
            let bus = try await arm.bus("nod_a")
            try await bus.openQueue(q)
            _ = try await bus.enqueue(q, msgID: "p", [])
            let job = try #require(try await bus.fetch(q, max: 1, wait: .seconds(2)).first)
            try await arm.pass(.milliseconds(1500))
            try await bus.inProgress(job)
            try await arm.pass(.seconds(2))  // past the first ack wait, inside the renewed one
            #expect(try await bus.fetch(q, max: 1, wait: .zero).isEmpty)
            var again: [BusJob] = []
            #expect(
                try await arm.eventually {
                    again = try await bus.fetch(q, max: 1, wait: .zero)
                    return !again.isEmpty
                }
            )
            #expect(again.map(\.deliveries) == [2])
        }
    }

    @Test(arguments: BusArmKind.allCases)
    func closingAndReopeningAQueueKeepsUnackedJobs(arm: BusArmKind) async throws {
        try await arm.run { arm in
            let a = try await arm.bus("nod_a")
            let other = try await arm.bus("nod_b")
            try await a.openQueue(q)
            _ = try await other.enqueue(q, msgID: "c1", "c1".bytes)
            _ = try await other.enqueue(q, msgID: "c2", "c2".bytes)
            let delivered = try await a.fetch(q, max: 1, wait: .seconds(2))
            #expect(delivered.map(\.payload) == ["c1".bytes])  // delivered, never acked
            try await a.closeQueue(q)
            try await a.closeQueue(q)  // idempotent
            do {
                _ = try await a.fetch(q, max: 10, wait: .zero)
                Issue.record("fetch on a closed queue succeeded")
            } catch let error as BusError {
                // JetStream's "consumer not found" (10014).
                guard case .server(10014, _) = error else {
                    Issue.record("expected .server(10014), got \(error)")
                    return
                }
            }
            // A job enqueued while nobody consumes waits in the stream too.
            _ = try await other.enqueue(q, msgID: "c3", "c3".bytes)
            // The queue is durable: any node can reopen it; delivery starts afresh.
            try await other.openQueue(q)
            var all: [BusJob] = []
            #expect(
                try await arm.eventually {
                    all += try await other.fetch(q, max: 10, wait: .zero)
                    return all.count >= 3
                }
            )
            #expect(all.map(\.payload) == ["c1".bytes, "c2".bytes, "c3".bytes])
            #expect(all.allSatisfy { $0.deliveries == 1 })
            for job in all { try await other.ack(job) }
            #expect(try await other.fetch(q, max: 10, wait: .zero).isEmpty)
        }
    }

    /// Acks reach the queue's consumer by name and stream sequence: a handle from an earlier
    /// consumer of the same queue still acks a job the current one has pending. ack/term are
    /// synchronous: with no consumer nobody answers (`.unavailable`); for a job the consumer does
    /// not have pending the server stays silent (`.timeout`, after NATSBus's 5 s request timeout).
    @Test(arguments: BusArmKind.allCases)
    func staleHandlesActByStreamSequence(arm: BusArmKind) async throws {
        try await arm.run(BusSettings(ackWait: .seconds(1))) { arm in
            let bus = try await arm.bus("nod_a")
            try await bus.openQueue(q)
            _ = try await bus.enqueue(q, msgID: "s1", [1])
            _ = try await bus.enqueue(q, msgID: "s2", [2])
            let old = try await bus.fetch(q, max: 2, wait: .seconds(2))
            try #require(old.map(\.payload) == [[1], [2]])
            try await bus.closeQueue(q)
            do {
                try await bus.ack(old[0])
                Issue.record("ack with no consumer succeeded")
            } catch let error as BusError {
                guard case .unavailable = error else {
                    Issue.record("expected .unavailable, got \(error)")
                    return
                }
            }
            try await bus.nak(old[0], delay: nil)  // fire-and-forget: nobody listens, no error
            try await bus.openQueue(q)
            #expect(try await bus.fetch(q, max: 1, wait: .seconds(2)).map(\.payload) == [[1]])
            try await bus.ack(old[0])  // the old handle acks the new delivery of job 1
            await #expect(throws: BusError.timeout) { try await bus.ack(old[1]) }  // job 2: not pending
            var rest: [BusJob] = []
            #expect(
                try await arm.eventually {
                    rest += try await bus.fetch(q, max: 10, wait: .zero)
                    return !rest.isEmpty
                }
            )
            try await arm.pass(.seconds(2))  // twice the ack wait: job 1 would be back by now
            rest += try await bus.fetch(q, max: 10, wait: .zero)
            #expect(rest.first?.payload == [2] && !rest.contains { $0.payload == [1] }, "\(rest.map(\.payload))")
        }
    }

    // MARK: KV

    @Test(arguments: BusArmKind.allCases)
    func kvCompareAndSet(arm: BusArmKind) async throws {
        try await arm.run { arm in
            let bus = try await arm.bus("nod_a")
            let b = try await arm.bus("nod_b")
            #expect(try await bus.kvGet("leader") == nil)
            let r1 = try await bus.kvCreate("leader", [1], ttl: nil)
            await #expect(throws: BusError.conflict(key: "leader")) { try await b.kvCreate("leader", [2], ttl: nil) }
            #expect(try await b.kvGet("leader") == KVEntry(key: "leader", value: [1], revision: r1))
            await #expect(throws: BusError.conflict(key: "leader")) { try await b.kvUpdate("leader", [2], revision: r1 + 7, ttl: nil) }
            let r2 = try await b.kvUpdate("leader", [2], revision: r1, ttl: nil)
            #expect(r2 > r1)
            await #expect(throws: BusError.conflict(key: "leader")) { try await bus.kvUpdate("leader", [3], revision: r1, ttl: nil) }
            // One revision sequence for the whole bucket.
            let other = try await bus.kvPut("maintenance", [9], ttl: nil)
            #expect(other == r2 + 1)
            let r3 = try await bus.kvPut("leader", [4], ttl: nil)
            #expect(r3 == other + 1)
            #expect(try await b.kvGet("leader") == KVEntry(key: "leader", value: [4], revision: r3))
            await #expect(throws: BusError.conflict(key: "leader")) { try await bus.kvDelete("leader", revision: r2) }
            try await bus.kvDelete("leader", revision: r3)
            #expect(try await b.kvGet("leader") == nil)
            await #expect(throws: BusError.conflict(key: "leader")) { try await bus.kvUpdate("leader", [5], revision: r3, ttl: nil) }
            await #expect(throws: BusError.conflict(key: "leader")) { try await bus.kvDelete("leader", revision: r3) }
            try await bus.kvDelete("leader", revision: nil)  // absent and unconditional: fine
            let r4 = try await b.kvCreate("leader", [6], ttl: nil)  // a deleted key can be created again
            #expect(r4 > r3 + 1)  // the delete consumed a revision
            #expect(try await bus.kvGet("leader") == KVEntry(key: "leader", value: [6], revision: r4))
            try await bus.kvDelete("maintenance", revision: nil)
            #expect(try await bus.kvGet("maintenance") == nil)
        }
    }

    @Test(arguments: BusArmKind.allCases)
    func kvKeysExpireAfterTheirTTL(arm: BusArmKind) async throws {
        try await arm.run { arm in
            let a = try await arm.bus("nod_a")
            let b = try await arm.bus("nod_b")
            let r1 = try await a.kvCreate("hb.n1", "alive".bytes, ttl: .seconds(2))
            try await a.kvPut("flag", [1], ttl: nil)
            #expect(try await b.kvGet("hb.n1")?.value == "alive".bytes)
            try await arm.pass(.seconds(1))
            let r2 = try await a.kvUpdate("hb.n1", "renewed".bytes, revision: r1, ttl: .seconds(2))  // renew
            try await arm.pass(.milliseconds(1500))  // past the first TTL, inside the renewed one
            #expect(try await b.kvGet("hb.n1") == KVEntry(key: "hb.n1", value: "renewed".bytes, revision: r2))
            await #expect(throws: BusError.conflict(key: "hb.n1")) { try await b.kvCreate("hb.n1", [2], ttl: .seconds(2)) }
            #expect(try await arm.eventually { try await b.kvGet("hb.n1") == nil })
            // Gone: its last revision no longer matches, and it can be created afresh.
            await #expect(throws: BusError.conflict(key: "hb.n1")) { try await a.kvUpdate("hb.n1", [1], revision: r2, ttl: .seconds(2)) }
            let r3 = try await b.kvCreate("hb.n1", "back".bytes, ttl: .seconds(2))
            #expect(try await a.kvGet("hb.n1") == KVEntry(key: "hb.n1", value: "back".bytes, revision: r3))
            // A key written without a TTL stays.
            #expect(try await a.kvGet("flag")?.value == [1])
        }
    }

    // MARK: pub/sub

    @Test(arguments: BusArmKind.allCases)
    func wildcardSubscriptionsAcrossNodes(arm: BusArmKind) async throws {
        try await arm.run { arm in
            let a = try await arm.bus("nod_a")
            let b = try await arm.bus("nod_b")
            let star = try await b.subscribe("node.heartbeat.*", capacity: 100)
            let tail = try await b.subscribe("node.>", capacity: 100)
            let exact = try await b.subscribe("node.heartbeat.n1", capacity: 100)
            let mid = try await b.subscribe("*.heartbeat.n2", capacity: 100)
            for s in ["node.heartbeat.n1", "node.heartbeat.n2", "node.heartbeat.n1.extra", "node", "cache.invalidate"] {
                try await a.publish(s, s.bytes)
            }
            #expect(try await arm.receive(tail, count: 3).map(\.subject) == ["node.heartbeat.n1", "node.heartbeat.n2", "node.heartbeat.n1.extra"])
            #expect(try await arm.receive(star, count: 2).map(\.subject) == ["node.heartbeat.n1", "node.heartbeat.n2"])
            #expect(try await arm.receive(exact, count: 1) == [BusMessage(subject: "node.heartbeat.n1", payload: "node.heartbeat.n1".bytes)])
            #expect(try await arm.receive(mid, count: 1).map(\.subject) == ["node.heartbeat.n2"])
            try await arm.pass(.milliseconds(200))
            for inbox in [star, tail, exact, mid] { #expect(await inbox.drain().isEmpty) }  // nothing extra
            // A closed inbox receives nothing more.
            await star.close()
            try await a.publish("node.heartbeat.n3", [3])
            #expect(try await arm.receive(tail, count: 1).map(\.subject) == ["node.heartbeat.n3"])
            #expect(await star.drain().isEmpty)
        }
    }

    @Test(arguments: BusArmKind.allCases)
    func aFullInboxDropsItsOldest(arm: BusArmKind) async throws {
        try await arm.run { arm in
            let bus = try await arm.bus("nod_a")
            let inbox = try await bus.subscribe("x.>", capacity: 2)
            for i in 0..<5 { try await bus.publish("x.y", [UInt8(i)]) }
            #expect(try await arm.eventually { await inbox.dropped() == 3 })
            #expect(await inbox.drain().map(\.payload) == [[3], [4]])
            #expect(await inbox.drain().isEmpty)
            await inbox.close()
        }
    }
}
