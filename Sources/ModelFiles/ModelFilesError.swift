import Foundation

/// Everything that can be wrong with model files on disk. Each case names the file (and the
/// tensor, where there is one) so a user can tell which download is broken.
public enum ModelFilesError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or mapped.
    case unreadable(path: String, reason: String)
    /// The safetensors header is malformed (bad length, not JSON, not an object, bad UTF-8…).
    case badHeader(path: String, reason: String)
    /// One tensor's entry is inconsistent (offsets, shape, size, duplicate name).
    case badTensor(path: String, tensor: String, reason: String)
    /// The tensor's dtype exists in safetensors but is not one this engine loads.
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// A tensor the model needs is absent.
    case missingTensor(path: String, tensor: String)
    /// A tensor exists with a shape other than the model's.
    case shapeMismatch(path: String, tensor: String, expected: [Int], actual: [Int])
    /// Tensors in the file that the model did not use.
    case unusedTensors(path: String, tensors: [String])
    /// A config.json or index file is malformed or lacks a required key.
    case badConfig(path: String, reason: String)
    /// A model could not be found; `searched` lists every place looked at.
    case modelNotFound(id: String, searched: [String], hint: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read: \(reason)"
        case let .badHeader(path, reason): return "\(path): invalid safetensors header: \(reason)"
        case let .badTensor(path, tensor, reason): return "\(path): tensor '\(tensor)': \(reason)"
        case let .unsupportedDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)' has dtype \(dtype); supported: F32, F16, BF16"
        case let .missingTensor(path, tensor): return "\(path): missing tensor '\(tensor)'"
        case let .shapeMismatch(path, tensor, expected, actual):
            return "\(path): tensor '\(tensor)' has shape \(actual), expected \(expected)"
        case let .unusedTensors(path, tensors):
            let shown = tensors.prefix(8).joined(separator: ", ")
            return "\(path): \(tensors.count) unexpected tensor(s): \(shown)\(tensors.count > 8 ? ", …" : "")"
        case let .badConfig(path, reason): return "\(path): \(reason)"
        case let .modelNotFound(id, searched, hint):
            return "model '\(id)' not found; looked in:\n" + searched.map { "  \($0)" }.joined(separator: "\n") + "\n\(hint)"
        }
    }
}
