import Seams

/// What the fake "network" does when asked for a CID.
public enum ContentScript: Codable, Sendable, Equatable {
    /// The DAG arrives after `afterMs` of (injected) time, `blocks` blocks in total; progress grows
    /// linearly until then.
    case available(afterMs: Int, blocks: Int)
    /// Nobody has it: pin/add searches (emitting `{}` progress ticks) until cancelled or timed out.
    case never
    /// The fetch fails with this message (500 JSON before the first frame, trailer after).
    case fail(message: String)
}

/// Fault and behaviour knobs of a `FakeKuboNode`, settable at start and at run time
/// (`FakeKuboNode.setKnobs`, or `POST /fake/knobs` on the server). Every key is optional in JSON;
/// missing keys take the defaults below.
public struct FakeKuboKnobs: Codable, Sendable, Equatable {
    /// Extra latency per command (`"pin/add"`, `"pin/rm"`, `"pin/ls"`, `"id"`, `"version"`,
    /// `"swarm/connect"`, `"repo/stat"`), in milliseconds, slept through the injected sleeper.
    public var latencyMs: [String: Int]
    /// Probability (0...1) per command that it fails with `failureMessage` before doing anything.
    /// Drawn from the node's seeded `Entropy`.
    public var failureRate: [String: Double]
    /// Probability (0...1) per command that it finds the daemon unreachable (`.unreachable`;
    /// over HTTP, a dropped connection) before doing anything. Drawn from the node's `Entropy`.
    public var unreachableRate: [String: Double]
    /// The message of injected failures (delivered as Kubo's `{"Message","Code":0,"Type":"error"}`).
    public var failureMessage: String
    /// CIDs that never resolve (any spelling; matched by binary CID): pin/add hangs until
    /// cancelled or timed out (deterministic mode: fails at once, see `FakeKuboNode`).
    public var neverResolve: [String]
    /// When set, every pin/add stops making progress after this many progress frames (it keeps
    /// emitting frames with the same `Progress`, like Kubo does while stuck) until cancelled.
    public var stallAfterFrames: Int?
    /// Interval between pin/add progress frames (Kubo: 500 ms).
    public var progressIntervalMs: Int
    /// Per-CID network scripts (keys in any spelling; matched by binary CID); CIDs not listed use `defaultScript` (or `.never` if in `neverResolve`).
    public var scripts: [String: ContentScript]
    public var defaultScript: ContentScript
    /// Peer IDs whose `swarm/connect` fails.
    public var undialable: [String]
    /// `repo/stat` StorageMax; and the size charged per fetched block.
    public var storageMax: UInt64
    public var blockSize: UInt64
    /// Deterministic mode only: the range `plannedLatency(for:stallTimeout:)` draws a pin's
    /// duration from, in milliseconds (JSON: `[lower, upper]`).
    public var pinLatencyRangeMs: ClosedRange<Int>

    public init(
        latencyMs: [String: Int] = [:],
        failureRate: [String: Double] = [:],
        unreachableRate: [String: Double] = [:],
        failureMessage: String = "fake kubo: injected failure",
        neverResolve: [String] = [],
        stallAfterFrames: Int? = nil,
        progressIntervalMs: Int = 500,
        scripts: [String: ContentScript] = [:],
        defaultScript: ContentScript = .available(afterMs: 0, blocks: 1),
        undialable: [String] = [],
        storageMax: UInt64 = 10_000_000_000,
        blockSize: UInt64 = 262_144,
        pinLatencyRangeMs: ClosedRange<Int> = 1_000...20_000
    ) {
        self.latencyMs = latencyMs
        self.failureRate = failureRate
        self.unreachableRate = unreachableRate
        self.failureMessage = failureMessage
        self.neverResolve = neverResolve
        self.stallAfterFrames = stallAfterFrames
        self.progressIntervalMs = progressIntervalMs
        self.scripts = scripts
        self.defaultScript = defaultScript
        self.undialable = undialable
        self.storageMax = storageMax
        self.blockSize = blockSize
        self.pinLatencyRangeMs = pinLatencyRangeMs
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = FakeKuboKnobs()
        latencyMs = try c.decodeIfPresent([String: Int].self, forKey: .latencyMs) ?? d.latencyMs
        failureRate = try c.decodeIfPresent([String: Double].self, forKey: .failureRate) ?? d.failureRate
        unreachableRate = try c.decodeIfPresent([String: Double].self, forKey: .unreachableRate) ?? d.unreachableRate
        failureMessage = try c.decodeIfPresent(String.self, forKey: .failureMessage) ?? d.failureMessage
        neverResolve = try c.decodeIfPresent([String].self, forKey: .neverResolve) ?? d.neverResolve
        stallAfterFrames = try c.decodeIfPresent(Int.self, forKey: .stallAfterFrames)
        progressIntervalMs = try c.decodeIfPresent(Int.self, forKey: .progressIntervalMs) ?? d.progressIntervalMs
        scripts = try c.decodeIfPresent([String: ContentScript].self, forKey: .scripts) ?? d.scripts
        defaultScript = try c.decodeIfPresent(ContentScript.self, forKey: .defaultScript) ?? d.defaultScript
        undialable = try c.decodeIfPresent([String].self, forKey: .undialable) ?? d.undialable
        storageMax = try c.decodeIfPresent(UInt64.self, forKey: .storageMax) ?? d.storageMax
        blockSize = try c.decodeIfPresent(UInt64.self, forKey: .blockSize) ?? d.blockSize
        pinLatencyRangeMs = try c.decodeIfPresent(ClosedRange<Int>.self, forKey: .pinLatencyRangeMs) ?? d.pinLatencyRangeMs
    }
}

/// A point-in-time view of a fake node, for assertions.
public struct FakeKuboSnapshot: Codable, Sendable, Equatable {
    public struct Pin: Codable, Sendable, Equatable {
        public var cid: String
        public var name: String?
        public var blocks: Int
    }
    public var peerID: String
    public var pins: [Pin]
    /// CIDs of pin/add calls currently running.
    public var inFlight: [String]
    public var pinsStarted: Int
    public var pinsCompleted: Int
    public var pinsFailed: Int
    /// pin/add calls that ended because their caller cancelled (or the HTTP client disconnected).
    public var pinsCancelled: Int
    public var restarts: Int
    public var connectedPeers: [String]
    /// Calls per command name (`"pin/add"`, ...).
    public var commands: [String: Int]
    public var knobs: FakeKuboKnobs
}
