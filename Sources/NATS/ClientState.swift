import NIOCore

/// Everything mutable about a client, guarded by the client's mutex.
struct ClientState {
    enum Phase {
        case connecting
        case connected(any Channel)
        case disconnected
        case closed
    }

    struct Subscription {
        var subject: String
        var queue: String?
        /// nil for the shared request inbox, whose messages go to `requests`.
        var buffer: MessageBuffer?
    }

    struct PendingRequest {
        var subject: String
        var continuation: CheckedContinuation<NATSMessage, any Error>
        var timeout: Scheduled<Void>?
    }

    /// One per PING in flight, in order; `continuation` is nil for keep-alive pings and for
    /// flushes that already timed out (the slot stays so later PONGs still match their PINGs).
    struct PongSlot {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>?
        var timeout: Scheduled<Void>?
    }

    var phase: Phase = .connecting
    var info: ServerInfo?
    /// Connections re-established after the first.
    var reconnects = 0
    var subscriptions: [UInt64: Subscription] = [:]
    var nextSID: UInt64 = 1
    /// Publishes made while disconnected, sent first on reconnect.
    var outbox: [ByteBuffer] = []
    var outboxBytes = 0
    var requests: [String: PendingRequest] = [:]
    var requestInboxSID: UInt64?
    var pongs: [PongSlot] = []
    var nextPongID: UInt64 = 0
    var keepAlivePingsOut = 0
    var supervisor: Task<Void, Never>?
    var pinger: Task<Void, Never>?
    var nextURL = 0
    var lastServerError: String?

    var channel: (any Channel)? {
        if case .connected(let c) = phase { c } else { nil }
    }

    var isClosed: Bool {
        if case .closed = phase { true } else { false }
    }
}

/// Connection life-cycle notifications.
public enum NATSEvent: Sendable, Equatable {
    case connected(serverVersion: String)
    case disconnected
    case reconnected(serverVersion: String)
    case serverError(String)
    case closed
}
