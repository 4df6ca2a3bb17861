import FakeKubo
import Seams

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

    /// As the fake Kubo's knobs.
    func apply(to knobs: inout FakeKuboKnobs) {
        knobs.failureRate["pin/add"] = errorRate
        knobs.failureRate["pin/rm"] = unpinErrorRate
        knobs.unreachableRate["pin/add"] = unreachableRate
        let lo = Int(max(minLatencySeconds, 0)) * 1000
        knobs.pinLatencyRangeMs = lo...max(Int(maxLatencySeconds) * 1000, lo)
    }
}

/// The world's Kubos: one `FakeKuboNode` per node in deterministic mode (the same fake, held
/// to the same contract suite as the HTTP fake and a real Kubo), with the fault knobs and the
/// CIDs no provider has shared by all of them.
public final class KuboWorld: @unchecked Sendable {
    // @unchecked: all mutable state is only touched under `lock`.
    private let lock = Lock()
    private var _faults = KuboFaults.none
    private var nodes: [FakeKuboNode] = []
    private var neverResolving: Set<String> = []  // lookups only

    public init() {}

    /// A node's Kubo: decided at the call from `seed`, never sleeping (time passes between the
    /// simulator's events); `onUnpin` hears every unpin before it takes effect.
    func make(seed: UInt64, onUnpin: @escaping @Sendable (String) async -> Void) -> FakeKuboNode {
        var knobs = FakeKuboKnobs()
        lock.withLock {
            _faults.apply(to: &knobs)
            knobs.neverResolve = neverResolving.sorted()
        }
        let node = FakeKuboNode(seed: seed, knobs: knobs, deterministic: true, onUnpin: onUnpin)
        lock.withLock { nodes.append(node) }
        return node
    }

    public var faults: KuboFaults {
        get { lock.withLock { _faults } }
        set {
            let all = lock.withLock {
                _faults = newValue
                return nodes
            }
            for node in all { node.adjustKnobs { newValue.apply(to: &$0) } }
        }
    }

    /// `cid` is a CID nobody has: it never resolves on any Kubo.
    public func markNeverResolving(_ cid: String) {
        let all = lock.withLock {
            neverResolving.insert(cid)
            return nodes
        }
        for node in all { node.markNeverResolving(cid) }
    }

    public func isNeverResolving(_ cid: String) -> Bool { lock.withLock { neverResolving.contains(cid) } }
}
