import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import PinsHTTP
import ServiceLifecycle

extension Node {
    /// The node's HTTP server: its router behind production's connection bounds. A connection
    /// that sends no request part for `http.idleTimeoutSeconds` is closed, which also bounds a
    /// request head that never completes (Hummingbird's idle timer counts only decoded parts,
    /// so a slow-headers client cannot keep its connection alive byte by byte); past
    /// `http.maxConnections` open connections, new ones wait in the listen backlog.
    /// `anchorage serve` and the socket tests run this same server.
    public func httpServer(
        address: BindAddress? = nil,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in },
        logger: Logger
    ) -> some ApplicationProtocol {
        let c = configuration
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(c.httpIdleTimeoutSeconds)))),
            configuration: .init(
                address: address ?? .hostname(c.httpHost, port: c.httpPort),
                serverName: "anchorage",
                availableConnectionsDelegate: MaximumAvailableConnections(c.httpMaxConnections, logger: logger)
            ),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}

extension Node {
    /// The separate `/metrics` listener when `metrics.listen` is set (so the API port can face
    /// the internet while metrics stay on an internal address); nil otherwise.
    public func metricsServer(logger: Logger) -> (any Service)? {
        guard let endpoint = metricsEndpoint, let listen = configuration.metrics.listen,
            let (host, port) = MetricsSettings.split(listen)
        else { return nil }
        return Application(
            router: endpoint.router(),
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(configuration.httpIdleTimeoutSeconds)))),
            configuration: .init(address: .hostname(host, port: port), serverName: "anchorage-metrics"),
            onServerRunning: { channel in
                logger.info("metrics listening", metadata: ["address": "\(channel.localAddress?.description ?? listen)"])
            },
            logger: logger
        )
    }
}
