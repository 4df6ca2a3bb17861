import Seams

/// A wall clock that moves only when told to. Tests and the simulator use it to make time a
/// pure input: expiry, `created` ordering and IDs replay exactly for the same script.
public final class VirtualWallClock: WallClock, @unchecked Sendable {
    // @unchecked: `current` is only touched under `lock`.
    private var current: Timestamp
    private let lock = Lock()

    public init(start: Timestamp = Timestamp(secondsSinceEpoch: 1_767_225_600)) {  // 2026-01-01T00:00:00Z
        self.current = start
    }

    public func now() -> Timestamp { lock.withLock { current } }

    public func advance(microseconds: Int64) {
        precondition(microseconds >= 0, "virtual time never runs backwards")
        lock.withLock { current = current.adding(microseconds: microseconds) }
    }

    public func advance(seconds: Int64) { advance(microseconds: seconds * 1_000_000) }
}
