import Testing
import Tensors
@testable import StreamDiffusion

@Suite struct RandomSourceTests {
    /// A counting source: the extension must hand the generator's samples out in order.
    struct Counting: RandomSource {
        var next: Float = 0
        mutating func normal(count: Int) -> [Float] {
            defer { next += Float(count) }
            return (0..<count).map { next + Float($0) }
        }
    }

    @Test func tensorsTakeSamplesInGeneratorOrder() throws {
        var source = Counting()
        let backend = ReferenceBackend()
        let first = try source.normalTensor(shape: [2, 3], on: backend)
        let second = try source.normalTensor(shape: [1, 2], on: backend)
        #expect(first.shape == [2, 3])
        #expect(try backend.floats(first) == [0, 1, 2, 3, 4, 5])
        #expect(try backend.floats(second) == [6, 7])
        #expect(throws: TensorError.self) { try source.normalTensor(shape: [-1, 2], on: backend) }
    }
}
