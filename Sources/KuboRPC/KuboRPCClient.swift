import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Seams
import Synchronization

/// The production `KuboAPI`: Kubo's RPC API over HTTP (kubo-rpc.md §10).
///
/// Every call is `POST <base>/api/v0/<cmd>?arg=...&<opt>=...` with an empty body, an explicit
/// `User-Agent: anchorage/<ver>` and no `Origin`/`Referer` (Kubo's CSRF gates).
///
/// Trailers: Kubo reports errors that happen after a stream started only in the HTTP trailer
/// `X-Stream-Error`. AsyncHTTPClient 1.37 exposes response trailers (`HTTPClientResponse.Body.trailers`)
/// only behind its `UnstableHTTPAPIsSupport` package trait, which anchorage does not enable, so
/// this client cannot see them. It therefore applies the terminal-frame rule: `pin` succeeds only
/// if a `{"Pins":[...]}` frame arrived; a progress stream that ends without one is an error.
/// A streamed `pin/ls` that ends early is indistinguishable from a complete one (see docs/kubo.md).
public final class KuboRPCClient: KuboAPI {
    public static let clientVersion = "0.1.0"
    public static let userAgent = "anchorage/\(clientVersion)"

    public let baseURL: String
    /// `pin/add` streams, one connection per pin the worker may run at once: a pin that waited
    /// for a connection would spend its stall timeout and deadline before Kubo saw it.
    private let pinClient: HTTPClient
    /// Every other call (`id`, `pin/ls`, `pin/rm`, `swarm/connect`) on connections of its own,
    /// so the reconciler and unpins never queue behind long pins, nor pins behind them.
    private let controlClient: HTTPClient
    private let ownsHTTPClient: Bool
    private let requestTimeout: Duration
    private let listTimeout: Duration
    private let logger: Logger
    /// How many `swarm/connect` calls run at once.
    public static let connectParallelism = 8

    /// - Parameters:
    ///   - baseURL: Kubo's RPC listener (`Addresses.API`), without `/api/v0`.
    ///   - httpClient: a shared client for every call; when nil the instance creates (and
    ///     `shutdown()` closes) its own two: one for pins, one for control calls.
    ///   - requestTimeout: the bound on every call except `pin` (which has its own deadline) and
    ///     `connect` (its `timeout`). Also sent to Kubo as `timeout=`.
    ///   - listTimeout: the bound on listing every pin (`pin/ls` without arguments).
    ///   - maxConcurrentPins: the connections kept for `pin/add` (`worker.maxConcurrentPins`).
    public init(
        baseURL: String = "http://127.0.0.1:5001",
        httpClient: HTTPClient? = nil,
        requestTimeout: Duration = .seconds(30),
        listTimeout: Duration = .seconds(600),
        maxConcurrentPins: Int = 16,
        logger: Logger
    ) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        if let httpClient {
            self.pinClient = httpClient
            self.controlClient = httpClient
            self.ownsHTTPClient = false
        } else {
            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(connect: .seconds(5))
            configuration.redirectConfiguration = .disallow
            configuration.decompression = .disabled
            // Kubo is on loopback: a refused connection means it is down. Fail fast (.unreachable)
            // instead of retrying until the request deadline.
            configuration.connectionPool.retryConnectionEstablishment = false
            func client(connections: Int) -> HTTPClient {
                var configuration = configuration
                configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
                return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration, backgroundActivityLogger: logger)
            }
            self.pinClient = client(connections: max(1, maxConcurrentPins))
            // swarm/connect fans out `connectParallelism` calls; a few more for pin/ls, pin/rm, id.
            self.controlClient = client(connections: Self.connectParallelism + 8)
            self.ownsHTTPClient = true
        }
        self.requestTimeout = requestTimeout
        self.listTimeout = max(listTimeout, requestTimeout)
        self.logger = logger
    }

    /// Shuts down the HTTP client if this instance created it.
    public func shutdown() async throws {
        guard ownsHTTPClient else { return }
        try await pinClient.shutdown()
        try await controlClient.shutdown()
    }

    // MARK: KuboAPI

    public func identity() async throws -> KuboIdentity {
        struct Output: Decodable {
            var ID: String
            var Addresses: [String]?
            var AgentVersion: String?
        }
        let out = try await oneShot("id", [], as: Output.self)
        return KuboIdentity(peerID: out.ID, addresses: out.Addresses ?? [], agentVersion: out.AgentVersion ?? "")
    }

    public func version() async throws -> String {
        struct Output: Decodable { var Version: String }
        return try await oneShot("version", [], as: Output.self).Version
    }

    public func pin(
        cid: String,
        name: String?,
        stallTimeout: Duration,
        deadline: Duration,
        progress: @Sendable (Int) async -> Void
    ) async throws {
        enum Outcome: Sendable { case pinned, deadline, stalled }
        let watch = StallWatch()
        let clock = ContinuousClock()
        let outcome: Outcome = try await withoutActuallyEscaping(progress) { progress in
            try await withThrowingTaskGroup(of: Outcome.self) { group in
                group.addTask {
                    try await self.streamPinAdd(cid: cid, name: name, deadline: deadline, watch: watch, progress: progress)
                    return .pinned
                }
                group.addTask {
                    try await clock.sleep(for: deadline)
                    return .deadline
                }
                group.addTask {
                    while true {
                        // Armed by the response head: time spent connecting is the deadline's.
                        guard let last = watch.lastGrowth else {
                            try await clock.sleep(for: min(stallTimeout, .milliseconds(100)))
                            continue
                        }
                        let due = last + stallTimeout
                        if clock.now >= due { return .stalled }
                        try await clock.sleep(until: due)
                    }
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        }
        switch outcome {
        case .pinned:
            return
        case .deadline:
            logger.info("kubo pin/add deadline", metadata: ["cid": "\(cid)", "deadline": "\(deadline)"])
            throw KuboError.timeout("pin/add \(cid) did not finish within \(deadline)")
        case .stalled:
            logger.info("kubo pin/add stalled", metadata: ["cid": "\(cid)", "stallTimeout": "\(stallTimeout)"])
            throw KuboError.stalled("pin/add \(cid) made no progress for \(stallTimeout)")
        }
    }

    private func streamPinAdd(
        cid: String,
        name: String?,
        deadline: Duration,
        watch: StallWatch,
        progress: @Sendable (Int) async -> Void
    ) async throws {
        struct Frame: Decodable {
            var Progress: Int?
            var Pins: [String]?
            var Message: String?
            var `Type`: String?
        }
        var query: [(String, String)] = [("arg", cid), ("recursive", "true"), ("progress", "true")]
        if let name { query.append(("name", name)) }
        // Kubo's own deadline, a little after ours so that ours normally fires first (.timeout).
        query.append(("timeout", Self.goDuration(deadline + .seconds(1))))
        let response = try await post("pin/add", query, timeout: deadline + .seconds(5), on: pinClient)
        watch.start()
        guard response.status == .ok else {
            let body = try await collect(response)
            throw Self.deadlineAware(commandError(status: response.status, headers: response.headers, body: body))
        }
        var sawPins = false
        try await forEachLine(response) { line in
            let frame: Frame
            do {
                frame = try JSONDecoder().decode(Frame.self, from: Data(line))
            } catch {
                throw KuboError.protocolError("pin/add: unreadable frame \(Self.snippet(line))")
            }
            if frame.Type == "error", let message = frame.Message {
                throw Self.deadlineAware(.command(message: message, code: 0))
            }
            if let p = frame.Progress {
                watch.observe(p)
                await progress(p)
            }
            if frame.Pins != nil { sawPins = true }
        }
        guard sawPins else {
            throw KuboError.command(
                message: "pin/add stream for \(cid) ended without a Pins frame (Kubo's X-Stream-Error trailer is not visible to this client)",
                code: 0
            )
        }
    }

    public func unpin(cid: String) async throws {
        struct Output: Decodable { var Pins: [String]? }
        do {
            _ = try await oneShot("pin/rm", [("arg", cid)], as: Output.self)
        } catch KuboError.command(let message, _) where message.contains("not pinned or pinned indirectly") {
            return
        }
    }

    public func recursivePins() async throws -> [KuboPin] {
        try await listRecursivePins(named: nil)
    }

    public func recursivePins(named name: String) async throws -> [KuboPin] {
        try await listRecursivePins(named: name).filter { $0.name == name }
    }

    /// A streamed `pin/ls` (one line per pin, read as it arrives), bounded by `listTimeout`
    /// rather than `requestTimeout`: listing a large pin set takes as long as Kubo needs, within
    /// that bound, and the cluster agent runs it in its duties lane, never ahead of a heartbeat.
    /// `name` is Kubo's substring filter (0.29+; older versions ignore it and list everything).
    private func listRecursivePins(named name: String?) async throws -> [KuboPin] {
        struct Line: Decodable {
            var Cid: String
            var `Type`: String?
            var Name: String?
        }
        var query = [("type", "recursive"), ("stream", "true"), ("names", "true"), ("timeout", Self.goDuration(listTimeout))]
        if let name { query.append(("name", name)) }
        let response = try await post("pin/ls", query, timeout: listTimeout)
        guard response.status == .ok else {
            throw commandError(status: response.status, headers: response.headers, body: try await collect(response))
        }
        var pins: [KuboPin] = []
        try await forEachLine(response) { line in
            guard let decoded = try? JSONDecoder().decode(Line.self, from: Data(line)) else {
                // A non-stream reply (`{}` = no pins) is tolerated; anything else is not.
                if line == Array("{}".utf8) { return }
                throw KuboError.protocolError("pin/ls: unreadable line \(Self.snippet(line))")
            }
            let name = decoded.Name.flatMap { $0.isEmpty ? nil : $0 }
            pins.append(KuboPin(cid: decoded.Cid, name: name))
        }
        return pins
    }

    public func recursivePin(cid: String) async throws -> KuboPin? {
        struct Entry: Decodable {
            var `Type`: String?
            var Name: String?
        }
        struct Output: Decodable { var Keys: [String: Entry]? }
        let query = [("arg", cid), ("type", "recursive"), ("names", "true"), ("timeout", Self.goDuration(requestTimeout))]
        let response = try await post("pin/ls", query, timeout: requestTimeout)
        let body = try await collect(response)
        guard response.status == .ok else {
            let error = commandError(status: response.status, headers: response.headers, body: body)
            if case .command(let message, _) = error, message.contains("is not pinned") { return nil }
            throw error
        }
        guard let output = try? JSONDecoder().decode(Output.self, from: Data(body)) else {
            throw KuboError.protocolError("pin/ls: unreadable reply \(Self.snippet(body))")
        }
        // One key: the CID as Kubo prints it (it may re-encode); the argument is what we asked.
        guard let entry = output.Keys?.values.first else { return nil }
        return KuboPin(cid: cid, name: entry.Name.flatMap { $0.isEmpty ? nil : $0 })
    }

    public func connect(to addresses: [String], limit: Int, timeout: Duration) async -> Int {
        let targets = Array(addresses.prefix(max(0, limit)))
        guard !targets.isEmpty else { return 0 }
        struct Output: Decodable { var Strings: [String]? }
        return await withTaskGroup(of: Bool.self) { group in
            var next = 0
            var connected = 0
            func launch() {
                let address = targets[next]
                next += 1
                group.addTask {
                    do {
                        _ = try await self.oneShot(
                            "swarm/connect",
                            [("arg", address), ("timeout", Self.goDuration(timeout))],
                            as: Output.self,
                            timeout: timeout + .seconds(1)
                        )
                        return true
                    } catch {
                        self.logger.debug("kubo swarm/connect failed", metadata: ["address": "\(address)", "error": "\(error)"])
                        return false
                    }
                }
            }
            while next < targets.count && next < Self.connectParallelism { launch() }
            while let ok = await group.next() {
                if ok { connected += 1 }
                if next < targets.count { launch() }
            }
            return connected
        }
    }

    public func repoStat() async throws -> KuboRepoStat {
        struct Output: Decodable {
            var RepoSize: UInt64
            var StorageMax: UInt64
            var NumObjects: UInt64?
        }
        let out = try await oneShot("repo/stat", [("size-only", "true")], as: Output.self)
        return KuboRepoStat(repoSize: out.RepoSize, storageMax: out.StorageMax, numObjects: out.NumObjects ?? 0)
    }

    // MARK: Transport

    private func oneShot<T: Decodable>(
        _ command: String,
        _ query: [(String, String)],
        as type: T.Type,
        timeout: Duration? = nil
    ) async throws -> T {
        var query = query
        let timeout = timeout ?? requestTimeout
        if !query.contains(where: { $0.0 == "timeout" }) { query.append(("timeout", Self.goDuration(timeout))) }
        let response = try await post(command, query, timeout: timeout)
        let body = try await collect(response)
        guard response.status == .ok else {
            throw commandError(status: response.status, headers: response.headers, body: body)
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw KuboError.protocolError("\(command): unreadable response \(Self.snippet(body)): \(error)")
        }
    }

    private func post(
        _ command: String,
        _ query: [(String, String)],
        timeout: Duration,
        on client: HTTPClient? = nil
    ) async throws -> HTTPClientResponse {
        var url = "\(baseURL)/api/v0/\(command)"
        if !query.isEmpty {
            url += "?" + query.map { "\(Self.percentEncode($0.0))=\(Self.percentEncode($0.1))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        request.headers.add(name: "Content-Length", value: "0")
        do {
            return try await (client ?? controlClient).execute(request, timeout: Self.timeAmount(timeout), logger: logger)
        } catch {
            throw Self.transportError(error, command: command)
        }
    }

    private func collect(_ response: HTTPClientResponse) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        do {
            for try await chunk in response.body {
                bytes.append(contentsOf: chunk.readableBytesView)
                if bytes.count > 64 << 20 { throw KuboError.protocolError("response body over 64 MiB") }
            }
        } catch let error as KuboError {
            throw error
        } catch {
            throw Self.bodyError(error)
        }
        return bytes
    }

    private func forEachLine(_ response: HTTPClientResponse, _ body: ([UInt8]) async throws -> Void) async throws {
        var splitter = NDJSONLineSplitter()
        do {
            for try await chunk in response.body {
                for line in splitter.feed(chunk) { try await body(line) }
            }
        } catch let error as KuboError {
            throw error
        } catch {
            throw Self.bodyError(error)
        }
        if let last = splitter.finish() { try await body(last) }
    }

    /// Kubo's error replies: JSON error objects from commands, text/plain from the HTTP layer.
    private func commandError(status: HTTPResponseStatus, headers: HTTPHeaders, body: [UInt8]) -> KuboError {
        struct ErrorBody: Decodable {
            var Message: String
            var Code: Int?
            var `Type`: String?
        }
        let contentType = headers.first(name: "Content-Type")?.lowercased() ?? ""
        let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if contentType.hasPrefix("application/json") {
            if let error = try? JSONDecoder().decode(ErrorBody.self, from: Data(body)), error.Type == "error" {
                return .command(message: error.Message, code: error.Code ?? 0)
            }
            return .protocolError("HTTP \(status.code) with an unreadable JSON error body \(Self.snippet(body))")
        }
        if contentType.hasPrefix("text/plain") {
            let code: Int
            switch status.code {
            case 400, 404: code = 1
            case 403: code = 4
            case 429: code = 3
            default: code = 0
            }
            return .command(message: text, code: code)
        }
        return .protocolError("HTTP \(status.code) (Content-Type \(contentType.isEmpty ? "none" : contentType)): \(Self.snippet(body))")
    }

    private static func deadlineAware(_ error: KuboError) -> KuboError {
        if case .command(let message, _) = error, message.contains("context deadline exceeded") {
            return .timeout(message)
        }
        return error
    }

    private static func transportError(_ error: any Error, command: String) -> any Error {
        if error is CancellationError { return error }
        if let error = error as? HTTPClientError {
            if error == .cancelled { return CancellationError() }
            if error == .deadlineExceeded { return KuboError.timeout("\(command): \(error)") }
        }
        return KuboError.unreachable("\(command): \(error)")
    }

    private static func bodyError(_ error: any Error) -> any Error {
        if error is CancellationError { return error }
        if let error = error as? HTTPClientError {
            if error == .cancelled { return CancellationError() }
            if error == .deadlineExceeded { return KuboError.timeout("\(error)") }
            if error == .remoteConnectionClosed { return KuboError.unreachable("connection closed mid-response") }
        }
        // A body cut off by a closed connection (daemon restart/crash) is Kubo going away.
        if let error = error as? HTTPParserError, error == .invalidEOFState {
            return KuboError.unreachable("connection closed mid-response")
        }
        if error is ChannelError || error is IOError { return KuboError.unreachable("reading the response body: \(error)") }
        return KuboError.protocolError("reading the response body: \(error)")
    }

    // MARK: Helpers

    static func goDuration(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return "\(max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000))ms"
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    private static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) {
                out.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    private static func snippet(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(200), as: UTF8.self)
        return "\"\(text)\"" + (bytes.count > 200 ? "..." : "")
    }
}

/// The stall timer's state: when progress last grew (Kubo ticks `{}`/the same count while stuck,
/// so only growth counts).
final class StallWatch: Sendable {
    private let state = Mutex<(max: Int, at: ContinuousClock.Instant?)>((0, nil))
    /// When progress last grew; nil until the response head arrived.
    var lastGrowth: ContinuousClock.Instant? { state.withLock { $0.at } }
    func start() { state.withLock { s in if s.at == nil { s.at = .now } } }
    func observe(_ progress: Int) {
        state.withLock { s in
            if progress > s.max || s.at == nil { s = (max(progress, s.max), .now) }
        }
    }
}
