import Seams
import Sim

/// Fault knobs of the simulated Kubos (one set for the whole world; a scenario changes them
/// between phases).
public struct KuboFaults: Sendable, Equatable {
    /// Probability that a pin attempt fails with a Kubo error (retried by the worker).
    public var errorRate: Double = 0
    /// Probability that a pin attempt finds Kubo unreachable (daemon restarting).
    public var unreachableRate: Double = 0
    /// Probability that an unpin fails (the worker retries it next round).
    public var unpinErrorRate: Double = 0
    /// Pin latency, uniform in this range (seconds of virtual time).
    public var minLatencySeconds: Int64 = 1
    public var maxLatencySeconds: Int64 = 20

    public init() {}

    public static let none = KuboFaults()
}

/// A deterministic Kubo behind the `KuboAPI` seam: every call completes at once, its outcome
/// decided synchronously from seeded entropy and the knobs. How long a pin takes is not
/// awaited here (time only moves between events): the driver asks ``latency(for:stallTimeout:)``
/// and schedules the worker's attempt at `now + latency`, and the attempt then calls ``pin``.
///
/// A CID in `neverResolving` (a property of the CID: no provider has it anywhere) always
/// stalls. A Kubo that is `down` answers `.unreachable` to everything. Pins are held with
/// their names like Kubo (`recursivePins()` is what the reconciler reads). A node that dies
/// "for good" loses its Kubo too (`destroyed`): its pins no longer count as replicas.
public final class SimKubo: KuboAPI, @unchecked Sendable {
    // @unchecked: all mutable state is only touched under `lock`.
    public let node: String
    private let entropy: SeededEntropy
    private let world: KuboWorld
    private let lock = Lock()
    private var pins: [String: String?] = [:]  // cid → name; lookups only, listed sorted
    private var down = false
    private var destroyed = false
    /// Called (awaited) before an unpin takes effect: the world's refcount checker.
    let onUnpin: @Sendable (_ node: String, _ cid: String) async -> Void

    init(node: String, entropy: SeededEntropy, world: KuboWorld, onUnpin: @escaping @Sendable (String, String) async -> Void) {
        self.node = node
        self.entropy = entropy
        self.world = world
        self.onUnpin = onUnpin
    }

    // MARK: world controls

    public var isDown: Bool { lock.withLock { down } }
    public func setDown(_ value: Bool) { lock.withLock { down = value } }
    /// The machine is gone: the Kubo and its data with it.
    public func destroy() { lock.withLock { destroyed = true; down = true; pins = [:] } }
    public var isDestroyed: Bool { lock.withLock { destroyed } }

    /// CIDs pinned by anchorage (named `anchorage`), sorted.
    public func anchoragePins(name: String = "anchorage") -> [String] {
        lock.withLock { pins.filter { $0.value == name }.keys.sorted() }
    }

    public func holds(_ cid: String) -> Bool { lock.withLock { !destroyed && pins[cid] != nil } }

    /// How long a pin of `cid` takes from now, drawn from the seed.
    public func latency(for cid: String, stallTimeout: Duration) -> Duration {
        if world.isNeverResolving(cid) { return stallTimeout }
        let f = world.faults
        let lo = max(f.minLatencySeconds, 0), hi = max(f.maxLatencySeconds, lo)
        let ms = Int64(entropy.uniform(UInt64((hi - lo) * 1000 + 1))) + lo * 1000
        return .milliseconds(ms)
    }

    private func chance(_ p: Double) -> Bool {
        if p <= 0 { return false }
        if p >= 1 { return true }
        return Double(entropy.next() >> 11) / Double(UInt64(1) << 53) < p
    }

    // MARK: KuboAPI

    public func identity() async throws -> KuboIdentity {
        try check()
        return KuboIdentity(peerID: "sim-\(node)", addresses: ["/dns4/\(node).sim/tcp/4001/p2p/sim-\(node)"], agentVersion: "kubo/sim")
    }

    public func version() async throws -> String {
        try check()
        return "0.0.0-sim"
    }

    public func pin(cid: String, name: String?, stallTimeout: Duration, deadline: Duration, progress: @Sendable (Int) async -> Void) async throws {
        try check()
        let f = world.faults
        if chance(f.unreachableRate) { throw KuboError.unreachable("simulated: connection refused") }
        if world.isNeverResolving(cid) { throw KuboError.stalled("no progress for \(stallTimeout)") }
        if chance(f.errorRate) { throw KuboError.command(message: "simulated: failed to fetch blocks", code: 0) }
        await progress(1)
        lock.withLock { pins[cid] = .some(name) }
    }

    public func unpin(cid: String) async throws {
        try check()
        if chance(world.faults.unpinErrorRate) { throw KuboError.command(message: "simulated: unpin failed", code: 0) }
        await onUnpin(node, cid)
        _ = lock.withLock { pins.removeValue(forKey: cid) }
    }

    public func recursivePins() async throws -> [KuboPin] {
        try check()
        return lock.withLock { pins.keys.sorted().map { KuboPin(cid: $0, name: pins[$0] ?? nil) } }
    }

    public func recursivePin(cid: String) async throws -> KuboPin? {
        try check()
        return lock.withLock { pins[cid].map { KuboPin(cid: cid, name: $0) } }
    }

    public func connect(to addresses: [String], limit: Int, timeout: Duration) async -> Int {
        isDown ? 0 : min(addresses.count, limit)
    }

    public func repoStat() async throws -> KuboRepoStat {
        try check()
        let n = lock.withLock { UInt64(pins.count) }
        return KuboRepoStat(repoSize: n * 1024, storageMax: 1 << 40, numObjects: n)
    }

    private func check() throws {
        if isDown { throw KuboError.unreachable("simulated: \(node)'s Kubo is down") }
    }
}

/// What all simulated Kubos share: the fault knobs and the CIDs no provider has.
public final class KuboWorld: @unchecked Sendable {
    // @unchecked: all mutable state is only touched under `lock`.
    private let lock = Lock()
    private var _faults = KuboFaults.none
    private var neverResolving: Set<String> = []  // lookups only

    public init() {}

    public var faults: KuboFaults {
        get { lock.withLock { _faults } }
        set { lock.withLock { _faults = newValue } }
    }

    public func markNeverResolving(_ cid: String) { _ = lock.withLock { neverResolving.insert(cid) } }
    public func isNeverResolving(_ cid: String) -> Bool { lock.withLock { neverResolving.contains(cid) } }
}
