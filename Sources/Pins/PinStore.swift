import Seams

/// Where pin objects live. Every call is scoped to one org: an implementation must make it
/// impossible to read or change another org's rows through it (the Postgres store enforces
/// this with row-level security, not only with `WHERE` clauses).
public protocol PinStore: Sendable {
    /// Stores a new pin with status `queued`. `pin.created` is a lower bound; the stored
    /// `created` is at or after it, in whole milliseconds, and later than every other pin of the org.
    func create(org: TypeID, pin: NewPin) async throws -> PinRecord
    func get(org: TypeID, id: TypeID) async throws -> PinRecord?
    /// Atomically deletes `id` and stores `replacement`; nil (and no change) if `id` is unknown.
    func replace(org: TypeID, id: TypeID, with replacement: NewPin) async throws -> PinRecord?
    /// Deletes `id` (and its placements, leaving their CIDs for the nodes to unpin once no
    /// other placement needs them); false if it is unknown.
    func delete(org: TypeID, id: TypeID, at: Timestamp) async throws -> Bool
    /// Newest first (`created` descending, then id); `count` is the total after all filters.
    func list(org: TypeID, query: PinQuery) async throws -> PinPage
}

/// Where `PinStatus.delegates` come from: the multiaddrs (each ending in `/p2p/<peerID>`) of
/// the IPFS node(s) that will receive the data.
public protocol DelegateSource: Sendable {
    func delegates() async -> [String]
}

/// A fixed list of delegates, from configuration.
public struct StaticDelegates: DelegateSource {
    public let addresses: [String]
    public init(_ addresses: [String]) { self.addresses = addresses }
    public func delegates() async -> [String] { addresses }
}
