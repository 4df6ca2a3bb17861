import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Pins
import Seams
import Tokens

/// Turns every error into the spec's `Failure` body with `Content-Type: application/json`:
/// our own `PinsError`s, Hummingbird's (unknown route, too-large body) and anything unexpected
/// (a 500 whose details never leak internals; the error itself is logged).
public struct FailureMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    public init() {}

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as PinsError {
            if error.status >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(error)", "org": "\(context.requestState.org ?? "-")"])
            }
            return Self.response(for: error)
        } catch let error as HTTPError {
            return Self.response(for: Self.map(error))
        } catch is NIOTooManyBytesError {
            return Self.response(for: .badRequest(reason: "BODY_TOO_LARGE", details: "the request body is too large"))
        } catch {
            context.logger.error(
                "unexpected error",
                metadata: ["error": "\(String(reflecting: error))", "org": "\(context.requestState.org ?? "-")"]
            )
            return Self.response(for: .internalError("an unexpected error occurred; it has been logged"))
        }
    }

    static func map(_ error: HTTPError) -> PinsError {
        switch error.status {
        case .notFound: return .notFound
        case .methodNotAllowed:
            return PinsError(status: 405, reason: "METHOD_NOT_ALLOWED", details: "this method is not allowed here")
        case .contentTooLarge: return .badRequest(reason: "BODY_TOO_LARGE", details: "the request body is too large")
        case .unauthorized: return .unauthorized(error.body ?? "access token is missing or invalid")
        default:
            let code = Int(error.status.code)
            return PinsError(
                status: code,
                reason: code >= 500 ? "INTERNAL_SERVER_ERROR" : "BAD_REQUEST",
                details: error.body ?? error.status.reasonPhrase
            )
        }
    }

    public static func response(for error: PinsError) -> Response {
        var writer = JSONWriter(capacity: 128)
        writer.failure(error)
        var headers: HTTPFields = [.contentType: "application/json"]
        if error.status == 401 { headers[.wwwAuthenticate] = "Bearer" }
        if let seconds = error.retryAfter { headers[.retryAfter] = "\(seconds)" }
        if let allow = error.allow { headers[.allow] = allow }
        return Response(
            status: HTTPResponse.Status(code: error.status),
            headers: headers,
            body: .init(byteBuffer: writer.buffer)
        )
    }
}

/// A method the API does not serve on one of its paths is a 405 naming the methods it does
/// serve (RFC 9110 §15.5.6), not a 404 that says the resource does not exist. Runs before
/// authentication: the answer reveals nothing about any org.
public struct MethodMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    public init() {}

    /// The API's paths and their methods; HEAD is GET without a body (Hummingbird serves it).
    static func allowed(_ path: String) -> [HTTPRequest.Method]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.first == "pins" else { return nil }
        switch parts.count {
        case 1: return [.get, .head, .post]
        case 2: return [.get, .head, .post, .delete]
        default: return nil
        }
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let methods = Self.allowed(request.uri.path), !methods.contains(request.method) {
            var error = PinsError(
                status: 405,
                reason: "METHOD_NOT_ALLOWED",
                details: "\(request.method.rawValue.prefix(16)) is not allowed here; use \(methods.map(\.rawValue).joined(separator: ", "))"
            )
            error.allow = methods.map(\.rawValue).joined(separator: ", ")
            throw error
        }
        return try await next(request, context)
    }
}

/// Requires `Authorization: Bearer <token>` and verifies it; sets the org on the context and
/// the logger. Anything else is a 401 `Failure`.
public struct AuthMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    let verifier: TokenVerifier

    public init(verifier: TokenVerifier) { self.verifier = verifier }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw PinsError.unauthorized("access token is missing: send Authorization: Bearer <token>")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw PinsError.unauthorized("the Authorization header must be Bearer <token>")
        }
        let claims = try await verifier.verify(String(parts[1].trimmingWhitespace()))
        var context = context
        context.claims = claims
        context.logger[metadataKey: "org"] = "\(claims.org)"
        return try await next(request, context)
    }
}

/// `limits.maxInFlightRequests` on the whole node: a request past it is a `503` in the spec's
/// error body with `Retry-After: 1`, answered before authentication and any database work, so
/// an overloaded node (a slow PostgreSQL, an exhausted pool) sheds load at once rather than
/// queueing requests until they time out. Clients retry, or go to another node.
public struct NodeAdmissionMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    let gate: ConcurrencyGate
    /// The gate's one key: the node.
    static let node = TypeID(prefix: "node", high: 0, low: 0)

    public init(limit: Int) { self.gate = ConcurrencyGate(limit: limit) }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let response = try await gate.run(Self.node, { try await next(request, context) }) else {
            throw PinsError(
                status: 503,
                reason: "SERVICE_UNAVAILABLE",
                details:
                    "this node has \(gate.limit) requests in flight (limits.maxInFlightRequests); retry after Retry-After seconds, or use another node",
                retryAfter: 1
            )
        }
        return response
    }
}

/// `limits.requestsPerSecond` per API token, after authentication (the token is the key): a
/// 429 in the spec's error body with `Retry-After`, before any database work.
public struct RequestRateMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    let limiter: TokenRateLimiter

    public init(limiter: TokenRateLimiter) { self.limiter = limiter }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let claims = context.claims, let wait = limiter.admit(claims.tokenID) {
            throw PinsError.tooManyRequests(
                "this token sent more than \(Int(limiter.perSecond)) requests per second (burst \(Int(limiter.burst)))",
                retryAfter: wait
            )
        }
        return try await next(request, context)
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}

/// One access-log line per request, after it completes: method, path, status, duration, and
/// the org once authenticated (plus Hummingbird's `hb.request.id` from the context logger).
/// Probes and scrapes (``probePaths``) are logged at `probeLevel` (`debug`): a load balancer
/// checking `/v1/ready` every second must not drown the log.
public struct AccessLogMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    let level: Logger.Level
    let probeLevel: Logger.Level
    let probePaths: Set<String>

    /// `/v1/health`, `/v1/ready` and `/metrics`.
    public static let probePaths: Set<String> = ["/v1/health", "/v1/ready", MetricsEndpoint.path]

    public init(level: Logger.Level = .info, probeLevel: Logger.Level = .debug, probePaths: Set<String> = Self.probePaths) {
        self.level = level
        self.probeLevel = probeLevel
        self.probePaths = probePaths
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        var metadata: Logger.Metadata = [
            "method": "\(request.method.rawValue)", "path": "\(request.uri.path)",
            "status": "\(response.status.code)",
            "ms": "\(Double(elapsed.components.attoseconds / 1_000_000_000_000) / 1000 + Double(elapsed.components.seconds) * 1000)",
        ]
        if let org = context.requestState.org { metadata["org"] = "\(org)" }
        // Also a 503 from /v1/ready: a drained node answers it for hours, and its state changes
        // are logged by the cluster agent.
        context.logger.log(level: probePaths.contains(request.uri.path) ? probeLevel : level, "request", metadata: metadata)
        return response
    }
}
