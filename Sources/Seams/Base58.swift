/// Bitcoin-alphabet base58 (what libp2p peer IDs and CIDv0 use).
public enum Base58 {
    public static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
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

    public static func isValid(_ s: Substring) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { alphabet.contains($0) }
    }
}
