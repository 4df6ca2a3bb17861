import Testing
import Worker

/// Which tenant-supplied origins the node's Kubo may dial (docs/security.md, "origins").
@Suite struct OriginPolicyTests {
    @Test func onlyPeerAddressesOnPublicIPsAreDialled() {
        let dialled = [
            "/ip4/1.1.1.1/tcp/4001/p2p/12D3KooWPeer",
            "/ip4/8.8.8.8/udp/4001/quic-v1/p2p/12D3KooWPeer",
            "/ip6/2606:4700::1111/tcp/4001/p2p/12D3KooWPeer",
            "/ip4/1.1.1.1/tcp/4001/p2p/QmRelay/p2p-circuit/p2p/12D3KooWPeer",
            "/p2p/12D3KooWPeer",
            "/ipfs/QmPeer",
        ]
        let refused = [
            "/ip4/127.0.0.1/tcp/5001/p2p/12D3KooWPeer",  // loopback: Kubo's own RPC port
            "/ip4/10.0.0.5/tcp/5432/p2p/12D3KooWPeer",  // a private database
            "/ip4/172.20.1.1/tcp/22/p2p/12D3KooWPeer",
            "/ip4/192.168.1.1/tcp/80/p2p/12D3KooWPeer",
            "/ip4/169.254.169.254/tcp/80/ws/p2p/12D3KooWPeer",  // cloud metadata
            "/ip4/100.64.0.1/tcp/1/p2p/12D3KooWPeer",
            "/ip4/0.0.0.0/tcp/1/p2p/12D3KooWPeer",
            "/ip4/224.0.0.1/udp/1/p2p/12D3KooWPeer",
            "/ip6/::1/tcp/1/p2p/12D3KooWPeer",
            "/ip6/fe80::1/tcp/1/p2p/12D3KooWPeer",
            "/ip6/fd00::1/tcp/1/p2p/12D3KooWPeer",
            "/ip6/::ffff:10.0.0.1/tcp/1/p2p/12D3KooWPeer",  // IPv4-mapped private
            "/ip6/64:ff9b::a00:1/tcp/1/p2p/12D3KooWPeer",  // NAT64 of 10.0.0.1
            "/ip6/2002:a00:1::1/tcp/1/p2p/12D3KooWPeer",  // 6to4 of 10.0.0.1
            "/ip6/2001:db8::1/tcp/1/p2p/12D3KooWPeer",
            "/dns4/metadata.internal/tcp/80/ws/p2p/12D3KooWPeer",  // names resolve to anything
            "/dnsaddr/bootstrap.libp2p.io/p2p/12D3KooWPeer",
            "/ip4/1.1.1.1/tcp/4001",  // no peer: Kubo's swarm/connect needs one
            "/ip4/1.1.1.1/tcp/4001/p2p/",
            "/ip4/999.1.1.1/tcp/1/p2p/12D3KooWPeer",
            "/unix/run/x.sock/p2p/12D3KooWPeer",
            "ip4/1.1.1.1/tcp/1/p2p/12D3KooWPeer",
            "/ip4//tcp/1/p2p/12D3KooWPeer",
        ]
        for addr in dialled { #expect(OriginPolicy.isDialable(addr, allowPrivate: false), "\(addr)") }
        for addr in refused { #expect(!OriginPolicy.isDialable(addr, allowPrivate: false), "\(addr)") }
        // kubo.dialPrivateOrigins lifts the address rule, not the peer rule.
        #expect(OriginPolicy.isDialable("/ip4/10.0.0.5/tcp/4001/p2p/12D3KooWPeer", allowPrivate: true))
        #expect(OriginPolicy.isDialable("/dns4/node.lan/tcp/4001/p2p/12D3KooWPeer", allowPrivate: true))
        #expect(!OriginPolicy.isDialable("/ip4/10.0.0.5/tcp/4001", allowPrivate: true))
    }
}
