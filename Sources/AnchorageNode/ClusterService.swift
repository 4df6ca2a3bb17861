import Cluster
import Logging
import Observability
import Seams
import ServiceLifecycle

/// The production shell of ``ClusterDriver``: joins (retrying with the driver's delays), steps
/// each of the cluster agent's lanes every `cluster.tickMilliseconds` on the clock until
/// shutdown, then gives up the leader lease so that another node takes over at once.
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

    /// Runs the driver until cancelled; returns the joined cluster, if it joined. Each action
    /// runs as a child task that ends with the event it feeds back, and only this loop touches
    /// the driver: the two lanes' steps and timers run at the same time, so a duty that takes
    /// minutes never delays a heartbeat or a lease renewal.
    static func drive(node: Node, logger: Logger) async -> ClusterRuntime? {
        var driver = ClusterDriver(tick: .milliseconds(node.configuration.clusterTickMilliseconds))
        var failures = JoinFailures()
        await withTaskGroup(of: ChildEvent?.self) { group in
            func perform(_ actions: [ClusterDriver.Action]) {
                for action in actions {
                    switch action {
                    case .join:
                        group.addTask {
                            do {
                                _ = try await node.join()  // sets node.runtime
                                return .joined
                            } catch {
                                return Task.isCancelled ? nil : .joinFailed(error)
                            }
                        }
                    case .step(let lane):
                        group.addTask {
                            guard let agent = node.runtime.value?.agent else { return .stepped(lane) }
                            node.metrics.observe(cluster: await agent.step(lane))
                            return .stepped(lane)
                        }
                    case .after(let delay, let event):
                        group.addTask {
                            do { try await Task.sleep(for: delay) } catch { return nil }
                            return .driver(event)
                        }
                    case .leave:
                        break  // run(): after the cancelled scope, so that giving up the lease completes
                    }
                }
            }
            perform(driver.handle(.start))
            while let next = await group.next() {
                guard let next, !Task.isCancelled else { continue }
                switch next {
                case .joined:
                    var metadata: Logger.Metadata = ["node": "\(node.id)"]
                    if failures.count > 0 { metadata["attempts"] = "\(failures.count + 1)" }
                    logger.info("joined the cluster", metadata: metadata)
                    perform(driver.handle(.joined))
                case .joinFailed(let error):
                    let now = node.environment.clock.now()
                    let level = failures.failed(at: now)
                    let retry = driver.retryDelay.components
                    logger.log(
                        level: level,
                        "could not join the cluster yet; retrying",
                        metadata: [
                            "error": "\(error)", "retryIn": "\(retry.seconds * 1000 + retry.attoseconds / 1_000_000_000_000_000)ms",
                            "failingFor": "\(failures.seconds(at: now))s",
                        ]
                    )
                    perform(driver.handle(.joinFailed))
                case .stepped(let lane):
                    perform(driver.handle(.stepped(lane)))
                case .driver(let event):
                    perform(driver.handle(event))
                }
            }
        }
        return node.runtime.value
    }
}

/// What a child task of ``ClusterService/drive(node:logger:)`` reports back.
private enum ChildEvent: Sendable {
    case joined
    case joinFailed(any Error)
    case stepped(ClusterLane)
    case driver(ClusterDriver.Event)
}

/// How loudly a failed join is logged. At start the embedded nats-server is still coming up,
/// so the first failures are expected: `info` for the first, `debug` while they go on for less
/// than ``quietSeconds`` (the embedded server's ready timeout), `warning` after that.
struct JoinFailures: Sendable, Equatable {
    /// The embedded nats-server's default ready timeout.
    static let quietSeconds: Int64 = 30
    private(set) var count = 0
    private(set) var since: Timestamp?

    /// Records a failure at `now`; returns the level to log it at.
    mutating func failed(at now: Timestamp) -> Logger.Level {
        count += 1
        let first = since ?? now
        since = first
        if now.microseconds - first.microseconds >= Self.quietSeconds * 1_000_000 { return .warning }
        return count == 1 ? .info : .debug
    }

    /// Seconds since the first failure.
    func seconds(at now: Timestamp) -> Int64 { since.map { max(now.microseconds - $0.microseconds, 0) / 1_000_000 } ?? 0 }
}

/// A bus with a connection to close at shutdown.
public protocol ClosableBus: Sendable {
    func close() async
}
