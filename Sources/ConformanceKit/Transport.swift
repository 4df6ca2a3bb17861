import Foundation

/// A request as the runner sends it: method, path with an already-encoded query, ordered headers.
public struct ConformanceRequest: Sendable {
    /// HTTP method, e.g. `GET`.
    public var method: String
    /// Path plus already-encoded query, relative to the target's base URL: `/pins?limit=1`.
    public var path: String
    /// Header fields in order.
    public var headers: [(String, String)]
    /// Body bytes, if any.
    public var body: [UInt8]?

    public init(method: String, path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }

    /// The first value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }

    /// The path without the query.
    public var pathOnly: String {
        if let q = path.firstIndex(of: "?") { return String(path[..<q]) }
        return path
    }

    /// The encoded query without `?`, or nil.
    public var query: String? {
        guard let q = path.firstIndex(of: "?") else { return nil }
        return String(path[path.index(after: q)...])
    }
}

/// A response as the runner sees it.
public struct ConformanceResponse: Sendable {
    /// HTTP status code.
    public var status: Int
    /// Header fields in order.
    public var headers: [(String, String)]
    /// The full body.
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }

    /// All values of a header, by case-insensitive name, in order.
    public func headerValues(_ name: String) -> [String] {
        headers.filter { $0.0.caseInsensitiveCompare(name) == .orderedSame }.map(\.1)
    }

    /// The body as UTF-8 text (lossy).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// Something that delivers a request to a pinning service: a URL, an in-process router, a
/// simulated node.
public protocol ConformanceTransport: Sendable {
    /// Whether requests leave this machine (the runner's reports say so; URL transports pace
    /// themselves and honour rate-limit headers when remote).
    var isRemote: Bool { get }
    /// Sends one request and returns the complete response. Throws only for transport failures
    /// (connection refused, timeout), never for HTTP error statuses.
    func send(_ request: ConformanceRequest) async throws -> ConformanceResponse
}
