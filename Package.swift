// swift-tools-version: 6.2
import PackageDescription

/// One settings array for every target: Swift 6 language mode (strict concurrency) plus the
/// upcoming features the Hummingbird/postgres-nio codebases use.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// Tests import what they use without naming every defining module.
let testSwiftSettings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "anchorage",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "anchorage", targets: ["Server"]),
        .executable(name: "anchorage-bench", targets: ["Bench"]),
        .executable(name: "fake-kubo", targets: ["FakeKuboServer"]),
        .executable(name: "anchorage-sim", targets: ["SimCLI"]),
        .executable(name: "anchorage-conformance", targets: ["ConformanceCLI"]),
        .library(name: "Pins", targets: ["Pins"]),
        .library(name: "PinsHTTP", targets: ["PinsHTTP"]),
        .library(name: "PostgresStore", targets: ["PostgresStore"]),
        .library(name: "LocalPostgres", targets: ["LocalPostgres"]),
        .library(name: "DeterministicSeams", targets: ["DeterministicSeams"]),
        .library(name: "SimKernel", targets: ["SimKernel"]),
        .library(name: "SimBus", targets: ["SimBus"]),
        .library(name: "AnchorageTesting", targets: ["AnchorageTesting"]),
        .library(name: "ConformanceKit", targets: ["ConformanceKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", exact: "1.4.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-system.git", exact: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        // Yams: already resolved for swift-configuration's YAML trait; the conformance CLI reads its targets file with it.
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        // Seams: the protocols through which all core logic reaches time and randomness,
        // plus pure value types (timestamps, TypeIDs) built on them. No I/O.
        .target(name: "Seams", swiftSettings: swiftSettings),
        // Pins: the Pinning Services API domain: validation, filters, the store protocol and
        // the service that applies the spec's rules. Imports no adapter.
        .target(
            name: "Pins",
            dependencies: ["Seams", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Worker: executes a node's placements against its Kubo (retries, deadlines, fairness via
        // the store, refcounted unpins). Talks only to the seams.
        .target(
            name: "Worker",
            dependencies: ["Seams", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Cluster: presence, rendezvous placement, dispatch, leader lease with fencing, drain,
        // maintenance, rebalancer, sweeper, reconciler. Reaches the world only through the seams
        // (clock, bus, Kubo, store), so the simulator drives this very code.
        .target(
            name: "Cluster",
            dependencies: ["Seams", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // NATS: a focused NATS client on SwiftNIO: core protocol, request/reply, JetStream, KV.
        .target(
            name: "NATS",
            dependencies: [
                "Seams",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // NATSBus: the production bus seam (ClusterBus) on NATS: PIN_JOBS work queue, ANCHORAGE_CLUSTER KV.
        .target(
            name: "NATSBus",
            dependencies: ["Seams", "NATS", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // LocalProcess: child processes (posix_spawn + waitpid) and free loopback ports, for the
        // throwaway servers of LocalNATS and LocalPostgres and for process-level tests.
        .target(name: "LocalProcess", swiftSettings: swiftSettings),
        // LocalNATS: finds nats-server, runs throwaway servers (tests) and the supervised embedded one (serve).
        .target(
            name: "LocalNATS",
            dependencies: ["LocalProcess", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Tokens: HS256 API tokens with kid-named signing keys, pinned algorithm, denylist.
        .target(
            name: "Tokens",
            dependencies: ["Seams", "Pins", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Caches: bounded node caches (entries + TTL, LRU) with cluster-wide invalidation
        // messages: the token denylist; the `cache.stats` exchange behind `admin cache-stats`.
        .target(name: "Caches", dependencies: ["Seams", "Tokens"], swiftSettings: swiftSettings),
        // Observability: a node's Prometheus families (swift-prometheus), fed by its shells.
        .target(
            name: "Observability",
            dependencies: ["Seams", "Cluster", "Worker", "Caches", .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: swiftSettings
        ),
        // PinsHTTP: the Hummingbird adapter: routes, auth middleware, strict JSON, Failure bodies.
        .target(
            name: "PinsHTTP",
            dependencies: [
                "Pins", "Tokens", "Seams",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // PostgresStore: migrations, row-level-security schema and the postgres-nio stores.
        .target(
            name: "PostgresStore",
            dependencies: [
                "Pins", "Tokens", "Seams", "Worker", "Cluster",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // LocalPostgres: throwaway PostgreSQL clusters (initdb + pg_ctl) for tests, bench, sim.
        .target(
            name: "LocalPostgres",
            dependencies: [
                "PostgresStore", "LocalProcess", "Seams",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // AnchorageTesting: a node wired to a throwaway database, for tests, bench and conformance.
        .target(
            name: "AnchorageTesting",
            dependencies: [
                "AnchorageNode", "Pins", "Tokens", "PinsHTTP", "PostgresStore", "LocalPostgres", "DeterministicSeams", "Seams", "Worker",
                "LocalProcess",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // ProcessCluster: a real cluster of `anchorage serve` and `fake-kubo` processes over a
        // throwaway PostgreSQL and nats-server, for the process-level test targets.
        .target(
            name: "ProcessCluster",
            dependencies: [
                "AnchorageTesting", "Cluster", "DeterministicSeams", "LocalNATS", "LocalPostgres", "LocalProcess", "Pins", "PostgresStore", "Seams",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // AnchorageNode: the one node builder (DESIGN §9): configuration + environment → router,
        // pin worker, cluster agent and the production shells that run them. Called by serve,
        // the test kit, the benchmark, the conformance targets and every simulated node.
        .target(
            name: "AnchorageNode",
            dependencies: [
                "Seams", "Pins", "Tokens", "Worker", "Cluster", "PinsHTTP", "PostgresStore", "Caches", "Observability",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // KuboRPC: the production Kubo client (Kubo's RPC API over HTTP), behind the KuboAPI seam.
        .target(
            name: "KuboRPC",
            dependencies: [
                "Seams",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // FakeKubo: a wire-faithful fake Kubo: an in-process model (for the simulator) and a real
        // HTTP server speaking Kubo's RPC format (for tests and dev mode), with fault knobs.
        .target(
            name: "FakeKubo",
            dependencies: [
                "DeterministicSeams",
                "Seams", "Pins",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FakeKuboServer",
            dependencies: [
                "FakeKubo", "Seams",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Live: production implementations of the seams (wall clock, system entropy).
        .target(name: "Live", dependencies: ["Seams"], swiftSettings: swiftSettings),
        // DeterministicSeams: the seams' deterministic implementations (virtual clock, seeded
        // entropy), for the simulator, the tests and the fakes. No I/O.
        .target(name: "DeterministicSeams", dependencies: ["Seams"], swiftSettings: swiftSettings),
        // SimKernel: a generic deterministic simulation kernel: the event scheduler on virtual
        // time, the trace and its digest, invariants. Knows nothing of anchorage.
        .target(
            name: "SimKernel",
            dependencies: ["Seams", "DeterministicSeams", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // SimBus: the cluster bus seam in memory, with NATS semantics and faults (delay, loss,
        // duplication, reordering, partitions), driven by the kernel's scheduler.
        .target(name: "SimBus", dependencies: ["Seams", "SimKernel"], swiftSettings: swiftSettings),
        // Simulation: the deterministic cluster simulator: N virtual nodes running the production
        // cluster core, worker and HTTP router against one real PostgreSQL, scenarios, invariants.
        .target(
            name: "Simulation",
            dependencies: [
                "AnchorageNode", "FakeKubo", "DeterministicSeams", "SimKernel", "SimBus", "Seams", "Cluster", "Worker", "Pins", "PinsHTTP", "Tokens",
                "PostgresStore", "LocalPostgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SimCLI",
            dependencies: [
                "Simulation", "SimKernel", "Seams", "LocalPostgres", "PostgresStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // ConformanceKit: Pinning-API fixtures as data, one runner, pluggable transports.
        .target(
            name: "ConformanceKit",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // ConformanceCLI: `anchorage-conformance`, the suite against any pinning service (the
        // server's `anchorage conformance` runs it, without linking the kit).
        .executableTarget(
            name: "ConformanceCLI",
            dependencies: [
                "ConformanceKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Server",
            dependencies: [
                "AnchorageNode", "Worker", "Cluster", "NATS", "NATSBus", "LocalNATS",
                "Tokens", "PostgresStore", "Live", "Seams", "KuboRPC", "Caches",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Bench",
            dependencies: [
                "AnchorageNode", "Pins", "Tokens", "PinsHTTP", "PostgresStore", "LocalPostgres", "LocalProcess", "Live", "Seams",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NATSTests",
            dependencies: [
                "Seams", "NATS", "NATSBus", "LocalNATS", "LocalProcess",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: testSwiftSettings
        ),
        // BusContract: the ClusterBus contract, one suite run against NATSBus (a throwaway
        // nats-server) and the simulator's SimBus.
        .testTarget(
            name: "BusContract",
            dependencies: [
                "Seams", "NATSBus", "LocalNATS", "DeterministicSeams", "SimKernel", "SimBus",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: testSwiftSettings
        ),
        // Faults survived with real processes (issue 15): kill -9, restarts, PostgreSQL and Kubo
        // outages under a steady load; each case prints what was accepted, pinned, failed.
        .testTarget(
            name: "FaultTests",
            dependencies: [
                "ProcessCluster", "LocalNATS", "LocalPostgres", "Pins", "PostgresStore", "Seams",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "ClusterProcessTests",
            dependencies: [
                "ProcessCluster", "Cluster", "Pins", "Seams", "LocalProcess", "AnchorageTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "SimTests",
            dependencies: ["DeterministicSeams", "SimKernel", "SimBus", "Seams"],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "SimulationTests",
            dependencies: ["Simulation"],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "ClusterTests",
            dependencies: ["Cluster", "Worker", "Seams"],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "CacheTests",
            dependencies: ["Caches", "PinsHTTP", "Seams", "DeterministicSeams", "Tokens"],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "PinsTests",
            dependencies: ["Pins", "Seams", "DeterministicSeams", "Tokens"],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "Integration",
            dependencies: [
                "AnchorageNode", "Worker", "FakeKubo", "KuboRPC", "Cluster", "NATSBus", "LocalNATS", "LocalProcess",
                "Pins", "Tokens", "PinsHTTP", "PostgresStore", "LocalPostgres", "DeterministicSeams", "Seams", "AnchorageTesting", "Caches",
                "Observability",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "KuboContract",
            dependencies: [
                "KuboRPC", "FakeKubo", "Seams",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "Conformance",
            dependencies: [
                "AnchorageNode", "Pins", "Tokens", "PinsHTTP", "PostgresStore", "Seams", "AnchorageTesting",
                "ConformanceKit", "Worker", "FakeKubo", "LocalProcess",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: testSwiftSettings
        ),
    ]
)
