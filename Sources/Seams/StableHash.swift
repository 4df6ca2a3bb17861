/// The one copy of the small, stable hash functions the cluster and the simulator share:
/// FNV-1a for bytes and the SplitMix64 finaliser to spread them. Stable across processes and
/// releases (unlike `Hasher`, which is seeded per process), so placement and seed derivation
/// are functions of their inputs only.
public enum StableHash {
    public static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325
    public static let fnvPrime: UInt64 = 0x0000_0100_0000_01b3
    /// SplitMix64's increment (the golden ratio).
    public static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// Folds `bytes` into the FNV-1a state `h`.
    @inlinable
    public static func fnv1a(_ h: UInt64, _ bytes: some Sequence<UInt8>) -> UInt64 {
        var h = h
        for byte in bytes { h = (h ^ UInt64(byte)) &* fnvPrime }
        return h
    }

    /// SplitMix64's output function: a bijective mixer that spreads every input bit.
    @inlinable
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
