#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reproduces PyTorch's CPU generator: `torch.Generator("cpu").manual_seed(seed)` followed by
/// `torch.randn(count, generator: g)` (fp32, contiguous) and `torch.rand(count, generator: g)`.
///
/// One value of this type plays the part of one `torch.Generator`: successive `normal(count:)` and
/// `uniform(count:)` calls continue the same MT19937 stream and share the cached second Box–Muller
/// sample, exactly as successive `randn`/`rand` calls on one generator do. It is a value type:
/// copying it forks the stream (like `Generator.clone_state`).
///
/// What torch does (`aten/src/ATen/native/cpu/DistributionTemplates.h`, `DistributionsHelper.h`,
/// `MT19937RNGEngine.h`, torch 2.13):
/// - **Engine**: 32-bit MT19937; `manual_seed(s)` seeds it with `UInt32(truncatingIfNeeded: s)`
///   (so `2**32 + 7` gives the stream of `7`) and drops the cached normal sample.
/// - **`count >= 16`**: the buffer is filled with float uniforms `(r & 0xFFFFFF) * 2^-24`, one 32-bit
///   draw each, in memory order; each full block of 16 is turned in place into 8 Box–Muller pairs
///   (element `j` with `j + 8`, `u1 = 1 - d[j]` feeds the radius, `d[j + 8]` the angle). If
///   `count % 16 != 0`, the **last 16** elements (overlapping the previous block) are refilled with
///   16 fresh uniforms and transformed again.
/// - **`count < 16`**: one `normal_distribution<double>` per element: a cached sample if there is
///   one, else two 53-bit double uniforms (two 32-bit draws each, first draw high),
///   `r = sqrt(-2 log1p(-u2))`, `theta = 2 pi u1`; `r sin(theta)` is cached in the generator (it
///   survives later calls, including `count >= 16` ones, which never touch it), `r cos(theta)` is
///   returned, rounded to Float.
///
/// The block transform exists in two versions, chosen by `Kernel`:
/// - `.avx2` (default): `normal_fill_16_AVX2`, which x86 wheels run for the AVX2 *and* AVX512 CPU
///   capabilities (libtorch_cpu.so 2.13.0+cpu carries only DEFAULT and AVX2 builds of
///   `normal_kernel`; AVX512 dispatch falls back to AVX2, and its outputs equal the AVX2 ones bit
///   for bit). Its log/sin/cos are the Cephes polynomials of `avx_mathfun.h`
///   (`log256_ps`, `sincos256_ps`), ported here lane by lane with the **same operation order and
///   the same fused multiply-adds that GCC contracted in the shipped binary** (read from the
///   disassembly of `NormalFill16<float, true>::operator()` in libtorch_cpu.so 2.13.0+cpu; the
///   constants are the float bit patterns found there). Pure IEEE float arithmetic, so it is
///   bit-exact on every platform.
/// - `.scalar`: the portable `normal_fill_16` (torch's DEFAULT capability; per the source also ARM
///   builds, not checked here): libm `logf`/`cosf`/`sinf`, `theta = Float(2 pi (Double) *
///   Double(u2))`. Bit-exact only where this process and torch use the same libm (checked against
///   torch under `ATEN_CPU_CAPABILITY=default` with glibc).
///
/// Precision: on x86-64 Linux (torch 2.13.0+cpu, glibc) every fixture value matches bit for bit —
/// see `TorchRandomSourceTests` and `tools/make_rng_fixtures.py`. The `count < 16` path goes
/// through libm's double `log1p`/`sin`/`cos`; a libm other than glibc may differ in the last bit of
/// a double, which survives the rounding to Float only in rare cases (then by 1 Float ulp).
///
/// fp16/bf16: `torch.randn(dtype=float16)` takes a different path (spec §A7.5); this type produces
/// the fp32 stream, to be cast by the caller.
public struct TorchRandomSource: RandomSource, Sendable {
    /// Which of torch's 16-element Box–Muller kernels to reproduce (see the type's documentation).
    public enum Kernel: Sendable {
        /// x86 wheels (AVX2/AVX512 capability): `avx_mathfun.h` polynomials. Platform-independent.
        case avx2
        /// torch's DEFAULT capability and non-x86 builds: libm `logf`/`cosf`/`sinf`.
        case scalar
    }

    /// The seed passed to `init` (torch's `initial_seed()`; only its low 32 bits reach MT19937).
    public let seed: UInt64
    public let kernel: Kernel
    private var engine: MT19937
    /// torch's `next_double_normal_sample_`: the `r * sin(theta)` half of the last double pair.
    private var cachedNormal: Double?

    /// `torch.Generator("cpu").manual_seed(seed)`.
    public init(seed: UInt64, kernel: Kernel = .avx2) {
        self.seed = seed
        self.kernel = kernel
        self.engine = MT19937(seed: seed)
        self.cachedNormal = nil
    }

    /// `torch.randn(count, generator: g)` for an fp32 contiguous tensor, in memory order.
    public mutating func normal(count: Int) -> [Float] {
        precondition(count >= 0, "negative count \(count)")
        if count < 16 {
            return (0..<count).map { _ in Float(nextDoubleNormal()) }
        }
        var data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = engine.nextFloatUniform() }
            initialized = count
        }
        let kernel = self.kernel
        data.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            var i = 0
            while i + 16 <= count {
                Self.fill16(base + i, kernel: kernel)
                i += 16
            }
            if count % 16 != 0 {
                let tail = base + (count - 16)
                for k in 0..<16 { tail[k] = engine.nextFloatUniform() }
                Self.fill16(tail, kernel: kernel)
            }
        }
        return data
    }

    /// `torch.rand(count, generator: g)` for fp32: one 32-bit draw per element,
    /// `Float(r & 0xFFFFFF) * 2^-24` in [0, 1). Leaves the cached normal sample alone, as torch does.
    public mutating func uniform(count: Int) -> [Float] {
        precondition(count >= 0, "negative count \(count)")
        return (0..<count).map { _ in engine.nextFloatUniform() }
    }

    /// The next raw 32-bit MT19937 output (torch's `CPUGeneratorImpl::random()`).
    mutating func nextUInt32() -> UInt32 { engine.next() }

    /// `at::normal_distribution<double>(0, 1)` on this generator, including its cache.
    private mutating func nextDoubleNormal() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached * 1 + 0  // transformation::normal: fma(x, std, mean); -0 becomes +0
        }
        let u1 = engine.nextDoubleUniform()
        let u2 = engine.nextDoubleUniform()
        let r = (-2.0 * log1p(-u2)).squareRoot()
        let theta = (2.0 * Double.pi) * u1
        cachedNormal = r * sin(theta)
        return r * cos(theta) * 1 + 0
    }

    /// In-place Box–Muller on `data[0..<16]` (pairs j, j + 8), mean 0 and std 1.
    @inline(__always)
    static func fill16(_ data: UnsafeMutablePointer<Float>, kernel: Kernel) {
        switch kernel {
        case .avx2: AVX2Kernel.fill16(data)
        case .scalar: ScalarKernel.fill16(data)
        }
    }
}

// MARK: - MT19937

/// The 32-bit Mersenne Twister as `at::mt19937` implements it (standard MT19937 outputs).
struct MT19937: Sendable {
    private static let n = 624
    private static let m = 397
    private var state: [UInt32]
    private var index: Int

    /// `at::mt19937(seed)`: only the low 32 bits of `seed` are used.
    init(seed: UInt64) {
        var state = [UInt32](repeating: 0, count: Self.n)
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<Self.n {
            let previous = state[i - 1]
            state[i] = 1_812_433_253 &* (previous ^ (previous >> 30)) &+ UInt32(i)
        }
        self.state = state
        self.index = Self.n
    }

    mutating func next() -> UInt32 {
        if index >= Self.n { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// `CPUGeneratorImpl::random64()`: two draws, the first one in the high half.
    mutating func next64() -> UInt64 {
        let high = UInt64(next())
        let low = UInt64(next())
        return (high << 32) | low
    }

    /// `uniform_real_distribution<float>(0, 1)`: 24 random bits scaled by 2^-24 (exact).
    mutating func nextFloatUniform() -> Float {
        Float(next() & 0xFF_FFFF) * 0x1p-24
    }

    /// `uniform_real_distribution<double>(0, 1)`: 53 random bits scaled by 2^-53 (exact).
    mutating func nextDoubleUniform() -> Double {
        Double(next64() & 0x1F_FFFF_FFFF_FFFF) * 0x1p-53
    }

    private mutating func twist() {
        state.withUnsafeMutableBufferPointer { mt in
            let n = Self.n, m = Self.m
            for i in 0..<n {
                let y = (mt[i] & 0x8000_0000) | (mt[(i + 1) % n] & 0x7FFF_FFFF)
                mt[i] = mt[(i + m) % n] ^ (y >> 1) ^ ((y & 1) == 0 ? 0 : 0x9908_B0DF)
            }
        }
        index = 0
    }
}

// MARK: - Scalar kernel (torch's normal_fill_16)

enum ScalarKernel {
    @inline(__always)
    static func fill16(_ data: UnsafeMutablePointer<Float>) {
        for j in 0..<8 {
            let u1 = 1 - data[j]  // [0, 1) -> (0, 1] for log
            let u2 = data[j + 8]
            let radius = (-2 * logf(u1)).squareRoot()
            // `2.0f * c10::pi<double> * u2` is evaluated in double, then stored as float.
            let theta = Float(2.0 * Double.pi * Double(u2))
            data[j] = radius * cosf(theta) * 1 + 0
            data[j + 8] = radius * sinf(theta) * 1 + 0
        }
    }
}
