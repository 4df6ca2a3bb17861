/// The cluster agent's life as a value: join (retrying with a capped, doubling delay while the
/// bus or the database is unreachable), step every tick, leave on shutdown. Production runs it
/// on the clock (`AnchorageNode.ClusterService`), the simulator from its scheduler, with the
/// same delays.
public struct ClusterDriver: Sendable, Equatable {
    public enum Event: Sendable, Equatable {
        case start
        case joinFailed
        case joined
        /// The step ended; or the tick timer fired.
        case stepped
        case tick
        case shutdown
    }

    public enum Action: Sendable, Equatable {
        /// Connect to the bus, make the agent, `agent.start()`; ends with joined or joinFailed.
        case join
        /// `agent.step()`; ends with stepped.
        case step
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
            return [.step]
        case (.joined, .stepped):
            return [.after(tick, .tick)]
        case (.joined, .tick):
            return [.step]
        default:
            return []
        }
    }
}
