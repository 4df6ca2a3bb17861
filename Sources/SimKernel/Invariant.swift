import Seams

/// One broken rule: which invariant, and what it saw. The scheduler adds where and when (the
/// ``EventIndex`` in ``SimulationFailure``).
public struct Violation: Sendable, Equatable, CustomStringConvertible {
    public var invariant: String
    public var message: String

    public init(invariant: String, message: String) {
        self.invariant = invariant
        self.message = message
    }

    public var description: String { "\(invariant): \(message)" }
}

/// A named rule checked against a context value the scenario supplies (typically its world:
/// the store, the fake Kubos, the bus network). Checks read; they never change the world.
///
///     let oneLeader = Invariant<World>("at most one leader per fence token") { world in
///         try await world.leadersByFence().filter { $0.value.count > 1 }.map { "fence \($0.key): …" }
///     }
public struct Invariant<Context>: Sendable {
    public let name: String
    /// Returns the violations found (empty when the rule holds).
    public let check: @Sendable (Context) async throws -> [Violation]

    /// An invariant whose check returns one message per violation.
    public init(_ name: String, messages: @escaping @Sendable (Context) async throws -> [String]) {
        self.name = name
        self.check = { context in try await messages(context).map { Violation(invariant: name, message: $0) } }
    }

    /// An invariant whose check builds its own violations.
    public init(name: String, check: @escaping @Sendable (Context) async throws -> [Violation]) {
        self.name = name
        self.check = check
    }
}

/// Thrown by ``InvariantSet/assertHold(_:)``; the scheduler unpacks it into
/// ``SimulationFailure/violations``.
public struct InvariantFailure: Error, Sendable, CustomStringConvertible {
    public var violations: [Violation]

    public init(violations: [Violation]) { self.violations = violations }

    public var description: String { violations.map(\.description).joined(separator: "; ") }
}

/// Invariants checked together, in the order given, counting checks for the run summary.
public final class InvariantSet<Context: Sendable>: Sendable {
    public let invariants: [Invariant<Context>]
    private let counter = CheckCounter()

    public init(_ invariants: [Invariant<Context>]) { self.invariants = invariants }

    /// All violations, invariant by invariant in declaration order.
    public func violations(_ context: Context) async throws -> [Violation] {
        var found: [Violation] = []
        for invariant in invariants {
            counter.add(1)
            found += try await invariant.check(context)
        }
        return found
    }

    /// Throws ``InvariantFailure`` when any invariant is violated.
    public func assertHold(_ context: Context) async throws {
        let found = try await violations(context)
        if !found.isEmpty { throw InvariantFailure(violations: found) }
    }

    /// Single invariant evaluations so far.
    public var checksRun: Int { counter.value }

    /// Checks these invariants after every event of `scheduler` (replacing its `afterEach`).
    public func install(on scheduler: Scheduler, context: Context) {
        scheduler.setAfterEach { [self] _ in try await self.assertHold(context) }
    }
}

private final class CheckCounter: @unchecked Sendable {
    // @unchecked: `count` is only touched under `lock`.
    private let lock = Lock()
    private var count = 0
    func add(_ n: Int) { lock.withLock { count += n } }
    var value: Int { lock.withLock { count } }
}

/// The command that replays a run: `anchorage-sim scenario NAME --seed S [--nodes N] [--pins P]`.
public struct ReplayCommand: Sendable, Equatable, CustomStringConvertible {
    public var scenario: String
    public var seed: UInt64
    public var nodes: Int?
    public var pins: Int?
    /// Further arguments, appended as given (e.g. `["--database-url", url]`).
    public var extraArguments: [String]

    public init(scenario: String, seed: UInt64, nodes: Int? = nil, pins: Int? = nil, extraArguments: [String] = []) {
        self.scenario = scenario
        self.seed = seed
        self.nodes = nodes
        self.pins = pins
        self.extraArguments = extraArguments
    }

    public var arguments: [String] {
        var args = ["anchorage-sim", "scenario", scenario, "--seed", String(seed)]
        if let nodes { args += ["--nodes", String(nodes)] }
        if let pins { args += ["--pins", String(pins)] }
        return args + extraArguments
    }

    /// The command line, with arguments quoted for a POSIX shell where needed.
    public var description: String { arguments.map(Self.shellQuoted).joined(separator: " ") }

    static func shellQuoted(_ word: String) -> String {
        let safe = word.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
                || c == UInt8(ascii: "/") || c == UInt8(ascii: ":") || c == UInt8(ascii: "=") || c == UInt8(ascii: "@")
                || c == UInt8(ascii: "+") || c == UInt8(ascii: ",") || c == UInt8(ascii: "%")
        }
        if safe && !word.isEmpty { return word }
        var out = "'"
        for ch in word { out += ch == "'" ? "'\\''" : String(ch) }
        return out + "'"
    }
}
