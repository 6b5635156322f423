/// Errors raised at op boundaries. Each one names the operation and the shapes or types involved,
/// so a user who feeds a wrong image or a wrong weight file learns what was expected.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    case shapeMismatch(op: String, expected: [Int], actual: [Int])
    case incompatibleShapes(op: String, lhs: [Int], rhs: [Int])
    case dtypeMismatch(op: String, expected: DType, actual: DType)
    case invalidArgument(op: String, message: String)
    case backendFailure(op: String, message: String)
    case outOfMemory(bytes: Int)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, expected, actual):
            return "\(op): expected shape \(expected), got \(actual)"
        case let .incompatibleShapes(op, lhs, rhs):
            return "\(op): shapes \(lhs) and \(rhs) are incompatible"
        case let .dtypeMismatch(op, expected, actual):
            return "\(op): expected \(expected) data, got \(actual)"
        case let .invalidArgument(op, message):
            return "\(op): \(message)"
        case let .backendFailure(op, message):
            return "\(op): \(message)"
        case let .outOfMemory(bytes):
            return "out of memory allocating \(bytes) bytes"
        }
    }
}
