import Foundation

public enum NATSAuth: Sendable, Equatable {
    case none
    case token(String)
    case userPassword(user: String, password: String)
}

/// Everything tunable about a connection; every buffer and wait is bounded by one of these.
public struct NATSOptions: Sendable {
    /// `nats://host:port` or `host:port`; tried in turn when (re)connecting.
    public var urls: [String]
    public var auth: NATSAuth
    /// Sent in CONNECT, shows in the server's monitoring.
    public var name: String
    public var connectTimeout: Duration = .seconds(5)
    /// Default timeout of `request` (and of JetStream API calls).
    public var requestTimeout: Duration = .seconds(5)
    /// Client PINGs this often; after `maxPingsOut` unanswered the connection is dropped.
    public var pingInterval: Duration = .seconds(10)
    public var maxPingsOut: Int = 2
    /// Reconnect delay doubles from `reconnectBaseDelay` up to `maxReconnectDelay` (with jitter).
    public var reconnectBaseDelay: Duration = .milliseconds(50)
    public var maxReconnectDelay: Duration = .seconds(2)
    /// Bytes of publishes kept while disconnected, sent on reconnect; beyond it publish fails.
    public var reconnectBufferBytes: Int = 8 << 20
    /// Requests awaiting a reply at once.
    public var maxPendingRequests: Int = 4096
    /// Default per-subscription buffer (messages); beyond it the oldest are dropped.
    public var subscriptionCapacity: Int = 8192
    /// `close()` waits this long for pending writes to reach the server.
    public var drainTimeout: Duration = .seconds(2)

    public init(urls: [String], auth: NATSAuth = .none, name: String = "anchorage") {
        self.urls = urls
        self.auth = auth
        self.name = name
    }

    public init(url: String, auth: NATSAuth = .none, name: String = "anchorage") {
        self.init(urls: [url], auth: auth, name: name)
    }
}

/// host and port of `nats://[user:pass@]host:port`, `host:port` or `host` (port 4222).
struct ServerAddress: Sendable, Equatable {
    var host: String
    var port: Int

    init(_ url: String) throws {
        var s = Substring(url)
        if let r = s.range(of: "://") { s = s[r.upperBound...] }
        if let at = s.lastIndex(of: "@") { s = s[s.index(after: at)...] }
        if let slash = s.firstIndex(of: "/") { s = s[..<slash] }
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {  // [::1]:4222
            host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            port = rest.hasPrefix(":") ? Int(rest.dropFirst()) ?? -1 : 4222
        } else if let colon = s.lastIndex(of: ":") {
            host = String(s[..<colon])
            port = Int(s[s.index(after: colon)...]) ?? -1
        } else {
            host = String(s)
            port = 4222
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw NATSError.connectFailed("bad server URL \(url)") }
    }
}

struct ConnectOptions: Encodable {
    var verbose = false
    var pedantic = false
    var headers = true
    var noResponders = true
    var protocolVersion = 1
    var lang = "swift"
    var version = "0.1.0"
    var name: String
    var authToken: String?
    var user: String?
    var pass: String?

    enum CodingKeys: String, CodingKey {
        case verbose, pedantic, headers
        case noResponders = "no_responders"
        case protocolVersion = "protocol"
        case lang, version, name
        case authToken = "auth_token"
        case user, pass
    }

    init(_ options: NATSOptions) {
        name = options.name
        switch options.auth {
        case .none: break
        case .token(let t): authToken = t
        case .userPassword(let u, let p): (user, pass) = (u, p)
        }
    }

    func frame() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return Array("CONNECT ".utf8) + Array(json) + Array("\r\nPING\r\n".utf8)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }

}
