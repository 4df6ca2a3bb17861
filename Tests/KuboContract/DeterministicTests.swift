import FakeKubo
import Seams
import Synchronization
import Testing

/// `FakeKuboNode(deterministic: true)`: the simulator's Kubo. Beyond the contract suite (which
/// runs it as the `inProcessDeterministic` arm): seeded reproducibility and the simulator's
/// controls.
@Suite struct FakeKuboDeterministicTests {
    static func node(seed: UInt64 = 11, knobs: FakeKuboKnobs = FakeKuboKnobs(), onUnpin: (@Sendable (String) async -> Void)? = nil) -> FakeKuboNode {
        FakeKuboNode(
            seed: seed,
            knobs: knobs,
            deterministic: true,
            onUnpin: onUnpin,
            sleep: { _ in
                Issue.record("deterministic mode slept")
            }
        )
    }

    @Test func plannedLatencyIsSeededAndInRange() {
        let knobs = FakeKuboKnobs(pinLatencyRangeMs: 1_000...20_000)
        let cids = (0..<50).map { _ in TestCID.unfindable() }
        let a = Self.node(knobs: knobs)
        let b = Self.node(knobs: knobs)
        let first = cids.map { a.plannedLatency(for: $0, stallTimeout: .seconds(60)) }
        #expect(first == cids.map { b.plannedLatency(for: $0, stallTimeout: .seconds(60)) })
        #expect(first.allSatisfy { $0 >= .seconds(1) && $0 <= .seconds(20) })
        #expect(Set(first).count > 10)
        let other = Self.node(seed: 12, knobs: knobs)
        #expect(first != cids.map { other.plannedLatency(for: $0, stallTimeout: .seconds(60)) })
        // A never-resolving CID (any spelling) takes the stall timeout; a scripted one its script.
        let binary = TestCID.sha256RawBinary()
        let spellings = TestCID.spellings(binary)
        a.markNeverResolving(spellings.upper)
        #expect(a.plannedLatency(for: spellings.base58, stallTimeout: .seconds(60)) == .seconds(60))
        let scripted = TestCID.unfindable()
        let c = Self.node(knobs: FakeKuboKnobs(scripts: [scripted: .available(afterMs: 1234, blocks: 3)]))
        #expect(c.plannedLatency(for: scripted, stallTimeout: .seconds(60)) == .milliseconds(1234))
    }

    @Test func pinIsDecidedAtTheCall() async throws {
        let node = Self.node()
        let progress = ProgressLog()
        let cid = TestCID.unfindable()
        try await node.pin(cid: cid, name: "anchorage", stallTimeout: .seconds(60), deadline: .seconds(600)) { progress.record($0) }
        #expect(progress.all == [1])
        #expect(node.holds(cid) && !node.holds(TestCID.unfindable()))
        let never = TestCID.unfindable()
        node.markNeverResolving(never)
        do {
            try await node.pin(cid: never, name: "anchorage", stallTimeout: .seconds(60), deadline: .seconds(600)) { _ in }
            Issue.record("a never-resolving CID pinned")
        } catch let error as KuboError {
            guard case .stalled = error else {
                Issue.record("expected .stalled, got \(error)")
                return
            }
        }
        await node.updateKnobs { $0.failureRate["pin/add"] = 1 }
        await #expect(throws: KuboError.command(message: "fake kubo: injected failure", code: 0)) {
            try await node.pin(cid: TestCID.unfindable(), name: nil, stallTimeout: .seconds(60), deadline: .seconds(600)) { _ in }
        }
        let snapshot = await node.snapshot()
        #expect(snapshot.pinsStarted == 2 && snapshot.pinsCompleted == 1 && snapshot.pinsFailed == 1)
        #expect(snapshot.inFlight.isEmpty)
    }

    /// Same seed, same calls → same outcomes (the simulator's replay guarantee).
    @Test func outcomesReplayFromTheSeed() async throws {
        let knobs = FakeKuboKnobs(failureRate: ["pin/add": 0.3, "pin/rm": 0.3], unreachableRate: ["pin/add": 0.2])
        let cids = (0..<40).map { CIDOf.v0($0) }
        func run() async -> [String] {
            let node = Self.node(knobs: knobs)
            var outcomes: [String] = []
            for (i, cid) in cids.enumerated() {
                do {
                    try await node.pin(cid: cid, name: "anchorage", stallTimeout: .seconds(60), deadline: .seconds(600)) { _ in }
                    outcomes.append("ok")
                } catch {
                    outcomes.append("\(error)")
                }
                do {
                    if i % 3 == 0 { try await node.unpin(cid: cid) }
                } catch {
                    outcomes.append("rm: \(error)")
                }
            }
            outcomes.append(node.anchoragePins().joined(separator: ","))
            return outcomes
        }
        let first = await run()
        #expect(first == (await run()))
        #expect(first.contains("ok") && first.contains { $0.contains("unreachable") } && first.contains { $0.contains("injected failure") })
    }

    @Test func unpinAwaitsTheHookFirstAndListingsAreSorted() async throws {
        let seen = Mutex<[String]>([])
        let holder = Mutex<FakeKuboNode?>(nil)
        let node = Self.node { cid in
            // The hook runs before the unpin takes effect: the pin is still there.
            let held = holder.withLock { $0 }?.holds(cid) ?? false
            seen.withLock { $0.append("\(cid) held=\(held)") }
        }
        holder.withLock { $0 = node }
        let cids = (0..<5).map { CIDOf.v0($0) }
        for cid in cids.reversed() {
            try await node.pin(cid: cid, name: "anchorage", stallTimeout: .seconds(60), deadline: .seconds(600)) { _ in }
        }
        let other = TestCID.unfindable()
        try await node.pin(cid: other, name: "someone-else", stallTimeout: .seconds(60), deadline: .seconds(600)) { _ in }
        #expect(node.anchoragePins() == cids.sorted())
        #expect(node.anchoragePins(name: "someone-else") == [other])
        #expect(try await node.recursivePins().map(\.cid) == (cids + [other]).sorted())
        try await node.unpin(cid: cids[0])
        #expect(seen.withLock { $0 } == ["\(cids[0]) held=true"])
        #expect(!node.holds(cids[0]))
    }
}

/// Deterministic CIDv0s (`Qm…`): the simulator's CIDs.
enum CIDOf {
    static func v0(_ n: Int) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        digest[0] = UInt8(truncatingIfNeeded: n)
        digest[1] = UInt8(truncatingIfNeeded: n >> 8)
        return Base58.encode([0x12, 0x20] + digest)
    }
}
