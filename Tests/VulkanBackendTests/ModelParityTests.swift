import Foundation
import ModelFiles
import Models
import Testing
import Tensors
@testable import VulkanBackend

/// The tiny random-weight models (Tests/Fixtures/models) loaded through the real loader onto the
/// Vulkan backend and compared with the activations PyTorch computed from the same files — the
/// same references the CPU parity suite (Tests/ModelsTests/ModelParityTests.swift) uses.
/// Tolerance: 1e-4 of the output's scale (the fp32 bound); fp32 throughout, so the
/// difference is summation order and transcendental functions through a few hundred ops.
@Suite(.serialized) struct VulkanModelParityTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models")
    static let tolerance: Float = 1e-4

    static func file(_ path: String) throws -> SafeTensorsFile { try SafeTensorsFile(url: root.appendingPathComponent(path)) }
    static func config<T: Decodable>(_ type: T.Type, _ folder: String) throws -> T {
        try ConfigFile.load(type, from: root.appendingPathComponent(folder).appendingPathComponent("config.json"))
    }

    func expectMatches(_ vk: VulkanBackend, _ actual: Tensor, _ reference: SafeTensorsFile, _ key: String, _ what: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try reference.tensor(key, on: vk)
        #expect(actual.shape == expected.shape, "\(what): shape", sourceLocation: sourceLocation)
        expectClose(try vk.floats(actual), try vk.floats(expected), relative: Self.tolerance, what, sourceLocation: sourceLocation)
    }

    @Test(arguments: ["tiny-sd15", "tiny-sd21"])
    func textEncoder(model: String) throws {
        try withVulkan { vk in
            let reference = try Self.file("activations/\(model)-text.safetensors")
            let text = try CLIPTextModel(WeightScope(source: Self.file("\(model)/text_encoder/model.safetensors"), backend: vk),
                                         config: Self.config(CLIPTextConfig.self, "\(model)/text_encoder"))
            let flat = try vk.floats(reference.tensor("input_ids", on: vk))
            let ids = stride(from: 0, to: flat.count, by: 77).map { flat[$0..<($0 + 77)].map { Int($0) } }
            try expectMatches(vk, text(ids), reference, "last_hidden_state", "text \(model)")
            try expectMatches(vk, text(ids, skippingLastLayers: 1), reference, "hidden_state_penultimate", "clip skip \(model)")
        }
    }

    @Test(arguments: ["tiny-sd15", "tiny-sd21"])
    func unet(model: String) throws {
        try withVulkan { vk in
            let reference = try Self.file("activations/\(model)-unet.safetensors")
            let unet = try UNet2DConditionModel(
                WeightScope(source: Self.file("\(model)/unet/diffusion_pytorch_model.safetensors"), backend: vk),
                config: Self.config(UNetConfig.self, "\(model)/unet"))
            // Batch 2 with a timestep per row, batch 1, and a 10×14 latent that does not halve evenly.
            for (suffix, contextKey) in [("", "encoder_hidden_states"), ("_b1", "ehs_b1"), ("_odd", "ehs_odd")] {
                let timesteps = try vk.floats(reference.tensor("timesteps\(suffix)", on: vk))
                let out = try unet(reference.tensor("sample\(suffix)", on: vk), timesteps: timesteps,
                                   context: reference.tensor(contextKey, on: vk))
                try expectMatches(vk, out, reference, "output\(suffix)", "unet\(suffix) \(model)")
            }
        }
    }

    @Test func autoencoderKL() throws {
        try withVulkan { vk in
            let reference = try Self.file("activations/tiny-sd15-vae.safetensors")
            let vae = try AutoencoderKL(WeightScope(source: Self.file("tiny-sd15/vae/diffusion_pytorch_model.safetensors"), backend: vk),
                                        config: Self.config(AutoencoderKLConfig.self, "tiny-sd15/vae"))
            let moments = try vae.encodeMoments(reference.tensor("image", on: vk))
            try expectMatches(vk, moments.mean, reference, "latent_mean", "vae encode")
            try expectMatches(vk, moments.logVariance, reference, "latent_logvar", "vae log-variance")
            try expectMatches(vk, vae.decode(reference.tensor("latents", on: vk)), reference, "decoded", "vae decode")
        }
    }

    @Test(arguments: ["", ".fp16"])
    func autoencoderTiny(suffix: String) throws {
        try withVulkan { vk in
            let reference = try Self.file("activations/tiny-taesd.safetensors")
            let taesd = try AutoencoderTiny(WeightScope(source: Self.file("tiny-taesd/diffusion_pytorch_model\(suffix).safetensors"), backend: vk),
                                            config: Self.config(AutoencoderTinyConfig.self, "tiny-taesd"))
            // fp16 weights: every weight is rounded by up to 2^-11, as in the CPU suite (5e-3).
            let tolerance: Float = suffix.isEmpty ? Self.tolerance : 5e-3
            for (input, key, what) in [("image", "encoded", "encode"), ("latents", "decoded", "decode")] {
                let out = what == "encode" ? try taesd.encode(reference.tensor(input, on: vk)) : try taesd.decode(reference.tensor(input, on: vk))
                let expected = try reference.tensor(key, on: vk)
                #expect(out.shape == expected.shape)
                expectClose(try vk.floats(out), try vk.floats(expected), relative: tolerance, "taesd \(what)\(suffix)")
            }
        }
    }
}
