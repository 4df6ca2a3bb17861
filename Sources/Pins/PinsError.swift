/// Every error the Pinning API can answer with, as the spec's `Failure` body needs it:
/// an HTTP status, a machine-readable `reason` and a human `details` line.
public struct PinsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    public var details: String?
    /// Seconds for a `Retry-After` header (429 and 503 answers that say when to come back).
    public var retryAfter: Int?
    /// The `Allow` header of a 405.
    public var allow: String?

    public init(status: Int, reason: String, details: String?, retryAfter: Int? = nil) {
        self.status = status
        self.reason = reason
        self.details = details
        self.retryAfter = retryAfter
    }

    public static func badRequest(reason: String = "BAD_REQUEST", details: String) -> PinsError {
        PinsError(status: 400, reason: reason, details: details)
    }

    public static func unauthorized(_ details: String) -> PinsError {
        PinsError(status: 401, reason: "UNAUTHORIZED", details: details)
    }

    public static let notFound = PinsError(
        status: 404,
        reason: "NOT_FOUND",
        details: "The specified resource was not found"
    )

    public static func internalError(_ details: String) -> PinsError {
        PinsError(status: 500, reason: "INTERNAL_SERVER_ERROR", details: details)
    }

    public static func unavailable(_ details: String) -> PinsError {
        PinsError(status: 503, reason: "SERVICE_UNAVAILABLE", details: details)
    }

    /// 429: the caller sent more than its share; `retryAfter` says when a retry may succeed.
    public static func tooManyRequests(_ details: String, retryAfter: Int) -> PinsError {
        PinsError(status: 429, reason: "TOO_MANY_REQUESTS", details: details, retryAfter: max(retryAfter, 1))
    }

    /// The spec's 409 for an account that may not store more (its `InsufficientFunds` answer).
    public static func insufficientFunds(_ details: String) -> PinsError {
        PinsError(status: 409, reason: "INSUFFICIENT_FUNDS", details: details)
    }

    public var description: String { "\(status) \(reason): \(details ?? "")" }
}
