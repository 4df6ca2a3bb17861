import Cluster
import Logging
import Observability
import Seams
import ServiceLifecycle

/// The production shell of ``ClusterDriver``: joins (retrying with the driver's delays), steps
/// the cluster agent every `cluster.tickMilliseconds` on the clock until shutdown, then gives up
/// the leader lease so that another node takes over at once.
struct ClusterService: Service {
    let node: Node
    let logger: Logger

    func run() async throws {
        let node = self.node
        let logger = self.logger
        let joined = await cancelWhenGracefulShutdown { await Self.drive(node: node, logger: logger) }
        // Shutdown: leave outside the cancelled scope, so that giving up the lease completes.
        node.runtime.value = nil
        if let joined {
            await joined.agent.stop()
            await (joined.bus as? any ClosableBus)?.close()
        }
    }

    /// Runs the driver until cancelled; returns the joined cluster, if it joined.
    static func drive(node: Node, logger: Logger) async -> ClusterRuntime? {
        var driver = ClusterDriver(tick: .milliseconds(node.configuration.clusterTickMilliseconds))
        var joined: ClusterRuntime?
        var pending = driver.handle(.start)
        while !pending.isEmpty, !Task.isCancelled {
            switch pending.removeFirst() {
            case .join:
                do {
                    joined = try await node.join()
                    logger.info("joined the cluster", metadata: ["node": "\(node.id)"])
                    pending += driver.handle(.joined)
                } catch {
                    logger.warning("could not join the cluster yet; retrying", metadata: ["error": "\(error)", "retryIn": "\(driver.retryDelay)"])
                    pending += driver.handle(.joinFailed)
                }
            case .step:
                if let agent = joined?.agent { node.metrics.observe(cluster: await agent.step()) }
                pending += driver.handle(.stepped)
            case .after(let delay, let event):
                do { try await Task.sleep(for: delay) } catch { return joined }
                pending += driver.handle(event)
            case .leave:
                break
            }
        }
        return joined
    }
}

/// A bus with a connection to close at shutdown.
public protocol ClosableBus: Sendable {
    func close() async
}
