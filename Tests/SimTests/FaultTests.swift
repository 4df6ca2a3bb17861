import DeterministicSeams
import Seams
import SimBus
import Testing

@Suite("SimBus faults")
struct SimBusFaultTests {
    @Test func aPartitionCutsTheMinorityOffAndHealRestoresIt() async throws {
        let w = BusWorld(traceFaults: true)
        let a = w.bus("nod_a")
        let b = w.bus("nod_b")
        let c = w.bus("nod_c")
        let inboxB = try await b.subscribe("node.heartbeat.*", capacity: 10)
        let inboxC = try await c.subscribe("node.heartbeat.*", capacity: 10)
        try await a.openQueue("pin.jobs.nod_c")
        _ = try await a.enqueue("pin.jobs.nod_c", msgID: "j", [])

        w.network.partition(["nod_a", "nod_b"], ["nod_c"])
        #expect(w.network.isReachable("nod_a"))
        #expect(!w.network.isReachable("nod_c"))
        #expect(w.network.cutOffNodes == ["nod_c"])

        // The majority side works and does not hear from (or reach) the minority.
        try await a.publish("node.heartbeat.nod_a", [1])
        #expect(await inboxB.drain().count == 1)
        #expect(await inboxC.drain().isEmpty)
        #expect(w.network.stats.partitionDropped == 1)

        // Every call from the minority fails.
        await #expect(throws: BusError.unavailable("nod_c is cut off from the broker")) { try await c.publish("node.heartbeat.nod_c", []) }
        await #expect(throws: BusError.self) { try await c.fetch("pin.jobs.nod_c", max: 1, wait: .zero) }
        await #expect(throws: BusError.self) { try await c.kvGet("leader") }
        await #expect(throws: BusError.self) { try await c.kvCreate("leader", [], ttl: .seconds(5)) }
        await #expect(throws: BusError.self) { try await c.enqueue("pin.jobs.nod_c", msgID: "k", []) }
        await #expect(throws: BusError.self) { try await c.subscribe("x", capacity: 1) }
        #expect(w.network.stats.unavailable == 6)

        w.network.heal()
        try await a.publish("node.heartbeat.nod_a", [2])
        #expect(await inboxC.drain().map(\.payload) == [[2]])
        #expect(try await c.fetch("pin.jobs.nod_c", max: 1, wait: .zero).count == 1)
        #expect(w.scheduler.log.lines.contains("  bus: heal"))
    }

    @Test func theBrokerStaysWithTheLargerSide() {
        let w = BusWorld()
        w.network.partition(["nod_a"], ["nod_b", "nod_c"])
        #expect(w.network.cutOffNodes == ["nod_a"])
        w.network.partition(["nod_a"], ["nod_b"])  // tie: the first set keeps the broker
        #expect(w.network.cutOffNodes == ["nod_b"])
        w.network.heal()
        w.network.isolate("nod_c")
        #expect(w.network.cutOffNodes == ["nod_c"])
    }

    @Test func delayedMessagesArriveThroughTheScheduler() async throws {
        let w = BusWorld()
        let a = w.bus("nod_a")
        let inbox = try await w.bus("nod_b").subscribe("hb.>", capacity: 10)
        w.network.setFaults(LinkFaults(delay: .milliseconds(300)), for: "nod_a")
        w.network.setFaults(LinkFaults(delay: .milliseconds(200)), for: "nod_b")
        try await a.publish("hb.a", [1])
        #expect(await inbox.drain().isEmpty)
        try await w.advance(.milliseconds(499))
        #expect(await inbox.drain().isEmpty)
        try await w.advance(.milliseconds(1))
        #expect(await inbox.drain().map(\.payload) == [[1]])
        #expect(w.scheduler.log.lines == ["0.500000 0 bus.deliver hb.a nod_a->nod_b"])
        // A message in flight when its receiver is cut off is dropped on arrival.
        try await a.publish("hb.a", [2])
        w.network.isolate("nod_b")
        try await w.advance(.seconds(1))
        w.network.heal()
        #expect(await inbox.drain().isEmpty)
        #expect(w.network.stats.partitionDropped == 1)
        // Enqueue latency: the job is stored at once but deliverable only after the delay.
        try await a.openQueue(q)
        #expect(try await a.enqueue(q, msgID: "j", []) == .stored(sequence: 1))
        #expect(try await a.fetch(q, max: 1, wait: .zero).isEmpty)
        try await w.advance(.milliseconds(300))
        #expect(try await a.fetch(q, max: 1, wait: .zero).count == 1)
    }

    @Test func reorderingLetsLaterMessagesOvertake() async throws {
        let w = BusWorld(seed: 3)
        let a = w.bus("nod_a")
        let inbox = try await w.bus("nod_b").subscribe("seq", capacity: 100)
        w.network.setFaults(LinkFaults(reordering: .seconds(1)))
        for i in 0..<50 { try await a.publish("seq", [UInt8(i)]) }
        try await w.advance(.seconds(3))
        let got = await inbox.drain().map { Int($0.payload[0]) }
        #expect(got.sorted() == Array(0..<50))
        #expect(got != Array(0..<50))
    }

    /// Publishes `count` messages from nod_a to nod_b under `faults`; returns (delivered, stats).
    func lossyRun(seed: UInt64, faults: LinkFaults, count: Int = 1000) async throws -> (Int, SimBusStats) {
        let w = BusWorld(seed: seed)
        let inbox = try await w.bus("nod_b").subscribe("m", capacity: 10 * count)
        w.network.setFaults(faults, for: "nod_b")
        for i in 0..<count { try await w.bus("nod_a").publish("m", [UInt8(i & 0xFF)]) }
        return (await inbox.drain().count, w.network.stats)
    }

    @Test func lossAndDuplicationAreSeededAndCounted() async throws {
        let faults = LinkFaults(loss: 0.2, duplication: 0.1)
        let (delivered, stats) = try await lossyRun(seed: 42, faults: faults)
        let (delivered2, stats2) = try await lossyRun(seed: 42, faults: faults)
        #expect(delivered == delivered2)
        #expect(stats == stats2)
        #expect(stats.published == 1000)
        #expect((150...250).contains(stats.lost))
        #expect((50...110).contains(stats.duplicated))
        #expect(delivered == 1000 - stats.lost + stats.duplicated)
        #expect(stats.delivered == delivered)
        let (_, other) = try await lossyRun(seed: 43, faults: faults)
        #expect(other != stats)
        // Faults off: nothing lost, no entropy consumed.
        let (clean, cleanStats) = try await lossyRun(seed: 42, faults: .none)
        #expect(clean == 1000)
        #expect(cleanStats.lost == 0 && cleanStats.duplicated == 0)
    }

    @Test func timeoutsAreAmbiguous() async throws {
        let w = BusWorld(seed: 9, traceFaults: true)
        let a = w.bus("nod_a")
        w.network.setFaults(LinkFaults(timeouts: 1), for: "nod_a")
        var timedOut = 0
        for i in 0..<40 {
            do {
                _ = try await a.enqueue(q, msgID: "j\(i)", [])
            } catch BusError.timeout {
                timedOut += 1
            }
        }
        #expect(timedOut == 40)
        #expect(w.network.stats.timeouts == 40)
        // Some requests were lost, some replies: those jobs were stored.
        let stored = w.network.queuedJobs(q).count
        #expect(stored > 0 && stored < 40)
        #expect(w.scheduler.log.lines.filter { $0.hasSuffix("reply lost (timeout)") }.count == stored)
        // A retry of a job whose reply was lost is deduplicated.
        w.network.clearFaults()
        var duplicates = 0
        for i in 0..<40 {
            if case .duplicate = try await a.enqueue(q, msgID: "j\(i)", []) { duplicates += 1 }
        }
        #expect(duplicates == stored)
    }
}

@Suite("Determinism")
struct DeterminismTests {
    /// Three nodes heartbeat every second for a minute and enqueue jobs for each other, over a
    /// network with random loss, duplication and reordering; every node logs what it drained.
    static func script(seed: UInt64) async throws -> (digest: String, events: Int) {
        let scheduler = makeScheduler(retention: 100)
        let entropy = SeededEntropy(seed: seed)
        let network = SimBusNetwork(scheduler: scheduler, entropy: entropy, log: scheduler.log)
        network.setFaults(LinkFaults(delay: .milliseconds(5), reordering: .milliseconds(900), loss: 0.1, duplication: 0.05))
        let nodes = ["nod_a", "nod_b", "nod_c"]
        var inboxes: [any BusInbox] = []
        for n in nodes {
            let bus = network.endpoint(node: n)
            inboxes.append(try await bus.subscribe("node.heartbeat.*", capacity: 8))
            try await bus.openQueue("pin.jobs.\(n)")
        }
        for (i, n) in nodes.enumerated() {
            let bus = network.endpoint(node: n)
            let inbox = inboxes[i]
            let log = scheduler.log
            @Sendable func tick(_ k: Int) {
                guard k < 60 else { return }
                // Jittered tick period, from the world's entropy.
                let jitter = Int64(entropy.uniform(200_000))
                scheduler.schedule(after: .microseconds(1_000_000 + jitter), label: "\(n).tick \(k)", key: "\(n).tick") {
                    try await bus.publish("node.heartbeat.\(n)", Array("\(n) \(k)".utf8))
                    let heard = await inbox.drain().map { String(decoding: $0.payload, as: UTF8.self) }
                    log.record("  \(n) heard [\(heard.joined(separator: ", "))]")
                    let target = nodes[Int(entropy.uniform(UInt64(nodes.count)))]
                    let r = try await bus.enqueue("pin.jobs.\(target)", msgID: "\(n)-\(k / 2)", [])
                    log.record("  \(n) enqueue -> \(target): \(r)")
                    for job in try await bus.fetch("pin.jobs.\(n)", max: 2, wait: .zero) {
                        log.record("  \(n) got job \(job.msgID ?? "-") x\(job.deliveries)")
                        if entropy.uniform(3) > 0 { try await bus.ack(job) }
                    }
                    tick(k + 1)
                }
            }
            tick(0)
        }
        try await scheduler.run(for: .seconds(120))
        return (scheduler.log.digest, scheduler.eventsRun)
    }

    @Test func sameSeedSameDigest() async throws {
        let first = try await Self.script(seed: 2026)
        let second = try await Self.script(seed: 2026)
        #expect(first.digest == second.digest)
        #expect(first.events == second.events)
        #expect(first.events > 180)
    }

    @Test func differentSeedDifferentDigest() async throws {
        let a = try await Self.script(seed: 1)
        let b = try await Self.script(seed: 2)
        #expect(a.digest != b.digest)
    }
}
