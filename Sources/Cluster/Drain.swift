import Logging
import Seams

extension ClusterAgent {
    /// The drained node's side of the operator doc: `/v1/ready` is 503 from the moment the
    /// state says `draining`; after `cluster.drainGracePeriod` the node stops claiming, and
    /// once the worker is idle it cancels its `pin.jobs.<nodeID>` consumer and records
    /// `drained`. It keeps heartbeating throughout. `uncordon` (state back to `active`)
    /// reopens the consumer.
    func drainStep() async {
        let now = clock.now()
        switch state {
        case .active:
            if !queueOpen {
                do {
                    try await bus.openQueue(Subjects.jobs(node))
                    queueOpen = true
                    logger.notice("job queue open", metadata: ["subject": "\(Subjects.jobs(node))"])
                } catch {
                    logger.warning("could not open the job queue", metadata: ["error": "\(error)"])
                }
            }
        case .draining:
            let since = drainRequestedAt ?? now
            if !stoppingJobs, now.microseconds - since.microseconds >= settings.drainGraceSeconds * 1_000_000 {
                stoppingJobs = true
                logger.notice("drain grace period over: no new pins are claimed")
            }
            if stoppingJobs, inflight == 0 {
                await closeQueue()
                do {
                    try await store.setState(node: node, to: .drained, now: now)
                    // Re-read: an operator may have uncordoned meanwhile (then the queue reopens).
                    if let record = try await store.node(node) { adopt(record, now: now) }
                    if state == .drained {
                        logger.notice(
                            "drain finished: job consumer cancelled; heartbeats continue",
                            metadata: ["node": "\(node)", "drainedAfter": "\(max(now.microseconds - since.microseconds, 0) / 1_000_000)s"]
                        )
                    }
                } catch {
                    logger.warning("could not record the drained state", metadata: ["error": "\(error)"])
                }
            }
        case .drained:
            if queueOpen { await closeQueue() }
        }
        status.queueOpen = queueOpen
    }

    func closeQueue() async {
        guard queueOpen else { return }
        do {
            try await bus.closeQueue(Subjects.jobs(node))
            queueOpen = false
        } catch {
            logger.warning("could not cancel the job consumer", metadata: ["error": "\(error)"])
        }
    }
}
