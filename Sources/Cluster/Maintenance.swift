import Seams

/// The cluster-wide maintenance flag, stored under `maintenance` in `ANCHORAGE_CLUSTER` with a
/// per-key TTL (`--ttl`), so a flag nobody turns off still ends.
public struct MaintenanceFlag: Sendable, Equatable, Codable {
    public var reason: String
    public var by: String
    /// µs since the epoch.
    public var since: Int64
    public var expiresAt: Int64

    public init(reason: String, by: String, since: Timestamp, ttlSeconds: Int64) {
        self.reason = reason
        self.by = by
        self.since = since.microseconds
        self.expiresAt = since.microseconds + ttlSeconds * 1_000_000
    }

    /// The flag is honoured until its expiry even if the bus has not dropped the key yet.
    public func isOn(at now: Timestamp) -> Bool { now.microseconds < expiresAt }

    /// On longer than `maxSeconds`: the watchdog's "forgotten flag".
    public func isOverdue(at now: Timestamp, maxSeconds: Int64) -> Bool { now.microseconds - since > maxSeconds * 1_000_000 }

    public static let maxReasonBytes = 512
    /// Longest TTL an operator may set (a day): maintenance is a window, not a mode.
    public static let maxTTLSeconds: Int64 = 24 * 3600
}

/// Reads, sets and clears the flag through the bus (used by the agent and the admin CLI).
public struct Maintenance: Sendable {
    public let bus: any ClusterBus

    public init(bus: any ClusterBus) { self.bus = bus }

    public func status(now: Timestamp) async throws -> MaintenanceFlag? {
        guard let entry = try await bus.kvGet(ClusterKeys.maintenance),
            let flag = ClusterJSON.decode(MaintenanceFlag.self, entry.value), flag.isOn(at: now)
        else { return nil }
        return flag
    }

    public func turnOn(reason: String, by: String, ttlSeconds: Int64, now: Timestamp) async throws -> MaintenanceFlag {
        let flag = MaintenanceFlag(reason: reason, by: by, since: now, ttlSeconds: ttlSeconds)
        try await bus.kvPut(ClusterKeys.maintenance, ClusterJSON.encode(flag), ttl: .seconds(ttlSeconds))
        return flag
    }

    public func turnOff() async throws { try await bus.kvDelete(ClusterKeys.maintenance, revision: nil) }
}
