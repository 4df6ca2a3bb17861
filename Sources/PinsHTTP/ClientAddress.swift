import HTTPTypes
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `::1/128`); a bare address is a single host.
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    public let bytes: [UInt8]
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress.parse(String(parts[0])) else { return nil }
        let bits = address.count * 8
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...bits).contains(p) else { return nil }
            prefix = p
        } else {
            prefix = bits
        }
        bytes = address
    }

    public func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        var remaining = prefix
        for i in 0..<bytes.count where remaining > 0 {
            let take = min(remaining, 8)
            let mask: UInt8 = take == 8 ? 0xFF : ~(0xFF >> UInt8(take))
            if address[i] & mask != bytes[i] & mask { return false }
            remaining -= take
        }
        return true
    }

    public var description: String { "\(IPAddress.format(bytes))/\(prefix)" }
}

/// IP addresses as bytes: 4 for IPv4, 16 for IPv6; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) reads
/// as IPv4, so an IPv4 rule matches a client reaching a dual-stack listener.
public enum IPAddress {
    public static func parse(_ text: String) -> [UInt8]? {
        var s = text
        if s.hasPrefix("["), s.hasSuffix("]") { s = String(s.dropFirst().dropLast()) }
        guard s.utf8.count <= 64 else { return nil }
        var v4 = [UInt8](repeating: 0, count: 4)
        if inet_pton(AF_INET, s, &v4) == 1 { return v4 }
        var v6 = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, s, &v6) == 1 else { return nil }
        if v6[0..<10].allSatisfy({ $0 == 0 }), v6[10] == 0xFF, v6[11] == 0xFF { return Array(v6[12..<16]) }
        return v6
    }

    public static func bytes(of address: SocketAddress) -> [UInt8]? {
        address.ipAddress.flatMap(parse)
    }

    public static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: bytes.count, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}

/// Who may read an operator-only endpoint (`/metrics`): the client's address must fall in one
/// of `allow`. The client is the connection's peer, unless the peer is a trusted proxy: then
/// `X-Forwarded-For` is read from the right, skipping trusted proxies, and the first address
/// that is not one is the client (addresses further left are the client's own claims and
/// prove nothing).
public struct ClientAddressPolicy: Sendable {
    public var allow: [CIDR]
    public var trustedProxies: [CIDR]

    public init(allow: [CIDR], trustedProxies: [CIDR] = []) {
        self.allow = allow
        self.trustedProxies = trustedProxies
    }

    /// The client's address for a request from `peer` with these headers (nil: unknown).
    public func client(peer: SocketAddress?, headers: HTTPFields) -> [UInt8]? {
        guard let peer, let peerBytes = IPAddress.bytes(of: peer) else { return nil }
        guard isProxy(peerBytes) else { return peerBytes }
        let hops = headers[values: .xForwardedFor].flatMap { $0.split(separator: ",") }
            .map { String($0.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()) }
        var client = peerBytes
        for hop in hops.reversed() {
            guard let bytes = IPAddress.parse(hop) else { return nil }  // a malformed chain proves nothing
            client = bytes
            if !isProxy(bytes) { break }
        }
        return client
    }

    public func allows(peer: SocketAddress?, headers: HTTPFields) -> Bool {
        guard let address = client(peer: peer, headers: headers) else { return false }
        return allow.contains { $0.contains(address) }
    }

    func isProxy(_ address: [UInt8]) -> Bool { trustedProxies.contains { $0.contains(address) } }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
}
