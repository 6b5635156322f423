import Foundation
import ModelFiles
import Testing
import Tensors
@testable import Models

/// Tiny random-weight models saved by diffusers/transformers (tools/make_model_fixtures.py), loaded
/// through the real loader and compared with the activations PyTorch computed from the same files.
/// Tolerances, as max |diff| over the output's largest magnitude (measured errors in brackets):
/// - fp32: 1e-5, ten times stricter than the issue's 1e-4 [4e-7 to 1.7e-6: summation order and our
///   polynomial exp/erf, ~1e-7 relative each, through a few hundred operations];
/// - fp16 weights: 5e-3 [up to 1.1e-3: every weight is rounded by up to 2^-11];
/// - bf16 compute: 3e-2 [up to 2.2e-2: activations are rounded to 8 bits, about 2^-9, at every
///   matrix product, through ~20 layers]. The fp32 cases are the parity check; the others bound
///   the precision loss.
enum ModelFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models")

    static func weights(_ model: String, _ component: String?, _ file: String) throws -> SafeTensorsFile {
        var url = root.appendingPathComponent(model)
        if let component { url.appendPathComponent(component) }
        return try SafeTensorsFile(url: url.appendingPathComponent(file))
    }

    static func config<T: Decodable>(_ type: T.Type, _ model: String, _ component: String?) throws -> T {
        var url = root.appendingPathComponent(model)
        if let component { url.appendPathComponent(component) }
        return try ConfigFile.load(type, from: url.appendingPathComponent("config.json"))
    }

    static func activations(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(url: root.appendingPathComponent("activations/\(name).safetensors"))
    }

    static let fp32: CPUBackend = {
        do { return try CPUBackend(threads: 2, precision: .float32) } catch { fatalError("\(error)") }
    }()
    static let bf16: CPUBackend? = CPUBackend.hardwareSupportsBFloat16 ? try? CPUBackend(threads: 2, precision: .bfloat16) : nil
}

func expectMatches(_ actual: Tensor, _ reference: SafeTensorsFile, _ key: String, on backend: any Backend,
                   relative: Float, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = try reference.tensor(key, on: backend)
    #expect(actual.shape == expected.shape, "\(what): shape", sourceLocation: sourceLocation)
    let a = try backend.floats(actual), e = try backend.floats(expected)
    guard a.count == e.count else { return }
    var worst: Float = 0, scale: Float = 0
    for i in a.indices {
        let d = abs(a[i] - e[i])
        worst = d.isNaN ? .infinity : max(worst, d)
        scale = max(scale, abs(e[i]))
    }
    #expect(worst <= relative * max(scale, 1e-3), "\(what): max |diff| \(worst), output scale \(scale)",
            sourceLocation: sourceLocation)
}

/// Serialized: every case shares the two static backends above, and a backend's contract is one
/// thread at a time (LiveEngine, the facade and the CLI all keep to it). Running the cases in
/// parallel on one backend once gave a gross AutoencoderKL mismatch that no serial run reproduces.
@Suite(.serialized) struct ModelParityTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let model: String, weightsSuffix: String, bf16: Bool
        var testDescription: String { "\(model)\(weightsSuffix)\(bf16 ? " bf16" : "")" }
        var backend: (any Backend)? { bf16 ? ModelFixtures.bf16 : ModelFixtures.fp32 }
        var tolerance: Float { bf16 ? 3e-2 : (weightsSuffix.isEmpty ? 1e-5 : 5e-3) }
    }

    static let cases: [Case] = ["tiny-sd15", "tiny-sd21"].flatMap { model in
        [Case(model: model, weightsSuffix: "", bf16: false), Case(model: model, weightsSuffix: ".fp16", bf16: false),
         Case(model: model, weightsSuffix: "", bf16: true)]
    }

    @Test(arguments: cases)
    func textEncoder(_ c: Case) throws {
        guard let backend = c.backend else { return }
        let reference = try ModelFixtures.activations("\(c.model)-text")
        let weights = try ModelFixtures.weights(c.model, "text_encoder", "model\(c.weightsSuffix).safetensors")
        let model = try CLIPTextModel(WeightScope(source: weights, backend: backend),
                                      config: ModelFixtures.config(CLIPTextConfig.self, c.model, "text_encoder"))
        let flat = try backend.floats(reference.tensor("input_ids", on: backend))
        let ids = stride(from: 0, to: flat.count, by: 77).map { flat[$0..<($0 + 77)].map { Int($0) } }
        try expectMatches(model(ids), reference, "last_hidden_state", on: backend, relative: c.tolerance, "text \(c.testDescription)")
        try expectMatches(model(ids, skippingLastLayers: 1), reference, "hidden_state_penultimate", on: backend,
                          relative: c.tolerance, "clip skip \(c.testDescription)")
    }

    @Test(arguments: cases)
    func unet(_ c: Case) throws {
        guard let backend = c.backend else { return }
        let reference = try ModelFixtures.activations("\(c.model)-unet")
        let weights = try ModelFixtures.weights(c.model, "unet", "diffusion_pytorch_model\(c.weightsSuffix).safetensors")
        let unet = try UNet2DConditionModel(WeightScope(source: weights, backend: backend),
                                            config: ModelFixtures.config(UNetConfig.self, c.model, "unet"))
        // Batch 2 with a different timestep per row, batch 1, and a 10×14 latent that does not halve
        // evenly (diffusers' upsample_size path: 10×14 → 5×7 → 3×4 and back).
        for (suffix, contextKey) in [("", "encoder_hidden_states"), ("_b1", "ehs_b1"), ("_odd", "ehs_odd")] {
            let timesteps = try backend.floats(reference.tensor("timesteps\(suffix)", on: backend))
            let out = try unet(reference.tensor("sample\(suffix)", on: backend), timesteps: timesteps,
                               context: reference.tensor(contextKey, on: backend))
            try expectMatches(out, reference, "output\(suffix)", on: backend, relative: c.tolerance, "unet\(suffix) \(c.testDescription)")
        }
        #expect(throws: ModelError.self) {
            try unet(reference.tensor("sample_b1", on: backend), timesteps: [1, 2], context: reference.tensor("ehs_b1", on: backend))
        }
    }

    @Test(arguments: cases)
    func autoencoderKL(_ c: Case) throws {
        guard let backend = c.backend else { return }
        let reference = try ModelFixtures.activations("\(c.model)-vae")
        let weights = try ModelFixtures.weights(c.model, "vae", "diffusion_pytorch_model\(c.weightsSuffix).safetensors")
        let vae = try AutoencoderKL(WeightScope(source: weights, backend: backend),
                                    config: ModelFixtures.config(AutoencoderKLConfig.self, c.model, "vae"))
        let moments = try vae.encodeMoments(reference.tensor("image", on: backend))
        try expectMatches(moments.mean, reference, "latent_mean", on: backend, relative: c.tolerance, "vae encode \(c.testDescription)")
        try expectMatches(moments.logVariance, reference, "latent_logvar", on: backend, relative: c.tolerance,
                          "vae log-variance \(c.testDescription)")
        try expectMatches(vae.decode(reference.tensor("latents", on: backend)), reference, "decoded", on: backend,
                          relative: c.tolerance, "vae decode \(c.testDescription)")
    }

    @Test(arguments: [("", false), (".fp16", false), ("", true)])
    func autoencoderTiny(suffix: String, bf16: Bool) throws {
        guard let backend: any Backend = bf16 ? ModelFixtures.bf16 : ModelFixtures.fp32 else { return }
        let tolerance: Float = bf16 ? 3e-2 : (suffix.isEmpty ? 1e-5 : 5e-3)
        let reference = try ModelFixtures.activations("tiny-taesd")
        let weights = try ModelFixtures.weights("tiny-taesd", nil, "diffusion_pytorch_model\(suffix).safetensors")
        let taesd = try AutoencoderTiny(WeightScope(source: weights, backend: backend),
                                        config: ModelFixtures.config(AutoencoderTinyConfig.self, "tiny-taesd", nil))
        try expectMatches(taesd.encode(reference.tensor("image", on: backend)), reference, "encoded", on: backend,
                          relative: tolerance, "taesd encode\(suffix)")
        try expectMatches(taesd.decode(reference.tensor("latents", on: backend)), reference, "decoded", on: backend,
                          relative: tolerance, "taesd decode\(suffix)")
    }
}
