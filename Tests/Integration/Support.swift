import AnchorageTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Pins
import Seams
import Testing

#if canImport(Glibc)
import Glibc
#endif

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

/// A plain TCP client for what HTTP clients will not do: half-sent headers, idle connections.
final class RawSocket: @unchecked Sendable {
    // @unchecked: one test task uses a socket at a time.
    let fd: Int32

    /// Connects to 127.0.0.1:`port` from `source` (any 127.0.0.0/8 address is this host's).
    init(port: Int, from source: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    private var isOpen = true

    deinit { disconnect() }

    func disconnect() {
        guard isOpen else { return }
        isOpen = false
        close(fd)
    }

    func send(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the peer closes, `until` appears in what was read, or `seconds` pass.
    /// Returns what was read and whether the peer closed. The blocking reads run on a
    /// Dispatch thread: on the two-thread cooperative pool they would starve the server itself.
    func read(seconds: Int, until marker: String? = nil) async -> (text: String, closed: Bool) {
        await withCheckedContinuation { done in
            DispatchQueue.global().async { done.resume(returning: self.readBlocking(seconds: seconds, until: marker)) }
        }
    }

    private func readBlocking(seconds: Int, until marker: String?) -> (text: String, closed: Bool) {
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        let deadline = ContinuousClock.now + .seconds(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { return (String(decoding: out, as: UTF8.self), true) }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                return (String(decoding: out, as: UTF8.self), true)  // reset
            }
            out += buffer[0..<n]
            if let marker, String(decoding: out, as: UTF8.self).contains(marker) { return (String(decoding: out, as: UTF8.self), false) }
        }
        return (String(decoding: out, as: UTF8.self), false)
    }
}
