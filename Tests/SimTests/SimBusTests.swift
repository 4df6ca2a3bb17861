import DeterministicSeams
import Seams
import SimBus
import SimKernel
import Testing

/// A scheduler plus a network with `nodes` endpoints.
struct BusWorld {
    let scheduler: Scheduler
    let network: SimBusNetwork

    init(seed: UInt64 = 1, config: SimBusConfig = SimBusConfig(), traceFaults: Bool = false) {
        scheduler = makeScheduler()
        network = SimBusNetwork(
            scheduler: scheduler,
            entropy: SeededEntropy(seed: seed),
            config: config,
            log: traceFaults ? scheduler.log : nil
        )
    }

    func bus(_ node: String) -> SimBus { network.endpoint(node: node) }

    func advance(_ d: Duration) async throws { try await scheduler.run(for: d) }
}

let q = "pin.jobs.nod_a"

// The `ClusterBus` semantics shared with NATSBus are checked by the contract suite in
// `Tests/BusContract`; these are the simulator's own: exact virtual-time boundaries, stats,
// maxDeliver, inspection, crashes.

@Suite("SimBus work queue")
struct SimBusQueueTests {
    @Test func duplicatesInsideTheWindowAreDroppedAndAfterItStored() async throws {
        let w = BusWorld()
        let bus = w.bus("nod_a")
        #expect(try await bus.enqueue(q, msgID: "m1", [1]) == .stored(sequence: 1))
        try await w.advance(.seconds(119))
        #expect(try await bus.enqueue(q, msgID: "m1", [1]) == .duplicate(sequence: 1))
        #expect(try await bus.enqueue("pin.jobs.nod_b", msgID: "m1", [1]) == .duplicate(sequence: 1))
        #expect(try await bus.enqueue(q, msgID: "m2", [2]) == .stored(sequence: 2))
        try await w.advance(.seconds(1))  // 120 s after m1: the window has passed
        #expect(try await bus.enqueue(q, msgID: "m1", [1]) == .stored(sequence: 3))
        // Dedup holds even after the first job was acked (JetStream tracks msgIDs, not jobs).
        try await bus.openQueue(q)
        for job in try await bus.fetch(q, max: 10, wait: .seconds(1)) { try await bus.ack(job) }
        #expect(try await bus.enqueue(q, msgID: "m2", [2]) == .duplicate(sequence: 2))
        // An empty msgID is never deduplicated.
        #expect(try await bus.enqueue(q, msgID: "", [9]) == .stored(sequence: 4))
        #expect(try await bus.enqueue(q, msgID: "", [9]) == .stored(sequence: 5))
        #expect(w.network.stats.duplicateEnqueues == 3)
    }

    @Test func unackedJobsAreRedeliveredAfterTheAckWait() async throws {
        let w = BusWorld()
        let bus = w.bus("nod_a")
        try await bus.openQueue(q)
        _ = try await bus.enqueue(q, msgID: "j", [7])
        let first = try await bus.fetch(q, max: 10, wait: .seconds(5))
        #expect(first.map(\.deliveries) == [1])
        #expect(first.first?.payload == [7])
        #expect(first.first?.msgID == "j")
        try await w.advance(.seconds(29))
        #expect(try await bus.fetch(q, max: 10, wait: .seconds(5)).isEmpty)
        try await w.advance(.seconds(1))
        let second = try await bus.fetch(q, max: 10, wait: .seconds(5))
        #expect(second.map(\.deliveries) == [2])
        try await bus.ack(second[0])
        try await w.advance(.seconds(60))
        #expect(try await bus.fetch(q, max: 10, wait: .seconds(5)).isEmpty)
        #expect(w.network.queuedJobs(q).isEmpty)
        #expect(w.network.stats.redelivered == 1)
        #expect(w.network.stats.acked == 1)
    }

    @Test func nakRedeliversAfterItsDelay() async throws {
        let w = BusWorld()
        let bus = w.bus("nod_a")
        try await bus.openQueue(q)
        _ = try await bus.enqueue(q, msgID: "j", [])
        let job = try #require(try await bus.fetch(q, max: 1, wait: .zero).first)
        try await bus.nak(job, delay: .seconds(10))
        try await w.advance(.seconds(9))
        #expect(try await bus.fetch(q, max: 1, wait: .zero).isEmpty)
        try await w.advance(.seconds(1))
        let again = try #require(try await bus.fetch(q, max: 1, wait: .zero).first)
        #expect(again.deliveries == 2)
        try await bus.nak(again, delay: nil)
        #expect(try await bus.fetch(q, max: 1, wait: .zero).map(\.deliveries) == [3])
        #expect(w.network.stats.naked == 2)
    }

    @Test func inProgressRestartsTheAckWait() async throws {
        let w = BusWorld()
        let bus = w.bus("nod_a")
        try await bus.openQueue(q)
        _ = try await bus.enqueue(q, msgID: "j", [])
        let job = try #require(try await bus.fetch(q, max: 1, wait: .zero).first)
        try await w.advance(.seconds(20))
        try await bus.inProgress(job)
        try await w.advance(.seconds(20))  // 40 s after fetch, 20 s after the touch
        #expect(try await bus.fetch(q, max: 1, wait: .zero).isEmpty)
        try await w.advance(.seconds(10))  // 30 s after the touch
        #expect(try await bus.fetch(q, max: 1, wait: .zero).map(\.deliveries) == [2])
    }

    @Test func termRemovesForGood() async throws {
        let w = BusWorld()
        let bus = w.bus("nod_a")
        try await bus.openQueue(q)
        _ = try await bus.enqueue(q, msgID: "j", [])
        let job = try #require(try await bus.fetch(q, max: 1, wait: .zero).first)
        try await bus.term(job)
        try await w.advance(.seconds(300))
        #expect(try await bus.fetch(q, max: 1, wait: .zero).isEmpty)
        #expect(w.network.queuedJobs(q).isEmpty)
        #expect(w.network.stats.termed == 1)
    }

    @Test func maxDeliverStopsRedelivery() async throws {
        let w = BusWorld(config: SimBusConfig(maxDeliver: 2))
        let bus = w.bus("nod_a")
        try await bus.openQueue(q)
        _ = try await bus.enqueue(q, msgID: "j", [])
        #expect(try await bus.fetch(q, max: 1, wait: .zero).count == 1)
        try await w.advance(.seconds(30))
        #expect(try await bus.fetch(q, max: 1, wait: .zero).map(\.deliveries) == [2])
        try await w.advance(.seconds(30))
        #expect(try await bus.fetch(q, max: 1, wait: .zero).isEmpty)
        #expect(w.network.queuedJobs(q).count == 1)  // still in the stream
    }

    @Test func closingAQueueKeepsItsJobsForTheNextConsumer() async throws {
        let w = BusWorld()
        let a = w.bus("nod_a")
        let other = w.bus("nod_b")
        // No consumer yet: fetch fails like NATS (consumer not found).
        await #expect(throws: BusError.server(code: 10014, description: "consumer not found: no open queue on 'pin.jobs.nod_a'")) {
            try await a.fetch(q, max: 1, wait: .zero)
        }
        try await a.openQueue(q)
        try await a.openQueue(q)  // idempotent
        for i in 0..<3 { _ = try await other.enqueue(q, msgID: "j\(i)", [UInt8(i)]) }
        let jobs = try await a.fetch(q, max: 2, wait: .zero)
        try await a.ack(jobs[0])
        try await a.closeQueue(q)
        try await a.closeQueue(q)  // idempotent
        #expect(w.network.openQueues.isEmpty)
        do {
            _ = try await a.fetch(q, max: 1, wait: .zero)
            Issue.record("fetch on a closed queue must fail")
        } catch let error as BusError {
            guard case .server(10014, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
        }
        // The unacked job and the never-delivered one stay.
        #expect(w.network.queuedJobs(q).map(\.sequence) == [2, 3])
        // No consumer: nobody answers the ack (NATS: no responders), and nothing changes.
        await #expect(throws: BusError.unavailable("no responders for the ack of pin.jobs.nod_a#2: the queue is not open")) {
            try await a.ack(jobs[1])
        }
        #expect(w.network.stats.staleAcks == 1)
        // The next consumer (on any node: the queue is durable) delivers them again from scratch.
        try await other.openQueue(q)
        let again = try await other.fetch(q, max: 10, wait: .zero)
        #expect(again.map(\.payload) == [[1], [2]])
        #expect(again.map(\.deliveries) == [1, 1])
    }

    @Test func enqueueOutsideTheStreamFails() async throws {
        let w = BusWorld()
        await #expect(throws: BusError.self) { try await w.bus("nod_a").enqueue("node.heartbeat.x", msgID: "m", []) }
        await #expect(throws: BusError.self) { try await w.bus("nod_a").enqueue("pin.jobs.*", msgID: "m", []) }
    }
}

@Suite("SimBus KV")
struct SimBusKVTests {
    // Compare-and-set is in the bus contract suite (Tests/BusContract), on NATS and here alike.

    @Test func keysExpireOnVirtualTime() async throws {
        let w = BusWorld()
        let a = w.bus("nod_a")
        let b = w.bus("nod_b")
        let r1 = try await a.kvCreate("leader", [1], ttl: .seconds(10))
        try await w.advance(.seconds(9))
        let r2 = try await a.kvUpdate("leader", [1], revision: r1, ttl: .seconds(10))  // renew
        try await w.advance(.seconds(9))
        #expect(try await b.kvGet("leader")?.revision == r2)
        await #expect(throws: BusError.conflict(key: "leader")) { try await b.kvCreate("leader", [2], ttl: .seconds(10)) }
        try await w.advance(.seconds(1))  // 10 s after the renewal
        #expect(try await b.kvGet("leader") == nil)
        await #expect(throws: BusError.conflict(key: "leader")) { try await a.kvUpdate("leader", [1], revision: r2, ttl: .seconds(10)) }
        let r3 = try await b.kvCreate("leader", [2], ttl: .seconds(10))
        #expect(try await a.kvGet("leader") == KVEntry(key: "leader", value: [2], revision: r3))
        // A put without ttl never expires.
        try await a.kvPut("flag", [1], ttl: nil)
        try await w.advance(.seconds(86_400))
        #expect(try await a.kvGet("flag") != nil)
        await #expect(throws: BusError.self) { try await a.kvPut("bad", [], ttl: .zero) }
    }
}

@Suite("SimBus pub/sub")
struct SimBusPubSubTests {
    @Test func invalidSubjectsAreRefused() async throws {
        let bus = BusWorld().bus("nod_a")
        await #expect(throws: BusError.self) { try await bus.subscribe("node.>.x", capacity: 1) }
        await #expect(throws: BusError.self) { try await bus.subscribe("node..x", capacity: 1) }
        await #expect(throws: BusError.self) { try await bus.publish("node.*", []) }
    }

    @Test func deliveriesAndDropsAreCounted() async throws {
        let w = BusWorld()
        let bus = w.bus("nod_a")
        let inbox = try await bus.subscribe("x.>", capacity: 2)
        for i in 0..<5 { try await bus.publish("x.y", [UInt8(i)]) }
        #expect(w.network.stats.delivered == 5)
        #expect(w.network.stats.inboxDropped == 3)
        await inbox.close()
        try await bus.publish("x.y", [9])
        #expect(w.network.stats.delivered == 5)
    }

    @Test func crashedNodesLoseTheirSubscriptions() async throws {
        let w = BusWorld()
        let inbox = try await w.bus("nod_b").subscribe("x", capacity: 2)
        w.network.closeSubscriptions(of: "nod_b")
        try await w.bus("nod_a").publish("x", [1])
        #expect(await inbox.drain().isEmpty)
    }
}
