import AnchorageNode
import Cluster
import Foundation
import LocalNATS
import Logging
import NATS
import NATSBus
import Seams
import ServiceLifecycle

/// Connects to NATS as configured: `nats.url` (an external cluster) or the local embedded
/// server; ensures the `PIN_JOBS` work queue and the `ANCHORAGE_CLUSTER` bucket exist.
enum BusConnection {
    static func connect(_ settings: Settings, logger: Logger) async throws -> any ClusterBus {
        let n = settings.nats
        let auth: NATSAuth
        if let token = n.token {
            auth = .token(token)
        } else if let user = n.user {
            auth = .userPassword(user: user, password: n.password ?? "")
        } else {
            auth = .none
        }
        return try await NATSBus.connect(
            urls: n.clientURLs,
            auth: auth,
            bucket: ClusterKeys.bucket,
            duplicateWindow: .seconds(n.duplicateWindowSeconds),
            ackWait: .seconds(n.ackWaitSeconds),
            maxDeliver: n.maxDeliver > 0 ? n.maxDeliver : -1,
            replicas: n.replicas,
            logger: logger
        )
    }
}

extension NATSBus: ClosableBus {}

extension NATSBus: BusHealth {
    public var isConnected: Bool { client.isConnected }
    public var reconnects: Int { client.reconnects }
}

/// Runs nats-server as a supervised child when no `nats.url` is configured: JetStream store
/// under `nats.storeDir` (default `<node.dataDir>/nats`), client port `nats.host:nats.port`,
/// optional routes to other servers (`nats.clusterPort`, `nats.routes`); restarted if it dies,
/// stopped on shutdown.
struct EmbeddedNATSService: Service {
    let embedded: EmbeddedNATS

    /// `nodeID` is the resolved one (config or `<dataDir>/node-id`): a JetStream cluster needs
    /// a server name, and `node.id` is usually unset.
    init(settings: Settings, nodeID: TypeID, logger: Logger) throws {
        let n = settings.nats
        let binary: NATSServerBinary
        if let path = n.binary {
            binary = try NATSServerBinary.at(path)
            guard NATSServerBinary.isAtLeast(binary.version, NATSServerBinary.minimumVersion) else {
                throw LocalNATSError.tooOld(path: binary.path, version: binary.version, minimum: NATSServerBinary.minimumVersion)
            }
        } else {
            binary = try NATSServerBinary.locate()
        }
        let store = n.storeDir ?? URL(fileURLWithPath: settings.dataDir).appendingPathComponent("nats").path
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        let cluster = n.clusterPort.map { NATSClusterOptions(name: n.clusterName, host: n.host, port: $0, routes: n.routes) }
        var configuration = EmbeddedNATS.Configuration(
            binary: binary,
            host: n.host,
            port: n.port,
            storeDir: store,
            serverName: nodeID.description,
            cluster: cluster
        )
        // The credential the node's own client presents is the one its server demands.
        if let token = n.token {
            configuration.auth = .token(token)
        } else if let user = n.user {
            configuration.auth = .userPassword(user: user, password: n.password ?? "")
        }
        if configuration.auth == nil, n.host != "127.0.0.1", n.host != "localhost", n.host != "::1" {
            logger.warning(
                "the embedded nats-server listens beyond loopback without authentication: set nats.token (docs/security.md)",
                metadata: ["host": "\(n.host)"]
            )
        }
        embedded = EmbeddedNATS(configuration, logger: logger)
    }

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await embedded.run()
        }
    }
}
