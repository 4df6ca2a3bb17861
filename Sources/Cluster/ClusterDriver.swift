/// The cluster agent's life as a value: join (retrying with a capped, doubling delay while the
/// bus or the database is unreachable), step each lane every tick, leave on shutdown. Production
/// runs it on the clock (`AnchorageNode.ClusterService`), the simulator from its scheduler, with
/// the same delays.
///
/// Two lanes, stepped independently: a slow duty (the reconciler's `pin/ls` of a large Kubo, a
/// rebalance over a slow database) must never hold up the heartbeats that keep the node live
/// (`cluster.liveAfter`) or the renewals that keep its lease (`cluster.leaderLeaseTTL`). A
/// shell must run a lane's step without waiting for the other lane's.
public struct ClusterDriver: Sendable, Equatable {
    public enum Event: Sendable, Equatable {
        case start
        case joinFailed
        case joined
        /// The lane's step ended; or the lane's tick timer fired.
        case stepped(ClusterLane)
        case tick(ClusterLane)
        case shutdown
    }

    public enum Action: Sendable, Equatable {
        /// Connect to the bus, make the agent, `agent.start()`; ends with joined or joinFailed.
        case join
        /// `agent.step(lane)`; ends with stepped(lane).
        case step(ClusterLane)
        /// Feed `event` back after `delay`.
        case after(Duration, Event)
        /// `agent.stop()` (gives up the lease) and close the bus.
        case leave
    }

    enum State: Sendable, Equatable { case idle, joining, joined, stopped }

    public let tick: Duration
    public static let firstRetry = Duration.milliseconds(200)
    public static let maxRetry = Duration.seconds(10)
    var state = State.idle
    public private(set) var retryDelay = ClusterDriver.firstRetry

    public init(tick: Duration) { self.tick = tick }

    public var isJoined: Bool { state == .joined }

    public mutating func handle(_ event: Event) -> [Action] {
        switch (state, event) {
        case (.stopped, _):
            return []
        case (_, .shutdown):
            let wasJoined = state == .joined
            state = .stopped
            return wasJoined ? [.leave] : []
        case (.idle, .start):
            state = .joining
            return [.join]
        case (.joining, .joinFailed):
            let delay = retryDelay
            retryDelay = min(retryDelay * 2, Self.maxRetry)
            state = .idle
            return [.after(delay, .start)]
        case (.joining, .joined):
            state = .joined
            return ClusterLane.allCases.map { .step($0) }
        case (.joined, .stepped(let lane)):
            return [.after(tick, .tick(lane))]
        case (.joined, .tick(let lane)):
            return [.step(lane)]
        default:
            return []
        }
    }
}

/// What a cluster agent step does (``ClusterAgent/step(_:)``).
public enum ClusterLane: String, Sendable, Equatable, CaseIterable {
    /// Heartbeats and presence, the leader lease (campaign, renewal): quick calls only, and
    /// never behind another duty.
    case vital
    /// The node's drain, the leader's duties (sweeper, rebalancer, maintenance watchdog,
    /// counts) and the reconciler: may take as long as Kubo and PostgreSQL take.
    case duties
}
