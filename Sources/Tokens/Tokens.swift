import Crypto
import Foundation
import Pins
import Seams

/// An HMAC signing key named by its `kid`. Keys rotate: the newest active key signs, every key
/// not yet retired verifies.
public struct SigningKey: Sendable, Equatable {
    public var kid: String
    public var secret: [UInt8]
    public var created: Timestamp
    public var retired: Timestamp?

    public init(kid: String, secret: [UInt8], created: Timestamp, retired: Timestamp? = nil) {
        self.kid = kid
        self.secret = secret
        self.created = created
        self.retired = retired
    }

    /// Secrets are 32 random bytes: the HS256 block needs at least the hash's output size.
    public static let secretBytes = 32
}

/// The claims anchorage puts in an API token.
public struct TokenClaims: Sendable, Equatable {
    /// The org the token acts for (`sub`).
    public var org: TypeID
    /// The token's own ID (`jti`), which revocation names.
    public var tokenID: TypeID
    public var issuedAt: Timestamp
    public var expiresAt: Timestamp

    public init(org: TypeID, tokenID: TypeID, issuedAt: Timestamp, expiresAt: Timestamp) {
        self.org = org
        self.tokenID = tokenID
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }

    public static let issuer = "anchorage"
}

/// Finds verification keys by `kid`.
public protocol SigningKeySource: Sendable {
    /// The key named `kid`, or nil if there is none or it is retired.
    func verificationKey(kid: String) async throws -> SigningKey?
}

/// Answers whether a token ID has been revoked.
public protocol Denylist: Sendable {
    func isRevoked(tokenID: TypeID) async throws -> Bool
}

/// Encodes and signs compact HS256 JWS tokens. Written against swift-crypto directly so that
/// exactly one algorithm exists to be confused with: there is nothing to negotiate.
public enum TokenCodec {
    public static func sign(_ claims: TokenClaims, with key: SigningKey) -> String {
        let header = #"{"alg":"HS256","kid":"\#(key.kid)","typ":"JWT"}"#
        let payload =
            #"{"exp":\#(claims.expiresAt.secondsSinceEpoch),"iat":\#(claims.issuedAt.secondsSinceEpoch),"#
            + #""iss":"\#(TokenClaims.issuer)","jti":"\#(claims.tokenID)","sub":"\#(claims.org)"}"#
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: key.secret))
        return signingInput + "." + Base64URL.encode(Array(mac))
    }
}

/// Verifies API tokens: HS256 only, `kid` required and known, signature, `iss`, `exp` (and
/// `nbf` if present) against the injected clock, then the denylist. Every failure is a 401
/// with a reason that does not help an attacker more than necessary.
public struct TokenVerifier: Sendable {
    public let keys: any SigningKeySource
    public let denylist: any Denylist
    public let clock: any WallClock
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    public let leewaySeconds: Int64
    /// Longest token accepted, in bytes (tokens are ~300 bytes).
    public static let maxTokenBytes = 4096

    public init(keys: any SigningKeySource, denylist: any Denylist, clock: any WallClock, leewaySeconds: Int64 = 0) {
        self.keys = keys
        self.denylist = denylist
        self.clock = clock
        self.leewaySeconds = leewaySeconds
    }

    public func verify(_ token: String) async throws -> TokenClaims {
        guard token.utf8.count <= Self.maxTokenBytes else { throw PinsError.unauthorized("access token is too long") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
            let headerBytes = Base64URL.decode(parts[0]),
            let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any]
        else { throw PinsError.unauthorized("access token is malformed") }
        guard header["alg"] as? String == "HS256" else {
            throw PinsError.unauthorized("access token algorithm must be HS256")
        }
        if let typ = header["typ"], (typ as? String)?.uppercased() != "JWT" {
            throw PinsError.unauthorized("access token type must be JWT")
        }
        guard let kid = header["kid"] as? String, !kid.isEmpty else {
            throw PinsError.unauthorized("access token has no key id (kid)")
        }
        guard let key = try await keys.verificationKey(kid: kid) else {
            throw PinsError.unauthorized("access token is signed with an unknown or retired key")
        }
        guard let signature = Base64URL.decode(parts[2]),
            HMAC<SHA256>.isValidAuthenticationCode(
                signature,
                authenticating: Array("\(parts[0]).\(parts[1])".utf8),
                using: SymmetricKey(data: key.secret)
            )
        else { throw PinsError.unauthorized("access token signature is invalid") }
        guard let payloadBytes = Base64URL.decode(parts[1]),
            let payload = try? JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any]
        else { throw PinsError.unauthorized("access token payload is malformed") }
        guard payload["iss"] as? String == TokenClaims.issuer,
            let sub = payload["sub"] as? String, let org = TypeID(parsing: sub, prefix: IDPrefix.org),
            let jti = payload["jti"] as? String, let tokenID = TypeID(parsing: jti, prefix: IDPrefix.token),
            let exp = Self.seconds(payload["exp"])
        else { throw PinsError.unauthorized("access token claims are incomplete") }
        let now = clock.now().secondsSinceEpoch
        guard now < exp + leewaySeconds else { throw PinsError.unauthorized("access token has expired") }
        if let rawNbf = payload["nbf"] {
            guard let nbf = Self.seconds(rawNbf), now + leewaySeconds >= nbf else {
                throw PinsError.unauthorized("access token is not valid yet")
            }
        }
        if try await denylist.isRevoked(tokenID: tokenID) {
            throw PinsError.unauthorized("access token has been revoked")
        }
        let iat = Self.seconds(payload["iat"]) ?? 0
        return TokenClaims(
            org: org,
            tokenID: tokenID,
            issuedAt: Timestamp(secondsSinceEpoch: iat),
            expiresAt: Timestamp(secondsSinceEpoch: exp)
        )
    }

    private static func seconds(_ value: Any?) -> Int64? {
        guard let n = value as? NSNumber, !(value is Bool) else { return nil }
        let d = n.doubleValue
        guard d.isFinite, d.rounded() == d, abs(d) < 1e15 else { return nil }
        return Int64(d)
    }
}

/// Every active signing key, where a verification can reach it without a query.
public protocol ActiveKeySource: Sendable {
    /// The keys that are not retired.
    func activeKeys() async throws -> [SigningKey]
}

/// The active signing keys, held in memory and reloaded every `refreshSeconds`: a request
/// costs no key lookup, a key retired elsewhere stops verifying within `refreshSeconds`, and a
/// `kid` not in the set (an attacker's junk, or a key minted a moment ago on another node)
/// reloads the set at most once per `missRefreshSeconds` in all, so unauthenticated requests
/// cannot make the database work per request.
public actor KeyRing: SigningKeySource {
    private let source: any ActiveKeySource
    private let clock: any WallClock
    private let refresh: Int64
    private let missRefresh: Int64
    private var keys: [String: SigningKey] = [:]
    private var loadedAt: Timestamp?
    private var loading = false
    /// Bumped by ``invalidate()``; a reload that overlapped one does not count as fresh.
    private var generation = 0
    /// Reloads so far.
    public private(set) var loads = 0
    /// Verifications answered from memory, invalidations heard, for `cache-stats`.
    public private(set) var hits = 0
    public private(set) var invalidations = 0

    public init(source: any ActiveKeySource, clock: any WallClock, refreshSeconds: Int64 = 30, missRefreshSeconds: Int64 = 1) {
        self.source = source
        self.clock = clock
        self.refresh = refreshSeconds * 1_000_000
        self.missRefresh = missRefreshSeconds * 1_000_000
    }

    public func verificationKey(kid: String) async throws -> SigningKey? {
        let now = clock.now()
        let age = loadedAt.map { now.microseconds - $0.microseconds }
        if age == nil || age! >= refresh {
            try await reload(now)
        } else if keys[kid] == nil, age! >= missRefresh {
            try await reload(now)
        } else {
            hits += 1
        }
        return keys[kid]
    }

    /// A key was retired or added somewhere in the cluster: the next verification reloads the
    /// set, so a retired key stops verifying at once rather than after `refreshSeconds`.
    public func invalidate() {
        generation += 1
        invalidations += 1
        loadedAt = nil
    }

    /// (keys held, age of the set in microseconds, or nil before the first load).
    public func snapshot() -> (entries: Int, ageMicroseconds: Int64?) {
        (keys.count, loadedAt.map { clock.now().microseconds - $0.microseconds })
    }

    public var refreshSeconds: Int64 { refresh / 1_000_000 }

    /// One reload at a time: callers arriving meanwhile use the set as it is (or, before the
    /// first load, wait for it).
    private func reload(_ now: Timestamp) async throws {
        guard !loading || loadedAt == nil else { return }
        loading = true
        defer { loading = false }
        let started = generation
        let active = try await source.activeKeys()
        keys = Dictionary(active.map { ($0.kid, $0) }, uniquingKeysWith: { a, _ in a })
        // An invalidation during the query may concern a key the query still saw.
        loadedAt = generation == started ? now : nil
        loads += 1
    }
}

/// Base64url without padding (RFC 7515 §2).
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Strict: no padding, no other alphabet, no stray bits in the last character. Byte by
    /// byte (every API request decodes a token's three parts; Foundation's route through
    /// base64 with string replacements was a tenth of the API's CPU under load).
    public static func decode(_ text: Substring) -> [UInt8]? {
        RFC4648.decode(text.utf8, alphabet: RFC4648.base64URL, bitsPerChar: 6)
    }
}
