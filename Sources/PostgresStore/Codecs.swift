import Foundation
import NIOCore
import PostgresNIO
import Seams

/// `timestamptz` travels as microseconds since 2000-01-01 in binary format; mapping it to our
/// microsecond `Timestamp` is exact (Foundation's `Date` would round through a Double).
extension Timestamp: PostgresNonThrowingEncodable, PostgresDecodable {
    static let postgresEpochOffset: Int64 = 946_684_800 * 1_000_000

    public static var psqlType: PostgresDataType { .timestamptz }
    public static var psqlFormat: PostgresFormat { .binary }

    public func encode<JSONEncoder: PostgresJSONEncoder>(
        into byteBuffer: inout ByteBuffer,
        context: PostgresEncodingContext<JSONEncoder>
    ) {
        byteBuffer.writeInteger(microseconds - Self.postgresEpochOffset)
    }

    public init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer,
        type: PostgresDataType,
        format: PostgresFormat,
        context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        guard type == .timestamptz || type == .timestamp, format == .binary,
            buffer.readableBytes == 8, let value = buffer.readInteger(as: Int64.self)
        else { throw PostgresDecodingError.Code.typeMismatch }
        self.init(microsecondsSinceEpoch: value + Self.postgresEpochOffset)
    }
}

extension Timestamp: PostgresArrayEncodable {
    public static var psqlArrayType: PostgresDataType { .timestamptzArray }
}

extension TypeID {
    /// The UUID half of the ID, as PostgreSQL's `uuid`.
    public var uuid: UUID {
        let b = bytes
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    public init(prefix: String, uuid: UUID) {
        let u = uuid.uuid
        self.init(
            prefix: prefix,
            bytes: [u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15]
        )
    }
}

enum JSONText {
    /// A string map as JSON text, keys sorted so that the same map always has the same text.
    static func encode(_ map: [String: String]) -> String {
        guard !map.isEmpty,
            let data = try? JSONSerialization.data(withJSONObject: map, options: [.sortedKeys])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

}
