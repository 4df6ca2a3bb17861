/// Every error the Pinning API can answer with, as the spec's `Failure` body needs it:
/// an HTTP status, a machine-readable `reason` and a human `details` line.
public struct PinsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var reason: String
    public var details: String?

    public init(status: Int, reason: String, details: String?) {
        self.status = status
        self.reason = reason
        self.details = details
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

    public var description: String { "\(status) \(reason): \(details ?? "")" }
}
