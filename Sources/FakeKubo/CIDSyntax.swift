import Pins

/// Kubo's reading of a pin argument: a CID, optionally as an `/ipfs/` path or `ipfs://` URL.
enum CIDSyntax {
    /// Strips `/ipfs/`, `ipfs://`, `ipfs:` and any sub-path, and returns the root CID's pin key
    /// (`CIDKey.canonical`: the binary CID, spelled as Kubo prints it); nil when the root is not
    /// a CID (Kubo's `invalid path`).
    static func root(of arg: String) -> String? {
        var s = Substring(arg)
        for prefix in ["/ipfs/", "ipfs://", "ipfs:"] where s.hasPrefix(prefix) {
            s = s.dropFirst(prefix.count)
            break
        }
        if let slash = s.firstIndex(of: "/") { s = s[..<slash] }
        return CIDKey.canonical(String(s))
    }
}
