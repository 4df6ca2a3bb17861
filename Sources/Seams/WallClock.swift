/// The source of calendar time for everything that stamps a record (`created`, token expiry,
/// audit entries). Production reads the system clock; the simulator and tests advance a virtual
/// one. Core code never calls `Date()` itself: this seam is how time gets in.
public protocol WallClock: Sendable {
    /// The current time, microsecond precision (PostgreSQL's `timestamptz` precision).
    func now() -> Timestamp
}

/// The source of randomness for IDs, secrets and jitter. Production uses the system's
/// cryptographic generator; the simulator uses a seeded one so that a seed replays exactly.
public protocol Entropy: Sendable {
    /// Fills `count` bytes with random data.
    func bytes(_ count: Int) -> [UInt8]
    /// A uniformly random 64-bit value.
    func next() -> UInt64
}

extension Entropy {
    /// A uniformly random value in `0..<upperBound` (Lemire's nearly-divisionless method).
    public func uniform(_ upperBound: UInt64) -> UInt64 {
        precondition(upperBound > 0, "upperBound must be positive")
        var product = next().multipliedFullWidth(by: upperBound)
        if product.low < upperBound {
            let threshold = (0 &- upperBound) % upperBound
            while product.low < threshold { product = next().multipliedFullWidth(by: upperBound) }
        }
        return product.high
    }

    /// A random integer in a closed range.
    public func int(in range: ClosedRange<Int>) -> Int {
        let width = UInt64(bitPattern: Int64(range.upperBound) &- Int64(range.lowerBound)) &+ 1
        if width == 0 { return Int(truncatingIfNeeded: next()) }  // the full 64-bit range
        return range.lowerBound &+ Int(truncatingIfNeeded: uniform(width))
    }
}

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
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
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
