/// Every bound the API enforces. All are configurable (`limits.*`, see docs/configuration.md);
/// the defaults follow the spec where it gives a number.
public struct Limits: Sendable, Equatable {
    /// Largest accepted request body in bytes (`limits.maxBodyBytes`).
    public var maxBodyBytes: Int = 64 * 1024
    /// `Pin.name` maximum in UTF-8 bytes; the spec's 255 (`limits.maxNameBytes`).
    public var maxNameBytes: Int = 255
    /// `Pin.meta` maximum number of keys; the spec's 1000 (`limits.maxMetaKeys`).
    public var maxMetaKeys: Int = 1000
    /// `Pin.meta` maximum size: the sum of key and value bytes (`limits.maxMetaBytes`).
    public var maxMetaBytes: Int = 16 * 1024
    /// How many of a request's `origins` are kept (Kubo may send dozens); the rest are dropped,
    /// never rejected (`limits.maxStoredOrigins`).
    public var maxStoredOrigins: Int = 32
    /// Longest single origin multiaddr kept, in bytes; longer ones are ignored (`limits.maxOriginBytes`).
    public var maxOriginBytes: Int = 1024
    /// `GET /pins` default page size; the spec's 10 (`limits.defaultListLimit`).
    public var defaultListLimit: Int = 10
    /// `GET /pins` largest `limit`; the spec's 1000 (`limits.maxListLimit`).
    public var maxListLimit: Int = 1000
    /// Largest number of CIDs in one `cid` filter. The spec says 10; Kubo does not enforce it,
    /// so we accept more, up to this bound (`limits.maxCidsPerQuery`).
    public var maxCidsPerQuery: Int = 100
    /// Longest accepted query string in bytes (`limits.maxQueryBytes`).
    public var maxQueryBytes: Int = 16 * 1024

    public init() {}
}

/// API behaviour switches (`api.*`).
public struct APIOptions: Sendable, Equatable {
    /// When true, a missing `status` always means `pinned` (the spec's literal text). When false
    /// (the default), it means `pinned` only when no other filter is given either — the
    /// operation's own description, and what the public compliance suite's name queries need.
    public var strictStatusDefault: Bool = false

    public init(strictStatusDefault: Bool = false) {
        self.strictStatusDefault = strictStatusDefault
    }
}
