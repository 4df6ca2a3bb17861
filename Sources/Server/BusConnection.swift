import Cluster
import Logging
import Seams
import ServiceLifecycle

/// Connects to NATS as configured (placeholder until the NATS adapter lands).
enum BusConnection {
    static func connect(_ settings: Settings, logger: Logger) async throws -> any ClusterBus {
        throw BusError.unavailable("NATS adapter not built yet")
    }
}

/// Runs nats-server as a supervised child when no `nats.url` is configured (placeholder).
struct EmbeddedNATSService: Service {
    init(settings: Settings, logger: Logger) throws {}
    func run() async throws { try? await gracefulShutdown() }
}
