import ConformanceKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Serves any ``ConformanceTransport`` (the in-memory services, a transport with a planted
/// defect) over real HTTP on 127.0.0.1, so the `anchorage-conformance` executable can run
/// against it.
enum TransportServer {
    static func serve<T: Sendable>(
        _ transport: any ConformanceTransport,
        _ body: @Sendable @escaping (_ baseURL: String) async throws -> T
    ) async throws -> T {
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            let bytes = try await request.body.collect(upTo: 16 << 20)
            let forwarded = ConformanceRequest(
                method: request.method.rawValue,
                path: request.uri.description,
                headers: request.headers.map { ($0.name.rawName, $0.value) },
                body: bytes.readableBytes == 0 && request.method == .get ? nil : Array(buffer: bytes)
            )
            let answer = try await transport.send(forwarded)
            var fields = HTTPFields()
            for (name, value) in answer.headers {
                if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
            }
            return Response(
                status: .init(code: answer.status),
                headers: fields,
                body: .init(byteBuffer: ByteBuffer(bytes: answer.body))
            )
        }
        let app = Application(responder: responder, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            let port = try #require(client.port)
            return try await body("http://127.0.0.1:\(port)")
        }
    }
}

/// The reference server with one planted defect: it refuses `limit=1000` (the spec's maximum)
/// with 400, as a service that caps pages at 500 would. Exactly one required case sends it.
struct LimitCappingTransport: ConformanceTransport {
    let inner: any ConformanceTransport
    var isRemote: Bool { inner.isRemote }

    func send(_ request: ConformanceRequest) async throws -> ConformanceResponse {
        if request.pathOnly == "/pins", request.method == "GET",
            (request.query ?? "").split(separator: "&").contains("limit=1000")
        {
            let body = #"{"error":{"reason":"BAD_REQUEST","details":"limit must be at most 500"}}"#
            return ConformanceResponse(status: 400, headers: [("Content-Type", "application/json")], body: Array(body.utf8))
        }
        return try await inner.send(request)
    }
}

/// The `anchorage-conformance` executable beside the test bundle (`swift build` builds it).
enum ConformanceExecutable {
    static var path: String {
        URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("anchorage-conformance").path
    }

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A fresh scratch directory for one test's files.
    static func scratch(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-\(label)-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Forwards to another transport and counts the pins created through it, so a test can act
/// (send a signal) while a run is halfway.
actor CountingTransport: ConformanceTransport {
    let inner: any ConformanceTransport
    private(set) var pinsCreated = 0
    nonisolated var isRemote: Bool { false }

    init(_ inner: any ConformanceTransport) { self.inner = inner }

    func send(_ request: ConformanceRequest) async throws -> ConformanceResponse {
        let response = try await inner.send(request)
        if request.method == "POST", request.pathOnly.hasPrefix("/pins"), response.status == 202 { pinsCreated += 1 }
        return response
    }
}

/// Answers from a script of responses, then 200 `{}`; records when each request arrived.
actor ScriptedTransport: ConformanceTransport {
    private var script: [ConformanceResponse]
    private(set) var arrivals: [ContinuousClock.Instant] = []
    nonisolated var isRemote: Bool { false }

    init(_ script: [ConformanceResponse]) { self.script = script }

    func send(_ request: ConformanceRequest) async throws -> ConformanceResponse {
        arrivals.append(.now)
        if !script.isEmpty { return script.removeFirst() }
        return ConformanceResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array("{}".utf8))
    }
}
