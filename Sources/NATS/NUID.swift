/// Random identifiers for inboxes and tokens: 22 base-62 characters (~131 bits).
enum NUID {
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    static func next() -> String {
        var rng = SystemRandomNumberGenerator()
        return String(decoding: (0..<22).map { _ in alphabet[Int(rng.next(upperBound: UInt8(62)))] }, as: UTF8.self)
    }
}
