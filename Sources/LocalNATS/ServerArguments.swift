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

enum ServerArguments {
    static func make(
        host: String,
        port: Int,
        storeDir: String,
        serverName: String?,
        cluster: NATSClusterOptions?,
        extra: [String] = []
    ) -> [String] {
        var args = ["-a", host, "-p", String(port), "-js", "-sd", storeDir]
        if let serverName { args += ["-n", serverName] }
        if let c = cluster {
            args += ["--cluster", "nats://\(c.host):\(c.port)", "--cluster_name", c.name]
            if !c.routes.isEmpty { args += ["--routes", c.routes.joined(separator: ",")] }
        }
        return args + extra
    }
}
