import AnchorageNode
import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Live
import LocalPostgres
import Logging
import NIOCore
import NIOHTTP1
import Pins
import PinsHTTP
import PostgresNIO
import PostgresStore
import Seams
import Tokens

/// `anchorage-bench api`: seeds a database, serves the API in-process on a loopback port, and
/// measures it over real HTTP, next to PostgreSQL's own single-row INSERT rate on the same
/// database and concurrency, so the overhead of the API is visible as a ratio.
struct APIBench: AsyncParsableCommand, BenchReporting {
    static let configuration = CommandConfiguration(commandName: "api", abstract: "Benchmark the Pinning API on PostgreSQL.")

    @Option(help: "Pins to seed before measuring.") var pins = 1_000_000
    @Option(help: "Orgs the seeded pins are spread over.") var orgs = 10
    @Option(help: "Seconds per write measurement.") var seconds = 5.0
    @Option(help: "Requests per read query type.") var reads = 400
    @Option(parsing: .upToNextOption, help: "Connection counts for the write test.") var connections = [1, 8, 32]
    @Flag(help: "fsync and synchronous_commit off (faster, not durable).") var fast = false
    @Flag(help: "Also print every figure as one JSON object (last line of stdout).") var json = false
    @Flag(help: "Repeat the read table for one org of 100,000 pins and one of 1,000,000 (seeded after the main run).")
    var scale = false
    @Option(help: "With --scale: then add orgs of 1,000,000 pins until the database holds this many, and read again.")
    var scaleTotal: Int?
    @Option(
        help:
            "POST load generator: wrk (a separate C process; needs wrk on PATH), builtin (AsyncHTTPClient in this process), or auto (wrk when installed)."
    )
    var loadGenerator: LoadGenerator = .auto

    enum LoadGenerator: String, ExpressibleByArgument { case auto, wrk, builtin }

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let quiet = Logger(label: "bench.quiet", factory: { _ in SwiftLogNoOpLogHandler() })
        let clock = SystemWallClock()
        let entropy = SystemEntropy()
        say("starting PostgreSQL (\(fast ? "fsync off" : "durable: fsync and synchronous_commit on"))")
        let pg = try await LocalPostgres.start(options: .init(durable: !fast, maxConnections: 200), logger: logger)
        defer { pg.stop() }
        let db = try await pg.createDatabase("bench", clock: clock, logger: logger)

        let ops = PostgresClient(configuration: db.ops.clientConfiguration(maxConnections: 4), backgroundLogger: quiet)
        let api = PostgresClient(configuration: db.api.clientConfiguration(maxConnections: 64), backgroundLogger: quiet)
        let owner = PostgresClient(configuration: db.owner.clientConfiguration(maxConnections: 64), backgroundLogger: quiet)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await ops.run() }
            group.addTask { await api.run() }
            group.addTask { await owner.run() }
            defer { group.cancelAll() }

            // Orgs and tokens.
            let admin = PostgresAdmin(client: ops, clock: clock, entropy: entropy, logger: quiet)
            var orgIDs: [TypeID] = []
            var tokens: [String] = []
            for i in 0..<orgs {
                let org = try await admin.createOrg(name: "bench-\(i)")
                orgIDs.append(org.id)
                tokens.append(try await admin.mintToken(org: org.id, name: "bench", ttlSeconds: 86400).token)
            }

            let tokenList = tokens
            let orgList = orgIDs
            // Seed.
            let seedStart = ContinuousClock.now
            let perOrg = pins / max(orgs, 1)
            say("seeding \(perOrg * orgs) pins across \(orgs) orgs")
            for org in orgIDs { try await seed(org: org, pins: perOrg, ops: ops, clock: clock, logger: quiet) }
            // Steady state: autovacuum would have set the visibility map by now, which is what
            // lets count(*) use index-only scans.
            try await owner.query("VACUUM (ANALYZE) pins", logger: quiet)
            say(String(format: "seeded in %.1f s", seconds(since: seedStart)))

            // The API, in-process, on a loopback port.
            // As `serve` with its worker on: every new pin also gets its placement on this node.
            // Built by the production node builder, standalone: every new pin also gets its
            // placement on this node (no Kubo: nothing is pinned, as the bench measures the API).
            var configuration = NodeConfiguration()
            configuration.clusterEnabled = false
            configuration.logRequests = false
            // The benchmark measures throughput, far past one token's production rate limit.
            configuration.limits.requestsPerSecond = 0
            configuration.limits.maxConcurrentListsPerToken = 0
            // Clustered nodes cache denylist answers (30 s); the benchmark's node is standalone,
            // whose default is no cache: set it as a clustered node has it.
            configuration.denylistCacheSeconds = NodeConfiguration.clusteredDenylistCacheSeconds
            // The same node writing each create with its own statement and commit
            // (`db.coalesce.maxBatch` 1), measured beside it in the same run: coalescing's effect.
            var singleConfiguration = configuration
            singleConfiguration.coalescing.maxBatch = 1
            singleConfiguration.coalescing.maxInFlight = configuration.dbMaxConnections
            func environment() -> NodeEnvironment {
                NodeEnvironment(
                    nodeID: TypeID.make(IDPrefix.node, clock: clock, entropy: entropy),
                    nodeName: "bench",
                    version: "bench",
                    clock: clock,
                    entropy: entropy,
                    api: api,
                    ops: ops,
                    delegates: ["/ip4/127.0.0.1/tcp/4001/p2p/QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c"],
                    logger: { _ in quiet }
                )
            }
            func serve(_ node: Node) async -> Int {
                let portBox = PortBox()
                let app = Application(
                    router: node.router,
                    configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                    onServerRunning: { await portBox.set($0.localAddress?.port ?? 0) },
                    logger: quiet
                )
                group.addTask { try await app.runService() }
                return await portBox.wait()
            }
            let port = await serve(buildNode(configuration, environment()))
            let singlePort = await serve(buildNode(singleConfiguration, environment()))
            let http = HTTPClient(
                eventLoopGroupProvider: .singleton,
                configuration: .init(connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64))
            )
            defer { _ = http.shutdown() }
            let baseURL = "http://127.0.0.1:\(port)"
            let singleURL = "http://127.0.0.1:\(singlePort)"

            // Writes: POST /pins and raw INSERTs at the same concurrency.
            try await owner.query(
                "CREATE TABLE raw_inserts (org_id uuid NOT NULL, id uuid PRIMARY KEY, cid text NOT NULL, meta jsonb NOT NULL, created_at timestamptz NOT NULL)",
                logger: quiet
            )
            var writeRows: [[String]] = []
            var report = JSONReport(pins: perOrg * orgs)
            report.rssIdleMB = Self.residentMegabytes()
            let counter = Counter()
            let wrk: Wrk?
            switch loadGenerator {
            case .builtin: wrk = nil
            case .auto: wrk = Wrk.find()
            case .wrk:
                guard let found = Wrk.find() else { throw ValidationError("--load-generator wrk: no wrk on PATH (apt-get install wrk)") }
                wrk = found
            }
            say("POST load generator: \(wrk.map { "wrk (\($0.executable)), a separate process" } ?? "AsyncHTTPClient in this process")")
            report.loadGenerator = wrk == nil ? "builtin" : "wrk"
            let wrkCIDs = (0..<1000).map { CIDText.synthetic(UInt64($0), namespace: 8) }
            for c in connections {
                func posts(to url: String) async throws -> Result {
                    if let wrk {
                        return try await wrk.post(url: url, tokens: tokenList, cids: wrkCIDs, connections: c, seconds: seconds)
                    }
                    return try await measure(concurrency: c, seconds: seconds) { worker, n in
                        let org = (worker + n) % tokenList.count
                        var request = HTTPClientRequest(url: url + "/pins")
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(tokenList[org])")
                        request.headers.add(name: "Content-Type", value: "application/json")
                        let cid = CIDText.synthetic(await counter.next(), namespace: 7)
                        request.body = .bytes(ByteBuffer(string: #"{"cid":"\#(cid)","name":"bench","meta":{"app":"bench"}}"#))
                        let response = try await http.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        guard response.status == .accepted else { throw BenchError.status(Int(response.status.code)) }
                    }
                }
                // A line as each step starts, so a profiler can be attached to one step.
                say("POST c=\(c): one statement each")
                let single = try await posts(to: singleURL)
                say("POST c=\(c): coalesced")
                let post = try await posts(to: baseURL)
                say("POST c=\(c): raw INSERT")
                let raw = try await measure(concurrency: c, seconds: seconds) { worker, n in
                    let org = orgList[(worker + n) % orgList.count]
                    try await owner.query(
                        "INSERT INTO raw_inserts (org_id, id, cid, meta, created_at) VALUES (\(org.uuid), \(UUID()), \(CIDText.synthetic(UInt64(n), namespace: UInt64(worker))), '{\"app\":\"bench\"}'::jsonb, \(clock.now()))",
                        logger: quiet
                    )
                }
                // PostgreSQL's 16-row INSERT: what one round trip and one commit can carry.
                let batched = try await measure(concurrency: c, seconds: seconds) { worker, n in
                    let org = orgList[(worker + n) % orgList.count]
                    let ids = (0..<16).map { _ in UUID() }
                    let cids = (0..<16).map { CIDText.synthetic(UInt64(n * 16 + $0), namespace: UInt64(1000 + worker)) }
                    try await owner.query(
                        """
                        INSERT INTO raw_inserts (org_id, id, cid, meta, created_at)
                        SELECT \(org.uuid), i, c, '{"app":"bench"}'::jsonb, \(clock.now()) FROM unnest(\(ids)::uuid[], \(cids)::text[]) AS t(i, c)
                        """,
                        logger: quiet
                    )
                }
                let batchedRows = Result(rate: batched.rate * 16, p50: batched.p50, p99: batched.p99)
                report.add(connections: c, post: post, postUncoalesced: single, single: raw, batched16: batchedRows)
                writeRows.append([
                    "\(c)", fmt(post.rate), fmt(post.p50 * 1000, 2), fmt(post.p99 * 1000, 2),
                    fmt(single.rate), fmt(single.p50 * 1000, 2), fmt(single.p99 * 1000, 2),
                    fmt(raw.rate), String(format: "%.2f", post.rate / max(raw.rate, 1)),
                    fmt(batchedRows.rate), String(format: "%.2f", post.rate / max(batchedRows.rate, 1)),
                ])
                say("POST c=\(c): \(fmt(post.rate)) req/s coalesced, \(fmt(single.rate)) one statement each; raw INSERT: \(fmt(raw.rate)) rows/s")
            }

            let rssAfterWrites = Self.residentMegabytes()

            // Reads.
            let (readRows, readJSON) = try await readTable(
                baseURL: baseURL,
                tokens: tokens,
                org: orgIDs[0],
                perOrg: perOrg,
                // A seeded pin's CID, as in the scale tiers: which CIDs the write steps posted
                // depends on the load generator (wrk posts namespace 8, the built-in one 7).
                cid: nil,
                ops: ops,
                http: http,
                logger: quiet
            )
            report.get = readJSON

            // Growth: the same reads for one org of 100,000 pins and one of 1,000,000.
            var scaleRows: [[String]] = []
            if scale {
                var tiers: [(label: String, org: TypeID, token: String, pins: Int)] = []
                for size in [100_000, 1_000_000] {
                    let org = try await admin.createOrg(name: "scale-\(size)")
                    let token = try await admin.mintToken(org: org.id, name: "bench", ttlSeconds: 86400).token
                    say("seeding an org of \(size) pins")
                    try await seed(org: org.id, pins: size, ops: ops, clock: clock, logger: quiet)
                    tiers.append(("\(size) pins in the org", org.id, token, size))
                }
                try await owner.query("VACUUM (ANALYZE) pins", logger: quiet)
                var total = try await ops.query("SELECT count(*)::bigint FROM pins", logger: quiet).collect().first?.decode(Int.self) ?? 0
                for tier in tiers {
                    let (_, r) = try await readTable(
                        baseURL: baseURL,
                        tokens: [tier.token],
                        org: tier.org,
                        perOrg: tier.pins,
                        cid: nil,
                        ops: ops,
                        http: http,
                        logger: quiet
                    )
                    report.scale.append(.init(orgPins: tier.pins, totalPins: total, get: r))
                }
                if let scaleTotal, scaleTotal > total {
                    var n = 0
                    while total < scaleTotal {
                        let org = try await admin.createOrg(name: "filler-\(n)")
                        let size = min(1_000_000, scaleTotal - total)
                        say("seeding filler org \(n) (\(size) pins; \(total) so far)")
                        try await seed(org: org.id, pins: size, ops: ops, clock: clock, logger: quiet)
                        total += size
                        n += 1
                    }
                    try await owner.query("VACUUM (ANALYZE) pins", logger: quiet)
                    let big = tiers[1]
                    let (_, r) = try await readTable(
                        baseURL: baseURL,
                        tokens: [big.token],
                        org: big.org,
                        perOrg: big.pins,
                        cid: nil,
                        ops: ops,
                        http: http,
                        logger: quiet
                    )
                    report.scale.append(.init(orgPins: big.pins, totalPins: total, get: r))
                }
                for key in ["default", "name_ipartial", "meta", "deep_before", "cid"] {
                    var row = [key]
                    for t in report.scale {
                        let q = t.get[key]
                        row.append(q.map { "\($0.count) · \(fmt($0.p50Ms, 2)) / \(fmt($0.p99Ms, 2))" } ?? "—")
                    }
                    scaleRows.append(row)
                }
            }

            print("")
            print(
                "anchorage-bench api — \(perOrg * orgs) seeded pins, \(orgs) orgs, PostgreSQL \(fast ? "fsync off" : "durable"), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(wrk == nil ? "server and load generator in one process" : "POST load from wrk in its own process")"
            )
            print("")
            print(
                table(
                    [
                        "connections", "POST req/s", "p50 ms", "p99 ms", "POST req/s, one statement each", "p50 ms", "p99 ms",
                        "INSERT rows/s, 1 row per statement", "POST ÷ single-row", "INSERT rows/s, 16 rows per statement", "POST ÷ 16-row",
                    ],
                    writeRows
                )
            )
            print("")
            print(table(["GET query (\(reads) sequential requests)", "count", "p50 ms", "p99 ms"], readRows))
            report.rssAfterWritesMB = rssAfterWrites
            if !scaleRows.isEmpty {
                print("")
                print("GET /pins as the org grows (count · p50 ms / p99 ms, \(reads) sequential requests each)")
                print("")
                print(
                    table(
                        ["query"] + report.scale.map { "\($0.orgPins) in the org, \($0.totalPins) in all" },
                        scaleRows
                    )
                )
            }
            print("")
            print(
                "resident memory of the bench process (the server, its HTTP client for reads and the built-in load generator when used): idle \(fmt(report.rssIdleMB, 1)) MB, after the write steps \(fmt(rssAfterWrites, 1)) MB"
            )
            if json { print(String(decoding: try report.encoded(), as: UTF8.self)) }
        }
    }

    /// Inserts `pins` pins into `org` with SQL (as the ops role): names `file-<i>.bin`, `meta`
    /// `app` one of 100 values and `batch` one of 1,000, one in ten queued, the rest pinned,
    /// `created` a millisecond apart ending an hour ago.
    func seed(org: TypeID, pins: Int, ops: PostgresClient, clock: some WallClock, logger: Logger) async throws {
        let base = clock.now().adding(seconds: -Int64(pins) / 1000 - 3600)
        try await ops.query(
            """
            INSERT INTO pins (org_id, id, cid, cid_key, name, meta, status, created_at, updated_at)
            SELECT \(org.uuid), gen_random_uuid(), k.cid, k.cid,
              'file-' || i || '.bin',
              jsonb_build_object('app', 'app-' || (i % 100), 'batch', 'b-' || (i % 1000)),
              CASE WHEN i % 10 = 0 THEN 'queued' ELSE 'pinned' END,
              \(base) + i * interval '1 millisecond', \(base)
            FROM generate_series(1, \(pins)) AS i, LATERAL (
              SELECT 'bafkrei' || substr(md5(i::text || \(org.uuid.uuidString)), 1, 32) || substr(md5(i::text), 1, 20) AS cid) k
            """,
            logger: logger
        )
    }

    /// The read table: each query `reads` times in sequence against `org`, whose `perOrg`
    /// pins were seeded by ``seed(org:pins:ops:clock:logger:)``. `cid` filters by that CID (by
    /// default one of the seeded pins).
    func readTable(
        baseURL: String,
        tokens: [String],
        org: TypeID,
        perOrg: Int,
        cid: String?,
        ops: PostgresClient,
        http: HTTPClient,
        logger: Logger
    ) async throws -> ([[String]], [String: JSONReport.Read]) {
        let deepRows = try await ops.query(
            "SELECT created_at FROM pins WHERE org_id = \(org.uuid) ORDER BY created_at ASC OFFSET \(max(perOrg / 10, 1)) LIMIT 1",
            logger: logger
        ).collect()
        let deep = try deepRows.first?.decode(Timestamp.self) ?? Timestamp(microsecondsSinceEpoch: 0)
        var filterCID = cid ?? ""
        if cid == nil {
            // The seeded CIDs are not valid CIDs (hex digits are not base32): give one pin a real one.
            filterCID = CIDText.synthetic(UInt64(perOrg), namespace: 8)
            try await ops.query(
                "UPDATE pins SET cid = \(filterCID), cid_key = \(filterCID) WHERE org_id = \(org.uuid) AND name = 'file-1.bin'",
                logger: logger
            )
        }
        func encoded(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
        let queries: [(String, String)] = [
            ("default (pinned, newest 10)", "/pins"),
            ("name ipartial", "/pins?name=LE-1234&match=ipartial"),
            ("meta containment", "/pins?meta=" + encoded(#"{"app":"app-7"}"#)),
            ("deep before page (90% down)", "/pins?status=pinned,queued&before=" + encoded(deep.rfc3339)),
            ("cid filter", "/pins?cid=" + filterCID),
        ]
        var rows: [[String]] = []
        var json: [String: JSONReport.Read] = [:]
        for (label, path) in queries {
            var latencies: [Double] = []
            latencies.reserveCapacity(reads)
            var count = 0
            for i in 0..<reads {
                var request = HTTPClientRequest(url: baseURL + path)
                request.headers.add(name: "Authorization", value: "Bearer \(tokens[i % tokens.count])")
                let start = ContinuousClock.now
                let response = try await http.execute(request, timeout: .seconds(30))
                let body = try await response.body.collect(upTo: 8 << 20)
                latencies.append(seconds(since: start))
                guard response.status == .ok else { throw BenchError.status(Int(response.status.code)) }
                if i == 0, let o = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] {
                    count = o["count"] as? Int ?? -1
                }
            }
            latencies.sort()
            let p50 = percentile(latencies, 0.5) * 1000
            let p99 = percentile(latencies, 0.99) * 1000
            json[Self.jsonKey(label)] = .init(count: count, p50Ms: p50, p99Ms: p99)
            rows.append([label, "\(count)", fmt(p50, 2), fmt(p99, 2)])
        }
        return (rows, json)
    }

    /// The JSON keys of the read queries (issue 13's schema).
    static func jsonKey(_ label: String) -> String {
        if label.hasPrefix("default") { return "default" }
        if label.hasPrefix("name") { return "name_ipartial" }
        if label.hasPrefix("meta") { return "meta" }
        if label.hasPrefix("deep") { return "deep_before" }
        return "cid"
    }

    /// VmRSS of this process, in MB (Linux `/proc/self/status`; 0 elsewhere).
    static func residentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = line.split(separator: " ").compactMap({ Double($0) }).first
        else { return 0 }
        return kb / 1024
    }

    /// `--json`: every figure of a run as one object.
    struct JSONReport: Encodable {
        struct Rate: Encodable {
            var rps: Double
            var p50Ms: Double
            var p99Ms: Double
            enum CodingKeys: String, CodingKey {
                case rps
                case p50Ms = "p50_ms"
                case p99Ms = "p99_ms"
            }
        }
        struct Read: Encodable {
            var count: Int
            var p50Ms: Double
            var p99Ms: Double
            enum CodingKeys: String, CodingKey {
                case count
                case p50Ms = "p50_ms"
                case p99Ms = "p99_ms"
            }
        }
        var pins: Int
        var post: [String: Rate] = [:]
        var postUncoalesced: [String: Rate] = [:]
        var insertSingle: [String: Rate] = [:]
        var insertBatched16: [String: Rate] = [:]
        var get: [String: Read] = [:]
        var rssIdleMB: Double = 0
        var rssAfterWritesMB: Double = 0
        /// `--scale`: the read table per tier.
        var scale: [Tier] = []
        /// `wrk` or `builtin`: what generated the POST load.
        var loadGenerator = "builtin"

        struct Tier: Encodable {
            var orgPins: Int
            var totalPins: Int
            var get: [String: Read]
            enum CodingKeys: String, CodingKey {
                case orgPins = "org_pins"
                case totalPins = "total_pins"
                case get
            }
        }

        init(pins: Int) { self.pins = pins }

        mutating func add(connections c: Int, post: Result, postUncoalesced: Result, single: Result, batched16: Result) {
            func rate(_ r: Result) -> Rate { Rate(rps: r.rate, p50Ms: r.p50 * 1000, p99Ms: r.p99 * 1000) }
            self.post["\(c)"] = rate(post)
            self.postUncoalesced["\(c)"] = rate(postUncoalesced)
            insertSingle["\(c)"] = rate(single)
            insertBatched16["\(c)"] = rate(batched16)
        }

        enum CodingKeys: String, CodingKey {
            case pins, post, get, scale
            case loadGenerator = "load_generator"
            case postUncoalesced = "post_uncoalesced"
            case insertSingle = "insert_single"
            case insertBatched16 = "insert_batched16"
            case rss = "rss_mb"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(pins, forKey: .pins)
            try c.encode(loadGenerator, forKey: .loadGenerator)
            try c.encode(post, forKey: .post)
            try c.encode(postUncoalesced, forKey: .postUncoalesced)
            try c.encode(insertSingle, forKey: .insertSingle)
            try c.encode(insertBatched16, forKey: .insertBatched16)
            try c.encode(get, forKey: .get)
            try c.encode(["idle": rssIdleMB, "after_writes": rssAfterWritesMB], forKey: .rss)
            if !scale.isEmpty { try c.encode(scale, forKey: .scale) }
        }

        func encoded() throws -> Data {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return try encoder.encode(self)
        }
    }

    struct Result {
        var rate: Double
        var p50: Double
        var p99: Double
    }

    /// Runs `concurrency` workers, each issuing operations back to back for `seconds`.
    func measure(concurrency: Int, seconds: Double, _ op: @escaping @Sendable (Int, Int) async throws -> Void) async throws -> Result {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let all = try await withThrowingTaskGroup(of: [Double].self) { group in
            for w in 0..<concurrency {
                group.addTask {
                    var lat: [Double] = []
                    var n = 0
                    while ContinuousClock.now < deadline {
                        let start = ContinuousClock.now
                        try await op(w, n)
                        lat.append(self.seconds(since: start))
                        n += 1
                    }
                    return lat
                }
            }
            var out: [Double] = []
            for try await part in group { out += part }
            return out
        }.sorted()
        return Result(rate: Double(all.count) / seconds, p50: percentile(all, 0.5), p99: percentile(all, 0.99))
    }

}

enum BenchError: Error { case status(Int) }

struct AlwaysReady: ReadinessCheck { func notReadyReason() async -> String? { nil } }

actor Counter {
    var n: UInt64 = 0
    func next() -> UInt64 {
        n += 1
        return n
    }
}

actor PortBox {
    var port: Int?
    var waiters: [CheckedContinuation<Int, Never>] = []
    func set(_ p: Int) {
        port = p
        for w in waiters { w.resume(returning: p) }
        waiters = []
    }
    func wait() async -> Int {
        if let port { return port }
        return await withCheckedContinuation { waiters.append($0) }
    }
}
