/// A TypeID: a type prefix plus a UUIDv7 in Crockford base32, e.g. `pin_01jdq5v6bqfx0a7hk1m8w3c9ze`.
/// The prefix says what the ID names (`org`, `pin`, `tok`, `nod`, `key`); the UUID sorts by
/// creation time, which keeps B-tree inserts local.
public struct TypeID: Hashable, Sendable, CustomStringConvertible {
    public let prefix: String
    /// The 128-bit UUID, big-endian halves.
    public let high: UInt64
    public let low: UInt64

    public init(prefix: String, high: UInt64, low: UInt64) {
        self.prefix = prefix
        self.high = high
        self.low = low
    }

    /// A new UUIDv7-based ID: 48 bits of Unix milliseconds from `clock`, 74 random bits from `entropy`.
    public static func make(_ prefix: String, clock: any WallClock, entropy: any Entropy) -> TypeID {
        let ms = UInt64(max(0, clock.now().microseconds / 1000)) & 0xFFFF_FFFF_FFFF
        let randA = entropy.next() & 0x0FFF
        let randB = entropy.next() & 0x3FFF_FFFF_FFFF_FFFF
        return TypeID(
            prefix: prefix,
            high: (ms << 16) | (0x7 << 12) | randA,
            low: (0b10 << 62) | randB
        )
    }

    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)
    private static let decodeTable: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    /// The 26-character base32 suffix (130 bits, the top two always zero).
    public var suffix: String {
        var out = [UInt8](repeating: 0, count: 26)
        // Walk 5 bits at a time from the least significant end.
        var hi = high
        var lo = low
        for i in stride(from: 25, through: 0, by: -1) {
            out[i] = Self.alphabet[Int(lo & 0x1F)]
            lo = (lo >> 5) | ((hi & 0x1F) << 59)
            hi >>= 5
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { prefix.isEmpty ? suffix : prefix + "_" + suffix }

    /// Parses `prefix_suffix`, requiring the expected prefix. Returns nil for anything malformed.
    public init?(parsing text: some StringProtocol, prefix expected: String) {
        let s = Array(text.utf8)
        let p = Array(expected.utf8)
        guard s.count == p.count + 1 + 26, s.starts(with: p), s[p.count] == UInt8(ascii: "_") else { return nil }
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        for (n, c) in s[(p.count + 1)...].enumerated() {
            let v = Self.decodeTable[Int(c)]
            guard v != 0xFF else { return nil }
            if n == 0, v > 7 { return nil }  // would overflow 128 bits
            hi = (hi << 5) | (lo >> 59)
            lo = (lo << 5) | UInt64(v)
        }
        self.init(prefix: expected, high: hi, low: lo)
    }

    /// The UUID's 16 bytes, big-endian.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
    }

    public init(prefix: String, bytes: [UInt8]) {
        precondition(bytes.count == 16)
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        for i in 0..<8 { hi = (hi << 8) | UInt64(bytes[i]) }
        for i in 8..<16 { lo = (lo << 8) | UInt64(bytes[i]) }
        self.init(prefix: prefix, high: hi, low: lo)
    }
}

/// Well-known TypeID prefixes.
public enum IDPrefix {
    public static let org = "org"
    public static let pin = "pin"
    public static let token = "tok"
    public static let node = "nod"
    public static let key = "key"
    public static let audit = "aud"
}

extension TypeID: Codable {
    /// Parses `prefix_suffix` with whatever prefix it has.
    public init?(parsingAny text: some StringProtocol) {
        guard let underscore = text.lastIndex(of: "_") else { return nil }
        self.init(parsing: text, prefix: String(text[..<underscore]))
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = TypeID(parsingAny: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a TypeID: \(text)"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
