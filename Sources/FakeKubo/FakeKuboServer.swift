import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Seams

/// A real HTTP server on loopback that speaks Kubo's RPC wire format (kubo-rpc.md §1-§4, §9) for
/// the commands anchorage uses, backed by a `FakeKuboNode`, plus an admin surface:
///
/// - `GET|POST /fake/knobs`: read, or replace (JSON `FakeKuboKnobs`; missing keys = defaults)
/// - `POST /fake/restart`: simulate a daemon restart
/// - `GET|POST /fake/snapshot`: `FakeKuboSnapshot` as JSON
public struct FakeKuboServer: Sendable {
    public let node: FakeKuboNode
    public var host: String
    public var port: Int
    public var logger: Logger

    public init(node: FakeKuboNode, host: String = "127.0.0.1", port: Int = 5001, logger: Logger = Logger(label: "fake-kubo")) {
        self.node = node
        self.host = host
        self.port = port
        self.logger = logger
    }

    private func application(onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        Application(
            responder: FakeKuboResponder(node: node),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// Serves until the task is cancelled. `onRunning` receives the bound port (useful with port 0).
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await application(onRunning: onRunning).run()
    }

    /// Serves until SIGINT/SIGTERM (graceful shutdown), for the `fake-kubo` executable.
    public func runUntilSignalled(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await application(onRunning: onRunning).runService()
    }

    /// Runs a server for `node` on `127.0.0.1:0` for the duration of `body`, which receives the
    /// base URL (`http://127.0.0.1:<port>`). The server is stopped when `body` returns or throws.
    public static func withRunning<T: Sendable>(
        node: FakeKuboNode,
        logger: Logger = Logger(label: "fake-kubo"),
        _ body: @Sendable (_ baseURL: String) async throws -> T
    ) async throws -> T {
        let server = FakeKuboServer(node: node, host: "127.0.0.1", port: 0, logger: logger)
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                defer { portSink.finish() }
                try await server.run(onRunning: { portSink.yield($0) })
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                if let failure = try await group.next() { return failure! }
                throw KuboError.unreachable("fake kubo server did not start")
            }
            defer { group.cancelAll() }
            return try await body("http://127.0.0.1:\(port)")
        }
    }
}

/// The request handler. Everything below `/api/v0/` goes through Kubo's gates (method, origin,
/// user agent), then command dispatch.
struct FakeKuboResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let node: FakeKuboNode

    static let commands: Set<String> = ["id", "version", "pin/add", "pin/rm", "pin/ls", "swarm/connect", "repo/stat"]

    func respond(to request: Request, context: Context) async throws -> Response {
        let path = request.uri.path
        if path.hasPrefix("/fake/") { return try await admin(request, path: path) }
        guard path.hasPrefix("/api/v0/") else { return Wire.text(.notFound, "404 page not found") }
        switch request.method {
        case .post: break
        case .options:
            var headers = HTTPFields()
            headers[Wire.allow] = "OPTIONS, POST"
            return Response(status: .noContent, headers: headers)
        default:
            var headers = HTTPFields()
            headers[Wire.allow] = "OPTIONS, POST"
            return Wire.text(.methodNotAllowed, "405 - Method Not Allowed", extra: headers)
        }
        if request.headers[Wire.origin] != nil || request.headers[Wire.referer] != nil {
            return Wire.text(.forbidden, "403 - Forbidden")
        }
        if let ua = request.headers[.userAgent], ua.hasPrefix("Mozilla"), !ua.contains("Electron") {
            return Wire.text(.forbidden, "403 - Forbidden")
        }
        let command = String(path.dropFirst("/api/v0/".count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard Self.commands.contains(command) else { return Wire.text(.notFound, "404 page not found") }
        let query = Query(request.uri.queryParameters)
        do {
            return try await dispatch(command, query: query, request: request)
        } catch let failure as Wire.PreDispatch {
            return Wire.text(failure.status, failure.message)
        } catch KuboError.unreachable(let message) {
            // A down daemon does not answer: drop the connection (the client's `.unreachable`).
            return Response(status: .ok, headers: [.connection: "close"], body: ResponseBody { _ in throw KuboError.unreachable(message) })
        } catch let error as KuboError {
            return Wire.commandError(error, version: node.kuboVersion)
        }
    }

    private func dispatch(_ command: String, query: Query, request: Request) async throws -> Response {
        // Kubo's global `timeout=` option. An unparseable value makes Kubo return an empty 200.
        var timeout: Duration? = nil
        if let raw = query.first("timeout") {
            guard let parsed = GoDuration.parse(raw) else { return Response(status: .ok, headers: [.contentType: "text/plain"]) }
            timeout = parsed
        }
        switch command {
        case "id":
            if query.all("arg").first != nil {
                throw KuboError.command(message: "fake kubo: id of another peer is not supported", code: 0)
            }
            let identity = try await node.idCommand()
            return Wire.single(
                IDOutput(
                    ID: identity.peerID,
                    PublicKey: node.publicKey,
                    Addresses: identity.addresses,
                    AgentVersion: identity.agentVersion,
                    Protocols: ["/ipfs/bitswap/1.2.0", "/ipfs/id/1.0.0", "/ipfs/kad/1.0.0"]
                ),
                version: node.kuboVersion
            )
        case "version":
            let version = try await node.versionCommand()
            return Wire.single(
                VersionOutput(Version: version, Commit: "", Repo: "18", System: "amd64/linux", Golang: "go1.26.0"),
                version: node.kuboVersion
            )
        case "pin/add":
            return try await pinAdd(query: query, timeout: timeout, request: request)
        case "pin/rm":
            let args = try query.required("arg", name: "ipfs-path")
            if try !query.bool("recursive", short: "r", default: true) {
                throw KuboError.command(message: "fake kubo: direct pins are not supported", code: 0)
            }
            let removed = try await {
                var removed: [String] = []
                for arg in args { removed.append(try await node.pinRm(arg: arg)) }
                return removed
            }()
            return Wire.single(PinsOutput(Pins: removed), version: node.kuboVersion)
        case "pin/ls":
            return try await pinLs(query: query, request: request)
        case "swarm/connect":
            let args = try query.required("arg", name: "address")
            let lines = try await {
                var lines: [String] = []
                for arg in args { lines.append("connect \(try await node.swarmConnect(address: arg)) success") }
                return lines
            }()
            return Wire.single(StringsOutput(Strings: lines), version: node.kuboVersion)
        case "repo/stat":
            let sizeOnly = try query.bool("size-only", short: "s", default: false)
            let stat = try await node.repoStatCommand(sizeOnly: sizeOnly)
            return Wire.single(
                RepoStatOutput(
                    RepoSize: stat.repoSize,
                    StorageMax: stat.storageMax,
                    NumObjects: stat.numObjects,
                    RepoPath: sizeOnly ? "" : "/fake-kubo/.ipfs",
                    Version: sizeOnly ? "" : "fs-repo@18"
                ),
                version: node.kuboVersion
            )
        default:
            return Wire.text(.notFound, "404 page not found")
        }
    }

    /// Runs a command, cancelling it if the client goes away (as Kubo cancels the request context
    /// on disconnect). Hummingbird closes the connection after such a response, so the response
    /// must say `Connection: close` (Kubo itself keeps the connection alive).
    private func cancellingOnClose<T: Sendable>(_ request: Request, _ work: @Sendable () async throws -> T) async throws -> T {
        try await request.body.consumeWithCancellationOnInboundClose { _ in try await work() }
    }

    // MARK: pin/add

    private enum PinEvent: Sendable {
        case progress(Int?)
        case done([String])
    }

    private func pinAdd(query: Query, timeout: Duration?, request: Request) async throws -> Response {
        let args = try query.required("arg", name: "ipfs-path")
        let recursive = try query.bool("recursive", short: "r", default: true)
        let progress = try query.bool("progress", short: nil, default: false)
        let name = query.first("name") ?? query.first("n")
        guard recursive else { throw KuboError.command(message: "fake kubo: direct pins are not supported", code: 0) }
        let node = self.node
        if !progress {
            let pinned = try await cancellingOnClose(request) {
                var pinned: [String] = []
                for arg in args { pinned.append(try await node.pinAdd(arg: arg, name: name, timeout: timeout)) }
                return pinned
            }
            var response = Wire.single(PinsOutput(Pins: pinned), version: node.kuboVersion)
            response.headers[.connection] = "close"
            return response
        }
        // Streamed: the pin runs in its own task feeding a stream. The status line is only
        // committed once the first frame (or an error) exists, so that early errors are a 500.
        let (events, sink) = AsyncThrowingStream<PinEvent, any Error>.makeStream()
        let work = Task {
            do {
                var pinned: [String] = []
                for arg in args {
                    pinned.append(try await node.pinAdd(arg: arg, name: name, timeout: timeout) { sink.yield(.progress($0)) })
                }
                sink.yield(.done(pinned))
                sink.finish()
            } catch {
                sink.finish(throwing: error)
            }
        }
        sink.onTermination = { termination in
            if case .cancelled = termination { work.cancel() }
        }
        let iterator = IteratorBox(events.makeAsyncIterator())
        let first: PinEvent?
        do {
            first = try await iterator.next()
        } catch let KuboError.command(message, code) {
            var response = Wire.commandError(.command(message: message, code: code), version: node.kuboVersion)
            response.headers[.connection] = "close"
            return response
        } catch {
            // A restart (or anything else non-command): the daemon went away; drop the connection.
            return Response(status: .ok, headers: [.connection: "close"], body: ResponseBody { _ in throw error })
        }
        var headers = Wire.commandHeaders(version: node.kuboVersion)
        headers[Wire.chunkedOutput] = "1"
        headers[.connection] = "close"
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                try await request.body.consumeWithCancellationOnInboundClose { _ in
                    var event = first
                    do {
                        while let current = event {
                            switch current {
                            case .progress(let p):
                                try await writer.write(Wire.line(ProgressOutput(Progress: p)))
                            case .done(let pins):
                                try await writer.write(Wire.line(PinsOutput(Pins: pins)))
                            }
                            event = try await iterator.next()
                        }
                        try await writer.finish(nil)
                    } catch let KuboError.command(message, _) {
                        // Mid-stream error: only the trailer carries it.
                        var trailers = HTTPFields()
                        trailers[Wire.streamError] = message
                        try await writer.finish(trailers)
                    }
                    // Anything else (restart, cancellation) propagates and drops the connection.
                }
            }
        )
    }

    // MARK: pin/ls

    private func pinLs(query: Query, request: Request) async throws -> Response {
        let type = query.first("type") ?? query.first("t") ?? "all"
        guard ["direct", "indirect", "recursive", "all"].contains(type) else {
            throw KuboError.command(message: "invalid type '\(type)', must be one of {direct, indirect, recursive, all}", code: 0)
        }
        let stream = try query.bool("stream", short: "s", default: false)
        let nameFilter = query.first("name") ?? query.first("n")
        let names = try query.bool("names", short: nil, default: false) || nameFilter != nil
        let args = query.all("arg")
        let node = self.node
        var pins: [FakeKuboSnapshot.Pin] = []
        var failure: KuboError? = nil
        if args.isEmpty {
            pins = try await node.pinLs(type: type)
        } else {
            for arg in args {
                do {
                    // Kubo prints the resolved CID (canonical: lowercase base32 for v1), not the argument.
                    pins.append(try await node.pinLs(arg: arg, type: type))
                } catch let error as KuboError {
                    if case .unreachable = error { throw error }  // the daemon is gone: no reply at all
                    failure = error
                    break
                }
            }
        }
        if let nameFilter { pins = pins.filter { ($0.name ?? "").contains(nameFilter) } }
        if let failure, !stream || pins.isEmpty { return Wire.commandError(failure, version: node.kuboVersion) }
        if stream {
            var headers = Wire.commandHeaders(version: node.kuboVersion)
            headers[Wire.chunkedOutput] = "1"
            let lines = pins.map { pin in
                Wire.line(PinLsLine(Cid: pin.cid, Type: "recursive", Name: names ? (pin.name.flatMap { $0.isEmpty ? nil : $0 }) : nil))
            }
            let trailerMessage = failure.map { error -> String in
                if case .command(let message, _) = error { return message }
                return "\(error)"
            }
            return Response(
                status: .ok,
                headers: headers,
                body: ResponseBody { writer in
                    try await writer.write(contentsOf: lines)
                    if let trailerMessage {
                        var trailers = HTTPFields()
                        trailers[Wire.streamError] = trailerMessage
                        try await writer.finish(trailers)
                    } else {
                        try await writer.finish(nil)
                    }
                }
            )
        }
        if pins.isEmpty { return Wire.single(EmptyOutput(), version: node.kuboVersion) }
        var keys: [String: PinLsKey] = [:]
        for pin in pins { keys[pin.cid] = PinLsKey(Type: "recursive", Name: names ? (pin.name ?? "") : "") }
        return Wire.single(PinLsOutput(Keys: keys), version: node.kuboVersion)
    }

    // MARK: admin

    private func admin(_ request: Request, path: String) async throws -> Response {
        switch (path, request.method) {
        case ("/fake/knobs", .get):
            return Wire.json(.ok, await node.currentKnobs())
        case ("/fake/knobs", .post):
            let body = try await request.body.collect(upTo: 1 << 20)
            do {
                let knobs = try JSONDecoder().decode(FakeKuboKnobs.self, from: Data(body.readableBytesView))
                await node.setKnobs(knobs)
                return Wire.json(.ok, knobs)
            } catch {
                return Wire.text(.badRequest, "invalid knobs: \(error)")
            }
        case ("/fake/restart", .post):
            await node.restart()
            return Wire.json(.ok, await node.snapshot())
        case ("/fake/snapshot", .get), ("/fake/snapshot", .post):
            return Wire.json(.ok, await node.snapshot())
        default:
            return Wire.text(.notFound, "404 page not found")
        }
    }
}

/// Lets the streamed response body continue the iterator the responder started. Used by one
/// task at a time (the responder, then the body writer).
private final class IteratorBox<Element: Sendable>: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<Element, any Error>.AsyncIterator
    init(_ iterator: AsyncThrowingStream<Element, any Error>.AsyncIterator) { self.iterator = iterator }
    func next() async throws -> Element? { try await iterator.next() }
}

// MARK: - Query parsing (go-ipfs-cmds rules)

struct Query: Sendable {
    var pairs: [(String, String)]

    init(_ parameters: some Sequence<(key: Substring, value: Substring)>) {
        pairs = parameters.map { (String($0.key), String($0.value)) }
    }

    func all(_ key: String) -> [String] { pairs.filter { $0.0 == key }.map(\.1) }
    func first(_ key: String) -> String? { pairs.first { $0.0 == key }?.1 }

    func required(_ key: String, name: String) throws -> [String] {
        let values = all(key)
        guard !values.isEmpty else { throw Wire.PreDispatch(status: .badRequest, message: "argument \"\(name)\" is required") }
        return values
    }

    /// Kubo's bool option: true/false/1/0/t/f (any case), empty = true.
    func bool(_ long: String, short: String?, default value: Bool) throws -> Bool {
        let longValues = all(long)
        let shortValues = short.map(all) ?? []
        if !longValues.isEmpty && !shortValues.isEmpty {
            throw Wire.PreDispatch(status: .badRequest, message: "duplicate command options were provided (\"\(short!)\" and \"\(long)\")")
        }
        let values = longValues.isEmpty ? shortValues : longValues
        guard let raw = values.first else { return value }
        if values.count > 1 {
            throw Wire.PreDispatch(status: .badRequest, message: "expected key \(long) to have only a single value, received \(values)")
        }
        switch raw.lowercased() {
        case "", "true", "1", "t": return true
        case "false", "0", "f": return false
        default:
            throw Wire.PreDispatch(status: .badRequest, message: "could not convert value \"\(raw)\" to type \"bool\" (for option \"-\(long)\")")
        }
    }
}

/// Go's `time.ParseDuration` for the forms clients send (`30s`, `1500ms`, `1m30s`, `0.5s`).
enum GoDuration {
    static func parse(_ text: String) -> Duration? {
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return .zero }
        var total = Duration.zero
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !$0.isNumber && $0 != "." }
            rest = rest.dropFirst(unit.count)
            let nanos: Double
            switch unit {
            case "ns": nanos = 1
            case "us", "µs": nanos = 1e3
            case "ms": nanos = 1e6
            case "s": nanos = 1e9
            case "m": nanos = 60e9
            case "h": nanos = 3600e9
            default: return nil
            }
            total += .nanoseconds(Int64(value * nanos))
        }
        return total
    }
}

// MARK: - Wire format

enum Wire {
    struct PreDispatch: Error {
        var status: HTTPResponse.Status
        var message: String
    }

    static let allow = HTTPField.Name("Allow")!
    static let origin = HTTPField.Name("Origin")!
    static let referer = HTTPField.Name("Referer")!
    static let trailer = HTTPField.Name("Trailer")!
    static let streamError = HTTPField.Name("X-Stream-Error")!
    static let chunkedOutput = HTTPField.Name("X-Chunked-Output")!
    static let nosniff = HTTPField.Name("X-Content-Type-Options")!
    static let allowHeaders = HTTPField.Name("Access-Control-Allow-Headers")!
    static let exposeHeaders = HTTPField.Name("Access-Control-Expose-Headers")!
    static let vary = HTTPField.Name("Vary")!

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    /// Go's `http.Error`: what Kubo sends for failures before a command runs.
    static func text(_ status: HTTPResponse.Status, _ message: String, extra: HTTPFields = HTTPFields()) -> Response {
        var headers = extra
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[nosniff] = "nosniff"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: message + "\n")))
    }

    static func commandHeaders(version: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.server] = "kubo/\(version)"
        headers[trailer] = "X-Stream-Error"
        headers[allowHeaders] = "X-Stream-Output, X-Chunked-Output, X-Content-Length"
        headers[exposeHeaders] = "X-Stream-Output, X-Chunked-Output, X-Content-Length"
        headers[vary] = "Origin"
        return headers
    }

    static func line(_ value: some Encodable) -> ByteBuffer {
        var data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        data.append(0x0A)
        return ByteBuffer(bytes: data)
    }

    /// A one-shot command response: one JSON value + `\n`, chunked (no Content-Length), like Kubo.
    static func single(_ value: some Encodable, version: String, status: HTTPResponse.Status = .ok) -> Response {
        let buffer = line(value)
        return Response(
            status: status,
            headers: commandHeaders(version: version),
            body: ResponseBody { writer in
                try await writer.write(buffer)
                try await writer.finish(nil)
            }
        )
    }

    /// Kubo's error object: 500, or 400 for Code 1.
    static func commandError(_ error: KuboError, version: String = "0.44.0") -> Response {
        let message: String
        var code = 0
        switch error {
        case .command(let m, let c): (message, code) = (m, c)
        case .unreachable(let m), .timeout(let m), .stalled(let m), .protocolError(let m): message = m
        }
        return single(
            ErrorOutput(Message: message, Code: code, Type: "error"),
            version: version,
            status: code == 1 ? .badRequest : .internalServerError
        )
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: line(value)))
    }
}

// Output shapes, Go-cased as Kubo emits them.
struct ErrorOutput: Encodable {
    var Message: String
    var Code: Int
    var `Type`: String
}
struct PinsOutput: Encodable { var Pins: [String] }
struct ProgressOutput: Encodable { var Progress: Int? }  // nil -> `{}` (omitempty)
struct StringsOutput: Encodable { var Strings: [String] }
struct EmptyOutput: Encodable {}
struct PinLsLine: Encodable {
    var Cid: String
    var `Type`: String
    var Name: String?
}
struct PinLsKey: Encodable {
    var `Type`: String
    var Name: String
}
struct PinLsOutput: Encodable { var Keys: [String: PinLsKey] }
struct IDOutput: Encodable {
    var ID: String
    var PublicKey: String
    var Addresses: [String]
    var AgentVersion: String
    var Protocols: [String]
}
struct VersionOutput: Encodable {
    var Version: String
    var Commit: String
    var Repo: String
    var System: String
    var Golang: String
}
struct RepoStatOutput: Encodable {
    var RepoSize: UInt64
    var StorageMax: UInt64
    var NumObjects: UInt64
    var RepoPath: String
    var Version: String
}
