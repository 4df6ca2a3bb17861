import ArgumentParser
import Cluster
import Configuration
import Crypto
import Foundation
import Hummingbird
import KuboRPC
import Live
import Logging
import Pins
import PinsHTTP
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
        let clock = SystemWallClock()
        let logger = LogSetup.bootstrap(level: settings.logLevel, format: settings.logFormat, clock: clock)
        let apiURL = try settings.apiURL()

        let postgres = PostgresClient(
            configuration: apiURL.clientConfiguration(maxConnections: settings.dbMaxConnections),
            backgroundLogger: Logger(label: "anchorage.postgres"))
        let dbLogger = Logger(label: "anchorage.db")
        let store = PostgresPinStore(client: postgres, logger: dbLogger)
        let lookup = PostgresTokenLookup(client: postgres, logger: dbLogger)
        let verifier = TokenVerifier(
            keys: CachedKeySource(source: lookup, clock: clock, ttlSeconds: settings.keyCacheSeconds),
            denylist: lookup, clock: clock, leewaySeconds: settings.leewaySeconds)
        let delegates = await Self.delegates(settings, logger: logger)
        let entropy = SystemEntropy()
        let nodeID = try NodeIdentity.resolve(settings, clock: clock, entropy: entropy)
        // The worker runs with the ops role (it serves every org); without db.opsUrl the node
        // only stores pins.
        var workerParts: (PostgresClient, PinWorker)?
        var kuboClient: KuboRPCClient?
        if settings.workerEnabled, let opsURL = settings.opsDatabaseURL.flatMap({ try? DatabaseURL($0) }) {
            let ops = PostgresClient(configuration: opsURL.clientConfiguration(maxConnections: 4), backgroundLogger: Logger(label: "anchorage.postgres"))
            let kubo = KuboRPCClient(baseURL: settings.kuboURL, logger: Logger(label: "anchorage.kubo"))
            kuboClient = kubo
            var workerSettings = settings.worker
            // In a cluster the leader's sweeper requeues abandoned claims of every node.
            workerSettings.requeueOwnExpired = !settings.clusterEnabled
            let worker = PinWorker(
                node: nodeID, store: PostgresPlacementStore(client: ops, minReplicas: settings.cluster.minReplicas, logger: dbLogger),
                kubo: kubo, clock: clock, entropy: entropy, settings: workerSettings, logger: Logger(label: "anchorage.worker"))
            workerParts = (ops, worker)
        } else {
            logger.warning("pin worker disabled (worker.enabled=false or no db.opsUrl): pins are stored but never pinned")
        }
        // Clustered: placement by rendezvous over the live set, one job per placement on NATS.
        // Standalone (cluster.enabled=false): every pin is placed on this node.
        let runtime = LockedBox<ClusterRuntime?>(nil)
        let policy = PlacementPolicy(replicationFactor: settings.cluster.replicationFactor)
        let clustered = settings.clusterEnabled && workerParts != nil
        let placed = workerParts != nil
        let clusterLogger = Logger(label: "anchorage.cluster")
        let service = PinService(
            store: store, clock: clock, entropy: entropy, limits: settings.limits, options: settings.api,
            placement: { request in
                guard placed else { return [] }
                guard clustered else { return [nodeID] }
                return policy.nodes(for: request.cid)
            },
            placed: { org, pin in
                guard clustered, let rt = runtime.value else { return }
                let dispatches = Dispatch.forNewPin(org: org, pin: pin.id, cid: pin.request.cid, nodes: pin.nodes, created: pin.created)
                await ClusterAgent.publish(dispatches, bus: rt.bus, logger: clusterLogger)
            })
        let router = makeRouter(
            HTTPDependencies(
                service: service, verifier: verifier, delegates: StaticDelegates(delegates),
                readiness: ReadinessProbe {
                    if let reason = await lookup.notReadyReason() { return reason }
                    guard clustered else { return nil }
                    guard let rt = runtime.value else { return "joining the cluster (NATS not reachable yet)" }
                    return await rt.agent.notReadyReason()
                }, logRequests: settings.logRequests))
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(settings.httpHost, port: settings.httpPort), serverName: "anchorage"),
            onServerRunning: { channel in
                logger.info("serving the Pinning Services API", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
            },
            logger: Logger(label: "anchorage.http"))
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: postgres)]
        if let (ops, worker) = workerParts {
            services.append(.init(service: ops))
            if clustered, let kubo = kuboClient {
                if settings.nats.url == nil {
                    services.append(.init(service: try EmbeddedNATSService(settings: settings, logger: Logger(label: "anchorage.nats"))))
                }
                let clusterStore = PostgresClusterStore(client: ops, entropy: entropy, minReplicas: settings.cluster.minReplicas, logger: dbLogger)
                let name = ProcessInfo.processInfo.hostName
                services.append(.init(service: ClusterService(
                    connect: { try await BusConnection.connect(settings, logger: clusterLogger) },
                    makeAgent: { bus in
                        ClusterAgent(
                            node: nodeID, name: name, version: AnchorageVersion.current, bus: bus, store: clusterStore, kubo: kubo,
                            clock: clock, settings: settings.cluster, policy: policy, logger: clusterLogger)
                    },
                    runtime: runtime, tick: .milliseconds(settings.clusterTickMilliseconds), logger: clusterLogger)))
                logger.info("cluster mode", metadata: [
                    "node": "\(nodeID)", "nats": "\(settings.nats.url ?? "embedded \(settings.nats.host):\(settings.nats.port)")",
                    "replicationFactor": "\(settings.cluster.replicationFactor)",
                ])
            } else {
                services.append(.init(service: RegisterNode(id: nodeID, client: ops, clock: clock, logger: logger)))
            }
            services.append(.init(service: WorkerService(
                worker: worker, pollInterval: .milliseconds(settings.workerPollMilliseconds), cluster: clustered ? runtime : nil,
                logger: Logger(label: "anchorage.worker"))))
            logger.info("pin worker on", metadata: ["node": "\(nodeID)", "kubo": "\(settings.kuboURL)", "maxConcurrentPins": "\(settings.worker.maxConcurrentPins)"])
        }
        services.append(.init(service: app, successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [],
                logger: logger))
        // AsyncHTTPClient must be shut down explicitly (it traps in debug builds otherwise),
        // also when the group fails.
        do {
            try await group.run()
        } catch {
            try? await kuboClient?.shutdown()
            throw error
        }
        try? await kuboClient?.shutdown()
        logger.info("stopped")
    }
}

extension Serve {
    /// `api.delegates` if configured; otherwise the paired Kubo's own addresses (`id`), each
    /// ending in `/p2p/<peerID>`; otherwise a logged placeholder so that clients still parse.
    static func delegates(_ settings: Settings, logger: Logger) async -> [String] {
        if !settings.delegates.isEmpty { return settings.delegates }
        let kubo = KuboRPCClient(
            baseURL: settings.kuboURL, requestTimeout: .seconds(settings.kuboTimeoutSeconds),
            logger: Logger(label: "anchorage.kubo"))
        let result: Result<KuboIdentity, any Error>
        do { result = .success(try await kubo.identity()) } catch { result = .failure(error) }
        try? await kubo.shutdown()
        do {
            let identity = try result.get()
            let addresses = identity.addresses.filter { $0.contains("/p2p/") }
            // Prefer addresses other nodes can dial; keep loopback only when nothing else exists.
            let routable = addresses.filter { !$0.hasPrefix("/ip4/127.") && !$0.hasPrefix("/ip6/::1/") }
            let chosen = Array((routable.isEmpty ? addresses : routable).prefix(20))
            if !chosen.isEmpty {
                logger.info("delegates from Kubo", metadata: ["kubo": "\(settings.kuboURL)", "peer": "\(identity.peerID)", "count": "\(chosen.count)"])
                return chosen
            }
        } catch {
            logger.warning("Kubo did not answer `id`", metadata: ["kubo": "\(settings.kuboURL)", "error": "\(error)"])
        }
        logger.warning(
            "no api.delegates configured and no Kubo identity: answering with a placeholder delegate; set api.delegates or run Kubo at kubo.url",
            metadata: ["delegate": "\(DevDelegate.address)"])
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

/// Registers the node once the database client runs, then idles until shutdown.
struct RegisterNode: Service {
    let id: TypeID
    let client: PostgresClient
    let clock: any WallClock
    let logger: Logger

    func run() async throws {
        do {
            try await NodeIdentity.register(id, name: ProcessInfo.processInfo.hostName, client: client, clock: clock, logger: logger)
        } catch {
            logger.error("could not register the node", metadata: ["error": "\(error)"])
        }
        try? await gracefulShutdown()
    }
}
