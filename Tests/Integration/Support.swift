import AnchorageTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Pins
import Seams
import Testing

struct Reply {
    var status: Int
    var headers: HTTPFields
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: Any? { body.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(body)) }
    var object: [String: Any] { json as? [String: Any] ?? [:] }
    var contentType: String? { headers[.contentType] }
    var requestID: String { object["requestid"] as? String ?? "" }
    var count: Int { object["count"] as? Int ?? -1 }
    var results: [[String: Any]] { object["results"] as? [[String: Any]] ?? [] }
    var reason: String? { (object["error"] as? [String: Any])?["reason"] as? String }
}

extension TestClientProtocol {
    func call(
        _ method: HTTPRequest.Method,
        _ uri: String,
        token: String?,
        body: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await execute(
            uri: uri,
            method: method,
            headers: headers,
            body: body.map { ByteBuffer(string: $0) }
        )
        return Reply(status: Int(response.status.code), headers: response.headers, body: Array(buffer: response.body))
    }

    func add(_ token: String, cid: String, name: String? = nil, meta: [String: String]? = nil) async throws -> Reply {
        var object: [String: Any] = ["cid": cid]
        if let name { object["name"] = name }
        if let meta { object["meta"] = meta }
        let body = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        return try await call(.post, "/pins", token: token, body: body)
    }
}

/// The response-strictness rules every real client and checker relies on (pinning-spec §5.11).
enum Strict {
    nonisolated(unsafe) static let createdPattern = #/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/#

    static func pinStatus(_ o: [String: Any], file: String = #filePath, line: Int = #line) {
        let loc = SourceLocation(fileID: file, filePath: file, line: line, column: 1)
        #expect(
            Set(o.keys).isSubset(of: ["requestid", "status", "created", "pin", "delegates", "info"]),
            "extra keys \(o.keys)",
            sourceLocation: loc
        )
        for key in ["requestid", "status", "created", "pin", "delegates"] { #expect(o[key] != nil, "missing \(key)", sourceLocation: loc) }
        #expect((o["requestid"] as? String)?.hasPrefix("pin_") == true, sourceLocation: loc)
        #expect(["queued", "pinning", "pinned", "failed"].contains(o["status"] as? String ?? ""), sourceLocation: loc)
        #expect(
            (o["created"] as? String).map { (try? createdPattern.wholeMatch(in: $0)) != nil } == true,
            "created \(o["created"] ?? "nil")",
            sourceLocation: loc
        )
        let delegates = o["delegates"] as? [String] ?? []
        #expect((1...20).contains(delegates.count) && Set(delegates).count == delegates.count, sourceLocation: loc)
        #expect(delegates.allSatisfy { $0.contains("/p2p/") }, sourceLocation: loc)
        let pin = o["pin"] as? [String: Any] ?? [:]
        #expect(Set(pin.keys).isSubset(of: ["cid", "name", "origins", "meta"]), "extra pin keys \(pin.keys)", sourceLocation: loc)
        #expect((pin["cid"] as? String)?.isEmpty == false, sourceLocation: loc)
        if let name = pin["name"] { #expect((name as? String)?.isEmpty == false, "name must be a non-empty string", sourceLocation: loc) }
        if let origins = pin["origins"] { #expect((origins as? [String]).map { $0.count <= 20 } == true, sourceLocation: loc) }
        if let meta = pin["meta"] { #expect(meta is [String: String], sourceLocation: loc) }
        if let info = o["info"] { #expect(info is [String: String], sourceLocation: loc) }
        noNulls(o, loc)
    }

    static func pinResults(_ o: [String: Any], file: String = #filePath, line: Int = #line) {
        let loc = SourceLocation(fileID: file, filePath: file, line: line, column: 1)
        #expect(Set(o.keys) == ["count", "results"], sourceLocation: loc)
        #expect((o["count"] as? Int).map { $0 >= 0 } == true, sourceLocation: loc)
        let results = o["results"] as? [[String: Any]]
        #expect(results != nil, "results must be an array", sourceLocation: loc)
        for r in results ?? [] { pinStatus(r, file: file, line: line) }
    }

    static func failure(_ reply: Reply, status: Int, file: String = #filePath, line: Int = #line) {
        let loc = SourceLocation(fileID: file, filePath: file, line: line, column: 1)
        #expect(reply.status == status, "status \(reply.status): \(reply.text)", sourceLocation: loc)
        #expect(reply.contentType?.hasPrefix("application/json") == true, sourceLocation: loc)
        let o = reply.object
        #expect(Set(o.keys) == ["error"], "body \(reply.text)", sourceLocation: loc)
        let error = o["error"] as? [String: Any] ?? [:]
        #expect(Set(error.keys).isSubset(of: ["reason", "details"]), sourceLocation: loc)
        #expect((error["reason"] as? String)?.isEmpty == false, sourceLocation: loc)
        if let d = error["details"] { #expect((d as? String)?.isEmpty == false, sourceLocation: loc) }
    }

    static func noNulls(_ value: Any, _ loc: SourceLocation) {
        switch value {
        case is NSNull: Issue.record("null in response", sourceLocation: loc)
        case let s as String: #expect(!s.isEmpty, "empty string in response", sourceLocation: loc)
        case let a as [Any]: for v in a { noNulls(v, loc) }
        case let d as [String: Any]: for v in d.values { noNulls(v, loc) }
        default: break
        }
    }
}

/// Runs `body` with an in-process HTTP client for a fresh node (no socket).
func withAPI<T: Sendable>(
    limits: Limits = Limits(),
    options: APIOptions = APIOptions(),
    _ body: @Sendable @escaping (TestNode, any TestClientProtocol) async throws -> T
) async throws -> T {
    try await withTestNode(limits: limits, options: options) { node in
        let app = Application(router: node.router())
        return try await app.test(.router) { client in try await body(node, client) }
    }
}

let cidA = CIDText.synthetic(1, namespace: 100)
let cidB = CIDText.synthetic(2, namespace: 100)
let cidC = CIDText.synthetic(3, namespace: 100)

/// The same CIDv1 as `cid` (lowercase base32 `b…`), spelled in base58btc (`z…`).
func base58Spelling(of cid: String) -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
    var bytes: [UInt8] = []
    var buffer: UInt32 = 0
    var bits = 0
    for c in cid.utf8.dropFirst() {
        buffer = (buffer << 5) | UInt32(alphabet.firstIndex(of: c)!)
        bits += 5
        if bits >= 8 {
            bits -= 8
            bytes.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
        }
    }
    return "z" + Base58.encode(bytes)
}
