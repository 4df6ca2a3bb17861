import Foundation

/// The server's `INFO` (the fields this client uses).
public struct ServerInfo: Sendable, Decodable, Equatable {
    public var serverID: String
    public var serverName: String?
    public var version: String
    public var proto: Int?
    public var maxPayload: Int
    public var headers: Bool
    public var jetStream: Bool
    public var authRequired: Bool
    public var connectURLs: [String]
    public var lameDuckMode: Bool

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id"
        case serverName = "server_name"
        case version, proto
        case maxPayload = "max_payload"
        case headers
        case jetStream = "jetstream"
        case authRequired = "auth_required"
        case connectURLs = "connect_urls"
        case lameDuckMode = "ldm"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverID = try c.decodeIfPresent(String.self, forKey: .serverID) ?? ""
        serverName = try c.decodeIfPresent(String.self, forKey: .serverName)
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? "0.0.0"
        proto = try c.decodeIfPresent(Int.self, forKey: .proto)
        maxPayload = try c.decodeIfPresent(Int.self, forKey: .maxPayload) ?? 1_048_576
        headers = try c.decodeIfPresent(Bool.self, forKey: .headers) ?? false
        jetStream = try c.decodeIfPresent(Bool.self, forKey: .jetStream) ?? false
        authRequired = try c.decodeIfPresent(Bool.self, forKey: .authRequired) ?? false
        connectURLs = try c.decodeIfPresent([String].self, forKey: .connectURLs) ?? []
        lameDuckMode = try c.decodeIfPresent(Bool.self, forKey: .lameDuckMode) ?? false
    }

    static func parse(_ json: [UInt8]) throws -> ServerInfo {
        try JSONDecoder().decode(ServerInfo.self, from: Data(json))
    }

    public var serverVersion: ServerVersion? { ServerVersion(version) }
}

/// A semantic version as nats-server reports it ("2.15.1", "v2.11.0-beta.2").
public struct ServerVersion: Sendable, Comparable, Hashable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int

    public init(_ major: Int, _ minor: Int, _ patch: Int) {
        (self.major, self.minor, self.patch) = (major, minor, patch)
    }

    /// Parses the leading `[v]MAJOR.MINOR[.PATCH]`; anything after (pre-release, build) is ignored.
    public init?(_ text: String) {
        var s = Substring(text.trimmingCharacters(in: .whitespaces))
        if s.hasPrefix("v") { s = s.dropFirst() }
        let core = s.prefix { $0.isNumber || $0 == "." }
        let parts = core.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count >= 2, let major = parts[0], let minor = parts[1] else { return nil }
        let patch = parts.count > 2 ? (parts[2] ?? 0) : 0
        self.init(major, minor, patch)
    }

    public static func < (a: ServerVersion, b: ServerVersion) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }

    public var description: String { "\(major).\(minor).\(patch)" }
}
