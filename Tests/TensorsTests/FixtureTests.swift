import Testing
@testable import Tensors

/// Every op against PyTorch values (tools/make_op_fixtures.py computes the references in float64
/// from fp32 inputs). fp32 tolerance: max |diff| ≤ 1e-5 × max |expected|. Both the fast CPU backend
/// and the reference backend must pass, so the oracle of the cross-check tests is itself checked.
@Suite struct FixtureTests {
    static let backends: [any Backend] = [Backends.cpu, Backends.reference]

    func check(_ fixture: Fixture, _ key: String, _ actual: Tensor, on backend: any Backend,
               relative: Float = 1e-5, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(actual.shape == (try fixture.shape(key)), "\(fixture.name).\(key) shape", sourceLocation: sourceLocation)
        expectClose(try backend.floats(actual), try fixture.floats(key), relative: relative,
                    "\(fixture.name).\(key) on \(backend)", sourceLocation: sourceLocation)
    }

    @Test(arguments: backends, ["conv3x3_s1", "conv3x3_s2", "conv1x1", "conv3x3_s2_asym"])
    func conv2d(backend: any Backend, name: String) throws {
        let f = try Fixture(name)
        let stride = try f.ints("stride"), pad = try f.ints("padding")
        let geometry = Conv2dGeometry(strideH: stride[0], strideW: stride[1], padTop: pad[0], padLeft: pad[1],
                                      padBottom: pad[2], padRight: pad[3])
        let w = try backend.prepareConv2d(weight: f.tensor("weight", on: backend), bias: f.tensor("bias", on: backend),
                                          geometry: geometry)
        try check(f, "y", backend.conv2d(f.tensor("x", on: backend), w), on: backend)
    }

    @Test(arguments: backends)
    func linearAndMatmul(backend: any Backend) throws {
        let f = try Fixture("linear")
        let w = try backend.prepareLinear(weight: f.tensor("weight", on: backend), bias: f.tensor("bias", on: backend))
        try check(f, "y", backend.linear(f.tensor("x", on: backend), w), on: backend)

        let m = try Fixture("matmul")
        let a = try m.tensor("a", on: backend)
        try check(m, "y", backend.matmul(a, m.tensor("b", on: backend)), on: backend)
        try check(m, "y", backend.matmul(a, m.tensor("bt", on: backend), transposeB: true), on: backend)
    }

    @Test(arguments: backends)
    func normalisation(backend: any Backend) throws {
        for name in ["group_norm", "group_norm_offset"] {
            let f = try Fixture(name)
            let x = try f.tensor("x", on: backend), g = try f.tensor("weight", on: backend), b = try f.tensor("bias", on: backend)
            let groups = try f.int("groups"), eps = try f.float("eps")
            try check(f, "y", backend.groupNorm(x, groups: groups, weight: g, bias: b, eps: eps), on: backend)
            if f.entries["y_silu"] != nil {
                try check(f, "y_silu", backend.groupNorm(x, groups: groups, weight: g, bias: b, eps: eps, fusedSiLU: true), on: backend)
            }
        }
        let l = try Fixture("layer_norm")
        try check(l, "y", backend.layerNorm(l.tensor("x", on: backend), weight: l.tensor("weight", on: backend),
                                            bias: l.tensor("bias", on: backend), eps: l.float("eps")), on: backend)
    }

    @Test(arguments: backends)
    func activations(backend: any Backend) throws {
        let f = try Fixture("unary")
        let x = try f.tensor("x", on: backend)
        let cases: [(String, Activation)] = [("y_silu", .silu), ("y_gelu", .gelu), ("y_gelu_tanh", .geluTanh),
                                             ("y_quick_gelu", .quickGELU), ("y_tanh", .tanh)]
        for (key, kind) in cases { try check(f, key, backend.activation(x, kind), on: backend) }
        try check(f, "y_clamp", backend.clamp(x, min: -1, max: 1), on: backend, relative: 0)

        let g = try Fixture("geglu")
        try check(g, "y", backend.geglu(g.tensor("x", on: backend)), on: backend)
        let s = try Fixture("softmax")
        try check(s, "y", backend.softmax(s.tensor("x", on: backend)), on: backend)
        try check(s, "y_large", backend.softmax(s.tensor("x_large", on: backend)), on: backend)
    }

    @Test(arguments: backends, ["attention_self", "attention_cross", "attention_dim160"])
    func attention(backend: any Backend, name: String) throws {
        let f = try Fixture(name)
        let y = try backend.attention(query: f.tensor("q", on: backend), key: f.tensor("k", on: backend),
                                      value: f.tensor("v", on: backend), heads: f.int("heads"))
        try check(f, "y", y, on: backend)
    }

    @Test(arguments: backends)
    func layoutAndBroadcasting(backend: any Backend) throws {
        let u = try Fixture("upsample")
        try check(u, "y", backend.upsampleNearest2x(u.tensor("x", on: backend)), on: backend, relative: 0)
        let c = try Fixture("concat")
        try check(c, "y", backend.concatChannels([c.tensor("a", on: backend), c.tensor("b", on: backend)]), on: backend, relative: 0)
        let b = try Fixture("binary")
        let a = try b.tensor("a", on: backend)
        try check(b, "y_add_channel", backend.add(a, b.tensor("b_channel", on: backend)), on: backend, relative: 0)
        try check(b, "y_mul_nc", backend.mul(a, b.tensor("b_nc", on: backend)), on: backend, relative: 0)
        try check(b, "y_sub_full", backend.sub(a, b.tensor("b_full", on: backend)), on: backend, relative: 0)
        // x·0.18215 + 0.5 rounds once per op in PyTorch and once (fused) here: ≤ 1 ulp apart.
        try check(b, "y_scale", backend.scale(a, by: 0.18215, adding: 0.5), on: backend, relative: 1e-6)
    }

    /// diffusers' get_timestep_embedding: cos/sin order, shift and odd widths. Both sides compute in
    /// fp32 with correctly rounded exp/sin/cos, so they agree to a few ulps of the argument
    /// (arguments reach ~1000, where one fp32 ulp is 6e-5): tolerance 2e-4 absolute.
    @Test(arguments: backends)
    func timestepEmbedding(backend: any Backend) throws {
        let f = try Fixture("timestep_embedding")
        let t = try f.floats("t")
        let cases: [(String, Int, Bool, Float)] = [("y_320", 320, true, 0), ("y_64", 64, false, 1), ("y_9", 9, true, 1)]
        for (key, dim, flip, shift) in cases {
            let y = try backend.timestepEmbedding(t, dim: dim, flipSinToCos: flip, downscaleFreqShift: shift)
            #expect(y.shape == (try f.shape(key)))
            let c = closeness(try backend.floats(y), try f.floats(key))
            #expect(c.maxAbsDiff <= 2e-4, "\(key): \(c)")
        }
    }

    /// Conversions are exact: bf16 rounding (ties to even, ±0, ±inf, subnormals) and fp16 decoding.
    @Test(arguments: backends)
    func conversions(backend: any Backend) throws {
        let f = try Fixture("convert")
        let x = try f.tensor("x", on: backend)
        let rounded = try backend.floats(backend.convert(x, to: .bfloat16))
        let expected = try f.floats("y_bf16")
        #expect(rounded.elementsEqual(expected) { $0.bitPattern == $1.bitPattern }, "bf16 rounding differs from PyTorch")
        let h = try f.entry("h")
        let decoded = try h.bytes.withUnsafeBytes {
            try backend.floats(backend.tensor(raw: $0, format: .float16, shape: h.shape, dtype: .float32))
        }
        #expect(decoded.elementsEqual(try f.floats("h_f32")) { $0.bitPattern == $1.bitPattern }, "fp16 decoding differs from PyTorch")
    }
}
