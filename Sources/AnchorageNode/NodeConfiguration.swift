import Cluster
import Configuration
import Foundation
import Logging
import Pins
import PinsHTTP
import PostgresStore
import Seams
import Worker

/// A configuration value out of range, with the key and what it accepts.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The node's configuration: every key of `docs/configuration.md` with its default, in one
/// place. `anchorage serve` reads it from flags, environment and YAML; the tests, the benchmark
/// and the simulator start from these same defaults and override keys by name
/// (``init(reader:)`` over an in-memory provider), so they run production's settings.
public struct NodeConfiguration: Sendable {
    public var httpHost = "127.0.0.1"
    public var httpPort = 8080
    public var databaseURL: String?
    public var opsDatabaseURL: String?
    public var ownerDatabaseURL: String?
    public var dbMaxConnections = 20
    /// `db.statementTimeoutSeconds`: PostgreSQL cancels any API statement running longer (0: none).
    public var dbStatementTimeoutSeconds = 10
    /// `db.opsStatementTimeoutSeconds`: the same for the worker's and the cluster's statements.
    public var dbOpsStatementTimeoutSeconds = 60
    /// `db.coalesce.*`: concurrent `POST /pins` written by one statement and one commit.
    public var coalescing = CreateCoalescer.Settings()
    /// `http.idleTimeoutSeconds`: a connection with no request part for this long is closed,
    /// also one whose request head never completes (slow headers).
    public var httpIdleTimeoutSeconds = 60
    /// `http.maxConnections`: past this many open connections, new ones wait in the backlog.
    public var httpMaxConnections = 1024
    public var logLevel = "info"
    public var logFormat = "logfmt"
    public var logRequests = true
    public var delegates: [String] = []
    public var limits = Limits()
    public var api = APIOptions()
    public var keyCacheSeconds: Int64 = 30
    /// `auth.secretsKeyFile`: a file holding the base64 of 32 random bytes that seals signing
    /// secrets at rest; `auth.previousSecretsKeyFile`: the one it replaces, during a rotation.
    public var secretsKeyFile: String?
    public var previousSecretsKeyFile: String?
    public var leewaySeconds: Int64 = 0
    public var shutdownGraceSeconds: Int64 = 25
    public var kuboURL = "http://127.0.0.1:5001"
    public var kuboTimeoutSeconds = 10
    public var nodeID: String?
    /// `node.name`: how operators see the node (cluster-presences, logs); default host:port.
    public var nodeName: String?
    public var dataDir = ".anchorage/data"
    public var workerEnabled = true
    public var workerPollMilliseconds = 500
    public var worker = WorkerSettings()
    public var cluster = ClusterSettings()
    /// `cluster.enabled`: off runs a standalone node (no NATS; every pin placed on this node).
    public var clusterEnabled = true
    /// How often the cluster agent steps (`cluster.tickMilliseconds`).
    public var clusterTickMilliseconds = 500
    public var nats = NATSSettings()
    /// `metrics.*`: `/metrics` and who may read it.
    public var metrics = MetricsSettings()
    /// `cache.denylist.ttlSeconds` (0: no cache, every request asks PostgreSQL; unset: 30 on a
    /// clustered node, 0 on a standalone one, which has no bus to hear revocations on) and
    /// `cache.denylist.maxEntries`.
    public var denylistCacheSeconds: Int64?
    public var denylistCacheEntries = 65_536
    public static let clusteredDenylistCacheSeconds: Int64 = 30

    /// Production's defaults.
    public init() {}

    /// Reads every key from `c`, falling back to the defaults; throws ``ConfigurationError``
    /// on a value out of range.
    public init(reader c: ConfigReader) throws {
        httpHost = c.string(forKey: "http.host", default: httpHost)
        httpPort = c.int(forKey: "http.port", default: httpPort)
        // Secrets can also come from files (`db.urlFile`, `ANCHORAGE_DB_URL_FILE`, …): a value on
        // a command line is visible to every local user in `ps`.
        func secret(_ key: String) throws -> String? {
            let name = ConfigKey(key.split(separator: ".").map(String.init))
            if let value = c.string(forKey: name, isSecret: true) { return value }
            guard let path = c.string(forKey: ConfigKey((key + "File").split(separator: ".").map(String.init))) else { return nil }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("\(key)File: cannot read \(path)")
            }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        databaseURL = try secret("db.url")
        opsDatabaseURL = try secret("db.opsUrl")
        ownerDatabaseURL = try secret("db.ownerUrl")
        dbMaxConnections = c.int(forKey: "db.maxConnections", default: dbMaxConnections)
        dbStatementTimeoutSeconds = c.int(forKey: "db.statementTimeoutSeconds", default: dbStatementTimeoutSeconds)
        dbOpsStatementTimeoutSeconds = c.int(forKey: "db.opsStatementTimeoutSeconds", default: dbOpsStatementTimeoutSeconds)
        coalescing.maxBatch = c.int(forKey: "db.coalesce.maxBatch", default: coalescing.maxBatch)
        coalescing.maxInFlight = c.int(forKey: "db.coalesce.maxInFlight", default: coalescing.maxInFlight)
        coalescing.maxQueued = c.int(forKey: "db.coalesce.maxQueued", default: coalescing.maxQueued)
        httpIdleTimeoutSeconds = c.int(forKey: "http.idleTimeoutSeconds", default: httpIdleTimeoutSeconds)
        httpMaxConnections = c.int(forKey: "http.maxConnections", default: httpMaxConnections)
        logLevel = c.string(forKey: "log.level", default: logLevel)
        logFormat = c.string(forKey: "log.format", default: logFormat)
        logRequests = c.bool(forKey: "log.requests", default: logRequests)
        delegates = c.stringArray(forKey: "api.delegates", default: delegates)
        api.strictStatusDefault = c.bool(forKey: "api.strictStatusDefault", default: api.strictStatusDefault)
        keyCacheSeconds = Int64(c.int(forKey: "auth.keyCacheSeconds", default: Int(keyCacheSeconds)))
        secretsKeyFile = c.string(forKey: "auth.secretsKeyFile")
        previousSecretsKeyFile = c.string(forKey: "auth.previousSecretsKeyFile")
        leewaySeconds = Int64(c.int(forKey: "auth.leewaySeconds", default: Int(leewaySeconds)))
        shutdownGraceSeconds = Int64(c.int(forKey: "http.shutdownGraceSeconds", default: Int(shutdownGraceSeconds)))
        kuboURL = c.string(forKey: "kubo.url", default: kuboURL)
        kuboTimeoutSeconds = c.int(forKey: "kubo.timeoutSeconds", default: kuboTimeoutSeconds)
        nodeID = c.string(forKey: "node.id")
        nodeName = c.string(forKey: "node.name")
        dataDir = c.string(forKey: "node.dataDir", default: dataDir)
        workerEnabled = c.bool(forKey: "worker.enabled", default: workerEnabled)
        workerPollMilliseconds = c.int(forKey: "worker.pollMilliseconds", default: workerPollMilliseconds)
        worker.maxConcurrentPins = c.int(forKey: "kubo.maxConcurrentPins", default: worker.maxConcurrentPins)
        worker.stallTimeout = .seconds(c.int(forKey: "kubo.pinStallTimeoutSeconds", default: 120))
        worker.attemptTimeout = .seconds(c.int(forKey: "kubo.pinAttemptTimeoutSeconds", default: 3600))
        worker.pinDeadlineSeconds = Int64(c.int(forKey: "kubo.pinDeadlineSeconds", default: Int(worker.pinDeadlineSeconds)))
        worker.maxAttempts = c.int(forKey: "kubo.maxAttempts", default: worker.maxAttempts)
        worker.backoffSeconds = Int64(c.int(forKey: "kubo.retryBackoffSeconds", default: Int(worker.backoffSeconds)))
        worker.maxBackoffSeconds = Int64(c.int(forKey: "kubo.maxRetryBackoffSeconds", default: Int(worker.maxBackoffSeconds)))
        worker.maxOriginDials = c.int(forKey: "kubo.maxOriginDials", default: worker.maxOriginDials)
        worker.dialPrivateOrigins = c.bool(forKey: "kubo.dialPrivateOrigins", default: worker.dialPrivateOrigins)
        worker.leaseGraceSeconds = Int64(c.int(forKey: "worker.leaseGraceSeconds", default: Int(worker.leaseGraceSeconds)))
        clusterEnabled = c.bool(forKey: "cluster.enabled", default: clusterEnabled)
        clusterTickMilliseconds = c.int(forKey: "cluster.tickMilliseconds", default: clusterTickMilliseconds)
        func seconds(_ name: String, _ value: Int64) throws -> Int64 {
            let key = ConfigKey(name.split(separator: ".").map(String.init))
            guard let text = c.string(forKey: key) else { return c.int(forKey: key).map(Int64.init) ?? value }
            guard let d = DurationText.operatorSeconds(text) else {
                throw ConfigurationError("\(name) must be a duration like 30s, 2m, 1h (got \(text))")
            }
            return d
        }
        cluster.heartbeatSeconds = try seconds("cluster.heartbeatInterval", cluster.heartbeatSeconds)
        cluster.liveAfterSeconds = try seconds("cluster.liveAfter", cluster.liveAfterSeconds)
        cluster.nodeLostAfterSeconds = try seconds("cluster.nodeLostAfter", cluster.nodeLostAfterSeconds)
        cluster.replicationFactor = c.int(forKey: "cluster.replicationFactor", default: cluster.replicationFactor)
        cluster.minReplicas = c.int(forKey: "cluster.minReplicas", default: cluster.minReplicas)
        cluster.leaseTTLSeconds = try seconds("cluster.leaderLeaseTTL", cluster.leaseTTLSeconds)
        cluster.leaseRenewSeconds = try seconds("cluster.leaderRenewInterval", cluster.leaseRenewSeconds)
        cluster.drainGraceSeconds = try seconds("cluster.drainGracePeriod", cluster.drainGraceSeconds)
        cluster.requeueAfterSeconds = try seconds("cluster.requeueAfter", cluster.requeueAfterSeconds)
        cluster.maxRedispatches = c.int(forKey: "cluster.maxRedispatches", default: cluster.maxRedispatches)
        cluster.sweepSeconds = try seconds("cluster.sweepInterval", cluster.sweepSeconds)
        cluster.rebalanceSeconds = try seconds("cluster.rebalanceInterval", cluster.rebalanceSeconds)
        cluster.reconcileSeconds = try seconds("cluster.reconcileInterval", cluster.reconcileSeconds)
        cluster.replicateSeconds = try seconds("cluster.replicateInterval", cluster.replicateSeconds)
        cluster.rebalanceMaxMoves = c.int(forKey: "cluster.rebalanceMaxMoves", default: cluster.rebalanceMaxMoves)
        cluster.sweepBatch = c.int(forKey: "cluster.sweepBatch", default: cluster.sweepBatch)
        cluster.reconcileMaxRepairs = c.int(forKey: "cluster.reconcileMaxRepairs", default: cluster.reconcileMaxRepairs)
        cluster.autoBalance = c.bool(forKey: "cluster.autoBalance", default: cluster.autoBalance)
        cluster.maintenanceMaxSeconds = try seconds("cluster.maintenance.maxDuration", cluster.maintenanceMaxSeconds)
        cluster.kuboPinName = worker.kuboPinName
        cluster.countsSeconds = try seconds("metrics.countsInterval", cluster.countsSeconds)
        metrics.enabled = c.bool(forKey: "metrics.enabled", default: metrics.enabled)
        metrics.listen = c.string(forKey: "metrics.listen").flatMap { $0.isEmpty ? nil : $0 }
        func networks(_ key: String, _ fallback: [String]) throws -> [CIDR] {
            try c.stringArray(forKey: ConfigKey(key.split(separator: ".").map(String.init)), default: fallback).map { text in
                guard let cidr = CIDR(text.trimmingCharacters(in: .whitespaces)) else {
                    throw ConfigurationError("\(key): \(text) is not an address or CIDR network (10.0.0.0/8, ::1/128)")
                }
                return cidr
            }
        }
        metrics.allowCIDRs = try networks("metrics.allowCIDRs", MetricsSettings.loopback)
        metrics.trustedProxies = try networks("metrics.trustedProxies", [])
        denylistCacheSeconds = c.int(forKey: "cache.denylist.ttlSeconds").map(Int64.init) ?? denylistCacheSeconds
        denylistCacheEntries = c.int(forKey: "cache.denylist.maxEntries", default: denylistCacheEntries)
        nats.url = c.string(forKey: "nats.url")
        nats.host = c.string(forKey: "nats.host", default: nats.host)
        nats.port = c.int(forKey: "nats.port", default: nats.port)
        nats.storeDir = c.string(forKey: "nats.storeDir")
        nats.binary = c.string(forKey: "nats.binary")
        nats.clusterName = c.string(forKey: "nats.clusterName", default: nats.clusterName)
        nats.clusterPort = c.int(forKey: "nats.clusterPort")
        nats.routes = c.stringArray(forKey: "nats.routes", default: [])
        nats.token = try secret("nats.token")
        nats.user = c.string(forKey: "nats.user")
        nats.password = try secret("nats.password")
        nats.replicas = c.int(forKey: "nats.replicas", default: nats.replicas)
        nats.duplicateWindowSeconds = try seconds("nats.duplicateWindow", nats.duplicateWindowSeconds)
        nats.ackWaitSeconds = try seconds("nats.ackWait", nats.ackWaitSeconds)
        nats.maxDeliver = c.int(forKey: "nats.maxDeliver", default: nats.maxDeliver)
        var l = Limits()
        l.maxBodyBytes = c.int(forKey: "limits.maxBodyBytes", default: l.maxBodyBytes)
        l.maxNameBytes = c.int(forKey: "limits.maxNameBytes", default: l.maxNameBytes)
        l.maxMetaKeys = c.int(forKey: "limits.maxMetaKeys", default: l.maxMetaKeys)
        l.maxMetaBytes = c.int(forKey: "limits.maxMetaBytes", default: l.maxMetaBytes)
        l.maxStoredOrigins = c.int(forKey: "limits.maxStoredOrigins", default: l.maxStoredOrigins)
        l.maxOriginBytes = c.int(forKey: "limits.maxOriginBytes", default: l.maxOriginBytes)
        l.defaultListLimit = c.int(forKey: "limits.defaultListLimit", default: l.defaultListLimit)
        l.maxListLimit = c.int(forKey: "limits.maxListLimit", default: l.maxListLimit)
        l.maxCidsPerQuery = c.int(forKey: "limits.maxCidsPerQuery", default: l.maxCidsPerQuery)
        l.maxQueryBytes = c.int(forKey: "limits.maxQueryBytes", default: l.maxQueryBytes)
        l.maxResponseBytes = c.int(forKey: "limits.maxResponseBytes", default: l.maxResponseBytes)
        l.maxConcurrentListsPerToken = c.int(forKey: "limits.maxConcurrentListsPerToken", default: l.maxConcurrentListsPerToken)
        l.maxInFlightRequests = c.int(forKey: "limits.maxInFlightRequests", default: l.maxInFlightRequests)
        l.requestsPerSecond = c.int(forKey: "limits.requestsPerSecond", default: l.requestsPerSecond)
        l.requestBurst = c.int(forKey: "limits.requestBurst", default: l.requestBurst)
        l.maxPinsPerOrg = c.int(forKey: "limits.maxPinsPerOrg", default: l.maxPinsPerOrg)
        limits = l
        try validate()
    }

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw ConfigurationError(message) } }
        try check((0...65535).contains(httpPort), "http.port must be 0-65535 (0: any free port, logged at start)")
        try check((1...1000).contains(dbMaxConnections), "db.maxConnections must be 1-1000")
        try check(["logfmt", "json"].contains(logFormat), "log.format must be logfmt or json")
        try check(
            Logger.Level(rawValue: logLevel.lowercased()) != nil,
            "log.level must be one of trace, debug, info, notice, warning, error, critical"
        )
        try check(limits.maxBodyBytes >= 1024, "limits.maxBodyBytes must be at least 1024")
        try check((1...255).contains(limits.maxNameBytes), "limits.maxNameBytes must be 1-255")
        try check((1...1000).contains(limits.maxMetaKeys), "limits.maxMetaKeys must be 1-1000")
        try check(limits.maxMetaBytes >= 64, "limits.maxMetaBytes must be at least 64")
        try check(limits.maxStoredOrigins >= 0, "limits.maxStoredOrigins must not be negative")
        try check((1...1000).contains(limits.maxListLimit), "limits.maxListLimit must be 1-1000 (the spec's maximum)")
        try check((1...limits.maxListLimit).contains(limits.defaultListLimit), "limits.defaultListLimit must be 1-maxListLimit")
        try check(limits.maxCidsPerQuery >= 10, "limits.maxCidsPerQuery must be at least 10 (the spec's own limit)")
        try check(limits.maxResponseBytes >= 64 * 1024, "limits.maxResponseBytes must be at least 65536")
        try check(limits.maxConcurrentListsPerToken >= 0, "limits.maxConcurrentListsPerToken must not be negative (0: no limit)")
        try check(limits.maxInFlightRequests >= 0, "limits.maxInFlightRequests must not be negative (0: no limit)")
        try check(limits.requestsPerSecond >= 0, "limits.requestsPerSecond must not be negative (0: no limit)")
        try check(limits.requestBurst >= 1, "limits.requestBurst must be at least 1")
        try check(limits.maxPinsPerOrg >= 0, "limits.maxPinsPerOrg must not be negative (0: no quota)")
        try check((1...3600).contains(httpIdleTimeoutSeconds), "http.idleTimeoutSeconds must be 1-3600")
        try check(httpMaxConnections >= 1, "http.maxConnections must be at least 1")
        try check(dbStatementTimeoutSeconds >= 0, "db.statementTimeoutSeconds must not be negative (0: none)")
        try check((1...1000).contains(coalescing.maxBatch), "db.coalesce.maxBatch must be 1-1000 (1: every create on its own)")
        try check(
            (1...dbMaxConnections).contains(coalescing.maxInFlight),
            "db.coalesce.maxInFlight must be 1-db.maxConnections (each batch holds a connection)"
        )
        try check((0...1_000_000).contains(coalescing.maxQueued), "db.coalesce.maxQueued must be 0-1000000")
        try check(delegates.count <= 20, "api.delegates holds at most 20 multiaddrs")
        try check(kuboURL.hasPrefix("http://") || kuboURL.hasPrefix("https://"), "kubo.url must be an http(s) URL")
        try check((1...600).contains(kuboTimeoutSeconds), "kubo.timeoutSeconds must be 1-600")
        try check((1...1024).contains(worker.maxConcurrentPins), "kubo.maxConcurrentPins must be 1-1024")
        try check(worker.stallTimeout >= .seconds(1), "kubo.pinStallTimeoutSeconds must be at least 1")
        try check(worker.attemptTimeout >= worker.stallTimeout, "kubo.pinAttemptTimeoutSeconds must be at least the stall timeout")
        try check(worker.pinDeadlineSeconds >= 1, "kubo.pinDeadlineSeconds must be positive")
        try check((1...1000).contains(worker.maxAttempts), "kubo.maxAttempts must be 1-1000")
        try check(
            worker.backoffSeconds >= 1 && worker.maxBackoffSeconds >= worker.backoffSeconds,
            "kubo.retryBackoffSeconds must be at least 1 and at most kubo.maxRetryBackoffSeconds"
        )
        try check((10...60000).contains(workerPollMilliseconds), "worker.pollMilliseconds must be 10-60000")
        try check((0...64).contains(worker.maxOriginDials), "kubo.maxOriginDials must be 0-64")
        for problem in cluster.problems() { try check(false, problem) }
        if let ttl = denylistCacheSeconds { try check((0...3600).contains(ttl), "cache.denylist.ttlSeconds must be 0-3600 (0: no cache)") }
        try check((1...10_000_000).contains(denylistCacheEntries), "cache.denylist.maxEntries must be 1-10000000")
        if let listen = metrics.listen { try check(MetricsSettings.split(listen) != nil, "metrics.listen must be host:port (e.g. 127.0.0.1:9464)") }
        try check((10...60000).contains(clusterTickMilliseconds), "cluster.tickMilliseconds must be 10-60000")
        try check((1...65535).contains(nats.port), "nats.port must be 1-65535")
        if let p = nats.clusterPort { try check((1...65535).contains(p), "nats.clusterPort must be 1-65535") }
        try check((1...5).contains(nats.replicas), "nats.replicas must be 1-5")
        try check(nats.duplicateWindowSeconds >= 1, "nats.duplicateWindow must be at least 1s")
        try check(nats.ackWaitSeconds >= 1, "nats.ackWait must be at least 1s")
        for url in nats.clientURLs where nats.url != nil {
            // The NATS client speaks plain TCP only: a tls:// URL must not silently connect in
            // the clear. Reach a TLS-only cluster through a local leaf node or a tunnel.
            try check(
                !url.hasPrefix("tls://"),
                "nats.url: tls:// is not supported (the NATS client has no TLS); use nats:// on a trusted network or a local leaf node (docs/security.md)"
            )
            try check(url.hasPrefix("nats://"), "nats.url must be nats://host:port (comma-separate several)")
        }
        if let nodeName { try check(!nodeName.isEmpty && nodeName.utf8.count <= 128, "node.name must be 1-128 bytes") }
        if let nodeID { try check(TypeID(parsing: nodeID, prefix: IDPrefix.node) != nil, "node.id must be a node ID (nod_…)") }
        for d in delegates { try check(d.contains("/p2p/"), "api.delegates entries must end in /p2p/<peerID>: \(d)") }
    }

    public func url(_ value: String?, key: String, flag: String) throws -> DatabaseURL {
        guard let value else {
            throw ConfigurationError("no database URL: set \(key) (flag \(flag), or ANCHORAGE_\(Self.envName(key)))")
        }
        return try DatabaseURL(value)
    }

    public func apiURL() throws -> DatabaseURL { try url(databaseURL, key: "db.url", flag: "--database-url") }
    public func opsURL() throws -> DatabaseURL { try url(opsDatabaseURL, key: "db.opsUrl", flag: "--ops-database-url") }
    public func ownerURL() throws -> DatabaseURL { try url(ownerDatabaseURL, key: "db.ownerUrl", flag: "--owner-database-url") }

    public static func envName(_ key: String) -> String {
        var out = ""
        for ch in key {
            if ch == "." { out += "_" } else if ch.isUppercase { out += "_" + String(ch) } else { out += ch.uppercased() }
        }
        return out.uppercased()
    }
}

/// `nats.*`: the bus. Without `nats.url`, `serve` runs its own nats-server (embedded mode) on
/// `nats.host:nats.port` with JetStream under `nats.storeDir`; admin commands connect there too.
public struct NATSSettings: Sendable, Equatable {
    public init() {}
    public var url: String?
    public var host = "127.0.0.1"
    public var port = 4222
    public var storeDir: String?
    public var binary: String?
    public var clusterName = "anchorage"
    public var clusterPort: Int?
    public var routes: [String] = []
    public var token: String?
    public var user: String?
    public var password: String?
    /// Stream/bucket replicas (3 in a 3-node NATS cluster).
    public var replicas = 1
    public var duplicateWindowSeconds: Int64 = 120
    public var ackWaitSeconds: Int64 = 30
    public var maxDeliver = 0

    /// The URLs a client dials: `nats.url` (comma-separated) or the embedded server's.
    public var clientURLs: [String] {
        if let url { return url.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        return ["nats://\(host):\(port)"]
    }
}

extension NodeConfiguration {
    /// Production's defaults with `overrides` applied by key name (`"kubo.maxConcurrentPins":
    /// "8"`), through the same reader as `serve`; whole numbers and booleans are typed as such.
    /// A key that is not one of ``behaviourKeys`` is refused (a typo must not silently run
    /// production's value).
    public init(overrides: [String: String]) throws {
        let known = Set(NodeConfiguration().behaviourKeys.map(\.key))
        if let unknown = overrides.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigurationError("unknown configuration key \(unknown); one of: \(known.sorted().joined(separator: ", "))")
        }
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, text) in overrides {
            let content: ConfigContent
            if let n = Int(text) {
                content = .int(n)
            } else if text == "true" || text == "false" {
                content = .bool(text == "true")
            } else {
                content = .string(text)
            }
            values[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = ConfigValue(content, isSecret: false)
        }
        try self.init(reader: ConfigReader(provider: InMemoryProvider(name: "overrides", values: values)))
    }

    /// The keys that shape a node's behaviour, with their values as text, in a fixed order (the
    /// simulator prints those that differ from production's).
    public var behaviourKeys: [(key: String, value: String)] {
        [
            ("worker.pollMilliseconds", "\(workerPollMilliseconds)"),
            ("kubo.maxConcurrentPins", "\(worker.maxConcurrentPins)"),
            ("kubo.pinStallTimeoutSeconds", "\(worker.stallTimeout.components.seconds)"),
            ("kubo.pinAttemptTimeoutSeconds", "\(worker.attemptTimeout.components.seconds)"),
            ("kubo.pinDeadlineSeconds", "\(worker.pinDeadlineSeconds)"),
            ("kubo.maxAttempts", "\(worker.maxAttempts)"),
            ("kubo.retryBackoffSeconds", "\(worker.backoffSeconds)"),
            ("kubo.maxRetryBackoffSeconds", "\(worker.maxBackoffSeconds)"),
            ("kubo.maxOriginDials", "\(worker.maxOriginDials)"),
            ("worker.leaseGraceSeconds", "\(worker.leaseGraceSeconds)"),
            ("cluster.enabled", "\(clusterEnabled)"),
            ("cluster.tickMilliseconds", "\(clusterTickMilliseconds)"),
            ("cluster.heartbeatInterval", "\(cluster.heartbeatSeconds)s"),
            ("cluster.liveAfter", "\(cluster.liveAfterSeconds)s"),
            ("cluster.nodeLostAfter", "\(cluster.nodeLostAfterSeconds)s"),
            ("cluster.replicationFactor", "\(cluster.replicationFactor)"),
            ("cluster.minReplicas", "\(cluster.minReplicas)"),
            ("cluster.leaderLeaseTTL", "\(cluster.leaseTTLSeconds)s"),
            ("cluster.leaderRenewInterval", "\(cluster.leaseRenewSeconds)s"),
            ("cluster.drainGracePeriod", "\(cluster.drainGraceSeconds)s"),
            ("cluster.requeueAfter", "\(cluster.requeueAfterSeconds)s"),
            ("cluster.maxRedispatches", "\(cluster.maxRedispatches)"),
            ("cluster.sweepInterval", "\(cluster.sweepSeconds)s"),
            ("cluster.rebalanceInterval", "\(cluster.rebalanceSeconds)s"),
            ("cluster.reconcileInterval", "\(cluster.reconcileSeconds)s"),
            ("cluster.replicateInterval", "\(cluster.replicateSeconds)s"),
            ("cluster.rebalanceMaxMoves", "\(cluster.rebalanceMaxMoves)"),
            ("cluster.sweepBatch", "\(cluster.sweepBatch)"),
            ("cluster.reconcileMaxRepairs", "\(cluster.reconcileMaxRepairs)"),
            ("cluster.autoBalance", "\(cluster.autoBalance)"),
            ("cluster.maintenance.maxDuration", "\(cluster.maintenanceMaxSeconds)s"),
            ("auth.keyCacheSeconds", "\(keyCacheSeconds)"),
            ("auth.leewaySeconds", "\(leewaySeconds)"),
            ("api.strictStatusDefault", "\(api.strictStatusDefault)"),
            ("limits.maxBodyBytes", "\(limits.maxBodyBytes)"),
            ("limits.maxListLimit", "\(limits.maxListLimit)"),
            ("limits.defaultListLimit", "\(limits.defaultListLimit)"),
            ("limits.maxResponseBytes", "\(limits.maxResponseBytes)"),
            ("limits.maxConcurrentListsPerToken", "\(limits.maxConcurrentListsPerToken)"),
            ("limits.maxInFlightRequests", "\(limits.maxInFlightRequests)"),
            ("limits.requestsPerSecond", "\(limits.requestsPerSecond)"),
            ("limits.requestBurst", "\(limits.requestBurst)"),
            ("limits.maxPinsPerOrg", "\(limits.maxPinsPerOrg)"),
            ("kubo.dialPrivateOrigins", "\(worker.dialPrivateOrigins)"),
            ("http.idleTimeoutSeconds", "\(httpIdleTimeoutSeconds)"),
            ("http.maxConnections", "\(httpMaxConnections)"),
            ("db.statementTimeoutSeconds", "\(dbStatementTimeoutSeconds)"),
            ("db.opsStatementTimeoutSeconds", "\(dbOpsStatementTimeoutSeconds)"),
            ("db.coalesce.maxBatch", "\(coalescing.maxBatch)"),
            ("db.coalesce.maxInFlight", "\(coalescing.maxInFlight)"),
            ("db.coalesce.maxQueued", "\(coalescing.maxQueued)"),
            ("metrics.countsInterval", "\(cluster.countsSeconds)s"),
            ("cache.denylist.ttlSeconds", denylistCacheSeconds.map { "\($0)" } ?? "auto"),
            ("cache.denylist.maxEntries", "\(denylistCacheEntries)"),
        ]
    }

    /// Keys whose value differs from production's defaults: (key, this value, production's).
    public func differencesFromProduction() -> [(key: String, value: String, production: String)] {
        let production = Dictionary(NodeConfiguration().behaviourKeys.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        return behaviourKeys.compactMap { entry in
            let base = production[entry.key] ?? "?"
            return base == entry.value ? nil : (entry.key, entry.value, base)
        }
    }
}

/// `metrics.*`: whether `/metrics` is served, where, and to whom.
public struct MetricsSettings: Sendable {
    public init() {}
    /// `metrics.enabled`.
    public var enabled = true
    /// `metrics.listen`: `host:port` of a listener for `/metrics` alone; unset: the API listener.
    public var listen: String?
    /// `metrics.allowCIDRs`: clients that may scrape (default: loopback only).
    public var allowCIDRs: [CIDR] = MetricsSettings.loopback.compactMap(CIDR.init)
    /// `metrics.trustedProxies`: peers whose `X-Forwarded-For` names the client.
    public var trustedProxies: [CIDR] = []

    public static let loopback = ["127.0.0.1/32", "::1/128"]

    public var policy: ClientAddressPolicy { ClientAddressPolicy(allow: allowCIDRs, trustedProxies: trustedProxies) }

    /// `host:port` (`[::1]:9464` for IPv6) split, or nil.
    public static func split(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}
