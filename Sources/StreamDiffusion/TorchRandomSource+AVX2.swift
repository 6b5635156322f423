/// A lane-by-lane port of torch's `NormalFill16<float, true>` (`normal_fill_16_AVX2`) with
/// `log256_ps` and `sincos256_ps` from `aten/src/ATen/native/cpu/avx_mathfun.h` (Cephes polynomials,
/// after Julien Pommier's sse_mathfun).
///
/// Bit-exactness rests on three details of the shipped x86 build (libtorch_cpu.so 2.13.0+cpu, GCC,
/// `-mavx2 -mfma`, default `-ffp-contract=fast`), read from its disassembly:
/// - the constants are the float bit patterns below (C double literals rounded to float);
/// - GCC fused some `_mm256_mul_ps` + `_mm256_add_ps`/`_sub_ps` pairs into FMAs and left others
///   alone; every fused step is written `fma(a, b, c)` below, every other step as plain `*`/`+`
///   (Swift never contracts on its own);
/// - the sin/cos selection adds +0 to the chosen polynomial (`and`/`andnot` masks and adds).
/// `sqrt` is correctly rounded in both (`vsqrtps`), float <-> int32 conversions are exact or
/// truncating (`vcvttps2dq`) as in `Int32(_:)`.
enum AVX2Kernel {
    // log256_ps
    static let minNormPos = Float(bitPattern: 0x0080_0000)
    static let sqrtHalf = Float(bitPattern: 0x3F35_04F3)  // cephes_SQRTHF 0.70710677
    static let logP: [Float] = [
        0x3D90_21BB, 0xBDEB_D1B8, 0x3DEF_251A, 0xBDFE_5D4F, 0x3E11_E9BF,
        0xBE2A_AE50, 0x3E4C_CEAC, 0xBE7F_FFFC, 0x3EAA_AAAA,
    ].map { Float(bitPattern: $0) }  // cephes_log_p0 ... p8
    static let logQ1 = Float(bitPattern: 0xB95E_8083)  // -2.12194440e-4
    static let logQ2 = Float(bitPattern: 0x3F31_8000)  // 0.693359375

    // sincos256_ps
    static let fourOverPi = Float(bitPattern: 0x3FA2_F983)  // cephes_FOPI 1.2732395
    static let minusDP1 = Float(bitPattern: 0xBF49_0000)  // -0.78515625
    static let minusDP2 = Float(bitPattern: 0xB97D_A000)  // -2.4187564849853515625e-4
    static let minusDP3 = Float(bitPattern: 0xB322_2169)  // -3.77489497744594108e-8
    static let cosP0 = Float(bitPattern: 0x37CC_F5CE)  // 2.443315711809948e-5
    static let cosP1 = Float(bitPattern: 0xBAB6_061A)  // -1.388731625493765e-3
    static let cosP2 = Float(bitPattern: 0x3D2A_AAA5)  // 4.166664568298827e-2
    static let sinP0 = Float(bitPattern: 0xB94C_A1F9)  // -1.9515295891e-4
    static let sinP1 = Float(bitPattern: 0x3C08_839E)  // 8.3321608736e-3
    static let sinP2 = Float(bitPattern: 0xBE2A_AAA3)  // -1.6666654611e-1

    /// `_mm256_set1_ps(2.0f * c10::pi<double>)`: 2 pi rounded to float, 6.2831855.
    static let twoPi = Float(bitPattern: 0x40C9_0FDB)

    /// One rounding: `a * b + c`.
    @inline(__always)
    static func fma(_ a: Float, _ b: Float, _ c: Float) -> Float { c.addingProduct(a, b) }

    @inline(__always)
    static func fill16(_ data: UnsafeMutablePointer<Float>) {
        for j in 0..<8 {
            let u1 = 1 - data[j]  // [0, 1) -> (0, 1] for log
            let u2 = data[j + 8]
            let radius = (-2 * log(u1)).squareRoot()
            let theta = twoPi * u2
            let (sine, cosine) = sincos(theta)
            // _mm256_fmadd_ps(n, std_v, mean_v) with std 1, mean 0: exact, but -0 becomes +0.
            data[j] = fma(radius * cosine, 1, 0)
            data[j + 8] = fma(radius * sine, 1, 0)
        }
    }

    /// `log256_ps` for one lane. Box–Muller only passes x in (0, 1]; the NaN for x <= 0 of the
    /// original is kept for completeness.
    @inline(__always)
    static func log(_ input: Float) -> Float {
        if !(input > 0) { return .nan }  // the vector code ORs an all-ones mask in
        let clamped = Swift.max(input, minNormPos)
        let bits = clamped.bitPattern
        var e = Float(Int32(bitPattern: bits >> 23) - 0x7F) + 1
        // Keep the mantissa, exponent of 0.5: m in [0.5, 1).
        let m = Float(bitPattern: (bits & ~0x7F80_0000) | 0x3F00_0000)
        // if m < SQRTHF { e -= 1; x = m + m - 1 } else { x = m - 1 }, as (m - 1) + (m or 0).
        var x: Float
        if m < sqrtHalf {
            e = e - 1
            x = (m - 1) + m
        } else {
            x = (m - 1) + 0
        }
        let z = x * x
        var y = fma(logP[0], x, logP[1])
        for k in 2...8 { y = fma(y, x, logP[k]) }
        y = y * x
        y = fma(y, z, e * logQ1)
        y = fma(-z, 0.5, y)  // vfnmadd: y - z * 0.5 in one rounding
        x = x + y
        x = fma(e, logQ2, x)
        return x
    }

    /// `sincos256_ps` for one lane: (sin, cos).
    @inline(__always)
    static func sincos(_ input: Float) -> (Float, Float) {
        let signBitSin = input.bitPattern & 0x8000_0000
        let ax = Float(bitPattern: input.bitPattern & 0x7FFF_FFFF)
        // j = (trunc(|x| * 4/pi) + 1) & ~1
        let scaled = ax * fourOverPi
        var j = scaled < 0x1p31 ? Int32(scaled) : Int32.min  // vcvttps2dq: INT_MIN when out of range
        j = (j &+ 1) & ~1
        let y = Float(j)
        let swapSignBitSin = UInt32(bitPattern: j & 4) << 29
        let polyMask = (j & 2) == 0
        // Extended-precision modular arithmetic: x = ((x - y DP1) - y DP2) - y DP3, fused.
        var x = fma(y, minusDP1, ax)
        x = fma(minusDP2, y, x)
        x = fma(y, minusDP3, x)
        let signBitCos = UInt32(bitPattern: ~(j &- 2) & 4) << 29
        let sinSign = signBitSin ^ swapSignBitSin

        let z = x * x
        let halfZ = z * 0.5
        // Cosine polynomial (0 <= x <= pi/4).
        var yc = fma(cosP0, z, cosP1)
        yc = fma(yc, z, cosP2)
        yc = z * yc
        yc = fma(z, yc, -halfZ)  // vfmsub: z * yc - z/2
        yc = yc + 1
        // Sine polynomial.
        var ys = fma(sinP0, z, sinP1)
        ys = fma(ys, z, sinP2)
        ys = z * ys
        ys = fma(x, ys, x)

        // Selection by masks: the chosen value plus +0 (turns -0 into +0, as the vector code does).
        let sine = polyMask ? ys + 0 : 0 + yc
        let cosine = polyMask ? yc + 0 : 0 + ys
        return (Float(bitPattern: sine.bitPattern ^ sinSign),
                Float(bitPattern: cosine.bitPattern ^ signBitCos))
    }
}
