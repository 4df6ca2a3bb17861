import Foundation
import Seams

/// JetStream management and publishing over a `NATSClient` (the `$JS.API.*` request API).
public struct JetStream: Sendable {
    public let client: NATSClient
    public let apiPrefix: String
    /// Timeout of API calls and publish acks.
    public var timeout: Duration

    public init(client: NATSClient, apiPrefix: String = "$JS.API", timeout: Duration? = nil) {
        self.client = client
        self.apiPrefix = apiPrefix
        self.timeout = timeout ?? client.options.requestTimeout
    }

    // MARK: API plumbing

    /// Calls `$JS.API.<api>`; decodes `T` or throws the `JetStreamError` the server returned.
    func call<T: Decodable>(_ api: String, _ body: (some Encodable)?, as: T.Type) async throws -> T {
        let payload = try body.map { Array(try JSONEncoder().encode($0)) } ?? []
        let reply: NATSMessage
        do {
            reply = try await client.request("\(apiPrefix).\(api)", payload, timeout: timeout)
        } catch NATSError.noResponders {
            throw BusError.unavailable("JetStream is not enabled or not ready (no responders on \(apiPrefix).\(api))")
        }
        return try Self.decode(reply.payload, as: T.self)
    }

    static func decode<T: Decodable>(_ payload: [UInt8], as: T.Type) throws -> T {
        let data = Data(payload)
        let decoder = JSONDecoder()
        if let e = try? decoder.decode(APIErrorEnvelope.self, from: data), let err = e.error {
            throw JetStreamError(code: err.code, errCode: err.errCode ?? 0, description: err.description ?? "")
        }
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw NATSError.protocolViolation("unexpected JetStream response \(String(decoding: payload.prefix(200), as: UTF8.self)): \(error)")
        }
    }

    struct Empty: Encodable {}

    // MARK: streams

    /// Creates the stream, or updates it when it exists with a different configuration.
    @discardableResult
    public func createOrUpdateStream(_ config: StreamConfig) async throws -> StreamInfo {
        do {
            return try await call("STREAM.CREATE.\(config.name)", config, as: StreamInfo.self)
        } catch let e as JetStreamError where e.errCode == JetStreamError.streamNameInUse {
            let existing = try await streamInfo(config.name)
            if config.isSatisfied(by: existing.config) { return existing }
            return try await call("STREAM.UPDATE.\(config.name)", config, as: StreamInfo.self)
        }
    }

    public func streamInfo(_ name: String) async throws -> StreamInfo {
        try await call("STREAM.INFO.\(name)", Empty?.none, as: StreamInfo.self)
    }

    public func deleteStream(_ name: String) async throws {
        _ = try await call("STREAM.DELETE.\(name)", Empty?.none, as: DeleteResponse.self)
    }

    // MARK: consumers

    /// Creates a consumer or updates it when its configuration changed (durable when
    /// `durableName` is set; ephemeral otherwise).
    @discardableResult
    public func createConsumer(stream: String, _ config: ConsumerConfig) async throws -> ConsumerInfo {
        let api = if let name = config.durableName ?? config.name { "CONSUMER.CREATE.\(stream).\(name)" } else { "CONSUMER.CREATE.\(stream)" }
        return try await call(api, ConsumerCreateRequest(streamName: stream, config: config), as: ConsumerInfo.self)
    }

    public func consumerInfo(stream: String, name: String) async throws -> ConsumerInfo {
        try await call("CONSUMER.INFO.\(stream).\(name)", Empty?.none, as: ConsumerInfo.self)
    }

    /// Deletes a consumer; false when it did not exist.
    @discardableResult
    public func deleteConsumer(stream: String, name: String) async throws -> Bool {
        do {
            return try await call("CONSUMER.DELETE.\(stream).\(name)", Empty?.none, as: DeleteResponse.self).success
        } catch let e as JetStreamError where e.errCode == JetStreamError.consumerNotFound {
            return false
        }
    }

    // MARK: publish

    /// Publishes to a stream subject and waits for the server's ack. With `msgID`, a repeat
    /// inside the stream's duplicate window is not stored again (`duplicate` is true).
    public func publish(_ subject: String, _ payload: [UInt8], msgID: String? = nil, headers: NATSHeaders? = nil) async throws -> PubAck {
        var h = headers ?? NATSHeaders()
        if let msgID { h["Nats-Msg-Id"] = msgID }
        let reply: NATSMessage
        do {
            reply = try await client.request(subject, payload, headers: h.isEmpty ? nil : h, timeout: timeout)
        } catch NATSError.noResponders {
            throw BusError.server(code: 503, description: "no stream listens on \(subject)")
        }
        return try Self.decode(reply.payload, as: PubAck.self)
    }
}
