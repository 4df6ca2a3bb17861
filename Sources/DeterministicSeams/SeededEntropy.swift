import Seams

/// A deterministic generator (SplitMix64) for the simulator and for tests. The standard library
/// has no seedable generator; SplitMix64 is tiny, fast and passes BigCrush, which is all we need
/// for IDs and jitter (never for secrets in production).
public final class SeededEntropy: Entropy, @unchecked Sendable {
    // @unchecked: `state` is only touched under `lock`.
    private var state: UInt64
    private let lock = Lock()

    public init(seed: UInt64) { self.state = seed }

    public func next() -> UInt64 {
        lock.withLock {
            state &+= StableHash.golden
            return StableHash.mix(state)
        }
    }

    public func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count + 8)
        while out.count < count {
            var word = next()
            for _ in 0..<8 {
                out.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return Array(out.prefix(count))
    }
}
