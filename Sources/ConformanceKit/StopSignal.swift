import Synchronization

/// Asks a run to stop (set from a SIGINT/SIGTERM handler): no new request is sent, the current
/// case cleans up what it created, and the run ends with `interrupted`.
public final class StopSignal: Sendable {
    private let requested = Atomic<Bool>(false)

    public init() {}

    public func request() { requested.store(true, ordering: .sequentiallyConsistent) }

    public var isRequested: Bool { requested.load(ordering: .sequentiallyConsistent) }
}
