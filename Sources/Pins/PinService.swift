import Logging
import Seams

/// The Pinning Services API's rules, independent of HTTP and of the database: ID and time
/// assignment, validation, replace and delete semantics. Adapters call this; it calls the store.
public struct PinService<Store: PinStore>: Sendable {
    public let store: Store
    public let clock: any WallClock
    public let entropy: any Entropy
    public let limits: Limits
    public let options: APIOptions
    /// Which nodes hold a new pin (the placement policy). Empty: stored, never pinned.
    public let placement: @Sendable (PinRequest) -> [TypeID]
    /// Called once a new pin and its placements are stored, to hand the work to the nodes (the
    /// cluster publishes one job per placement). It must not throw: the pin is already stored,
    /// and the cluster's sweeper re-dispatches what this could not.
    public let placed: @Sendable (_ org: TypeID, _ pin: NewPin) async -> Void

    public init(
        store: Store,
        clock: any WallClock,
        entropy: any Entropy,
        limits: Limits,
        options: APIOptions,
        placement: @escaping @Sendable (PinRequest) -> [TypeID] = { _ in [] },
        placed: @escaping @Sendable (_ org: TypeID, _ pin: NewPin) async -> Void = { _, _ in }
    ) {
        self.store = store
        self.clock = clock
        self.entropy = entropy
        self.limits = limits
        self.options = options
        self.placement = placement
        self.placed = placed
    }

    /// `POST /pins`: a new pin object with a new requestid, even when the CID is already pinned.
    public func add(org: TypeID, request: PinRequest) async throws -> PinRecord {
        let pin = makeNewPin(request)
        let record = try await store.create(org: org, pin: pin)
        await placed(org, pin)
        return record
    }

    /// `GET /pins/{requestid}`.
    public func get(org: TypeID, requestID: String) async throws -> PinRecord {
        guard let id = TypeID(parsing: requestID, prefix: IDPrefix.pin),
            let record = try await store.get(org: org, id: id)
        else { throw PinsError.notFound }
        return record
    }

    /// `POST /pins/{requestid}`: the old object is removed and a new one (new requestid, new
    /// `created`) stored in one transaction. Replacing with the same CID is allowed, so that a
    /// client can change `name` or `meta` (there is no update operation in the spec).
    public func replace(org: TypeID, requestID: String, with request: PinRequest) async throws -> PinRecord {
        let pin = makeNewPin(request)
        guard let id = TypeID(parsing: requestID, prefix: IDPrefix.pin),
            let record = try await store.replace(org: org, id: id, with: pin)
        else { throw PinsError.notFound }
        await placed(org, pin)
        return record
    }

    /// `DELETE /pins/{requestid}`.
    public func delete(org: TypeID, requestID: String) async throws {
        guard let id = TypeID(parsing: requestID, prefix: IDPrefix.pin),
            try await store.delete(org: org, id: id, at: clock.now())
        else { throw PinsError.notFound }
    }

    /// `GET /pins`.
    public func list(org: TypeID, query: PinQuery) async throws -> PinPage {
        try await store.list(org: org, query: query)
    }

    /// Parses a raw query string with this service's limits and options.
    public func parseQuery(_ raw: Substring?) throws(PinsError) -> PinQuery {
        try PinQuery(rawQuery: raw, limits: limits, options: options)
    }

    private func makeNewPin(_ request: PinRequest) -> NewPin {
        NewPin(
            id: TypeID.make(IDPrefix.pin, clock: clock, entropy: entropy),
            request: request,
            created: clock.now(),
            nodes: placement(request)
        )
    }
}
