import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Sends conformance requests to a pinning service over HTTP(S) with AsyncHTTPClient.
///
/// The base URL may carry a path prefix (`https://api.example.com/psa`); request paths
/// (`/pins?…`) are appended to it. Redirects are not followed, so a 301 on a POST shows up in
/// the report instead of silently turning into a GET (as Go's client would do).
///
/// Politeness on remote targets:
/// - at most one request per ``Configuration/minInterval`` (default 500 ms remote, 0 local);
/// - `X-RateLimit-Remaining: 0` (or `RateLimit-Remaining: 0`) delays the next request until
///   `X-RateLimit-Reset` (unix seconds, or seconds from now when small) plus one second;
/// - `429` and `503` with `Retry-After` (seconds or an HTTP date) are retried after that
///   delay, up to ``Configuration/maxRetries`` times (429 without `Retry-After` backs off
///   exponentially from 1 s).
/// Every wait is capped at ``Configuration/maxWait``.
public final class URLTransport: ConformanceTransport {
    /// Tuning knobs.
    public struct Configuration: Sendable {
        /// Minimum time between two requests. `nil` means 500 ms for remote targets and none for local ones.
        public var minInterval: Duration?
        /// Retries of a request answered with 429/503.
        public var maxRetries: Int
        /// Upper bound of any single wait (rate limit or Retry-After).
        public var maxWait: Duration
        /// Per-request timeout.
        public var requestTimeout: Duration
        /// Largest response body read.
        public var maxResponseBytes: Int
        /// Overrides the local/remote guess made from the host name.
        public var isRemote: Bool?

        public init(
            minInterval: Duration? = nil,
            maxRetries: Int = 3,
            maxWait: Duration = .seconds(120),
            requestTimeout: Duration = .seconds(60),
            maxResponseBytes: Int = 32 * 1024 * 1024,
            isRemote: Bool? = nil
        ) {
            self.minInterval = minInterval
            self.maxRetries = maxRetries
            self.maxWait = maxWait
            self.requestTimeout = requestTimeout
            self.maxResponseBytes = maxResponseBytes
            self.isRemote = isRemote
        }
    }

    /// Why a base URL was refused.
    public struct InvalidBaseURL: Error, CustomStringConvertible {
        public var description: String
    }

    /// The base URL without a trailing `/`.
    public let baseURL: String
    public let isRemote: Bool
    private let configuration: Configuration
    private let minInterval: Duration
    /// The time kept between two requests (`--max-rps`).
    public var minimumInterval: Duration { minInterval }
    private let client: HTTPClient
    private let pacer = Pacer()

    /// Creates a transport for `baseURL` (http or https, no query, no fragment).
    public init(baseURL: String, configuration: Configuration = Configuration()) throws {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        guard let components = URLComponents(string: base), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw InvalidBaseURL(description: "target must be an http(s) URL with a host: \(baseURL)")
        }
        guard components.query == nil, components.fragment == nil else {
            throw InvalidBaseURL(description: "target must not carry a query or fragment: \(baseURL)")
        }
        if base.lowercased().hasSuffix("/pins") {
            throw InvalidBaseURL(description: "target is the API base, without /pins (as Kubo expects): \(baseURL)")
        }
        let local =
            ["localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"].contains(host.lowercased())
            || host.lowercased().hasSuffix(".localhost")
        self.baseURL = base
        self.isRemote = configuration.isRemote ?? !local
        self.configuration = configuration
        self.minInterval = configuration.minInterval ?? (isRemote ? .milliseconds(500) : .zero)

        var config = HTTPClient.Configuration()
        config.redirectConfiguration = .disallow
        let seconds = max(1, Int64(configuration.requestTimeout.secondsDouble.rounded(.up)))
        config.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(10), read: .seconds(seconds))
        self.client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
    }

    /// Shuts the HTTP client down. Call once, after the last request.
    public func shutdown() async throws {
        try await client.shutdown()
    }

    public func send(_ request: ConformanceRequest) async throws -> ConformanceResponse {
        var attempt = 0
        while true {
            try await pacer.waitTurn(minInterval: minInterval)
            let response = try await sendOnce(request)
            await pacer.observe(response, maxWait: configuration.maxWait)
            if response.status == 429 || response.status == 503, attempt < configuration.maxRetries {
                let retryAfter = URLTransport.retryAfter(response)
                if response.status == 429 || retryAfter != nil {
                    let backoff = retryAfter ?? .seconds(Int64(1) << Int64(attempt))
                    try await Task.sleep(for: min(backoff, configuration.maxWait))
                    attempt += 1
                    continue
                }
            }
            return response
        }
    }

    private func sendOnce(_ request: ConformanceRequest) async throws -> ConformanceResponse {
        var http = HTTPClientRequest(url: baseURL + request.path)
        http.method = HTTPMethod(rawValue: request.method.uppercased())
        for (name, value) in request.headers {
            http.headers.add(name: name, value: value)
        }
        if let body = request.body {
            http.body = .bytes(ByteBuffer(bytes: body))
        }
        let timeout = TimeAmount.milliseconds(Int64(configuration.requestTimeout.secondsDouble * 1000))
        let response = try await client.execute(http, timeout: timeout)
        let buffer = try await response.body.collect(upTo: configuration.maxResponseBytes)
        return ConformanceResponse(
            status: Int(response.status.code),
            headers: response.headers.map { ($0.name, $0.value) },
            body: Array(buffer.readableBytesView)
        )
    }

    /// The delay a `Retry-After` header asks for (delta seconds or an HTTP date).
    static func retryAfter(_ response: ConformanceResponse) -> Duration? {
        guard let raw = response.header("Retry-After")?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else {
            return nil
        }
        if let seconds = Double(raw), seconds >= 0 {
            return .milliseconds(Int64(seconds * 1000))
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        if let date = formatter.date(from: raw) {
            return .milliseconds(Int64(max(0, date.timeIntervalSinceNow) * 1000))
        }
        return nil
    }

    /// Reserves request slots and remembers rate-limit windows.
    private actor Pacer {
        private var nextSlot = ContinuousClock.now
        private var blockedUntil: ContinuousClock.Instant?

        func waitTurn(minInterval: Duration) async throws {
            let now = ContinuousClock.now
            var slot = max(now, nextSlot)
            if let blockedUntil, blockedUntil > slot { slot = blockedUntil }
            nextSlot = slot + minInterval
            if slot > now {
                try await Task.sleep(until: slot, clock: .continuous)
            }
        }

        func observe(_ response: ConformanceResponse, maxWait: Duration) {
            let remaining = response.header("X-RateLimit-Remaining") ?? response.header("RateLimit-Remaining")
            guard let remaining, Int(remaining.trimmingCharacters(in: .whitespaces)) == 0 else { return }
            let resetText = response.header("X-RateLimit-Reset") ?? response.header("RateLimit-Reset")
            var wait: Duration = .seconds(60)
            if let resetText, let reset = Double(resetText.trimmingCharacters(in: .whitespaces)) {
                // Large values are unix timestamps (the compliance suite's reading); small ones are deltas.
                let delta = reset > 1_000_000_000 ? reset - Date().timeIntervalSince1970 : reset
                wait = .milliseconds(Int64(max(0, delta) * 1000)) + .seconds(1)
            }
            let until = ContinuousClock.now + min(wait, maxWait)
            if blockedUntil.map({ until > $0 }) ?? true { blockedUntil = until }
        }
    }
}
