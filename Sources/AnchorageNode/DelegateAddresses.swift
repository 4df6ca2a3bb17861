import Worker

/// Which of Kubo's own addresses a node answers as `delegates`.
public enum DelegateAddresses {
    /// Peer addresses only (`…/p2p/<id>`); public ones when Kubo has any (private ones would
    /// only tell tenants about the operator's network), else routable private ones (a LAN
    /// deployment), loopback only when nothing else exists; at most 20 (the spec's cap).
    public static func choose(_ addresses: [String]) -> [String] {
        let peers = addresses.filter { $0.contains("/p2p/") }
        let publicOnes = peers.filter { OriginPolicy.isDialable($0, allowPrivate: false) }
        let routable = peers.filter { !$0.hasPrefix("/ip4/127.") && !$0.hasPrefix("/ip6/::1/") }
        return Array((!publicOnes.isEmpty ? publicOnes : routable.isEmpty ? peers : routable).prefix(20))
    }
}
