import Testing
@testable import Tensors

@Suite struct EngineTests {
    /// A steady loop of the same shapes allocates only during its first iteration.
    @Test func steadyLoopDoesNotAllocate() throws {
        let pool = BufferPool()
        let backend = try CPUBackend(threads: 2, precision: .float32, pool: pool)
        var rng = SeededRandom(seed: 21)
        let conv = try backend.prepareConv2d(weight: backend.tensor(rng.floats(8 * 8 * 9), shape: [8, 8, 3, 3]),
                                             bias: nil, geometry: Conv2dGeometry(stride: 1, padding: 1))
        let gamma = try backend.tensor(rng.floats(8), shape: [8]), beta = try backend.tensor(rng.floats(8), shape: [8])
        var x = try backend.tensor(rng.floats(2 * 8 * 8 * 8), shape: [2, 8, 8, 8])
        func step() throws {
            let h = try backend.groupNorm(x, groups: 4, weight: gamma, bias: beta, eps: 1e-5, fusedSiLU: true)
            let y = try backend.conv2d(h, conv, addend: x)
            let q = try y.reshaped([2, 64, 8])
            let a = try backend.attention(query: q, key: q, value: q, heads: 2)
            x = try backend.scale(a.reshaped([2, 8, 8, 8]), by: 0.5, adding: 0)
        }
        try step()
        try step()
        let warm = pool.statistics.freshAllocations
        for _ in 0..<10 { try step() }
        #expect(pool.statistics.freshAllocations == warm)
        #expect(pool.statistics.reuses > 0)
    }

    @Test func viewsShareStorage() throws {
        let backend = Backends.cpu
        let t = try backend.tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        let flat = try t.reshaped([-1])
        #expect(flat.shape == [24])
        #expect(flat.storage === t.storage)
        let second = try t.slice(batch: 1..<2)
        #expect(try backend.floats(second) == (12..<24).map(Float.init))
        #expect(throws: TensorError.self) { try t.reshaped([5, -1]) }
        #expect(throws: TensorError.self) { try t.slice(batch: 1..<3) }
    }

    /// Bad input at op boundaries is a typed error naming the shapes, never a crash.
    @Test(arguments: [Backends.cpu as any Backend, Backends.reference])
    func mismatchesAreTypedErrors(backend: any Backend) throws {
        let x = try backend.tensor([Float](repeating: 1, count: 2 * 4 * 4 * 3), shape: [2, 4, 4, 3])
        let conv = try backend.prepareConv2d(weight: backend.tensor([Float](repeating: 0, count: 8 * 5 * 9), shape: [8, 5, 3, 3]),
                                             bias: nil, geometry: Conv2dGeometry(stride: 1, padding: 1))
        #expect(throws: TensorError.shapeMismatch(op: "conv2d", expected: [2, 4, 4, 5], actual: [2, 4, 4, 3])) {
            try backend.conv2d(x, conv)
        }
        let lin = try backend.prepareLinear(weight: backend.tensor([Float](repeating: 0, count: 6 * 4), shape: [6, 4]), bias: nil)
        #expect(throws: TensorError.shapeMismatch(op: "linear", expected: [2, 4, 4, 4], actual: [2, 4, 4, 3])) {
            try backend.linear(x, lin)
        }
        let y = try backend.tensor([1, 2], shape: [2])
        #expect(throws: TensorError.incompatibleShapes(op: "binary", lhs: [2, 4, 4, 3], rhs: [2])) { try backend.add(x, y) }
        #expect(throws: TensorError.self) { try backend.groupNorm(x, groups: 2, weight: y, bias: y, eps: 1e-5) }
        let q = try x.reshaped([2, 16, 3])
        #expect(throws: TensorError.self) { try backend.attention(query: q, key: q, value: q, heads: 2) }
        let half = try backend.convert(x, to: .bfloat16)
        #expect(throws: TensorError.dtypeMismatch(op: "activation", expected: .float32, actual: .bfloat16)) {
            try backend.activation(half, .silu)
        }
        #expect(throws: TensorError.self) { try backend.tensor([1, 2, 3], shape: [2, 2]) }
        let bytes: [UInt8] = [0, 0, 128]
        #expect(throws: TensorError.self) {
            try bytes.withUnsafeBytes { try backend.tensor(raw: $0, format: .float16, shape: [2], dtype: .float32) }
        }
        #expect(throws: TensorError.self) { try backend.concatChannels([]) }
        // Sizes from a hostile file: overflowing and negative dimensions are errors, not traps.
        #expect(throws: TensorError.self) {
            try bytes.withUnsafeBytes { try backend.tensor(raw: $0, format: .float32, shape: [1 << 40, 1 << 40], dtype: .float32) }
        }
        #expect(throws: TensorError.self) { try backend.tensor([], shape: [-1, 0]) }
        #expect(throws: TensorError.self) { try x.reshaped([Int.max, 2, -1]) }
        #expect(throws: TensorError.self) {
            try backend.prepareConv2d(weight: backend.tensor([1], shape: [1, 1, 1, 1]), bias: nil, geometry: Conv2dGeometry(stride: 0))
        }
    }

    /// Zero-sized tensors are legal (an empty batch) and must not crash any path.
    @Test(arguments: [Backends.cpu as any Backend, Backends.reference])
    func emptyTensors(backend: any Backend) throws {
        let empty = try backend.tensor([], shape: [0, 4, 4, 3])
        #expect(try backend.floats(empty) == [])
        #expect(try backend.activation(empty, .silu).shape == [0, 4, 4, 3])
        #expect(try backend.concatRows([empty, empty]).shape == [0, 4, 4, 3])
        #expect(try backend.convert(empty, to: .bfloat16).count == 0)
    }

    @Test func weightsFromAnotherBackendAreRejected() throws {
        let reference = Backends.reference, cpu = Backends.cpu
        let w = try reference.prepareLinear(weight: reference.tensor([1, 2], shape: [1, 2]), bias: nil)
        #expect(throws: TensorError.self) { try cpu.linear(cpu.tensor([1, 1], shape: [1, 2]), w) }
    }
}
