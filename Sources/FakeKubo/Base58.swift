import Seams

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
