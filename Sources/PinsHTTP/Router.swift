import Hummingbird
import Logging
import Pins
import Tokens

/// Everything the HTTP surface needs, injected. Both `anchorage serve` and the tests (and
/// later the simulator, in-process) build their router with `makeRouter`.
public struct HTTPDependencies<Store: PinStore>: Sendable {
    public var service: PinService<Store>
    public var verifier: TokenVerifier
    public var delegates: any DelegateSource
    public var readiness: any ReadinessCheck
    /// Log one line per request (method, path, status, duration).
    public var logRequests: Bool
    /// Hears every request (the node's HTTP metrics).
    public var observer: (any HTTPObserver)?
    /// `/metrics` on this router (nil: not served here).
    public var metrics: MetricsEndpoint?

    public init(
        service: PinService<Store>,
        verifier: TokenVerifier,
        delegates: any DelegateSource,
        readiness: any ReadinessCheck,
        logRequests: Bool = true,
        observer: (any HTTPObserver)? = nil,
        metrics: MetricsEndpoint? = nil
    ) {
        self.observer = observer
        self.metrics = metrics
        self.service = service
        self.verifier = verifier
        self.delegates = delegates
        self.readiness = readiness
        self.logRequests = logRequests
    }
}

public func makeRouter<Store: PinStore>(_ deps: HTTPDependencies<Store>) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    // Outermost first: metrics and the access log see the final status, including mapped failures.
    if let observer = deps.observer { router.add(middleware: HTTPMetricsMiddleware(observer: observer)) }
    if deps.logRequests { router.add(middleware: AccessLogMiddleware()) }
    router.add(middleware: FailureMiddleware())
    router.add(middleware: MethodMiddleware())
    OperationsController(readiness: deps.readiness).register(on: router)
    deps.metrics?.register(on: router)
    let limits = deps.service.limits
    let pins = router.group()
        .add(middleware: NodeAdmissionMiddleware(limit: limits.maxInFlightRequests))
        .add(middleware: AuthMiddleware(verifier: deps.verifier))
        .add(
            middleware: RequestRateMiddleware(
                limiter: TokenRateLimiter(perSecond: Double(limits.requestsPerSecond), burst: limits.requestBurst, clock: deps.service.clock)
            )
        )
    PinsController(service: deps.service, delegates: deps.delegates).register(on: pins)
    return router
}
