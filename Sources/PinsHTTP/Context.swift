import Hummingbird
import NIOCore
import Seams
import Tokens

/// The request context: Hummingbird's core storage plus the authenticated caller.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthMiddleware` once the bearer token verified.
    public var claims: TokenClaims? {
        didSet { requestState.org = claims.map { "\($0.org)" } }
    }
    /// Shared with middleware outside the auth layer (the access log), which cannot see the
    /// context copies made further in.
    public let requestState = RequestState()

    /// The connection's peer (`/metrics` checks it against `metrics.allowCIDRs`).
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// The org the request acts for. Routes behind `AuthMiddleware` always have one.
    public var org: TypeID? { claims?.org }
}

/// Per-request facts learned deep in the middleware chain and read by outer layers.
public final class RequestState: @unchecked Sendable {
    // @unchecked: a request is handled by one task at a time; the lock is cheap insurance.
    private let lock = Lock()
    private var _org: String?
    public var org: String? {
        get { lock.withLock { _org } }
        set { lock.withLock { _org = newValue } }
    }
}
