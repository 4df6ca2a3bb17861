import AsyncHTTPClient
import FakeKubo
import Foundation
import KuboRPC
import Logging
import Seams

/// Which implementation of the `KuboAPI` seam a contract test runs against.
enum Arm: String, CaseIterable, Sendable, CustomStringConvertible {
    /// `KuboRPCClient` -> `FakeKuboServer` over real HTTP on loopback.
    case httpFake
    /// The in-process `FakeKuboNode`.
    case inProcess
    /// The in-process `FakeKuboNode` in deterministic mode (the simulator's Kubo): `pin` is
    /// decided at the call, nothing sleeps.
    case inProcessDeterministic
    /// `KuboRPCClient` -> the real Kubo at `$KUBO_API` (e.g. `http://127.0.0.1:5001`).
    case realKubo

    var description: String { rawValue }

    static let realKuboURL: String? = ProcessInfo.processInfo.environment["KUBO_API"].flatMap { $0.isEmpty ? nil : $0 }

    /// The arms to run: the real-Kubo arm only when `KUBO_API` is set (otherwise it records
    /// nothing; `KuboRealArmNotice` shows the skip).
    static let active: [Arm] = [.httpFake, .inProcess, .inProcessDeterministic] + (realKuboURL == nil ? [] : [.realKubo])

    /// The arms whose `pin` runs over time (progress, watchdogs, cancellation): all but the
    /// deterministic fake, which decides a pin's outcome at the call.
    static let timed: [Arm] = active.filter { $0 != .inProcessDeterministic }

    static var logger: Logger {
        var logger = Logger(label: "kubo-contract")
        logger.logLevel = .warning
        return logger
    }

    static var serverLogger: Logger {
        var logger = Logger(label: "fake-kubo")
        logger.logLevel = .critical
        return logger
    }

    /// Knobs that keep the fakes fast: 20 ms progress ticks.
    static let fastKnobs = FakeKuboKnobs(progressIntervalMs: 20)

    func run(_ body: @Sendable (Env) async throws -> Void) async throws {
        switch self {
        case .inProcess:
            let node = FakeKuboNode(seed: 7, knobs: Self.fastKnobs)
            try await body(Env(arm: self, api: node, node: node))
        case .inProcessDeterministic:
            let node = FakeKuboNode(seed: 7, knobs: Self.fastKnobs, deterministic: true)
            try await body(Env(arm: self, api: node, node: node))
        case .httpFake:
            let node = FakeKuboNode(seed: 7, knobs: Self.fastKnobs)
            try await FakeKuboServer.withRunning(node: node, logger: Self.serverLogger) { url in
                let client = KuboRPCClient(baseURL: url, requestTimeout: .seconds(5), logger: Self.logger)
                do {
                    try await body(Env(arm: self, api: client, node: node))
                } catch {
                    try? await client.shutdown()
                    throw error
                }
                try await client.shutdown()
            }
        case .realKubo:
            guard let url = Self.realKuboURL else { return }
            let client = KuboRPCClient(baseURL: url, requestTimeout: .seconds(10), logger: Self.logger)
            do {
                try await body(Env(arm: self, api: client, node: nil))
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }
}

/// One arm's handles: the seam under test, plus the fake's model when there is one (fault
/// injection and observation are fake-only).
struct Env: Sendable {
    let arm: Arm
    let api: any KuboAPI
    let node: FakeKuboNode?

    /// Makes `cid` unfindable: a no-op on real Kubo, where random CIDs are unfindable anyway.
    func makeUnresolvable(_ cid: String) async {
        await node?.updateKnobs { $0.neverResolve.append(cid) }
    }

    /// Polls `condition` until true or `within` elapses.
    func eventually(within: Duration = .seconds(3), _ condition: @Sendable () async -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + within
        while clock.now < end {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return await condition()
    }
}

/// CIDs for tests. Identity CIDs carry their data inline, so even a real Kubo pins them with no
/// network; random sha2-256 CIDs are (practically) unfindable anywhere.
enum TestCID {
    static func identity(_ label: String = "anchorage") -> String { "b" + base32(identityBinary(label)) }

    static func unfindable() -> String { "b" + base32(sha256RawBinary()) }

    /// A random CIDv1 raw sha2-256 (`bafkrei…`), binary.
    static func sha256RawBinary() -> [UInt8] {
        var digest: [UInt8] = []
        for _ in 0..<32 { digest.append(UInt8.random(in: 0...255)) }
        return [0x01, 0x55, 0x12, 0x20] + digest
    }

    /// A random CIDv1 raw identity CID, binary (pinnable on real Kubo with no network).
    static func identityBinary(_ label: String = "anchorage") -> [UInt8] {
        let data = Array("\(label)-\(UInt64.random(in: 0...UInt64.max))".utf8)
        precondition(data.count < 128)
        return [0x01, 0x55, 0x00, UInt8(data.count)] + data
    }

    /// Three multibase spellings of one binary CIDv1.
    static func spellings(_ binary: [UInt8]) -> (lower: String, upper: String, base58: String) {
        let b32 = base32(binary)
        return ("b" + b32, "B" + b32.uppercased(), "z" + Base58.encode(binary))
    }

    static func base32(_ bytes: [UInt8]) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var out = ""
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return out
    }
}

/// Records progress callbacks.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int] = []
    func record(_ value: Int) { lock.withLock { values.append(value) } }
    var all: [Int] { lock.withLock { values } }
}
