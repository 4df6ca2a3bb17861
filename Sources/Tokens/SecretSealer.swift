import Crypto
import Seams

/// Keeps HMAC signing secrets sealed at rest: AES-256-GCM under a key the database never
/// holds (`auth.secretsKeyFile`), with the `kid` as associated data so a sealed secret cannot
/// be moved to another key's row. A leaked backup, replica or SQL injection then yields no
/// signing secret, and the ops role (held by every `serve`) cannot plant a usable key without
/// the file. Rotation: the new key becomes `current`, the old one `previous` (opens only) on
/// every node, then `anchorage admin reseal-keys` re-seals every row (docs/security.md).
public struct SecretSealer: Sendable {
    public struct Key: Sendable {
        /// A fingerprint stored beside each sealed secret (`signing_keys.sealed_with`): the first
        /// 16 hex digits of SHA-256 of the key; it names the key without revealing it.
        public let id: String
        let key: SymmetricKey

        public init(bytes: [UInt8]) throws(SealError) {
            guard bytes.count == 32 else { throw .badKey("a secrets key is 32 bytes (got \(bytes.count))") }
            key = SymmetricKey(data: bytes)
            id = SHA256.hash(data: bytes).prefix(8).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        }
    }

    public enum SealError: Error, Sendable, CustomStringConvertible {
        case badKey(String)
        case unknownKey(String)
        case tampered(kid: String)

        public var description: String {
            switch self {
            case .badKey(let why): return why
            case .unknownKey(let id):
                return "a signing secret is sealed with key \(id), which is neither auth.secretsKeyFile nor auth.previousSecretsKeyFile"
            case .tampered(let kid): return "the sealed secret of \(kid) does not open (wrong key, or altered)"
            }
        }
    }

    public let current: Key?
    public let previous: [Key]

    /// No keys: secrets are stored and read in the clear (development, or before sealing).
    public init(current: Key? = nil, previous: [Key] = []) {
        self.current = current
        self.previous = previous
    }

    public var isSealing: Bool { current != nil }

    /// What to store for `secret`: sealed with the current key (and its fingerprint), or the
    /// secret itself (and nil) when no key is configured.
    public func seal(_ secret: [UInt8], kid: String) throws -> (stored: [UInt8], sealedWith: String?) {
        guard let current else { return (secret, nil) }
        let box = try AES.GCM.seal(secret, using: current.key, authenticating: Array(kid.utf8))
        guard let combined = box.combined else { throw SealError.tampered(kid: kid) }
        return (Array(combined), current.id)
    }

    /// The secret from what is stored.
    public func open(_ stored: [UInt8], kid: String, sealedWith: String?) throws -> [UInt8] {
        guard let sealedWith else { return stored }
        guard let key = ([current].compactMap { $0 } + previous).first(where: { $0.id == sealedWith }) else {
            throw SealError.unknownKey(sealedWith)
        }
        do {
            let box = try AES.GCM.SealedBox(combined: stored)
            return Array(try AES.GCM.open(box, using: key.key, authenticating: Array(kid.utf8)))
        } catch {
            throw SealError.tampered(kid: kid)
        }
    }
}
