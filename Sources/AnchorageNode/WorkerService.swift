import Cluster
import Logging
import Observability
import PostgresNIO
import Seams
import ServiceLifecycle
import Worker

/// The production shell of ``WorkerDriver``: a task group on the clock. One child wakes the
/// driver every `worker.pollMilliseconds`, or at once when jobs arrive on `pin.jobs.<nodeID>`
/// (the fetch waits up to the poll interval); each attempt runs as its own child and its
/// outcome is recorded the moment it ends, so a freed slot is refilled at once. PostgreSQL
/// decides what to claim (round robin between orgs); jobs are only wake-ups and are acked once
/// the claim they prompted is recorded. On shutdown the attempts in flight are cancelled; their
/// leases expire and the sweeper (or the node's next start) requeues them.
struct WorkerService: Service {
    let node: Node
    let logger: Logger

    enum ShellEvent: Sendable {
        case driver(WorkerDriver.Event)
        case startAttempt(Claim)
        /// Ack these jobs off the loop: an ack NATS does not answer (the job was acked or
        /// redelivered meanwhile) costs a request timeout, which must not stall claims.
        case ack([BusJob])
    }

    func run() async throws {
        guard let worker = node.worker else { return }
        let poll = Duration.milliseconds(node.configuration.workerPollMilliseconds)
        let (events, input) = AsyncStream.makeStream(of: ShellEvent.self)
        let held = LockedBox<[BusJob]>([])
        let runtime = node.runtime
        let clustered = node.isClustered
        let metrics = node.metrics
        let countsEvery = Duration.seconds(node.configuration.cluster.countsSeconds)
        let loop = WorkerLoop(
            worker: worker,
            hooks: .init(
                startAttempt: { input.yield(.startAttempt($0)) },
                ackJobs: {
                    let jobs = held.mutate { jobs in
                        defer { jobs = [] }
                        return jobs
                    }
                    if !jobs.isEmpty { input.yield(.ack(jobs)) }
                },
                inflight: { n in
                    metrics.claims(inFlight: n)
                    await runtime.value?.agent.setInflight(n)
                }
            )
        )
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        let wake = await Self.waitForWork(
                            clustered: clustered,
                            runtime: runtime,
                            worker: worker,
                            poll: poll,
                            held: held,
                            logger: logger
                        )
                        if let wake { input.yield(.driver(wake)) }
                    }
                    input.finish()
                }
                // The queue-depth gauge: one index-only count every metrics.countsInterval.
                group.addTask {
                    while !Task.isCancelled {
                        if let depth = try? await worker.store.queueDepth(node: worker.node) { metrics.queue(depth: depth) }
                        try? await Task.sleep(for: countsEvery)
                    }
                }
                for await event in events {
                    if Task.isCancelled { break }
                    switch event {
                    case .driver(let event):
                        await loop.send(event)
                    case .startAttempt(let claim):
                        group.addTask {
                            let started = ContinuousClock.now
                            let outcome = await worker.attempt(claim)
                            // A shutdown-cancelled attempt is not an outcome (it is not recorded).
                            if !Task.isCancelled { metrics.attemptEnded(outcome, duration: ContinuousClock.now - started) }
                            input.yield(.driver(.attemptEnded(claim, outcome)))
                        }
                    case .ack(let jobs):
                        guard let bus = runtime.value?.bus else { break }
                        group.addTask {
                            for job in jobs { try? await bus.ack(job) }
                        }
                    }
                }
                group.cancelAll()
            }
        }
        await loop.send(.shutdown)
    }

    /// Waits for the next wake: jobs on the bus (clustered, while the agent accepts them) or the
    /// poll interval. Nil while a clustered node has not joined yet.
    static func waitForWork(
        clustered: Bool,
        runtime: LockedBox<ClusterRuntime?>,
        worker: PinWorker,
        poll: Duration,
        held: LockedBox<[BusJob]>,
        logger: Logger
    ) async -> WorkerDriver.Event? {
        guard clustered else {
            try? await Task.sleep(for: poll)
            return .wake(acceptsJobs: true, jobs: 0)
        }
        guard let joined = runtime.value else {
            try? await Task.sleep(for: poll)
            return nil
        }
        let accepts = await joined.agent.acceptsJobs
        guard accepts else {
            try? await Task.sleep(for: poll)
            return .wake(acceptsJobs: false, jobs: 0)
        }
        do {
            let jobs = try await joined.bus.fetch(Subjects.jobs(worker.node), max: 256, wait: poll)
            held.mutate { $0 += jobs }
            return .wake(acceptsJobs: true, jobs: jobs.count)
        } catch {
            // The consumer may not exist yet (joining, or just uncordoned): poll instead.
            logger.debug("job fetch failed", metadata: ["error": "\(error)"])
            try? await Task.sleep(for: poll)
            return .wake(acceptsJobs: true, jobs: 0)
        }
    }
}

/// Registers a standalone node once the database client runs, then idles until shutdown.
struct RegisterNode: Service {
    let id: TypeID
    let name: String
    let client: PostgresClient
    let clock: any WallClock
    let logger: Logger

    func run() async throws {
        do {
            try await NodeIdentity.register(id, name: name, client: client, clock: clock, logger: logger)
        } catch {
            logger.error("could not register the node", metadata: ["error": "\(error)"])
        }
        try? await gracefulShutdown()
    }
}
