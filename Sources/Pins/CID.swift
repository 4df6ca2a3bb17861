/// Structural validation of a CID string: the multibase, the version, the codec and the
/// multihash all decode, and nothing trails. The string itself is kept exactly as the client
/// sent it (Kubo compares CIDs by bytes; CIDv0 and CIDv1 of the same hash are different CIDs).
public enum CIDValidation {
    public struct Info: Sendable, Equatable {
        public var version: Int
        public var codec: UInt64
        public var hashCode: UInt64
        public var digestLength: Int
    }

    /// The longest CID string accepted; real CIDs are under 100 characters.
    public static let maxLength = 512

    public static func validate(_ cid: String) -> Result<Info, PinsError> {
        parse(cid).map(\.info)
    }

    /// A decoded CID: its properties and, for CIDv1, its binary form (nil for CIDv0).
    struct Parsed {
        var info: Info
        var binary: [UInt8]?
    }

    static func parse(_ cid: String) -> Result<Parsed, PinsError> {
        func bad(_ why: String) -> Result<Parsed, PinsError> {
            .failure(.badRequest(reason: "INVALID_CID", details: "\"\(cid.prefix(100))\" is not a valid CID: \(why)"))
        }
        let utf8 = Array(cid.utf8)
        guard !utf8.isEmpty else { return bad("it is empty") }
        guard utf8.count <= maxLength else { return bad("it is longer than \(maxLength) characters") }
        // CIDv0: a bare base58btc sha2-256 multihash, always "Qm" + 44 characters.
        if utf8.count == 46, utf8[0] == UInt8(ascii: "Q"), utf8[1] == UInt8(ascii: "m") {
            guard let bytes = BaseN.decode(utf8, alphabet: BaseN.base58btc),
                bytes.count == 34, bytes[0] == 0x12, bytes[1] == 0x20
            else { return bad("CIDv0 must be a base58btc sha2-256 multihash") }
            return .success(Parsed(info: Info(version: 0, codec: 0x70, hashCode: 0x12, digestLength: 32), binary: nil))
        }
        let body = Array(utf8.dropFirst())
        let decoded: [UInt8]?
        switch utf8[0] {
        case UInt8(ascii: "b"): decoded = RFC4648.decode(body, alphabet: RFC4648.base32Lower, bitsPerChar: 5)
        case UInt8(ascii: "B"): decoded = RFC4648.decode(body, alphabet: RFC4648.base32Upper, bitsPerChar: 5)
        case UInt8(ascii: "f"): decoded = RFC4648.decode(body, alphabet: RFC4648.base16Lower, bitsPerChar: 4)
        case UInt8(ascii: "F"): decoded = RFC4648.decode(body, alphabet: RFC4648.base16Upper, bitsPerChar: 4)
        case UInt8(ascii: "z"): decoded = BaseN.decode(body, alphabet: BaseN.base58btc)
        case UInt8(ascii: "k"): decoded = BaseN.decode(body, alphabet: BaseN.base36Lower)
        case UInt8(ascii: "K"): decoded = BaseN.decode(body, alphabet: BaseN.base36Upper)
        case UInt8(ascii: "m"): decoded = RFC4648.decode(body, alphabet: RFC4648.base64, bitsPerChar: 6)
        case UInt8(ascii: "u"): decoded = RFC4648.decode(body, alphabet: RFC4648.base64URL, bitsPerChar: 6)
        case UInt8(ascii: "M"), UInt8(ascii: "U"):
            let trimmed = Array(body.reversed().drop(while: { $0 == UInt8(ascii: "=") }).reversed())
            decoded = RFC4648.decode(
                trimmed,
                alphabet: utf8[0] == UInt8(ascii: "M") ? RFC4648.base64 : RFC4648.base64URL,
                bitsPerChar: 6
            )
        default:
            return bad("unsupported multibase prefix '\(Character(Unicode.Scalar(utf8[0])))'")
        }
        guard let bytes = decoded, !bytes.isEmpty else { return bad("the multibase payload does not decode") }
        var reader = VarintReader(bytes: bytes)
        guard let version = reader.next() else { return bad("truncated version") }
        guard version == 1 else {
            return bad(version == 0x12 ? "CIDv0 must be written as base58btc \"Qm...\"" : "unsupported CID version \(version)")
        }
        guard let codec = reader.next() else { return bad("truncated codec") }
        guard let hashCode = reader.next(), let length = reader.next() else { return bad("truncated multihash") }
        guard length <= 128 else { return bad("multihash digest longer than 128 bytes") }
        guard reader.remaining == Int(length) else {
            return bad("multihash digest is \(reader.remaining) bytes, its header says \(length)")
        }
        return .success(Parsed(info: Info(version: 1, codec: codec, hashCode: hashCode, digestLength: Int(length)), binary: bytes))
    }
}

/// The identity of a CID as Kubo keys it (by its binary form), spelled as Kubo prints it.
public enum CIDKey {
    /// CIDv1 in any supported multibase (`b…`, `B…`, `z…`, `k…`, `f…`, `m…`, …) → lowercase
    /// base32 `b…`; CIDv0 (`Qm…`) → unchanged (a different binary CID from its v1 twin, as in
    /// Kubo); nil when `cid` is not a CID.
    public static func canonical(_ cid: String) -> String? {
        guard case .success(let parsed) = CIDValidation.parse(cid) else { return nil }
        guard let binary = parsed.binary else { return cid }
        return "b" + CIDText.base32Lower(binary)
    }
}

struct VarintReader {
    let bytes: [UInt8]
    var index = 0
    init(bytes: [UInt8]) { self.bytes = bytes }
    var remaining: Int { bytes.count - index }

    /// An unsigned LEB128 varint of at most 9 bytes (the multiformats limit).
    mutating func next() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for n in 0..<9 {
            guard index < bytes.count else { return nil }
            let b = bytes[index]
            index += 1
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                if n > 0, b == 0 { return nil }  // not minimally encoded
                return value
            }
            shift += 7
        }
        return nil
    }
}

/// Decoders for the bit-packed RFC 4648 alphabets (base16, base32, base64), unpadded. Also the
/// token verifier's base64url (package-wide: one decoder).
package enum RFC4648 {
    static let base32Lower = table("abcdefghijklmnopqrstuvwxyz234567")
    static let base32Upper = table("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    static let base16Lower = table("0123456789abcdef")
    static let base16Upper = table("0123456789ABCDEF")
    static let base64 = table("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    package static let base64URL = table("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

    static func table(_ alphabet: String) -> [UInt8] {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.utf8.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }

    package static func decode(_ input: some Sequence<UInt8>, alphabet: [UInt8], bitsPerChar: Int) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(input.underestimatedCount * bitsPerChar / 8)
        var buffer: UInt32 = 0
        var bits = 0
        for c in input {
            let v = alphabet[Int(c)]
            guard v != 0xFF else { return nil }
            buffer = (buffer << UInt32(bitsPerChar)) | UInt32(v)
            bits += bitsPerChar
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        // Leftover bits must be padding zeros, fewer than one character's worth.
        guard bits < bitsPerChar, buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}

/// Decoders for the big-number alphabets (base58btc, base36): leading zero digits are zero bytes.
enum BaseN {
    static let base58btc = alphabet("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
    static let base36Lower = alphabet("0123456789abcdefghijklmnopqrstuvwxyz")
    static let base36Upper = alphabet("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")

    struct Alphabet {
        let radix: UInt32
        let zero: UInt8
        let table: [UInt8]
    }

    static func alphabet(_ chars: String) -> Alphabet {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in chars.utf8.enumerated() { t[Int(c)] = UInt8(i) }
        return Alphabet(radix: UInt32(chars.utf8.count), zero: chars.utf8.first!, table: t)
    }

    static func decode(_ input: [UInt8], alphabet: Alphabet) -> [UInt8]? {
        guard !input.isEmpty else { return nil }
        let zeros = input.prefix(while: { $0 == alphabet.zero }).count
        var number: [UInt8] = []  // little-endian base-256 digits
        for c in input[zeros...] {
            let v = alphabet.table[Int(c)]
            guard v != 0xFF else { return nil }
            var carry = UInt32(v)
            for i in 0..<number.count {
                carry += UInt32(number[i]) * alphabet.radix
                number[i] = UInt8(truncatingIfNeeded: carry)
                carry >>= 8
            }
            while carry > 0 {
                number.append(UInt8(truncatingIfNeeded: carry))
                carry >>= 8
            }
        }
        return [UInt8](repeating: 0, count: zeros) + number.reversed()
    }
}

/// Building CID strings (for tests, benchmarks and fixtures that need fresh, valid CIDs).
public enum CIDText {
    /// A CIDv1 (raw codec, sha2-256 multihash) in base32 for a 32-byte digest: `bafkrei…`.
    public static func rawV1(digest: [UInt8]) -> String {
        precondition(digest.count == 32)
        return "b" + base32Lower([0x01, 0x55, 0x12, 0x20] + digest)
    }

    /// A deterministic fresh CID for index `n` and a namespace (not the hash of any real data).
    public static func synthetic(_ n: UInt64, namespace: UInt64 = 0) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var x = n &* 0x9E37_79B9_7F4A_7C15 ^ namespace
        for i in 0..<32 {
            x = (x ^ (x >> 29)) &* 0xBF58_476D_1CE4_E5B9 &+ UInt64(i)
            digest[i] = UInt8(truncatingIfNeeded: x >> 24)
        }
        digest[0] = UInt8(truncatingIfNeeded: n >> 8)
        digest[1] = UInt8(truncatingIfNeeded: n)
        digest[2] = UInt8(truncatingIfNeeded: namespace)
        return rawV1(digest: digest)
    }

    static func base32Lower(_ bytes: [UInt8]) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for b in bytes {
            buffer = (buffer << 8) | UInt32(b)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt32(bits)) & 0x1F)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 0x1F)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
