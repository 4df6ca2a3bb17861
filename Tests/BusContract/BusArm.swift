import DeterministicSeams
import LocalNATS
import Logging
import NATSBus
import Seams
import SimBus
import SimKernel
import Synchronization
import Testing

/// Broker settings a contract test needs (both arms are configured with them).
struct BusSettings: Sendable {
    var ackWait: Duration = .seconds(30)
    var duplicateWindow: Duration = .seconds(120)
}

/// What the contract suite needs from an implementation of the `ClusterBus` seam: endpoints on
/// one broker, and a way to let time pass (real time for NATS, scheduler time for the sim).
protocol BusArm: Sendable {
    /// A bus endpoint as node `node` sees it (NATS: its own connection).
    func bus(_ node: String) async throws -> any ClusterBus
    /// Lets `duration` pass on the broker's clock.
    func pass(_ duration: Duration) async throws
    /// Time on the broker's clock since the arm started.
    func elapsed() -> Duration
}

extension BusArm {
    /// Checks `condition`, letting time pass in small steps, until it holds or `within` has passed.
    func eventually(within: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
        let end = elapsed() + within
        while elapsed() < end {
            if try await condition() { return true }
            try await pass(.milliseconds(50))
        }
        return try await condition()
    }

    /// Drains `inbox` until it has received `count` messages (or gives up), then returns them.
    func receive(_ inbox: any BusInbox, count: Int) async throws -> [BusMessage] {
        var got: [BusMessage] = []
        _ = try await eventually {
            got += await inbox.drain()
            return got.count >= count
        }
        return got
    }
}

/// The implementations the contract runs against.
enum BusArmKind: String, CaseIterable, Sendable, CustomStringConvertible {
    /// `NATSBus` connections to a throwaway nats-server (JetStream, KV with per-key TTL).
    case nats
    /// `SimBus` endpoints of one `SimBusNetwork` on a virtual-time scheduler, no faults.
    case sim

    var description: String { rawValue }

    func run(_ settings: BusSettings = BusSettings(), _ body: (any BusArm) async throws -> Void) async throws {
        switch self {
        case .sim:
            try await body(SimArm(settings))
        case .nats:
            let server = try await LocalNATSServer.start()
            let arm = NATSArm(server: server, settings: settings)
            do {
                try await body(arm)
            } catch {
                await arm.close()
                await server.stop()
                throw error
            }
            await arm.close()
            await server.stop()
        }
    }
}

struct SimArm: BusArm {
    let scheduler: Scheduler
    let network: SimBusNetwork
    let start: Int64

    init(_ settings: BusSettings) {
        scheduler = Scheduler(clock: VirtualWallClock(), log: EventLog())
        network = SimBusNetwork(
            scheduler: scheduler,
            entropy: SeededEntropy(seed: 1),
            config: SimBusConfig(duplicateWindow: settings.duplicateWindow, ackWait: settings.ackWait)
        )
        start = scheduler.now().microseconds
    }

    func bus(_ node: String) async throws -> any ClusterBus { network.endpoint(node: node) }
    func pass(_ duration: Duration) async throws { try await scheduler.run(for: duration) }
    func elapsed() -> Duration { .microseconds(scheduler.now().microseconds - start) }
}

final class NATSArm: BusArm {
    let server: LocalNATSServer
    let settings: BusSettings
    let start = ContinuousClock.now
    private let buses = Mutex<[String: NATSBus]>([:])

    init(server: LocalNATSServer, settings: BusSettings) {
        self.server = server
        self.settings = settings
    }

    func bus(_ node: String) async throws -> any ClusterBus {
        if let bus = buses.withLock({ $0[node] }) { return bus }
        var logger = Logger(label: "bus-contract.\(node)")
        logger.logLevel = .warning
        let bus = try await NATSBus.connect(
            urls: [server.url],
            duplicateWindow: settings.duplicateWindow,
            ackWait: settings.ackWait,
            logger: logger
        )
        let extra = buses.withLock { b -> NATSBus? in
            if let existing = b[node] { return existing }
            b[node] = bus
            return nil
        }
        if let extra {
            await bus.close()
            return extra
        }
        return bus
    }

    func pass(_ duration: Duration) async throws { try await Task.sleep(for: duration) }
    func elapsed() -> Duration { ContinuousClock.now - start }

    func close() async {
        for bus in buses.withLock({ b in b.keys.sorted().compactMap { b[$0] } }) { await bus.close() }
    }
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}
