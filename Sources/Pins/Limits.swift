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
    /// Largest `GET /pins` page in bytes (`limits.maxResponseBytes`): past it a page holds fewer
    /// results than `limit`, with the true `count`, and clients page on with `before` (Kubo
    /// does). A page always holds at least one result.
    public var maxResponseBytes: Int = 4 * 1024 * 1024
    /// `GET /pins` requests in flight per API token; more are a 429 (`limits.maxConcurrentListsPerToken`, 0: no limit).
    public var maxConcurrentListsPerToken: Int = 4
    /// `/pins` requests in flight on this node, all tokens together; past it a `503` with
    /// `Retry-After`, answered at once before any database work (`limits.maxInFlightRequests`,
    /// 0: no limit). It bounds what waits for a database connection: when PostgreSQL is slow
    /// or the pool is exhausted, the node sheds load instead of queueing without bound.
    public var maxInFlightRequests: Int = 512
    /// Sustained `/pins` requests per second per API token; more are a 429 with `Retry-After`
    /// (`limits.requestsPerSecond`, 0: no limit).
    public var requestsPerSecond: Int = 100
    /// Requests a token may send at once before the rate applies (`limits.requestBurst`).
    public var requestBurst: Int = 200
    /// Pins one org may hold; more are the spec's 409 `INSUFFICIENT_FUNDS`
    /// (`limits.maxPinsPerOrg`, 0: no quota). Costs a count of the org's pins per create.
    public var maxPinsPerOrg: Int = 0

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
