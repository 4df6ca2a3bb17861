import Seams

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The production wall clock: `clock_gettime(CLOCK_REALTIME)` at microsecond precision.
public struct SystemWallClock: WallClock {
    public init() {}

    public func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(microsecondsSinceEpoch: Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000)
    }
}

/// The production entropy source: the system's cryptographically secure generator.
public struct SystemEntropy: Entropy {
    public init() {}

    public func next() -> UInt64 {
        var g = SystemRandomNumberGenerator()
        return g.next()
    }

    public func bytes(_ count: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &g) }
    }
}
