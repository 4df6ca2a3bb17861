import Cluster
import Logging
import Seams
import ServiceLifecycle
import Worker

/// Drives the pin worker. In a cluster, jobs on `pin.jobs.<nodeID>` wake it: it fetches them
/// (waiting up to the poll interval), ticks, and acks them once the tick's claims are recorded.
/// PostgreSQL decides which placements to claim (round robin between orgs), so a burst of one
/// org's jobs cannot starve another org, and a lost job only delays a pin until the next poll
/// or the sweeper. Standalone, it ticks and sleeps when idle. On shutdown the current attempts
/// are cancelled; their leases expire and the sweeper (or the node's next start) requeues them.
struct WorkerService: Service {
    let worker: PinWorker
    let pollInterval: Duration
    let cluster: LockedBox<ClusterRuntime?>?
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    if let runtime = cluster?.value {
                        try await clusteredRound(runtime)
                    } else {
                        let report = try await worker.tick()
                        log(report)
                        if report.claimed == 0 { try await Task.sleep(for: pollInterval) }
                    }
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("worker tick failed", metadata: ["error": "\(error)"])
                    try await Task.sleep(for: pollInterval * 4)
                }
            }
        }
    }

    func clusteredRound(_ runtime: ClusterRuntime) async throws {
        let agent = runtime.agent
        let accepts = await agent.acceptsJobs
        var jobs: [BusJob] = []
        if accepts {
            do {
                jobs = try await runtime.bus.fetch(Subjects.jobs(worker.node), max: 256, wait: pollInterval)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // The consumer may not exist yet (joining, or just uncordoned): poll instead.
                logger.debug("job fetch failed", metadata: ["error": "\(error)"])
                try await Task.sleep(for: pollInterval)
            }
        } else {
            try await Task.sleep(for: pollInterval)
        }
        let report = try await worker.tick(claimNew: accepts, onClaimed: { n in await agent.setInflight(n) })
        log(report)
        for job in jobs { try? await runtime.bus.ack(job) }
    }

    func log(_ report: PinWorker.TickReport) {
        if report.claimed > 0 || report.unpinned > 0 || report.requeued > 0 {
            logger.debug("worker tick", metadata: [
                "claimed": "\(report.claimed)", "pinned": "\(report.pinned)", "retried": "\(report.retried)",
                "failed": "\(report.failed)", "unpinned": "\(report.unpinned)", "requeued": "\(report.requeued)",
            ])
        }
    }
}
