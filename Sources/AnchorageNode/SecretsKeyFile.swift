import Foundation
import Tokens

extension NodeConfiguration {
    /// The sealer of `auth.secretsKeyFile` (and `auth.previousSecretsKeyFile`); no file, no
    /// sealing. A key file must hold the base64 of 32 bytes (`head -c 32 /dev/urandom | base64`)
    /// and be readable by its owner only: a secret a group can read is not a secret.
    public func secretSealer() throws -> SecretSealer {
        func load(_ path: String, _ key: String) throws -> SecretSealer.Key {
            let attributes: [FileAttributeKey: Any]
            do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
                throw ConfigurationError("\(key): cannot read \(path)")
            }
            if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
                throw ConfigurationError("\(key): \(path) is readable by others (mode \(String(mode, radix: 8))); chmod 600 it")
            }
            guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }),
                let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { throw ConfigurationError("\(key): \(path) must hold the base64 of 32 random bytes") }
            do { return try SecretSealer.Key(bytes: Array(bytes)) } catch { throw ConfigurationError("\(key): \(error)") }
        }
        let current = try secretsKeyFile.map { try load($0, "auth.secretsKeyFile") }
        let previous = try previousSecretsKeyFile.map { [try load($0, "auth.previousSecretsKeyFile")] } ?? []
        return SecretSealer(current: current, previous: previous)
    }
}
