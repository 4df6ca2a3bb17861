import HTTPTypes
import Hummingbird
import NIOCore
import Pins

/// Hears every request the router answers (the node's HTTP metrics).
public protocol HTTPObserver: Sendable {
    func httpStarted()
    /// `route` is the matched route's template (`/pins/{requestid}`) or `unmatched`: never the
    /// raw path, which would give every pin its own series.
    func httpFinished(route: String, method: String, status: Int, duration: Duration)
}

/// Outermost middleware: counts the request with the status the client finally gets.
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let observer: any HTTPObserver

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        observer.httpStarted()
        let method = request.method.rawValue
        do {
            let response = try await next(request, context)
            observer.httpFinished(
                route: context.endpointPath ?? "unmatched",
                method: method,
                status: Int(response.status.code),
                duration: ContinuousClock.now - start
            )
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            observer.httpFinished(
                route: context.endpointPath ?? "unmatched",
                method: method,
                status: Int(status),
                duration: ContinuousClock.now - start
            )
            throw error
        }
    }
}

/// `GET /metrics`: the Prometheus text format, only to clients `policy` allows (a `403` in the
/// spec's error body to anyone else). Rendering reads memory only, never the database.
public struct MetricsEndpoint: Sendable {
    public var policy: ClientAddressPolicy
    public var render: @Sendable () async -> [UInt8]

    public init(policy: ClientAddressPolicy, render: @escaping @Sendable () async -> [UInt8]) {
        self.policy = policy
        self.render = render
    }

    public static let path = "/metrics"

    func register(on router: Router<AppRequestContext>) {
        router.get(RouterPath(Self.path)) { request, context -> Response in
            guard policy.allows(peer: context.remoteAddress, headers: request.headers) else {
                throw PinsError(status: 403, reason: "FORBIDDEN", details: "metrics are served only to the addresses in metrics.allowCIDRs")
            }
            let body = await render()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: body))
            )
        }
    }

    /// A router serving only `/metrics` (the separate `metrics.listen` listener).
    public func router() -> Router<AppRequestContext> {
        let router = Router(context: AppRequestContext.self)
        router.add(middleware: FailureMiddleware())
        register(on: router)
        return router
    }
}
