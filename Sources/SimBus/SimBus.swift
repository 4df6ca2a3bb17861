import Seams
import SimKernel

/// One node's view of the simulated bus (``SimBusNetwork/endpoint(node:)``): the `ClusterBus`
/// the node's production code is given. Every call completes at once in virtual time; faults
/// and partitions are those of this endpoint's link (see ``SimBusNetwork``).
///
/// `fetch` ignores `wait`: it returns the jobs due now, possibly none, and never suspends (time
/// only moves between scheduler events).
public struct SimBus: ClusterBus {
    public let network: SimBusNetwork
    public let node: String

    init(network: SimBusNetwork, node: String) {
        self.network = network
        self.node = node
    }

    public func publish(_ subject: String, _ payload: [UInt8]) async throws {
        try network.publish(from: node, subject, payload)
    }

    public func subscribe(_ subject: String, capacity: Int) async throws -> any BusInbox {
        try network.subscribe(from: node, subject, capacity: capacity)
    }

    public func enqueue(_ subject: String, msgID: String, _ payload: [UInt8]) async throws -> EnqueueResult {
        try network.enqueue(from: node, subject, msgID: msgID, payload)
    }

    public func openQueue(_ subject: String) async throws { try network.openQueue(from: node, subject) }

    public func closeQueue(_ subject: String) async throws { try network.closeQueue(from: node, subject) }

    public func fetch(_ subject: String, max: Int, wait: Duration) async throws -> [BusJob] {
        try network.fetch(from: node, subject, max: max)
    }

    public func ack(_ job: BusJob) async throws { try network.settle(from: node, job, .ack) }

    public func nak(_ job: BusJob, delay: Duration?) async throws {
        try network.settle(from: node, job, .nak(delay: delay?.simMicroseconds ?? 0))
    }

    public func inProgress(_ job: BusJob) async throws { try network.settle(from: node, job, .inProgress) }

    public func term(_ job: BusJob) async throws { try network.settle(from: node, job, .term) }

    public func kvGet(_ key: String) async throws -> KVEntry? { try network.kvGet(from: node, key) }

    @discardableResult
    public func kvCreate(_ key: String, _ value: [UInt8], ttl: Duration?) async throws -> UInt64 {
        try network.kvWrite(from: node, key, value, .create, ttl: ttl)
    }

    @discardableResult
    public func kvUpdate(_ key: String, _ value: [UInt8], revision: UInt64, ttl: Duration?) async throws -> UInt64 {
        try network.kvWrite(from: node, key, value, .update(revision: revision), ttl: ttl)
    }

    @discardableResult
    public func kvPut(_ key: String, _ value: [UInt8], ttl: Duration?) async throws -> UInt64 {
        try network.kvWrite(from: node, key, value, .put, ttl: ttl)
    }

    public func kvDelete(_ key: String, revision: UInt64?) async throws {
        try network.kvDelete(from: node, key, revision: revision)
    }
}

/// A subscription's inbox on the simulated bus. Messages are put in by the network (at once,
/// or by a scheduler event when the link has latency); a full inbox drops its oldest message.
public struct SimInbox: BusInbox {
    let network: SimBusNetwork
    let id: UInt64

    public func drain() async -> [BusMessage] { network.drain(id) }

    public func dropped() async -> Int { network.dropped(id) }

    public func close() async { network.close(id) }
}
