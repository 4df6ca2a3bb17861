import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOEmbedded
import PinsHTTP

/// Sends requests to a node's real router with no socket: a `Request` built in memory, the
/// router's responder, the response body collected. Each call is awaited to completion, so the
/// API handling (auth, validation, PostgreSQL, dispatch) is part of the calling event.
struct InProcessHTTP: Sendable {
    let responder: RouterResponder<AppRequestContext>
    let channel: NIOAsyncTestingChannel
    let logger: Logger

    init(router: Router<AppRequestContext>) {
        self.responder = router.buildResponder()
        self.channel = NIOAsyncTestingChannel()
        self.logger = silentLogger("anchorage.sim.http")
    }

    struct Reply: Sendable {
        var status: Int
        var body: String
    }

    func send(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: String? = nil) async -> Reply {
        var fields = HTTPFields()
        if let token { fields[.authorization] = "Bearer \(token)" }
        var buffer = ByteBuffer()
        if let json {
            fields[.contentType] = "application/json"
            buffer = ByteBuffer(string: json)
            fields[.contentLength] = String(buffer.readableBytes)
        }
        let request = Request(
            head: HTTPRequest(method: method, scheme: "http", authority: "sim", path: path, headerFields: fields),
            body: RequestBody(buffer: buffer)
        )
        let context = AppRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: logger))
        let response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch let error as any HTTPResponseError {
            return Reply(status: Int(error.status.code), body: "")
        } catch {
            return Reply(status: 500, body: "\(error)")
        }
        let collector = BodyCollector()
        do {
            try await response.body.write(collector)
        } catch {
            return Reply(status: Int(response.status.code), body: "")
        }
        return Reply(status: Int(response.status.code), body: String(buffer: collector.buffer))
    }
}

private final class BodyCollector: ResponseBodyWriter, @unchecked Sendable {
    // @unchecked: written by one request's handling, read after it completed.
    var buffer = ByteBuffer()
    func write(_ buffer: ByteBuffer) async throws {
        var b = buffer
        self.buffer.writeBuffer(&b)
    }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
