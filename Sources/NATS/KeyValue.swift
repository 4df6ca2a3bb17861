import Seams

/// One key's state as read from a bucket.
public struct KeyValueEntry: Sendable, Equatable {
    public enum Operation: String, Sendable {
        case put = "PUT"
        case delete = "DEL"
        case purge = "PURGE"
    }

    public var bucket: String
    public var key: String
    public var value: [UInt8]
    /// The stream sequence of this write.
    public var revision: UInt64
    public var operation: Operation

    public init(bucket: String, key: String, value: [UInt8], revision: UInt64, operation: Operation) {
        (self.bucket, self.key, self.value, self.revision, self.operation) = (bucket, key, value, revision, operation)
    }
}

public struct KeyValueConfig: Sendable {
    public var bucket: String
    /// Values kept per key (1…64).
    public var history: Int = 1
    /// Every key expires this long after its last write (nil: never).
    public var maxAge: Duration?
    /// Per-key TTLs (`Nats-TTL`, nats-server 2.11+).
    public var allowMsgTTL: Bool = true
    /// How long the server keeps the marker it writes when a key expires, so that watchers see
    /// the expiry (nil: no markers; `get` returns nil after expiry either way).
    public var limitMarkerTTL: Duration?
    public var replicas: Int = 1
    public var storage: StreamConfig.Storage = .file
    public var maxValueSize: Int32?

    public init(bucket: String) { self.bucket = bucket }
}

/// A KV bucket: stream `KV_<bucket>` with subjects `$KV.<bucket>.<key>`; a key's revision is the
/// stream sequence of its last write. Compare-and-set failures throw `BusError.conflict(key:)`.
public struct KeyValue: Sendable {
    public let js: JetStream
    public let bucket: String
    public var streamName: String { "KV_\(bucket)" }

    public init(js: JetStream, bucket: String) {
        self.js = js
        self.bucket = bucket
    }

    /// Creates the bucket, or updates its stream to `config` when it differs.
    @discardableResult
    public static func create(_ js: JetStream, _ config: KeyValueConfig) async throws -> KeyValue {
        guard isValidBucket(config.bucket) else { throw NATSError.invalidSubject("KV bucket \(config.bucket)") }
        var s = StreamConfig(name: "KV_\(config.bucket)", subjects: ["$KV.\(config.bucket).>"])
        s.maxMsgsPerSubject = Int64(max(1, min(64, config.history)))
        s.maxAge = config.maxAge?.nanoseconds ?? 0
        s.storage = config.storage
        s.numReplicas = config.replicas
        s.discard = .new
        s.denyDelete = true
        s.allowRollupHeaders = true
        s.allowDirect = true
        s.maxMsgSize = config.maxValueSize
        // The duplicate window may not exceed max_age.
        let twoMinutes = Duration.seconds(120)
        s.duplicateWindow = (config.maxAge.map { min($0, twoMinutes) } ?? twoMinutes).nanoseconds
        if config.allowMsgTTL || config.limitMarkerTTL != nil { s.allowMsgTTL = true }
        s.subjectDeleteMarkerTTL = config.limitMarkerTTL?.nanoseconds
        try await js.createOrUpdateStream(s)
        return KeyValue(js: js, bucket: config.bucket)
    }

    // MARK: read

    /// The key's current value; nil when absent, deleted, purged or expired.
    public func get(_ key: String) async throws -> KeyValueEntry? {
        guard let e = try await lastEntry(key), e.operation == .put else { return nil }
        return e
    }

    /// The last write of `key`, delete markers included (direct get).
    public func lastEntry(_ key: String) async throws -> KeyValueEntry? {
        try Self.validate(key: key)
        let reply: NATSMessage
        do {
            reply = try await js.client.request("\(js.apiPrefix).DIRECT.GET.\(streamName).\(subject(key))", [], timeout: js.timeout)
        } catch NATSError.noResponders {
            throw BusError.unavailable("KV bucket \(bucket) not found or not ready")
        }
        switch reply.status {
        case nil: break
        case 404: return nil
        default:
            throw JetStreamError(code: reply.status ?? 0, errCode: 0, description: reply.headers?.statusDescription ?? "direct get failed")
        }
        guard let seqText = reply.headers?["Nats-Sequence"], let seq = UInt64(seqText) else {
            throw NATSError.protocolViolation("direct get reply without Nats-Sequence")
        }
        return KeyValueEntry(
            bucket: bucket,
            key: key,
            value: reply.payload,
            revision: seq,
            operation: Self.operation(reply.headers)
        )
    }

    /// KV-Operation, or a server limit marker (Nats-Marker-Reason: MaxAge/Purge/Remove).
    static func operation(_ headers: NATSHeaders?) -> KeyValueEntry.Operation {
        if let op = headers?["KV-Operation"], let o = KeyValueEntry.Operation(rawValue: op) { return o }
        if let reason = headers?["Nats-Marker-Reason"] { return reason == "Remove" ? .delete : .purge }
        return .put
    }

    // MARK: write

    /// Stores unconditionally; returns the new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], ttl: Duration? = nil) async throws -> UInt64 {
        try await write(key, value, headers: Self.ttlHeaders(ttl))
    }

    /// Stores only if the key is absent (never written, deleted, purged or expired).
    @discardableResult
    public func create(_ key: String, _ value: [UInt8], ttl: Duration? = nil) async throws -> UInt64 {
        var h = Self.ttlHeaders(ttl)
        h["Nats-Expected-Last-Subject-Sequence"] = "0"
        do {
            return try await write(key, value, headers: h)
        } catch BusError.conflict {
            // A deleted or purged key still has its marker as last message: create over it.
            guard let last = try await lastEntry(key), last.operation != .put else { throw BusError.conflict(key: key) }
            return try await update(key, value, revision: last.revision, ttl: ttl)
        }
    }

    /// Stores only if the key's current revision is `revision`.
    @discardableResult
    public func update(_ key: String, _ value: [UInt8], revision: UInt64, ttl: Duration? = nil) async throws -> UInt64 {
        var h = Self.ttlHeaders(ttl)
        h["Nats-Expected-Last-Subject-Sequence"] = String(revision)
        return try await write(key, value, headers: h)
    }

    /// Writes a delete marker (history kept); with `revision`, only if that is still current.
    public func delete(_ key: String, revision: UInt64? = nil) async throws {
        var h: NATSHeaders = ["KV-Operation": "DEL"]
        if let revision { h["Nats-Expected-Last-Subject-Sequence"] = String(revision) }
        _ = try await write(key, [], headers: h)
    }

    /// Removes all values of `key`, leaving one purge marker.
    public func purge(_ key: String, revision: UInt64? = nil) async throws {
        var h: NATSHeaders = ["KV-Operation": "PURGE", "Nats-Rollup": "sub"]
        if let revision { h["Nats-Expected-Last-Subject-Sequence"] = String(revision) }
        _ = try await write(key, [], headers: h)
    }

    private func write(_ key: String, _ value: [UInt8], headers: NATSHeaders) async throws -> UInt64 {
        try Self.validate(key: key)
        do {
            return try await js.publish(subject(key), value, headers: headers.isEmpty ? nil : headers).seq
        } catch let e as JetStreamError where e.errCode == JetStreamError.wrongLastSequence {
            throw BusError.conflict(key: key)
        }
    }

    static func ttlHeaders(_ ttl: Duration?) -> NATSHeaders {
        var h = NATSHeaders()
        if let ttl {
            // Whole seconds, at least 1 (the server's minimum); rounded up so a key never
            // disappears earlier than asked.
            let ns = ttl.nanoseconds
            let seconds = max(1, (ns + 999_999_999) / 1_000_000_000)
            h["Nats-TTL"] = "\(seconds)s"
        }
        return h
    }

    func subject(_ key: String) -> String { "$KV.\(bucket).\(key)" }

    /// Keys: `[-/_=.A-Za-z0-9]+`, not starting or ending with `.`.
    static func validate(key: String) throws {
        let ok =
            !key.isEmpty && !key.hasPrefix(".") && !key.hasSuffix(".") && !key.contains("..")
            && key.utf8.allSatisfy { isKeyByte($0) || $0 == UInt8(ascii: ".") }
        guard ok else { throw NATSError.invalidSubject("KV key \(key)") }
    }

    static func isValidBucket(_ b: String) -> Bool {
        !b.isEmpty && b.utf8.allSatisfy { isKeyByte($0) && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "=") }
    }

    private static func isKeyByte(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
            || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: "/") || c == UInt8(ascii: "=")
    }
}
