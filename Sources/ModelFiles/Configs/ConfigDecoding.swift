import Foundation

/// A config value that diffusers writes either as one number or as one number per level
/// (`attention_head_dim: 8` in SD 1.5, `[5, 10, 20, 20]` in SD 2.x).
public enum IntOrList: Codable, Sendable, Equatable {
    case single(Int)
    case list([Int])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            self = .single(value)
        } else {
            self = .list(try container.decode([Int].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .single(v): try container.encode(v)
        case let .list(v): try container.encode(v)
        }
    }

    /// One value per level; a list must have exactly `levels` entries.
    public func perLevel(_ levels: Int, key: String) throws -> [Int] {
        switch self {
        case let .single(v): return Array(repeating: v, count: levels)
        case let .list(v):
            guard v.count == levels else {
                throw ConfigError.invalid("\(key) has \(v.count) entries for \(levels) levels")
            }
            return v
        }
    }
}

/// Problems found while validating a decoded config (wrapped into `ModelFilesError.badConfig`).
public enum ConfigError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self { case let .invalid(m): return m }
    }
}

public enum ConfigFile {
    /// Decodes a `config.json`. Unknown keys are ignored; a missing required key or a value of the
    /// wrong type is reported with its key path.
    public static func load<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ModelFilesError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        return try decode(type, from: data, path: url.path)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            let where_ = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            throw ModelFilesError.badConfig(path: path, reason: "missing required key '\(where_)'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let where_ = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ModelFilesError.badConfig(path: path, reason: "key '\(where_)': \(context.debugDescription)")
        } catch let DecodingError.dataCorrupted(context) {
            throw ModelFilesError.badConfig(path: path, reason: "not valid JSON: \(context.debugDescription)")
        } catch {
            throw ModelFilesError.badConfig(path: path, reason: "\(error)")
        }
    }
}
