import Logging
import ServiceLifecycle
import Worker

/// Drives the pin worker: tick, and sleep only when there was nothing to claim. On shutdown the
/// current attempts are cancelled; their leases expire and the placements are requeued.
struct WorkerService: Service {
    let worker: PinWorker
    let pollInterval: Duration
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let report = try await worker.tick()
                    if report.claimed > 0 || report.unpinned > 0 || report.requeued > 0 {
                        logger.debug("worker tick", metadata: [
                            "claimed": "\(report.claimed)", "pinned": "\(report.pinned)", "retried": "\(report.retried)",
                            "failed": "\(report.failed)", "unpinned": "\(report.unpinned)", "requeued": "\(report.requeued)",
                        ])
                    }
                    if report.claimed == 0 { try await Task.sleep(for: pollInterval) }
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("worker tick failed", metadata: ["error": "\(error)"])
                    try await Task.sleep(for: pollInterval * 4)
                }
            }
        }
    }
}
