import Seams

/// The spec's `Status` enum. Raw values are the wire strings; no other values exist.
public enum PinStatus: String, Sendable, CaseIterable, Hashable, Comparable {
    case queued, pinning, pinned, failed

    public static func < (a: PinStatus, b: PinStatus) -> Bool { a.rawValue < b.rawValue }
}

/// The spec's `TextMatchingStrategy` for the `name` filter.
public enum TextMatch: String, Sendable, CaseIterable {
    case exact, iexact, partial, ipartial
}

/// A validated `Pin` request body. `cid` and `name` are kept byte-for-byte as submitted.
public struct PinRequest: Sendable, Equatable {
    public var cid: String
    public var name: String?
    /// Origins the client offered, de-duplicated, in order, capped at `Limits.maxStoredOrigins`.
    public var origins: [String]
    public var meta: [String: String]

    public init(cid: String, name: String? = nil, origins: [String] = [], meta: [String: String] = [:]) {
        self.cid = cid
        self.name = name
        self.origins = origins
        self.meta = meta
    }

    /// The CID as Kubo identifies it (`CIDKey.canonical`), whatever spelling the client sent:
    /// what placements, unpins, the reconciler and the `cid` filter compare.
    public var cidKey: String { CIDKey.canonical(cid) ?? cid }
}

/// A stored pin object: one pin request of one org.
public struct PinRecord: Sendable, Equatable {
    public var id: TypeID
    public var org: TypeID
    public var request: PinRequest
    public var status: PinStatus
    /// `PinStatus.info` (e.g. `status_details`), string to string.
    public var info: [String: String]
    /// Immutable; unique and strictly increasing per org, in whole milliseconds (stored and
    /// emitted with microsecond precision, so it round-trips through any client's `before`).
    public var created: Timestamp

    public init(
        id: TypeID,
        org: TypeID,
        request: PinRequest,
        status: PinStatus,
        info: [String: String] = [:],
        created: Timestamp
    ) {
        self.id = id
        self.org = org
        self.request = request
        self.status = status
        self.info = info
        self.created = created
    }
}

/// A pin about to be stored. `created` is a lower bound: the store rounds it to a millisecond and
/// moves it past the org's newest pin.
public struct NewPin: Sendable, Equatable {
    public var id: TypeID
    public var request: PinRequest
    public var created: Timestamp
    /// The nodes that must hold the pin (one placement each, created with the pin).
    public var nodes: [TypeID]

    public init(id: TypeID, request: PinRequest, created: Timestamp, nodes: [TypeID] = []) {
        self.id = id
        self.request = request
        self.created = created
        self.nodes = nodes
    }
}

/// A page of `GET /pins`: `count` is the total after every filter (not the page length).
public struct PinPage: Sendable, Equatable {
    public var count: Int
    public var results: [PinRecord]

    public init(count: Int, results: [PinRecord]) {
        self.count = count
        self.results = results
    }
}
