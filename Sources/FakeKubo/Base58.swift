/// Bitcoin-alphabet base58 (what libp2p peer IDs and CIDv0 use).
enum Base58 {
    static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var zeros = 0
        while zeros < bytes.count && bytes[zeros] == 0 { zeros += 1 }
        var digits: [UInt8] = []  // base58 digits, little-endian
        for byte in bytes[zeros...] {
            var carry = Int(byte)
            for i in 0..<digits.count {
                carry += Int(digits[i]) << 8
                digits[i] = UInt8(carry % 58)
                carry /= 58
            }
            while carry > 0 {
                digits.append(UInt8(carry % 58))
                carry /= 58
            }
        }
        let chars = [UInt8](repeating: alphabet[0], count: zeros) + digits.reversed().map { alphabet[Int($0)] }
        return String(decoding: chars, as: UTF8.self)
    }

    static func isValid(_ s: Substring) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { alphabet.contains($0) }
    }
}

/// Light CID syntax check: enough to reject garbage the way Kubo does (`invalid path ...`),
/// not a full multiformats decoder.
enum CIDSyntax {
    /// Strips `/ipfs/`, `ipfs://`, `ipfs:` and any sub-path; nil when the result is not CID-shaped.
    static func root(of arg: String) -> String? {
        var s = Substring(arg)
        for prefix in ["/ipfs/", "ipfs://", "ipfs:"] where s.hasPrefix(prefix) {
            s = s.dropFirst(prefix.count)
            break
        }
        if let slash = s.firstIndex(of: "/") { s = s[..<slash] }
        guard let first = s.first, s.count >= 8 else { return nil }
        switch first {
        case "Q":
            return s.count == 46 && s.hasPrefix("Qm") && Base58.isValid(s) ? String(s) : nil
        case "b":
            return s.dropFirst().utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 50 && $0 <= 55) } ? String(s) : nil
        case "z":
            return Base58.isValid(s.dropFirst()) ? String(s) : nil
        case "k":
            return s.dropFirst().utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) } ? String(s) : nil
        default:
            return nil
        }
    }
}
