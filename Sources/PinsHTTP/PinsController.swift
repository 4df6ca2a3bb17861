import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Pins
import Seams
import Tokens

/// The five operations of the Pinning Services API.
public struct PinsController<Store: PinStore>: Sendable {
    public let service: PinService<Store>
    public let delegates: any DelegateSource
    /// `limits.maxConcurrentListsPerToken`: listings are the API's largest answers.
    let listGate: ConcurrencyGate

    public init(service: PinService<Store>, delegates: any DelegateSource) {
        self.service = service
        self.delegates = delegates
        self.listGate = ConcurrencyGate(limit: service.limits.maxConcurrentListsPerToken)
    }

    public func register(on group: RouterGroup<AppRequestContext>) {
        group.get("pins", use: list)
        group.post("pins", use: add)
        group.get("pins/:requestid", use: get)
        group.post("pins/:requestid", use: replace)
        group.delete("pins/:requestid", use: delete)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let org = try requireOrg(context)
        let query = try service.parseQuery(request.uri.query.map { Substring($0) })
        let token = context.claims?.tokenID ?? org
        let response = try await listGate.run(token) {
            let page = try await service.list(org: org, query: query)
            return Self.render(page, delegates: await currentDelegates(), maxBytes: service.limits.maxResponseBytes)
        }
        guard let response else {
            throw PinsError.tooManyRequests(
                "at most \(listGate.limit) listings may run at once per token; retry when one has finished",
                retryAfter: 1
            )
        }
        return response
    }

    /// A page as JSON, stopping before the result that would pass `maxBytes` (escaping can make
    /// the text larger than the stored data the store budgeted for). At least one result is
    /// written, and `count` stays the total, so clients page on with `before`.
    static func render(_ page: PinPage, delegates: [String], maxBytes: Int) -> Response {
        var writer = JSONWriter(capacity: 256 + min(page.results.count, 64) * 400)
        writer.raw("{\"count\":")
        writer.int(page.count)
        writer.raw(",\"results\":[")
        for (n, record) in page.results.enumerated() {
            let mark = writer.buffer.writerIndex
            if n > 0 { writer.raw(",") }
            writer.pinStatus(record, delegates: delegates)
            if n > 0, writer.buffer.readableBytes > maxBytes {
                writer.buffer.moveWriterIndex(to: mark)
                break
            }
        }
        writer.raw("]}")
        return json(.ok, writer.buffer)
    }

    @Sendable func add(_ request: Request, context: AppRequestContext) async throws -> Response {
        let org = try requireOrg(context)
        let pin = try await readPin(request)
        let record = try await service.add(org: org, request: pin)
        return try await pinStatus(.accepted, record)
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let org = try requireOrg(context)
        let record = try await service.get(org: org, requestID: requestID(context))
        return try await pinStatus(.ok, record)
    }

    @Sendable func replace(_ request: Request, context: AppRequestContext) async throws -> Response {
        let org = try requireOrg(context)
        let id = requestID(context)
        let pin = try await readPin(request)
        let record = try await service.replace(org: org, requestID: id, with: pin)
        return try await pinStatus(.accepted, record)
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let org = try requireOrg(context)
        try await service.delete(org: org, requestID: requestID(context))
        return Response(status: .accepted)
    }

    // MARK: Helpers

    private func requireOrg(_ context: AppRequestContext) throws -> TypeID {
        guard let org = context.org else { throw PinsError.unauthorized("access token is missing or invalid") }
        return org
    }

    private func requestID(_ context: AppRequestContext) -> String {
        context.parameters.get("requestid") ?? ""
    }

    /// Reads and validates a `Pin` body within `limits.maxBodyBytes`; nothing is stored unless
    /// every check passes.
    private func readPin(_ request: Request) async throws -> PinRequest {
        let max = service.limits.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > max {
            throw PinsError.badRequest(
                reason: "BODY_TOO_LARGE",
                details: "the request body is \(length) bytes; at most \(max) are allowed"
            )
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: max)
        } catch is NIOTooManyBytesError {
            throw PinsError.badRequest(reason: "BODY_TOO_LARGE", details: "the request body exceeds \(max) bytes")
        }
        guard buffer.readableBytes > 0 else {
            throw PinsError.badRequest(reason: "INVALID_BODY", details: "a JSON Pin object is required in the body")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [])
        } catch {
            throw PinsError.badRequest(reason: "INVALID_BODY", details: "the request body is not valid JSON")
        }
        return try PinRequest(json: json, limits: service.limits)
    }

    private func currentDelegates() async -> [String] {
        Array(await delegates.delegates().prefix(Wire.maxDelegates))
    }

    private func pinStatus(_ status: HTTPResponse.Status, _ record: PinRecord) async throws -> Response {
        let delegates = await currentDelegates()
        guard !delegates.isEmpty else {
            throw PinsError.unavailable("no IPFS node is available to receive pins (no delegates)")
        }
        var writer = JSONWriter()
        writer.pinStatus(record, delegates: delegates)
        return Self.json(status, writer.buffer)
    }

    static func json(_ status: HTTPResponse.Status, _ buffer: ByteBuffer) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}
