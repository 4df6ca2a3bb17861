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
