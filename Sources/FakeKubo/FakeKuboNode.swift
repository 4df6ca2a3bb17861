import DeterministicSeams
import Foundation
import Pins
import Seams
import Synchronization

/// An in-process model of one Kubo node: identity, recursive pins, a scripted "network" per CID,
/// and fault knobs. The HTTP `FakeKuboServer` serves it over Kubo's wire format; it also conforms
/// to `KuboAPI` directly for in-process use (unit tests, the simulator).
///
/// Time passes only through the injected `sleep` (default `Task.sleep`) and randomness comes only
/// from the injected `Entropy`, so a simulator can drive it deterministically.
///
/// Two modes of the in-process `pin`:
/// - default (timed): pin/add runs like Kubo's: progress frames every `progressIntervalMs`,
///   stalls, `deadline`/`stallTimeout` watchdogs, cancellation, in-flight work lost on `restart()`.
/// - `deterministic: true` (the simulator): `pin` starts no child task and never sleeps; its
///   outcome is decided at the call from the seeded entropy and the knobs, and progress is
///   reported once. How long the pin would take is `plannedLatency(for:stallTimeout:)`: the
///   caller schedules the attempt that far ahead. No command sleeps (`latencyMs` is ignored).
///
/// Fidelity notes: pins are keyed by the binary CID, as in Kubo (`CIDKey.canonical`): every
/// multibase spelling of a CIDv1 (`b…`, `B…`, `z…`, `k…`, …) names one pin, printed as Kubo
/// prints it (lowercase base32); a CIDv0 and its CIDv1 twin are distinct pins (as in Kubo).
/// All pins are recursive; there is no block graph, so no indirect pins.
public final class FakeKuboNode: KuboAPI, Sendable {
    public typealias Sleeper = @Sendable (Duration) async throws -> Void

    public let peerID: String
    /// The libp2p public key (protobuf, base64), as `id` reports it.
    public let publicKey: String
    public let kuboVersion: String
    public let addresses: [String]
    public var agentVersion: String { "kubo/\(kuboVersion)/fake" }
    /// Decided-at-call `pin`, no sleeping (see the type's documentation).
    public let deterministic: Bool

    private struct State {
        var knobs: FakeKuboKnobs
        // `knobs.neverResolve` and `knobs.scripts` re-keyed by binary CID (rebuilt on change).
        var neverResolveKeys: Set<String> = []
        var scriptKeys: [String: ContentScript] = [:]
        var pins: [String: FakeKuboSnapshot.Pin] = [:]
        var inFlight: [Int: String] = [:]
        /// Per in-flight pin/add: yields why it was dropped (restart, down).
        var dropSignals: [Int: AsyncStream<String>.Continuation] = [:]
        var nextOp = 0
        var pinsStarted = 0, pinsCompleted = 0, pinsFailed = 0, pinsCancelled = 0, restarts = 0
        var connectedPeers: Set<String> = []
        var commands: [String: Int] = [:]
        var down = false
        var destroyed = false

        init(knobs: FakeKuboKnobs) {
            self.knobs = knobs
            reindex()
        }

        mutating func reindex() {
            neverResolveKeys = Set(knobs.neverResolve.map(FakeKuboNode.key))
            scriptKeys = [:]
            for cid in knobs.scripts.keys.sorted() { scriptKeys[FakeKuboNode.key(cid)] = knobs.scripts[cid] }
        }

        /// What the network does for `key`, and whether the script was set for it explicitly.
        func script(for key: String) -> (ContentScript, explicit: Bool) {
            if neverResolveKeys.contains(key) { return (.never, true) }
            if let script = scriptKeys[key] { return (script, true) }
            return (knobs.defaultScript, false)
        }

        mutating func dropInFlight(_ reason: String) {
            for op in dropSignals.keys.sorted() {
                dropSignals[op]?.yield(reason)
                dropSignals[op]?.finish()
            }
            dropSignals = [:]
        }
    }

    private let state: Mutex<State>
    private let sleep: Sleeper
    private let entropy: any Entropy
    private let stateFile: String?
    private let onUnpin: (@Sendable (String) async -> Void)?

    /// - Parameters:
    ///   - seed: derives the identity (an Ed25519-shaped `12D3KooW...` peer ID) and, unless
    ///     `entropy` is given, the failure-injection randomness.
    ///   - pins: initial pins (e.g. from `loadState(file:)`).
    ///   - stateFile: when set, the pin set is written there (JSON) after every change.
    ///   - deterministic: decide `pin` at the call, never sleep (the simulator's mode).
    ///   - onUnpin: awaited with the (canonical) CID just before an unpin takes effect (the
    ///     simulator's refcount checker).
    ///   - sleep: how time passes in the default mode (a virtual clock can be injected here).
    public init(
        seed: UInt64 = 1,
        version: String = "0.44.0",
        knobs: FakeKuboKnobs = FakeKuboKnobs(),
        entropy: (any Entropy)? = nil,
        pins: [FakeKuboSnapshot.Pin] = [],
        stateFile: String? = nil,
        deterministic: Bool = false,
        onUnpin: (@Sendable (String) async -> Void)? = nil,
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
        self.deterministic = deterministic
        self.onUnpin = onUnpin
        self.entropy = entropy ?? SeededEntropy(seed: seed &+ 0x5EED)
        self.stateFile = stateFile
        self.sleep = sleep
        var initial = State(knobs: knobs)
        for var pin in pins {
            pin.cid = Self.key(pin.cid)
            initial.pins[pin.cid] = pin
        }
        self.state = Mutex(initial)
    }

    /// The pin-map key of a CID: its canonical spelling, or the string itself when it is not a
    /// CID (knob entries only; commands reject non-CIDs first).
    static func key(_ cid: String) -> String { CIDKey.canonical(cid) ?? cid }

    // MARK: State file

    private struct Saved: Codable { var pins: [FakeKuboSnapshot.Pin] }

    /// Reads the pins saved by a node created with `stateFile:`; a missing file is an empty set.
    public static func loadState(file: String) throws -> [FakeKuboSnapshot.Pin] {
        guard FileManager.default.fileExists(atPath: file) else { return [] }
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        return try JSONDecoder().decode(Saved.self, from: data).pins
    }

    /// Called with the lock held, so that writes land in the order of the changes.
    private func persist(_ s: State) {
        guard let stateFile else { return }
        let saved = Saved(pins: s.pins.values.sorted { $0.cid < $1.cid })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(saved) {
            try? data.write(to: URL(fileURLWithPath: stateFile), options: .atomic)
        }
    }

    // MARK: Knobs, snapshot, restart

    public func setKnobs(_ knobs: FakeKuboKnobs) async {
        state.withLock { s in
            s.knobs = knobs
            s.reindex()
        }
    }

    public func currentKnobs() async -> FakeKuboKnobs { state.withLock { $0.knobs } }

    public func updateKnobs(_ change: @Sendable (inout FakeKuboKnobs) -> Void) async {
        adjustKnobs(change)
    }

    /// ``updateKnobs(_:)`` without a suspension point, for a simulator's synchronous scripts.
    public func adjustKnobs(_ change: (inout FakeKuboKnobs) -> Void) {
        state.withLock { s in
            change(&s.knobs)
            s.reindex()
        }
    }

    public func snapshot() async -> FakeKuboSnapshot {
        state.withLock { s in
            FakeKuboSnapshot(
                peerID: peerID,
                pins: s.pins.values.sorted { $0.cid < $1.cid },
                inFlight: s.inFlight.keys.sorted().compactMap { s.inFlight[$0] },
                pinsStarted: s.pinsStarted,
                pinsCompleted: s.pinsCompleted,
                pinsFailed: s.pinsFailed,
                pinsCancelled: s.pinsCancelled,
                restarts: s.restarts,
                connectedPeers: s.connectedPeers.sorted(),
                commands: s.commands,
                knobs: s.knobs
            )
        }
    }

    /// Simulates a daemon restart: pins persist, in-flight pin/adds fail (`.unreachable`, which the
    /// HTTP server turns into a dropped connection), swarm connections are lost.
    public func restart() async {
        state.withLock { s in
            s.restarts += 1
            s.dropInFlight("fake kubo restarted; in-flight pin/add lost")
            s.connectedPeers = []
        }
    }

    // MARK: Simulator controls (synchronous: the simulator calls them between events)

    /// While down, every command fails with `.unreachable` (`connect` returns 0) and in-flight
    /// pin/adds are dropped. A destroyed node stays down.
    public func setDown(_ value: Bool) {
        state.withLock { s in
            guard !s.destroyed else { return }
            s.down = value
            if value {
                s.dropInFlight("fake kubo is down")
                s.connectedPeers = []
            }
        }
    }

    public var isDown: Bool { state.withLock { $0.down } }

    /// The machine is gone: its pins are lost and it is down for good.
    public func destroy() {
        state.withLock { s in
            s.destroyed = true
            s.down = true
            s.pins = [:]
            s.dropInFlight("fake kubo destroyed")
            s.connectedPeers = []
            persist(s)
        }
    }

    public var isDestroyed: Bool { state.withLock { $0.destroyed } }

    /// Makes `cid` (any spelling) unfindable: appends it to the `neverResolve` knob.
    public func markNeverResolving(_ cid: String) {
        state.withLock { s in
            s.knobs.neverResolve.append(cid)
            s.neverResolveKeys.insert(Self.key(cid))
        }
    }

    /// Whether the node holds a recursive pin of `cid` (any spelling).
    public func holds(_ cid: String) -> Bool {
        let key = Self.key(cid)
        return state.withLock { !$0.destroyed && $0.pins[key] != nil }
    }

    /// The (canonical) CIDs pinned under `name`, sorted.
    public func anchoragePins(name: String = "anchorage") -> [String] {
        state.withLock { s in s.pins.values.filter { $0.name == name }.map(\.cid).sorted() }
    }

    /// How long a pin of `cid` takes from now: `stallTimeout` for a CID that never resolves (or
    /// stalls), the script's `afterMs` for a CID with an explicit `.available` script, else drawn
    /// uniformly from `pinLatencyRangeMs` with the seeded entropy. Meant for deterministic mode.
    public func plannedLatency(for cid: String, stallTimeout: Duration) -> Duration {
        guard let key = CIDSyntax.root(of: cid) else { return .zero }
        let (script, explicit, stalls, range) = state.withLock { s in
            let (script, explicit) = s.script(for: key)
            return (script, explicit, Self.stalls(script, knobs: s.knobs), s.knobs.pinLatencyRangeMs)
        }
        if script == .never || stalls { return stallTimeout }
        if explicit, case .available(let afterMs, _) = script { return .milliseconds(afterMs) }
        let lo = max(range.lowerBound, 0)
        let hi = max(range.upperBound, lo)
        return .milliseconds(Int64(lo) + Int64(entropy.uniform(UInt64(hi - lo) + 1)))
    }

    // MARK: Commands (shared by the HTTP server and the in-process KuboAPI conformance)

    private func chance(_ rate: Double?) -> Bool {
        guard let rate, rate > 0 else { return false }
        return Double(entropy.uniform(1 << 53)) / Double(UInt64(1) << 53) < rate
    }

    /// Counts the call, then applies the knobs in order: down, unreachable rate, latency (not in
    /// deterministic mode), failure rate.
    func preamble(_ command: String) async throws {
        let (down, unreachableRate, latency) = state.withLock { s in
            s.commands[command, default: 0] += 1
            return (s.down, s.knobs.unreachableRate[command], s.knobs.latencyMs[command])
        }
        if down { throw KuboError.unreachable("fake kubo is down") }
        if chance(unreachableRate) { throw KuboError.unreachable("fake kubo: injected connection refused") }
        if !deterministic, let latency, latency > 0 { try await sleep(.milliseconds(latency)) }
        let (failureRate, message) = state.withLock { ($0.knobs.failureRate[command], $0.knobs.failureMessage) }
        if chance(failureRate) { throw KuboError.command(message: message, code: 0) }
    }

    public func idCommand() async throws -> KuboIdentity {
        try await preamble("id")
        return KuboIdentity(peerID: peerID, addresses: addresses, agentVersion: agentVersion)
    }

    public func versionCommand() async throws -> String {
        try await preamble("version")
        return kuboVersion
    }

    private static func invalidPath(_ arg: String) -> KuboError {
        .command(message: "invalid path \"\(arg)\": invalid cid: not a CID", code: 0)
    }

    /// The CID key of a pin/add argument, after Kubo's argument checks.
    private func pinAddKey(arg: String, name: String?) throws -> String {
        guard let key = CIDSyntax.root(of: arg) else { throw Self.invalidPath(arg) }
        if let name, name.utf8.count > 255 {
            throw KuboError.command(message: "pin name is \(name.utf8.count) bytes (max 255 bytes)", code: 0)
        }
        return key
    }

    /// Re-pinning keeps the pin; a name given replaces the old one. Returns its blocks, or nil
    /// when `key` is not pinned.
    private func repin(_ key: String, name: String?) -> Int? {
        state.withLock { s in
            guard let existing = s.pins[key] else { return nil }
            if let name { s.pins[key]?.name = name.isEmpty ? nil : name }
            persist(s)
            return existing.blocks
        }
    }

    /// Whether the `stallAfterFrames` knob stops `script` before it completes (the timed model
    /// emits one frame per `progressIntervalMs` until `afterMs`).
    private static func stalls(_ script: ContentScript, knobs: FakeKuboKnobs) -> Bool {
        guard let stallAfter = knobs.stallAfterFrames, case .available(let afterMs, _) = script, afterMs > 0 else {
            return false
        }
        let interval = max(1, knobs.progressIntervalMs)
        return stallAfter <= (afterMs + interval - 1) / interval - 1
    }

    /// `pin/add` of one argument in the timed model. `onProgress` receives each progress frame
    /// (`nil` = `{}`, the tick Kubo sends before anything arrived). `timeout` is Kubo's
    /// `timeout=` option. Returns the pinned CID as Kubo prints it.
    public func pinAdd(
        arg: String,
        name: String?,
        timeout: Duration? = nil,
        onProgress: @escaping @Sendable (Int?) async throws -> Void = { _ in }
    ) async throws -> String {
        try await preamble("pin/add")
        let cid = try pinAddKey(arg: arg, name: name)
        if let blocks = repin(cid, name: name) {
            try await onProgress(blocks)
            return cid
        }
        let (op, dropSignal, script, knobs) = state.withLock { s in
            let op = s.nextOp
            s.nextOp += 1
            s.inFlight[op] = cid
            s.pinsStarted += 1
            let (signal, continuation) = AsyncStream<String>.makeStream()
            s.dropSignals[op] = continuation
            return (op, signal, s.script(for: cid).0, s.knobs)
        }
        defer {
            state.withLock { s in
                s.inFlight[op] = nil
                s.dropSignals[op] = nil
            }
        }
        let intervalMs = max(1, knobs.progressIntervalMs)
        let stallAfter = knobs.stallAfterFrames
        let sleep = self.sleep
        do {
            let blocks = try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask {
                    try await Self.fetch(script, intervalMs: intervalMs, stallAfter: stallAfter, sleep: sleep, emit: onProgress)
                }
                group.addTask {
                    var reason: String? = nil
                    for await why in dropSignal {
                        reason = why
                        break
                    }
                    if Task.isCancelled { throw CancellationError() }
                    throw KuboError.unreachable(reason ?? "fake kubo: in-flight pin/add lost")
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
            try state.withLock { s in
                // Finished in the same instant the daemon went away: the pin is lost with it.
                if s.down { throw KuboError.unreachable("fake kubo is down") }
                s.pins[cid] = FakeKuboSnapshot.Pin(cid: cid, name: (name?.isEmpty ?? true) ? nil : name, blocks: blocks)
                s.pinsCompleted += 1
                persist(s)
            }
            return cid
        } catch {
            let cancelled = error is CancellationError || Task.isCancelled
            state.withLock { s in if cancelled { s.pinsCancelled += 1 } else { s.pinsFailed += 1 } }
            throw error
        }
    }

    private static func fetch(
        _ script: ContentScript,
        intervalMs: Int,
        stallAfter: Int?,
        sleep: Sleeper,
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
            var elapsed = 0
            var frames = 0
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

    /// `pin/rm` of one argument. Returns the unpinned CID as Kubo prints it.
    public func pinRm(arg: String) async throws -> String {
        try await preamble("pin/rm")
        guard let cid = CIDSyntax.root(of: arg) else { throw Self.invalidPath(arg) }
        if let onUnpin { await onUnpin(cid) }
        let removed = state.withLock { s in
            guard s.pins.removeValue(forKey: cid) != nil else { return false }
            persist(s)
            return true
        }
        guard removed else { throw KuboError.command(message: "not pinned or pinned indirectly", code: 0) }
        return cid
    }

    /// `pin/ls` listing (`type` already validated): every recursive pin for `recursive`/`all`.
    public func pinLs(type: String) async throws -> [FakeKuboSnapshot.Pin] {
        try await preamble("pin/ls")
        guard type == "recursive" || type == "all" else { return [] }
        return state.withLock { $0.pins.values.sorted { $0.cid < $1.cid } }
    }

    /// `pin/ls?arg=`: the pin (its CID as Kubo prints it), or Kubo's `path '<arg>' is not pinned`.
    public func pinLs(arg: String, type: String) async throws -> FakeKuboSnapshot.Pin {
        try await preamble("pin/ls")
        guard let cid = CIDSyntax.root(of: arg) else { throw Self.invalidPath(arg) }
        let pin = state.withLock { $0.pins[cid] }
        guard type == "recursive" || type == "all", let pin else {
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
        try state.withLock { s in
            if s.knobs.undialable.contains(peer) || peer == peerID {
                throw KuboError.command(message: "connect \(peer) failure: failed to dial: all dials failed", code: 0)
            }
            s.connectedPeers.insert(peer)
        }
        return peer
    }

    public func repoStatCommand(sizeOnly: Bool) async throws -> KuboRepoStat {
        try await preamble("repo/stat")
        return state.withLock { s in
            let blocks = s.pins.values.reduce(0) { $0 + $1.blocks }
            return KuboRepoStat(
                repoSize: UInt64(blocks) * s.knobs.blockSize,
                storageMax: s.knobs.storageMax,
                numObjects: sizeOnly ? 0 : UInt64(blocks)
            )
        }
    }

    // MARK: KuboAPI (in-process)

    public func identity() async throws -> KuboIdentity { try await idCommand() }
    public func version() async throws -> String { try await versionCommand() }

    public func pin(
        cid: String,
        name: String?,
        stallTimeout: Duration,
        deadline: Duration,
        progress: @Sendable (Int) async -> Void
    ) async throws {
        if deterministic {
            try await decidedPin(cid: cid, name: name, stallTimeout: stallTimeout, deadline: deadline, progress: progress)
            return
        }
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

    /// Deterministic mode's pin: the outcome the timed model would reach, decided now. A CID
    /// that never resolves (or stalls) fails as the first watchdog would: `.stalled`, or
    /// `.timeout` when the deadline is shorter than the stall timeout.
    private func decidedPin(
        cid: String,
        name: String?,
        stallTimeout: Duration,
        deadline: Duration,
        progress: @Sendable (Int) async -> Void
    ) async throws {
        try await preamble("pin/add")
        let key = try pinAddKey(arg: cid, name: name)
        let outcome: Result<Int, KuboError> = state.withLock { s in
            if let existing = s.pins[key] {
                if let name { s.pins[key]?.name = name.isEmpty ? nil : name }
                persist(s)
                return .success(existing.blocks)
            }
            s.pinsStarted += 1
            let script = s.script(for: key).0
            let failure: KuboError
            switch script {
            case .available(_, let blocks) where !Self.stalls(script, knobs: s.knobs):
                s.pins[key] = FakeKuboSnapshot.Pin(cid: key, name: (name?.isEmpty ?? true) ? nil : name, blocks: blocks)
                s.pinsCompleted += 1
                persist(s)
                return .success(blocks)
            case .fail(let message):
                failure = .command(message: message, code: 0)
            case .available, .never:
                failure =
                    deadline < stallTimeout
                    ? .timeout("pin/add \(cid) exceeded its \(deadline) deadline")
                    : .stalled("no progress on \(cid) for \(stallTimeout)")
            }
            s.pinsFailed += 1
            return .failure(failure)
        }
        await progress(try outcome.get())
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
