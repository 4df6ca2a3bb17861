#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Which of a tenant's `origins` the node's Kubo may dial. An origin is a hint from an
/// untrusted tenant, and a dial is a TCP (or QUIC, or WebSocket: an HTTP request) connection
/// from inside the operator's network: unfiltered, it is a port scanner with a timing oracle
/// (`queued` → `pinned` fast when refused, slow when filtered). So only addresses that name a
/// peer (`…/p2p/<id>`) and lead with a public IP are dialled; DNS names are not, since the
/// node cannot know what they resolve to when Kubo dials. `kubo.dialPrivateOrigins` lifts the
/// address rule for private networks (and tests). Kubo's own `Swarm.AddrFilters` is the
/// second fence (docs/security.md).
public enum OriginPolicy {
    public static func isDialable(_ multiaddr: String, allowPrivate: Bool) -> Bool {
        let parts = multiaddr.split(separator: "/", omittingEmptySubsequences: false)
        // "/ip4/1.2.3.4/tcp/4001/p2p/Qm…" splits into ["", "ip4", …, "p2p", "Qm…"].
        guard parts.count >= 3, parts[0].isEmpty, parts.dropFirst().allSatisfy({ !$0.isEmpty }) else { return false }
        guard ["p2p", "ipfs"].contains(parts[parts.count - 2]) else { return false }
        if allowPrivate { return true }
        switch parts[1] {
        case "p2p", "ipfs": return parts.count == 3  // a bare peer ID: Kubo finds its addresses itself
        case "ip4": return isPublicIPv4(String(parts[2]))
        case "ip6": return isPublicIPv6(String(parts[2]))
        default: return false  // dns*, unix, onion, garlic…: nothing the node can vet
        }
    }

    static func isPublicIPv4(_ text: String) -> Bool {
        var addr = in_addr()
        guard inet_pton(AF_INET, text, &addr) == 1 else { return false }
        let a = UInt32(bigEndian: addr.s_addr)
        return isPublicIPv4(a)
    }

    static func isPublicIPv4(_ a: UInt32) -> Bool {
        func within(_ base: UInt32, _ bits: UInt32) -> Bool { bits == 0 || a >> (32 - bits) == base >> (32 - bits) }
        let special: [(UInt32, UInt32)] = [
            (0x0000_0000, 8),  // "this network"
            (0x0A00_0000, 8),  // 10/8 private
            (0x6440_0000, 10),  // 100.64/10 carrier-grade NAT
            (0x7F00_0000, 8),  // loopback
            (0xA9FE_0000, 16),  // link-local (cloud metadata lives here)
            (0xAC10_0000, 12),  // 172.16/12 private
            (0xC000_0000, 24),  // 192.0.0/24 protocol assignments
            (0xC000_0200, 24),  // TEST-NET-1
            (0xC0A8_0000, 16),  // 192.168/16 private
            (0xC612_0000, 15),  // 198.18/15 benchmarking
            (0xC633_6400, 24),  // TEST-NET-2
            (0xCB00_7100, 24),  // TEST-NET-3
            (0xE000_0000, 4),  // multicast
            (0xF000_0000, 4),  // reserved, broadcast
        ]
        return !special.contains { within($0.0, $0.1) }
    }

    static func isPublicIPv6(_ text: String) -> Bool {
        var addr = in6_addr()
        guard inet_pton(AF_INET6, text, &addr) == 1 else { return false }
        let b = withUnsafeBytes(of: addr) { Array($0) }
        // Only global unicast (2000::/3) is public; within it, skip documentation 2001:db8::/32.
        // IPv4-mapped, NAT64 and 6to4 forms embed an IPv4 address: judged by that address.
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF {
            return isPublicIPv4(UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]))
        }
        if b[0] == 0x00, b[1] == 0x64, b[2] == 0xFF, b[3] == 0x9B {  // 64:ff9b::/96
            return isPublicIPv4(UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]))
        }
        if b[0] == 0x20, b[1] == 0x02 {  // 2002::/16, 6to4
            return isPublicIPv4(UInt32(b[2]) << 24 | UInt32(b[3]) << 16 | UInt32(b[4]) << 8 | UInt32(b[5]))
        }
        guard b[0] & 0xE0 == 0x20 else { return false }
        if b[0] == 0x20, b[1] == 0x01, b[2] == 0x0D, b[3] == 0xB8 { return false }
        return true
    }
}
