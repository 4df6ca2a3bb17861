import AnchorageNode
import ArgumentParser
import Cluster
import Configuration
import Crypto
import Foundation
import Hummingbird
import KuboRPC
import Live
import Logging
import PostgresNIO
import PostgresStore
import Seams
import ServiceLifecycle
import Tokens
import UnixSignals
import Worker

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run an anchorage node: the Pinning Services API on http.host:http.port.")

    @OptionGroup var common: CommonOptions

    @Option(help: "Address to listen on (http.host).") var host: String?
    @Option(help: "Port to listen on (http.port).") var port: Int?

    func run() async throws {
        var extra: [AbsoluteConfigKey: ConfigValue] = [:]
        if let host { extra[["http", "host"]] = ConfigValue(.string(host), isSecret: false) }
        if let port { extra[["http", "port"]] = ConfigValue(.int(port), isSecret: false) }
        let settings = try Settings(try await common.reader(extraFlags: extra))
        // Fault tests step one node's wall clock through a file (docs/reliability.md, case g).
        let steppedClock = ProcessInfo.processInfo.environment["ANCHORAGE_FAULT_CLOCK_OFFSET_FILE"].map { SteppedWallClock(offsetFile: $0) }
        let clock: any WallClock = steppedClock ?? SystemWallClock()
        let logger = LogSetup.bootstrap(level: settings.logLevel, format: settings.logFormat, clock: clock)
        if let steppedClock {
            logger.warning(
                "the wall clock reads the system clock plus the offset in a file (fault testing only)",
                metadata: ["file": "\(steppedClock.offsetFile)"]
            )
        }
        let entropy = SystemEntropy()
        let sealer = try settings.secretSealer()
        let nodeID = try NodeIdentity.resolve(settings, clock: clock, entropy: entropy)
        let opsPoolSize = 4
        let postgres = PostgresClient(
            configuration: try settings.apiURL().clientConfiguration(
                maxConnections: settings.dbMaxConnections,
                statementTimeoutSeconds: settings.dbStatementTimeoutSeconds,
                applicationName: DatabasePool.api.applicationName(node: nodeID)
            ),
            backgroundLogger: Logger(label: "anchorage.postgres")
        )
        // The worker runs with the ops role (it serves every org); without db.opsUrl the node
        // only stores pins.
        let ops =
            settings.workerEnabled
            ? settings.opsDatabaseURL.flatMap { try? DatabaseURL($0) }.map {
                PostgresClient(
                    configuration: $0.clientConfiguration(
                        maxConnections: opsPoolSize,
                        statementTimeoutSeconds: settings.dbOpsStatementTimeoutSeconds,
                        applicationName: DatabasePool.ops.applicationName(node: nodeID)
                    ),
                    backgroundLogger: Logger(label: "anchorage.postgres")
                )
            } : nil
        let delegates = await Self.delegates(settings, logger: logger)
        let embeddedNATS =
            settings.clusterEnabled && ops != nil && settings.nats.url == nil
            ? try EmbeddedNATSService(settings: settings, nodeID: nodeID, logger: Logger(label: "anchorage.nats")) : nil
        // Made last: an AsyncHTTPClient must be shut down before it is released, so nothing
        // may throw between here and the group's run.
        let kubo: KuboRPCClient? =
            ops == nil
            ? nil
            : KuboRPCClient(baseURL: settings.kuboURL, maxConcurrentPins: settings.worker.maxConcurrentPins, logger: Logger(label: "anchorage.kubo"))
        var connectBus: (@Sendable () async throws -> any ClusterBus)?
        if settings.clusterEnabled {
            connectBus = { @Sendable in try await BusConnection.connect(settings, logger: Logger(label: "anchorage.cluster")) }
        }
        var environment = NodeEnvironment(
            nodeID: nodeID,
            nodeName: settings.nodeName ?? "\(ProcessInfo.processInfo.hostName):\(settings.httpPort)",
            version: AnchorageVersion.current,
            clock: clock,
            entropy: entropy,
            api: postgres,
            ops: ops,
            kubo: kubo,
            connectBus: connectBus,
            delegates: delegates,
            sealer: sealer
        )
        environment.nodeAddress = Self.address(host: settings.httpHost, port: settings.httpPort)
        environment.poolSizes = [.api: settings.dbMaxConnections]
        if ops != nil { environment.poolSizes[.ops] = opsPoolSize }
        if !sealer.isSealing {
            logger.warning("signing secrets are stored in the clear: set auth.secretsKeyFile (docs/security.md)")
        }
        let node = buildNode(settings, environment)
        if node.worker == nil {
            logger.warning("pin worker disabled (worker.enabled=false or no db.opsUrl): pins are stored but never pinned")
        }
        let app = node.httpServer(
            onServerRunning: { channel in
                logger.info("serving the Pinning Services API", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
            },
            logger: Logger(label: "anchorage.http")
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: postgres)]
        if let ops { services.append(.init(service: ops)) }
        if node.isClustered {
            if let embeddedNATS { services.append(.init(service: embeddedNATS)) }
            logger.info(
                "cluster mode",
                metadata: [
                    "node": "\(node.id)", "nats": "\(settings.nats.url ?? "embedded \(settings.nats.host):\(settings.nats.port)")",
                    "replicationFactor": "\(settings.cluster.replicationFactor)",
                ]
            )
        }
        services += node.services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        if node.worker != nil {
            logger.info(
                "pin worker on",
                metadata: ["node": "\(node.id)", "kubo": "\(settings.kuboURL)", "maxConcurrentPins": "\(settings.worker.maxConcurrentPins)"]
            )
        }
        if let metricsServer = node.metricsServer(logger: logger) { services.append(.init(service: metricsServer)) }
        services.append(.init(service: app, successTerminationBehavior: .gracefullyShutdownGroup))
        // Last, so that a graceful shutdown reaches it first: the leader steps down, then stops.
        if let handover = node.leaseHandover { services.append(.init(service: handover, successTerminationBehavior: .ignore)) }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [],
                logger: logger
            )
        )
        // AsyncHTTPClient must be shut down explicitly (it traps in debug builds otherwise),
        // also when the group fails.
        do {
            try await group.run()
        } catch {
            try? await kubo?.shutdown()
            throw error
        }
        try? await kubo?.shutdown()
        logger.info("stopped")
    }
}

extension Serve {
    /// `api.delegates` if configured; otherwise the paired Kubo's own addresses (`id`), each
    /// ending in `/p2p/<peerID>`; otherwise a logged placeholder so that clients still parse.
    /// The URL operators reach this node's API at: the listen address, or the host name when the
    /// node listens on every interface.
    static func address(host: String, port: Int) -> String {
        let shown = ["0.0.0.0", "::", "[::]", ""].contains(host) ? ProcessInfo.processInfo.hostName : host
        return "http://\(shown.contains(":") && !shown.hasPrefix("[") ? "[\(shown)]" : shown):\(port)"
    }

    static func delegates(_ settings: Settings, logger: Logger) async -> [String] {
        if !settings.delegates.isEmpty { return settings.delegates }
        let kubo = KuboRPCClient(
            baseURL: settings.kuboURL,
            requestTimeout: .seconds(settings.kuboTimeoutSeconds),
            logger: Logger(label: "anchorage.kubo")
        )
        let result: Result<KuboIdentity, any Error>
        do { result = .success(try await kubo.identity()) } catch { result = .failure(error) }
        try? await kubo.shutdown()
        do {
            let identity = try result.get()
            let chosen = DelegateAddresses.choose(identity.addresses)
            if !chosen.isEmpty {
                logger.info(
                    "delegates from Kubo",
                    metadata: ["kubo": "\(settings.kuboURL)", "peer": "\(identity.peerID)", "count": "\(chosen.count)"]
                )
                return chosen
            }
        } catch {
            logger.warning("Kubo did not answer `id`", metadata: ["kubo": "\(settings.kuboURL)", "error": "\(error)"])
        }
        logger.warning(
            "no api.delegates configured and no Kubo identity: answering with a placeholder delegate; set api.delegates or run Kubo at kubo.url",
            metadata: ["delegate": "\(DevDelegate.address)"]
        )
        return [DevDelegate.address]
    }
}

/// A syntactically valid delegate for a node with no configured or discovered IPFS addresses:
/// a CIDv0-style peer ID derived from a fixed string. Kubo can parse it, so clients do not fail;
/// it only ever appears when no real delegate is known, and a warning is logged.
enum DevDelegate {
    static let address: String = {
        let digest = Array(SHA256.hash(data: Array("anchorage-development-placeholder".utf8)))
        return "/ip4/127.0.0.1/tcp/4001/p2p/" + Base58.encode([0x12, 0x20] + digest)
    }()
}
