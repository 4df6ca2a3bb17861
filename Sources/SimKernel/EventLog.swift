import Crypto
import Seams

/// The world's trace: one line per event the scheduler runs (`time seq label`) plus whatever
/// the event's action records. Same seed and script ⇒ same lines ⇒ same ``digest``.
///
/// The digest is a running SHA-256 over every line ever recorded (each followed by `\n`), so it
/// does not depend on how many lines are retained for display. Only deterministic text may be
/// recorded: no wall-clock times, no addresses, no `Dictionary`/`Set` iteration order.
public final class EventLog: @unchecked Sendable {
    // @unchecked: all mutable state is only touched under `lock`.
    private let lock = Lock()
    private var hasher = SHA256()
    private var retained: [String] = []
    private var retainedStart = 0  // index of the first live line in `retained` (ring trim)
    private var total = 0
    private let retention: Int?
    private let sink: (@Sendable (String) -> Void)?

    /// - Parameters:
    ///   - retention: how many recent lines to keep in memory (nil: all of them). The digest
    ///     always covers every line.
    ///   - sink: called with each line as it is recorded (e.g. to stream a trace file); called
    ///     under the log's lock, so it must not call back into the log.
    public init(retention: Int? = nil, sink: (@Sendable (String) -> Void)? = nil) {
        precondition(retention.map { $0 >= 0 } ?? true, "retention must not be negative")
        self.retention = retention
        self.sink = sink
    }

    /// Appends one line to the trace.
    public func record(_ line: String) {
        lock.withLock {
            hasher.update(data: Array(line.utf8))
            hasher.update(data: [0x0A])
            total += 1
            if let retention {
                if retention > 0 {
                    retained.append(line)
                    if retained.count - retainedStart > retention { retainedStart += 1 }
                    // Compact now and then so the array does not grow without bound.
                    if retainedStart >= max(retention, 1024) {
                        retained.removeFirst(retainedStart)
                        retainedStart = 0
                    }
                }
            } else {
                retained.append(line)
            }
            sink?(line)
        }
    }

    /// How many lines have been recorded (retained or not).
    public var count: Int { lock.withLock { total } }

    /// The retained lines, oldest first.
    public var lines: [String] { lock.withLock { Array(retained[retainedStart...]) } }

    /// The last `k` retained lines, oldest first.
    public func last(_ k: Int) -> [String] {
        lock.withLock {
            let live = retained[retainedStart...]
            return Array(live.suffix(max(k, 0)))
        }
    }

    /// SHA-256 of every line recorded so far (each line followed by a newline), lowercase hex.
    public var digest: String {
        let bytes = lock.withLock { Array(hasher.finalize()) }
        let hex: [Character] = Array("0123456789abcdef")
        var out = ""
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0x0F)])
        }
        return out
    }
}
