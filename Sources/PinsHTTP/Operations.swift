import HTTPTypes
import Hummingbird
import NIOCore
import Seams

/// Answers whether this node can serve requests, and if not, why.
public protocol ReadinessCheck: Sendable {
    /// nil when ready; otherwise a short reason.
    func notReadyReason() async -> String?
    /// Pins this node accepted while no node could take them, in the current episode (nil:
    /// none). Shown in `/v1/ready`'s body; it does not change the status.
    func unplacedPins() async -> UnplacedPins?
}

extension ReadinessCheck {
    public func unplacedPins() async -> UnplacedPins? { nil }
}

/// `"unplaced": {"count": N, "since": "<RFC 3339>"}` in `/v1/ready`'s body.
public struct UnplacedPins: Sendable, Equatable {
    public var count: Int
    public var since: Timestamp

    public init(count: Int, since: Timestamp) {
        self.count = count
        self.since = since
    }
}

/// A readiness check given as a closure (the store decides; HTTP only reports).
public struct ReadinessProbe: ReadinessCheck {
    let check: @Sendable () async -> String?
    let unplaced: @Sendable () async -> UnplacedPins?

    public init(
        _ check: @escaping @Sendable () async -> String?,
        unplaced: @escaping @Sendable () async -> UnplacedPins? = { nil }
    ) {
        self.check = check
        self.unplaced = unplaced
    }

    public func notReadyReason() async -> String? { await check() }
    public func unplacedPins() async -> UnplacedPins? { await unplaced() }
}

/// A readiness answer reused for `maxAge` (by the injected clock), so probes cost the database
/// at most one check per interval. Concurrent probes of a stale answer may each check once.
public final class CachedReadiness: ReadinessCheck, @unchecked Sendable {
    // @unchecked: `last` is only touched under `lock`.
    private let check: @Sendable () async -> String?
    private let clock: any WallClock
    private let maxAge: Int64
    private let lock = Lock()
    private var last: (at: Int64, reason: String?)?

    public init(clock: any WallClock, maxAgeMicroseconds: Int64, _ check: @escaping @Sendable () async -> String?) {
        self.clock = clock
        self.maxAge = maxAgeMicroseconds
        self.check = check
    }

    public func notReadyReason() async -> String? {
        let now = clock.now().microseconds
        if let last = lock.withLock({ last }), now - last.at < maxAge, now >= last.at { return last.reason }
        let reason = await check()
        lock.withLock { last = (now, reason) }
        return reason
    }
}

/// `/v1/health` (the process is alive) and `/v1/ready` (it can serve: 200, or 503 with a reason).
public struct OperationsController: Sendable {
    let readiness: any ReadinessCheck

    public init(readiness: any ReadinessCheck) { self.readiness = readiness }

    public func register(on router: Router<AppRequestContext>) {
        router.get("v1/health") { _, _ in
            Self.json(.ok, #"{"status":"ok"}"#)
        }
        router.get("v1/ready") { _, _ in
            let reason = await readiness.notReadyReason()
            let unplaced = await readiness.unplacedPins()
            if reason == nil, unplaced == nil { return Self.json(.ok, #"{"status":"ready"}"#) }
            var w = JSONWriter(capacity: 128)
            if let reason {
                w.raw("{\"status\":\"not_ready\",\"reason\":")
                w.string(reason)
            } else {
                w.raw("{\"status\":\"ready\"")
            }
            if let unplaced {
                w.raw(",\"unplaced\":{\"count\":")
                w.int(unplaced.count)
                w.raw(",\"since\":")
                w.string(unplaced.since.rfc3339)
                w.raw("}")
            }
            w.raw("}")
            return Response(
                status: reason == nil ? .ok : .serviceUnavailable,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: w.buffer)
            )
        }
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
