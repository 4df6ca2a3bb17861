/// The Kubo seam: what anchorage needs from the IPFS node it is paired with, shaped by our
/// needs rather than by Kubo's RPC surface. Production talks to Kubo's RPC API (`KuboRPC`);
/// tests and dev mode use `FakeKubo` (in-process or over HTTP), the simulator its deterministic
/// mode. All of them pass the same contract tests (`Tests/KuboContract`). CIDs name pins by their
/// binary form, as in Kubo: any multibase spelling of a CIDv1 is the same pin.
public protocol KuboAPI: Sendable {
    /// The node's identity; its addresses (each ending in `/p2p/<peerID>`) become `delegates`.
    func identity() async throws -> KuboIdentity
    /// Kubo's version string, e.g. `0.44.0`.
    func version() async throws -> String
    /// Pins `cid` recursively, reporting the number of blocks fetched so far as progress
    /// arrives. Throws `KuboError.stalled` when no progress arrives for `stallTimeout`,
    /// `KuboError.timeout` past `deadline` overall, and `KuboError.command` when Kubo refuses.
    /// Cancelling the task aborts the call (the connection is closed, which cancels it in Kubo).
    func pin(
        cid: String,
        name: String?,
        stallTimeout: Duration,
        deadline: Duration,
        progress: @Sendable (Int) async -> Void
    ) async throws
    /// Removes the recursive pin of `cid`. "Not pinned" counts as success.
    func unpin(cid: String) async throws
    /// Every recursive pin on the node, with its name when it has one.
    func recursivePins() async throws -> [KuboPin]
    /// The recursive pins named exactly `name` (the reconciler's listing of anchorage's own
    /// pins). Kubo (0.29+) filters by substring on its side, so a node holding millions of
    /// other pins sends only these; the exact match is the caller's side.
    func recursivePins(named name: String) async throws -> [KuboPin]
    /// The recursive pin of `cid`, or nil when it is not pinned (recursively) on the node.
    func recursivePin(cid: String) async throws -> KuboPin?
    /// Best-effort dials (`swarm/connect`) to at most `limit` of `addresses`; failures are
    /// reported, never thrown. Returns how many connected.
    func connect(to addresses: [String], limit: Int, timeout: Duration) async -> Int
    /// Repository size and capacity.
    func repoStat() async throws -> KuboRepoStat
}

extension KuboAPI {
    public func recursivePins(named name: String) async throws -> [KuboPin] {
        try await recursivePins().filter { $0.name == name }
    }
}

public struct KuboIdentity: Sendable, Equatable {
    public var peerID: String
    public var addresses: [String]
    public var agentVersion: String

    public init(peerID: String, addresses: [String], agentVersion: String) {
        self.peerID = peerID
        self.addresses = addresses
        self.agentVersion = agentVersion
    }
}

public struct KuboPin: Sendable, Equatable, Hashable {
    public var cid: String
    public var name: String?

    public init(cid: String, name: String? = nil) {
        self.cid = cid
        self.name = name
    }
}

public struct KuboRepoStat: Sendable, Equatable {
    public var repoSize: UInt64
    public var storageMax: UInt64
    public var numObjects: UInt64

    public init(repoSize: UInt64, storageMax: UInt64, numObjects: UInt64) {
        self.repoSize = repoSize
        self.storageMax = storageMax
        self.numObjects = numObjects
    }
}

public enum KuboError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Kubo did not answer (connection refused, reset, DNS...).
    case unreachable(String)
    /// The whole call took longer than its deadline.
    case timeout(String)
    /// `pin` saw no progress for its stall timeout.
    case stalled(String)
    /// Kubo answered with an error (`{"Message","Code","Type"}` or an `X-Stream-Error` trailer).
    case command(message: String, code: Int)
    /// Kubo answered something we cannot read.
    case protocolError(String)

    public var description: String {
        switch self {
        case .unreachable(let s): "kubo unreachable: \(s)"
        case .timeout(let s): "kubo timed out: \(s)"
        case .stalled(let s): "kubo pin stalled: \(s)"
        case .command(let m, let c): "kubo error \(c): \(m)"
        case .protocolError(let s): "kubo protocol error: \(s)"
        }
    }
}
