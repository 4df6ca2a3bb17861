import Cluster
import Foundation
import Logging
import Seams
import ServiceLifecycle

/// What the HTTP layer and the worker need from the cluster once it is joined.
struct ClusterRuntime: Sendable {
    let agent: ClusterAgent
    let bus: any ClusterBus
}

/// Joins the cluster (waits for the bus, registers, subscribes, opens the job queue) and then
/// steps the cluster agent every `cluster.tickMilliseconds` until shutdown, when it gives up the
/// leader lease so that another node takes over at once.
struct ClusterService: Service {
    let connect: @Sendable () async throws -> any ClusterBus
    let makeAgent: @Sendable (any ClusterBus) -> ClusterAgent
    let runtime: LockedBox<ClusterRuntime?>
    let tick: Duration
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            var delay = Duration.milliseconds(200)
            var joined: ClusterRuntime?
            while joined == nil {
                do {
                    let bus = try await connect()
                    let agent = makeAgent(bus)
                    try await agent.start()
                    joined = ClusterRuntime(agent: agent, bus: bus)
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("could not join the cluster yet; retrying", metadata: ["error": "\(error)", "retryIn": "\(delay)"])
                    try await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(10))
                }
            }
            guard let joined else { return }
            runtime.value = joined
            logger.info("joined the cluster", metadata: ["node": "\(joined.agent.node)"])
            defer { runtime.value = nil }
            do {
                while !Task.isCancelled {
                    await joined.agent.step()
                    try await Task.sleep(for: tick)
                }
            } catch {}
            await joined.agent.stop()
            await (joined.bus as? any ClosableBus)?.close()
        }
    }
}

/// A bus with a connection to close at shutdown.
protocol ClosableBus: Sendable {
    func close() async
}
