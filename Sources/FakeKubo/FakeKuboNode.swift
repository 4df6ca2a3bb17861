import Foundation
import Seams
import Synchronization

/// An in-process model of one Kubo node: identity, recursive pins, a scripted "network" per CID,
/// and fault knobs. The HTTP `FakeKuboServer` serves it over Kubo's wire format; it also conforms
/// to `KuboAPI` directly for in-process use (simulator, unit tests).
///
/// Time passes only through the injected `sleep` (default `Task.sleep`) and randomness comes only
/// from the injected `Entropy`, so a simulator can drive it deterministically.
///
/// Fidelity notes: pins are keyed by the CID string as submitted (root of `/ipfs/<cid>/...`), so
/// a CIDv0 and its CIDv1 twin are distinct pins (as in Kubo) but two spellings of the same CIDv1
/// (base32 vs base58) are also distinct (unlike Kubo, which keys by binary CID). All pins are
/// recursive; there is no block graph, so no indirect pins.
public actor FakeKuboNode: KuboAPI {
    public typealias Sleeper = @Sendable (Duration) async throws -> Void

    public nonisolated let peerID: String
    /// The libp2p public key (protobuf, base64), as `id` reports it.
    public nonisolated let publicKey: String
    public nonisolated let kuboVersion: String
    public nonisolated let addresses: [String]
    public nonisolated var agentVersion: String { "kubo/\(kuboVersion)/fake" }

    private var knobs: FakeKuboKnobs
    private var pins: [String: FakeKuboSnapshot.Pin] = [:]
    private var inFlight: [Int: String] = [:]
    private var restartSignals: [Int: AsyncStream<Void>.Continuation] = [:]
    private var nextOp = 0
    private var pinsStarted = 0, pinsCompleted = 0, pinsFailed = 0, pinsCancelled = 0, restarts = 0
    private var connectedPeers: Set<String> = []
    private var commands: [String: Int] = [:]
    private let sleep: Sleeper
    private let entropy: any Entropy
    private let stateFile: String?

    /// - Parameters:
    ///   - seed: derives the identity (an Ed25519-shaped `12D3KooW...` peer ID) and, unless
    ///     `entropy` is given, the failure-injection randomness.
    ///   - pins: initial pins (e.g. from `loadState(file:)`).
    ///   - stateFile: when set, the pin set is written there (JSON) after every change.
    ///   - sleep: how time passes (the simulator injects a virtual clock here).
    public init(
        seed: UInt64 = 1, version: String = "0.44.0", knobs: FakeKuboKnobs = FakeKuboKnobs(),
        entropy: (any Entropy)? = nil, pins: [FakeKuboSnapshot.Pin] = [], stateFile: String? = nil,
        sleep: @escaping Sleeper = { try await Task.sleep(for: $0) }
    ) {
        let key = SeededEntropy(seed: seed).bytes(32)
        let protobufKey: [UInt8] = [0x08, 0x01, 0x12, 0x20] + key  // KeyType Ed25519, Data
        let multihash: [UInt8] = [0x00, UInt8(protobufKey.count)] + protobufKey  // identity multihash
        let id = Base58.encode(multihash)
        self.peerID = id
        self.publicKey = Data(protobufKey).base64EncodedString()
        self.kuboVersion = version
        self.addresses = [
            "/ip4/127.0.0.1/tcp/4001/p2p/\(id)",
            "/ip4/127.0.0.1/udp/4001/quic-v1/p2p/\(id)",
            "/ip6/::1/tcp/4001/p2p/\(id)",
        ].sorted()
        self.knobs = knobs
        self.entropy = entropy ?? SeededEntropy(seed: seed &+ 0x5EED)
        self.stateFile = stateFile
        self.sleep = sleep
        for pin in pins { self.pins[pin.cid] = pin }
    }

    // MARK: State file

    private struct State: Codable { var pins: [FakeKuboSnapshot.Pin] }

    /// Reads the pins saved by a node created with `stateFile:`; a missing file is an empty set.
    public static func loadState(file: String) throws -> [FakeKuboSnapshot.Pin] {
        guard FileManager.default.fileExists(atPath: file) else { return [] }
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        return try JSONDecoder().decode(State.self, from: data).pins
    }

    private func persist() {
        guard let stateFile else { return }
        let state = State(pins: pins.values.sorted { $0.cid < $1.cid })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(state) {
            try? data.write(to: URL(fileURLWithPath: stateFile), options: .atomic)
        }
    }

    // MARK: Knobs, snapshot, restart

    public func setKnobs(_ knobs: FakeKuboKnobs) { self.knobs = knobs }
    public func currentKnobs() -> FakeKuboKnobs { knobs }
    public func updateKnobs(_ change: @Sendable (inout FakeKuboKnobs) -> Void) { change(&knobs) }

    public func snapshot() -> FakeKuboSnapshot {
        FakeKuboSnapshot(
            peerID: peerID, pins: pins.values.sorted { $0.cid < $1.cid },
            inFlight: inFlight.keys.sorted().compactMap { inFlight[$0] },
            pinsStarted: pinsStarted, pinsCompleted: pinsCompleted, pinsFailed: pinsFailed,
            pinsCancelled: pinsCancelled, restarts: restarts, connectedPeers: connectedPeers.sorted(),
            commands: commands, knobs: knobs)
    }

    /// Simulates a daemon restart: pins persist, in-flight pin/adds fail (`.unreachable`, which the
    /// HTTP server turns into a dropped connection), swarm connections are lost.
    public func restart() {
        restarts += 1
        for signal in restartSignals.values { signal.finish() }
        restartSignals = [:]
        connectedPeers = []
    }

    // MARK: Commands (shared by the HTTP server and the in-process KuboAPI conformance)

    /// Counts the call, applies the latency knob, then the failure-rate knob.
    func preamble(_ command: String) async throws {
        commands[command, default: 0] += 1
        if let ms = knobs.latencyMs[command], ms > 0 { try await sleep(.milliseconds(ms)) }
        if let rate = knobs.failureRate[command], rate > 0 {
            let draw = Double(entropy.uniform(1 << 53)) / Double(UInt64(1) << 53)
            if draw < rate { throw KuboError.command(message: knobs.failureMessage, code: 0) }
        }
    }

    public func idCommand() async throws -> KuboIdentity {
        try await preamble("id")
        return KuboIdentity(peerID: peerID, addresses: addresses, agentVersion: agentVersion)
    }

    public func versionCommand() async throws -> String {
        try await preamble("version")
        return kuboVersion
    }

    /// `pin/add` of one argument. `onProgress` receives each progress frame (`nil` = `{}`, the
    /// tick Kubo sends before anything arrived). `timeout` is Kubo's `timeout=` option.
    /// Returns the pinned CID.
    public func pinAdd(
        arg: String, name: String?, timeout: Duration? = nil,
        onProgress: @escaping @Sendable (Int?) async throws -> Void = { _ in }
    ) async throws -> String {
        try await preamble("pin/add")
        guard let cid = CIDSyntax.root(of: arg) else {
            throw KuboError.command(message: "invalid path \"\(arg)\": invalid cid: not a CID", code: 0)
        }
        if let name, name.utf8.count > 255 {
            throw KuboError.command(message: "pin name is \(name.utf8.count) bytes (max 255 bytes)", code: 0)
        }
        if let existing = pins[cid] {
            if let name { pins[cid]?.name = name.isEmpty ? nil : name }
            persist()
            try await onProgress(existing.blocks)
            return cid
        }
        let op = nextOp
        nextOp += 1
        inFlight[op] = cid
        pinsStarted += 1
        let (restartSignal, restartContinuation) = AsyncStream<Void>.makeStream()
        restartSignals[op] = restartContinuation
        defer {
            inFlight[op] = nil
            restartSignals[op] = nil
        }
        let script: ContentScript =
            knobs.neverResolve.contains(cid) || knobs.neverResolve.contains(arg)
            ? .never : (knobs.scripts[cid] ?? knobs.scripts[arg] ?? knobs.defaultScript)
        let intervalMs = max(1, knobs.progressIntervalMs)
        let stallAfter = knobs.stallAfterFrames
        let sleep = self.sleep
        do {
            let blocks = try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask {
                    try await Self.fetch(script, intervalMs: intervalMs, stallAfter: stallAfter, sleep: sleep, emit: onProgress)
                }
                group.addTask {
                    for await _ in restartSignal {}
                    if Task.isCancelled { throw CancellationError() }
                    throw KuboError.unreachable("fake kubo restarted; in-flight pin/add lost")
                }
                if let timeout {
                    group.addTask {
                        try await sleep(timeout)
                        throw KuboError.command(message: "pin: context deadline exceeded", code: 0)
                    }
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            pins[cid] = FakeKuboSnapshot.Pin(cid: cid, name: (name?.isEmpty ?? true) ? nil : name, blocks: blocks)
            pinsCompleted += 1
            persist()
            return cid
        } catch {
            if error is CancellationError || Task.isCancelled { pinsCancelled += 1 } else { pinsFailed += 1 }
            throw error
        }
    }

    private static func fetch(
        _ script: ContentScript, intervalMs: Int, stallAfter: Int?, sleep: Sleeper,
        emit: @Sendable (Int?) async throws -> Void
    ) async throws -> Int {
        let interval = Duration.milliseconds(intervalMs)
        switch script {
        case .fail(let message):
            throw KuboError.command(message: message, code: 0)
        case .never:
            while true {
                try await sleep(interval)
                try await emit(nil)
            }
        case .available(let afterMs, let blocks):
            var elapsed = 0, frames = 0
            var last: Int? = nil
            while elapsed < afterMs {
                if let stallAfter, frames >= stallAfter {
                    while true {  // stuck: Kubo keeps ticking with the same count
                        try await sleep(interval)
                        try await emit(last)
                    }
                }
                let step = min(intervalMs, afterMs - elapsed)
                try await sleep(.milliseconds(step))
                elapsed += step
                if elapsed >= afterMs { break }
                frames += 1
                let p = blocks * elapsed / afterMs
                last = p > 0 ? p : nil
                try await emit(last)
            }
            try await emit(blocks)
            return blocks
        }
    }

    /// `pin/rm` of one argument. Returns the unpinned CID.
    public func pinRm(arg: String) async throws -> String {
        try await preamble("pin/rm")
        guard let cid = CIDSyntax.root(of: arg) else {
            throw KuboError.command(message: "invalid path \"\(arg)\": invalid cid: not a CID", code: 0)
        }
        guard pins.removeValue(forKey: cid) != nil else {
            throw KuboError.command(message: "not pinned or pinned indirectly", code: 0)
        }
        persist()
        return cid
    }

    /// `pin/ls` listing (`type` already validated): every recursive pin for `recursive`/`all`.
    public func pinLs(type: String) async throws -> [FakeKuboSnapshot.Pin] {
        try await preamble("pin/ls")
        guard type == "recursive" || type == "all" else { return [] }
        return pins.values.sorted { $0.cid < $1.cid }
    }

    /// `pin/ls?arg=`: the pin, or Kubo's `path '<arg>' is not pinned`.
    public func pinLs(arg: String, type: String) async throws -> FakeKuboSnapshot.Pin {
        try await preamble("pin/ls")
        guard let cid = CIDSyntax.root(of: arg) else {
            throw KuboError.command(message: "invalid path \"\(arg)\": invalid cid: not a CID", code: 0)
        }
        guard type == "recursive" || type == "all", let pin = pins[cid] else {
            throw KuboError.command(message: "path '\(arg)' is not pinned", code: 0)
        }
        return pin
    }

    /// `swarm/connect` of one multiaddr. Returns the peer ID.
    public func swarmConnect(address: String) async throws -> String {
        try await preamble("swarm/connect")
        let parts = address.split(separator: "/", omittingEmptySubsequences: true)
        guard let p2p = parts.lastIndex(of: "p2p"), p2p + 1 < parts.count else {
            throw KuboError.command(message: "invalid peer address: multiaddr \"\(address)\" has no /p2p/ component", code: 0)
        }
        let peer = String(parts[p2p + 1])
        if knobs.undialable.contains(peer) || peer == peerID {
            throw KuboError.command(message: "connect \(peer) failure: failed to dial: all dials failed", code: 0)
        }
        connectedPeers.insert(peer)
        return peer
    }

    public func repoStatCommand(sizeOnly: Bool) async throws -> KuboRepoStat {
        try await preamble("repo/stat")
        let blocks = pins.values.reduce(0) { $0 + $1.blocks }
        return KuboRepoStat(
            repoSize: UInt64(blocks) * knobs.blockSize, storageMax: knobs.storageMax,
            numObjects: sizeOnly ? 0 : UInt64(blocks))
    }

    // MARK: KuboAPI (in-process)

    public func identity() async throws -> KuboIdentity { try await idCommand() }
    public func version() async throws -> String { try await versionCommand() }

    public func pin(
        cid: String, name: String?, stallTimeout: Duration, deadline: Duration,
        progress: @Sendable (Int) async -> Void
    ) async throws {
        let watch = GrowthWatch()
        let sleep = self.sleep
        try await withoutActuallyEscaping(progress) { progress in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    _ = try await self.pinAdd(arg: cid, name: name) { p in
                        guard let p else { return }
                        watch.observe(p)
                        await progress(p)
                    }
                }
                group.addTask {
                    try await sleep(deadline)
                    throw KuboError.timeout("pin/add \(cid) exceeded its \(deadline) deadline")
                }
                group.addTask {
                    // No clock here: watch the progress generation in quarter-timeout slices.
                    let slice = stallTimeout / 4
                    var seen = watch.generation
                    var quiet = 0
                    while true {
                        try await sleep(slice)
                        let now = watch.generation
                        if now != seen { (seen, quiet) = (now, 0) } else { quiet += 1 }
                        if quiet >= 4 { throw KuboError.stalled("no progress on \(cid) for \(stallTimeout)") }
                    }
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        }
    }

    public func unpin(cid: String) async throws {
        do {
            _ = try await pinRm(arg: cid)
        } catch KuboError.command(let message, _) where message.contains("not pinned or pinned indirectly") {}
    }

    public func recursivePins() async throws -> [KuboPin] {
        try await pinLs(type: "recursive").map { KuboPin(cid: $0.cid, name: $0.name) }
    }

    public func recursivePin(cid: String) async throws -> KuboPin? {
        do {
            let pin = try await pinLs(arg: cid, type: "recursive")
            return KuboPin(cid: cid, name: pin.name.flatMap { $0.isEmpty ? nil : $0 })
        } catch KuboError.command(let message, _) where message.contains("is not pinned") {
            return nil
        }
    }

    public func connect(to addresses: [String], limit: Int, timeout: Duration) async -> Int {
        var connected = 0
        for address in addresses.prefix(max(0, limit)) {
            if (try? await swarmConnect(address: address)) != nil { connected += 1 }
        }
        return connected
    }

    public func repoStat() async throws -> KuboRepoStat { try await repoStatCommand(sizeOnly: false) }
}

/// Tracks the highest progress seen; `generation` bumps whenever it grows.
final class GrowthWatch: Sendable {
    private let state = Mutex<(max: Int, generation: Int)>((0, 0))
    var generation: Int { state.withLock { $0.generation } }
    func observe(_ progress: Int) {
        state.withLock { s in
            if progress > s.max { s = (progress, s.generation + 1) }
        }
    }
}
