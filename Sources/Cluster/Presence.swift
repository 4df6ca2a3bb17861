import Foundation
import Seams

/// What a node says about itself every heartbeat on `node.heartbeat.<nodeID>`.
public struct Heartbeat: Sendable, Equatable, Codable {
    public var node: String
    public var name: String
    /// The node's HTTP API, e.g. `http://10.0.0.11:8080` (nil from nodes that do not say).
    public var address: String?
    public var state: NodeState
    public var version: String
    /// Pins being worked on right now.
    public var inflight: Int
    /// The fence token of this node's term when it leads, else nil.
    public var leaderFence: Int64?
    /// The sender's clock, µs since the epoch (for display; liveness uses the receiver's clock).
    public var sentAt: Int64

    public init(
        node: String,
        name: String,
        address: String? = nil,
        state: NodeState,
        version: String,
        inflight: Int,
        leaderFence: Int64?,
        sentAt: Int64
    ) {
        self.node = node
        self.name = name
        self.address = address
        self.state = state
        self.version = version
        self.inflight = inflight
        self.leaderFence = leaderFence
        self.sentAt = sentAt
    }

    public func encoded() -> [UInt8] { Array((try? ClusterJSON.encoder.encode(self)) ?? Data()) }

    public static func decode(_ bytes: [UInt8]) -> Heartbeat? { try? ClusterJSON.decoder.decode(Heartbeat.self, from: Data(bytes)) }
}

/// Who was heard when, by this node's clock. Live: heard within `liveAfter`; lost: silent for
/// `nodeLostAfter` (or never heard since this node started watching, once that long has passed).
public struct PresenceTable: Sendable {
    public struct Entry: Sendable, Equatable {
        public var heartbeat: Heartbeat
        public var heardAt: Timestamp
    }

    public private(set) var entries: [TypeID: Entry] = [:]
    /// When this node started listening: nodes never heard are "lost" only after
    /// `nodeLostAfter` from here, so a restart does not declare the whole cluster lost.
    public let watchingSince: Timestamp

    public init(watchingSince: Timestamp) { self.watchingSince = watchingSince }

    /// States announced by an operator's command, ahead of the node's own heartbeats: until
    /// the node's heartbeat says the same (or `until`), the announced state decides eligibility.
    public private(set) var announced: [TypeID: (state: NodeState, until: Timestamp)] = [:]

    public mutating func heard(_ heartbeat: Heartbeat, at now: Timestamp) {
        guard let id = TypeID(parsing: heartbeat.node, prefix: IDPrefix.node) else { return }
        entries[id] = Entry(heartbeat: heartbeat, heardAt: now)
        if let a = announced[id], a.state == heartbeat.state || now >= a.until { announced[id] = nil }
    }

    public mutating func announced(_ node: TypeID, state: NodeState, until: Timestamp) {
        announced[node] = (state, until)
    }

    /// Nodes heard within `liveAfter`.
    public func liveCount(now: Timestamp, settings: ClusterSettings) -> Int {
        entries.keys.filter { isLive($0, now: now, settings: settings) }.count
    }

    func state(of node: TypeID, now: Timestamp) -> NodeState? {
        if let a = announced[node], now < a.until { return a.state }
        return entries[node]?.heartbeat.state
    }

    public func isLive(_ node: TypeID, now: Timestamp, settings: ClusterSettings) -> Bool {
        guard let e = entries[node] else { return false }
        return now.microseconds - e.heardAt.microseconds <= settings.liveAfterSeconds * 1_000_000
    }

    public func isLost(_ node: TypeID, now: Timestamp, settings: ClusterSettings) -> Bool {
        let since = entries[node]?.heardAt ?? watchingSince
        return now.microseconds - since.microseconds > settings.nodeLostAfterSeconds * 1_000_000
    }

    /// Live nodes that may take new pins (their heartbeat says `active`), sorted.
    public func eligible(now: Timestamp, settings: ClusterSettings) -> [TypeID] {
        entries.filter { state(of: $0.key, now: now) == .active && isLive($0.key, now: now, settings: settings) }
            .keys.sorted { ($0.high, $0.low) < ($1.high, $1.low) }
    }

    // MARK: liveness transitions (the operator-facing log lines)

    /// A peer's liveness as this node sees it: heard within `liveAfter`; silent past it; lost
    /// past `nodeLostAfter` (its placements are re-made elsewhere unless maintenance is on).
    public enum Liveness: String, Sendable, Equatable {
        case live, silent, lost
    }

    /// A peer whose liveness changed since the last ``transitions(now:settings:except:)``.
    public struct Transition: Sendable, Equatable {
        public var node: TypeID
        public var name: String
        public var state: NodeState
        public var from: Liveness
        public var to: Liveness
        /// Going silent or lost: how long since the peer was last heard. Back: how long it
        /// had been silent (the gap between its last two heartbeats heard).
        public var silentSeconds: Int64
    }

    /// The liveness last reported for each peer, and when the peer was last heard then: each
    /// transition is reported once.
    private var reported: [TypeID: (liveness: Liveness, heardAt: Timestamp)] = [:]

    public func liveness(of node: TypeID, now: Timestamp, settings: ClusterSettings) -> Liveness? {
        guard entries[node] != nil else { return nil }
        if isLive(node, now: now, settings: settings) { return .live }
        return isLost(node, now: now, settings: settings) ? .lost : .silent
    }

    /// The peers (every heard node but `me`) whose liveness changed since the last call, by
    /// node ID. A peer first heard counts as live and is not reported. Pure: time is `now`.
    public mutating func transitions(now: Timestamp, settings: ClusterSettings, except me: TypeID) -> [Transition] {
        var out: [Transition] = []
        for id in entries.keys.sorted(by: { ($0.high, $0.low) < ($1.high, $1.low) }) where id != me {
            guard let entry = entries[id], let current = liveness(of: id, now: now, settings: settings) else { continue }
            let before = reported[id] ?? (.live, entry.heardAt)
            reported[id] = (current, entry.heardAt)
            guard current != before.liveness else { continue }
            let silent =
                current == .live
                ? entry.heardAt.microseconds - before.heardAt.microseconds
                : now.microseconds - entry.heardAt.microseconds
            out.append(
                Transition(
                    node: id,
                    name: entry.heartbeat.name,
                    state: entry.heartbeat.state,
                    from: before.liveness,
                    to: current,
                    silentSeconds: max(silent, 0) / 1_000_000
                )
            )
        }
        return out
    }
}

/// JSON for cluster payloads: sorted keys, so equal values give equal bytes (the simulator's
/// trace and dedup depend on it).
public enum ClusterJSON {
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()
    public static let decoder = JSONDecoder()

    public static func encode<T: Encodable>(_ value: T) -> [UInt8] { Array((try? encoder.encode(value)) ?? Data()) }
    public static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) -> T? { try? decoder.decode(type, from: Data(bytes)) }
}

/// `admin drain` / `uncordon` announce a node's new state on `cache.invalidate.live_nodes`, so
/// every node's live set (where new pins go) changes at once.
public struct NodeStateChange: Sendable, Equatable, Codable {
    public var cache = "live_nodes"
    public var key: String
    public var state: String
    public var from: String

    public init(node: TypeID, state: NodeState, from: String) {
        self.key = node.description
        self.state = state.rawValue
        self.from = from
    }

    public var node: String { key }

    public func encoded() -> [UInt8] { ClusterJSON.encode(self) }

    public static func decode(_ bytes: [UInt8]) -> NodeStateChange? {
        guard bytes.count <= 1024 else { return nil }
        return ClusterJSON.decode(NodeStateChange.self, bytes)
    }
}
