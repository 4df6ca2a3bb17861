import Foundation

/// Route settings for a clustered nats-server (JetStream replicas need at least 3 nodes).
public struct NATSClusterOptions: Sendable, Equatable {
    public var name: String
    public var host: String
    /// Port other servers route to.
    public var port: Int
    /// `nats://host:port` of the other servers' cluster ports.
    public var routes: [String]

    public init(name: String, host: String = "127.0.0.1", port: Int, routes: [String]) {
        (self.name, self.host, self.port, self.routes) = (name, host, port, routes)
    }
}

/// The credential an embedded nats-server demands on its client port, and (as the password of
/// the `anchorage-route` user) on its cluster port: every anchorage node of one cluster is
/// configured with the same one.
public enum NATSServerAuth: Sendable, Equatable {
    case token(String)
    case userPassword(user: String, password: String)

    var routeSecret: String {
        switch self {
        case .token(let t): return t
        case .userPassword(_, let p): return p
        }
    }
}

enum ServerArguments {
    static let routeUser = "anchorage-route"

    /// The command line. With `configFile` (auth configured), the routes are in that file, not
    /// here: their URLs carry the route password, and a command line is visible in `ps`.
    static func make(
        host: String,
        port: Int,
        storeDir: String,
        serverName: String?,
        cluster: NATSClusterOptions?,
        configFile: String? = nil,
        extra: [String] = []
    ) -> [String] {
        var args = configFile.map { ["-c", $0] } ?? []
        args += ["-a", host, "-p", String(port), "-js", "-sd", storeDir]
        if let serverName { args += ["-n", serverName] }
        if let c = cluster {
            args += ["--cluster", "nats://\(c.host):\(c.port)", "--cluster_name", c.name]
            if configFile == nil, !c.routes.isEmpty { args += ["--routes", c.routes.joined(separator: ",")] }
        }
        return args + extra
    }

    /// nats-server configuration demanding `auth` from clients and routes, with the routes'
    /// URLs (credentials included). Written to a 0600 file the server reads with `-c`.
    static func authConfig(_ auth: NATSServerAuth, cluster: NATSClusterOptions?) -> String {
        var lines: [String] = []
        switch auth {
        case .token(let token):
            lines.append("authorization { token: \(quoted(token)) }")
        case .userPassword(let user, let password):
            lines.append("authorization { user: \(quoted(user)), password: \(quoted(password)) }")
        }
        if let c = cluster {
            let secret = auth.routeSecret
            let routes = c.routes.map { route -> String in
                // nats-route://host:port → nats-route://anchorage-route:<secret>@host:port
                let parts = route.components(separatedBy: "://")
                let (scheme, rest) = parts.count == 2 ? (parts[0], parts[1]) : ("nats", route)
                return quoted("\(scheme)://\(routeUser):\(percentEncoded(secret))@\(rest)")
            }
            lines.append("cluster {")
            lines.append("  authorization { user: \(quoted(routeUser)), password: \(quoted(secret)) }")
            if !routes.isEmpty { lines.append("  routes: [\(routes.joined(separator: ", "))]") }
            lines.append("}")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    /// RFC 3986 userinfo: everything but unreserved characters percent-encoded.
    static func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
