import Seams

extension Dispatch {
    /// The jobs for a pin just stored with its placements on `nodes`: one per placement,
    /// generation 0, stamped with the pin's `created` (a retried publish of the same pin is
    /// then deduplicated by the bus). What a clustered node publishes from `PinService.placed`.
    public static func forNewPin(org: TypeID, pin: TypeID, cid: String, nodes: [TypeID], created: Timestamp) -> [Dispatch] {
        nodes.map { Dispatch(org: org, pin: pin, cid: cid, node: $0, generation: 0, dispatchedAt: created) }
    }
}
